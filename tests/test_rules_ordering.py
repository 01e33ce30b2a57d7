"""Ordering law: any permutation of a customer's events, with duplicates, gives the same
records as applying them in order (per field, the newest Stripe state wins)."""

from __future__ import annotations

from functools import cache

from hypothesis import given, settings
from hypothesis import strategies as st
from test_rules_support import (
    DAY,
    T0,
    charge,
    context,
    customer,
    event,
    invoice,
    item,
    refund,
    run,
    subscription,
)

from lc_console.sync import ordering
from lc_console.sync.model import DesiredField, DesiredRecord, ExternalKey, Version


@cache
def history():
    """One customer's dunning story, both API shapes mixed, and its fixed Stripe context."""
    sub_live = subscription("current", items=[item(2000, quantity=5)], status="past_due")
    sub_up = subscription("current", items=[item(2000, quantity=8)], status="active")
    inv_open = [invoice("legacy" if n < 3 else "current", attempt_count=n,
                        next_payment_attempt=T0 + (2 * n + 1) * DAY) for n in (1, 2, 3)]
    inv_paid = invoice("current", status="paid", attempt_count=4, amount_paid=2000,
                       paid_at=T0 + 8 * DAY, next_payment_attempt=None)
    charges = [charge(f"ch_{n}", "failed", T0 + (2 * n - 2) * DAY, invoice="in_A1",
                      payment_intent="pi_1", decline_code=("insufficient_funds", "do_not_honor",
                                                           "expired_card")[n - 1])
               for n in (1, 2, 3)]
    ok = charge("ch_ok", "succeeded", T0 + 8 * DAY, payment_intent="pi_1", invoice="in_A1",
                amount_refunded=60000, amount=100000)
    # The context is what the engine fetched: today's customer, subscription and history.
    ctx = context(cust=customer(name="Jane Q. Doe"), subs=[sub_up], invoices=[inv_paid],
                  charges=[*charges, ok])
    events = [event("invoice.payment_failed", inv, created=T0 + (2 * n) * DAY,
                    eid=f"evt_f{n}", shape="legacy" if n < 3 else "current")
              for n, inv in zip((0, 1, 2), inv_open, strict=True)]
    events += [
        event("charge.failed", charges[1], created=T0 + 2 * DAY, eid="evt_c2"),
        event("invoice.paid", inv_paid, created=T0 + 8 * DAY, eid="evt_paid"),
        event("customer.subscription.updated", sub_up, created=T0 + 9 * DAY, eid="evt_up",
              previous={"items": {"data": sub_live["items"]["data"]}}),
        event("customer.updated", customer(name="Jane Q. Doe"), created=T0 + 9 * DAY,
              eid="evt_zcu"),  # same second as evt_up: the event id breaks the tie
        event("refund.created", refund(), created=T0 + 10 * DAY, eid="evt_re"),
    ]
    derived = [run(ev, ctx) for ev in events]
    return derived


def fold(derivations):
    state = ordering.apply({}, [r for d in derivations for r in d.records])
    inserts = ordering.coalesce_inserts(i for d in derivations for i in d.inserts)
    return state, inserts


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_any_permutation_with_duplicates_gives_the_same_records(data):
    derived = history()
    in_order = fold(sorted(derived, key=lambda d: d.version))
    dupes = data.draw(st.lists(st.sampled_from(range(len(derived))), max_size=8))
    order = data.draw(st.permutations(list(range(len(derived))) + dupes))
    assert fold([derived[i] for i in order]) == in_order


def test_newest_state_wins_per_field():
    state, inserts = fold(history())
    recovery = state[("LostChurn_Recovery__c", ExternalKey("Recovery_ID__c", "in_A1"))]
    assert recovery.fields["Status__c"].value == "Succeeded"
    assert recovery.fields["Status__c"].version == Version(T0 + 8 * DAY, "evt_paid")
    contact = state[("Contact", ExternalKey("LostChurn_ID__c", "cus_A"))]
    assert contact.fields["FirstName"].value == "Jane Q."
    keys = [i.dedupe_key for i in inserts]
    assert {"in_A1:started", "in_A1:failed:2", "in_A1:failed:3", "in_A1:succeeded",
            "task:refund_review:re_1"} <= set(keys)
    assert len(keys) == len(set(keys))


def _record(created, eid, **values):
    v = Version(created, eid)
    return DesiredRecord("Account", ExternalKey("K", "1"),
                         {k: DesiredField(k, val, "s", "lostchurn_wins", v)
                          for k, val in values.items()}, "cus_1")


VERSIONED = st.builds(lambda c, e, a, b: _record(c, e, **{k: v for k, v in (("A", a), ("B", b))
                                                         if v is not None}),
                      st.integers(0, 5), st.sampled_from(["evt_a", "evt_b", "evt_c"]),
                      st.one_of(st.none(), st.integers(0, 3)),
                      st.one_of(st.none(), st.integers(0, 3)))


@given(st.lists(VERSIONED, min_size=1, max_size=8), st.randoms())
def test_merge_is_commutative_associative_idempotent(records, rnd):
    # Records with equal versions come from one event and hold equal values.
    by_version = {}
    records = [r for r in records if by_version.setdefault(r.version, r) is r]
    shuffled = records * 2
    rnd.shuffle(shuffled)
    assert ordering.coalesce(shuffled) == ordering.coalesce(records)


def test_accept_only_newer_or_equal_versions():
    assert ordering.accept(None, Version(1, "evt_a"))
    assert ordering.accept(Version(1, "evt_a"), Version(1, "evt_b"))
    assert not ordering.accept(Version(2, "evt_a"), Version(1, "evt_z"))
