"""Recoveries: status machine, decline codes, amounts, opportunity and platform events."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from test_rules_support import (
    DAY,
    SHAPES,
    T0,
    charge,
    context,
    event,
    invoice,
    payment_intent,
    run,
    subscription,
    values,
)

from lc_console.settings import RulesSettings
from lc_console.sync import money
from lc_console.sync.model import ExternalKey, RecordTypeRef, Ref

EVENT_FOR_STATUS = {"open": "invoice.payment_failed", "paid": "invoice.paid",
                    "uncollectible": "invoice.marked_uncollectible", "void": "invoice.voided"}


def utc(ts: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(ts, tz=dt.UTC)


def derive_invoice(shape, inv, *, charges=(), sub_status="past_due", etype=None, pis=(),
                   rules=None, created=None, sub_over=None):
    sub = subscription(shape, status=sub_status, **(sub_over or {}))
    ctx = context(subs=[sub], invoices=[inv], charges=list(charges), pis=list(pis), rules=rules)
    etype = etype or EVENT_FOR_STATUS[inv["status"]]
    return run(event(etype, inv, created=created or T0 + DAY, shape=shape), ctx)


def failed(chid, created, shape, code="card_declined", decline="insufficient_funds"):
    return charge(chid, "failed", created, invoice="in_A1", payment_intent="pi_1", shape=shape,
                  failure_code=code, decline_code=decline)


# status machine: (invoice overrides, failed charges (offsets in days), event, subscription
#                  status) -> (status, retry count, completed at)
STATUS_TABLE = [
    pytest.param(dict(status="open", attempt_count=1), [0], None, "past_due",
                 ("Started", 0, None), id="first-failure-started"),
    pytest.param(dict(status="open", attempt_count=2), [0, 3], None, "past_due",
                 ("Retrying", 1, None), id="second-failure-retrying"),
    pytest.param(dict(status="open", attempt_count=4), [0, 3, 5, 7], None, "past_due",
                 ("Retrying", 3, None), id="fourth-failure-retrying"),
    pytest.param(dict(status="paid", attempt_count=2, amount_paid=2000, paid_at=T0 + 4 * DAY,
                      next_payment_attempt=None), [0], None, "active",
                 ("Succeeded", 1, T0 + 4 * DAY), id="paid-on-retry"),
    pytest.param(dict(status="paid", attempt_count=1, amount_paid=2000, paid_at=T0 + 2 * DAY,
                      next_payment_attempt=None), [0], None, "active",
                 ("Succeeded", 1, T0 + 2 * DAY), id="paid-by-hand-after-failure"),
    pytest.param(dict(status="uncollectible", attempt_count=4, next_payment_attempt=None,
                      status_transitions={"marked_uncollectible_at": T0 + 20 * DAY}),
                 [0, 3, 5, 7], None, "past_due", ("Exhausted", 3, T0 + 20 * DAY),
                 id="marked-uncollectible"),
    pytest.param(dict(status="void", attempt_count=2, next_payment_attempt=None,
                      status_transitions={"voided_at": T0 + 9 * DAY}), [0, 3], None, "active",
                 ("Exhausted", 1, T0 + 9 * DAY), id="voided"),
    pytest.param(dict(status="open", attempt_count=4), [0, 3, 5, 7],
                 "customer.subscription.deleted", "canceled", ("Exhausted", 3, T0 + 21 * DAY),
                 id="subscription-ended-unpaid"),
    pytest.param(dict(status="open", attempt_count=4, next_payment_attempt=None), [0, 3, 5, 7],
                 None, "unpaid", ("Exhausted", 3, T0 + 7 * DAY), id="no-further-attempt"),
    pytest.param(dict(status="open", attempt_count=1, next_payment_attempt=None,
                      collection_method="send_invoice", due_date=T0 + 30 * DAY), [0], None,
                 "past_due", ("Started", 0, None), id="send-invoice-waits-for-customer"),
]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize(("over", "fails", "etype", "sub_status", "expected"), STATUS_TABLE)
def test_status_machine(shape, over, fails, etype, sub_status, expected):
    over = dict(over)
    transitions = over.pop("status_transitions", {})
    inv = invoice(shape, **over)
    inv["status_transitions"].update(transitions)
    charges = [failed(f"ch_{i}", T0 + d * DAY, shape) for i, d in enumerate(fails)]
    if etype == "customer.subscription.deleted":
        sub = subscription(shape, status="canceled", ended_at=T0 + 21 * DAY)
        ctx = context(subs=[sub], invoices=[inv], charges=charges)
        d = run(event(etype, sub, created=T0 + 21 * DAY, shape=shape), ctx)
    else:
        d = derive_invoice(shape, inv, charges=charges, sub_status=sub_status,
                           created=T0 + 25 * DAY)
    rec = values(d, "LostChurn_Recovery__c")
    status, retries, completed = expected
    assert rec["Status__c"] == status
    assert rec["Retry_Count__c"] == retries
    assert rec["Completed_At__c"] == (utc(completed) if completed else None)
    assert rec["Started_At__c"] == utc(T0)  # the first failed charge


@pytest.mark.parametrize("shape", SHAPES)
def test_invoice_paid_first_time_is_no_recovery(shape):
    inv = invoice(shape, status="paid", attempt_count=1, amount_paid=2000, paid_at=T0,
                  next_payment_attempt=None)
    ok = charge("ch_ok", "succeeded", T0, invoice="in_A1", payment_intent="pi_1", shape=shape)
    d = derive_invoice(shape, inv, charges=[ok], sub_status="active")
    assert d.record("LostChurn_Recovery__c") is None
    assert d.record("Opportunity") is None
    assert not [i for i in d.inserts if i.sobject == "LostChurn_Recovery_Event__e"]
    assert d.record("Account") is not None  # billing fields still flow


@pytest.mark.parametrize("shape", SHAPES)
def test_paid_invoice_known_as_recovery_succeeds_without_charge_history(shape):
    inv = invoice(shape, status="paid", attempt_count=1, amount_paid=2000, paid_at=T0,
                  next_payment_attempt=None)
    sub = subscription(shape)
    ctx = context(subs=[sub], invoices=[inv], known=frozenset({"in_A1"}))
    d = run(event("invoice.paid", inv, created=T0, shape=shape), ctx)
    assert values(d, "LostChurn_Recovery__c")["Status__c"] == "Succeeded"


@pytest.mark.parametrize("shape", SHAPES)
def test_started_without_charge_history_uses_the_event_time(shape):
    inv = invoice(shape, attempt_count=1)
    d = derive_invoice(shape, inv, created=T0 + 100)
    assert values(d, "LostChurn_Recovery__c")["Started_At__c"] == utc(T0 + 100)


@pytest.mark.parametrize("shape", SHAPES)
def test_pending_bank_debit_is_not_a_failure(shape):
    inv = invoice(shape, attempt_count=1)
    pending = charge("ch_1", "pending", T0, invoice="in_A1", payment_intent="pi_1", shape=shape)
    d = derive_invoice(shape, inv, charges=[pending], etype="invoice.updated")
    assert d.record("LostChurn_Recovery__c") is None


# decline code: issuer decline_code first, else the charge's failure_code
DECLINE_TABLE = [
    ("insufficient_funds", "card_declined", None, "insufficient_funds", "soft"),
    (None, "expired_card", None, "expired_card", "card-update"),
    ("lost_card", "card_declined", None, "lost_card", "fraud"),
    ("do_not_try_again", "card_declined", None, "do_not_try_again", "hard"),
    (None, "card_declined", "stolen_card", "stolen_card", "fraud"),  # PI decline_code wins
    (None, "incorrect_cvc", None, "incorrect_cvc", "card-update"),
    ("some_new_code", "card_declined", None, "some_new_code", "soft"),
]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize(("outcome_reason", "failure_code", "pi_decline", "code", "category"),
                         DECLINE_TABLE)
def test_decline_code_and_category(shape, outcome_reason, failure_code, pi_decline, code,
                                   category):
    inv = invoice(shape)
    ch = failed("ch_1", T0, shape, code=failure_code, decline=outcome_reason)
    if outcome_reason is None:
        ch["outcome"]["type"] = "issuer_declined"
    pis = [payment_intent(decline_code=pi_decline, code=failure_code)] if pi_decline else []
    d = derive_invoice(shape, inv, charges=[ch], pis=pis)
    rec = values(d, "LostChurn_Recovery__c")
    assert (rec["Decline_Code__c"], rec["Decline_Category__c"]) == (code, category)


@pytest.mark.parametrize(("currency", "minor", "major"), [
    ("usd", 1999, Decimal("19.99")),
    ("eur", 100000, Decimal("1000.00")),
    ("jpy", 5000, Decimal("5000.00")),
    ("krw", 12000, Decimal("12000.00")),
    ("kwd", 5120, Decimal("5.12")),
    ("isk", 10000, Decimal("100.00")),
])
@pytest.mark.parametrize("shape", SHAPES)
def test_recovered_amount_from_minor_units(shape, currency, minor, major):
    inv = invoice(shape, status="paid", attempt_count=2, amount_due=minor, amount_paid=minor,
                  paid_at=T0 + DAY, currency=currency, next_payment_attempt=None)
    d = derive_invoice(shape, inv, charges=[failed("ch_1", T0, shape)], sub_status="active")
    assert values(d, "LostChurn_Recovery__c")["Recovered_Amount__c"] == major
    assert values(d, "Opportunity")["Amount"] == major
    assert money.to_major(minor, currency) == major


@pytest.mark.parametrize("shape", SHAPES)
def test_partial_payment_counts_as_recovered_so_far(shape):
    inv = invoice(shape, status="open", attempt_count=2, amount_due=10000, amount_paid=2500)
    d = derive_invoice(shape, inv, charges=[failed("ch_1", T0, shape)])
    rec = values(d, "LostChurn_Recovery__c")
    assert rec["Status__c"] == "Retrying"
    assert rec["Recovered_Amount__c"] == Decimal("25.00")


@pytest.mark.parametrize("shape", SHAPES)
def test_recovery_opportunity_while_open(shape):
    inv = invoice(shape, attempt_count=1, next_payment_attempt=T0 + 3 * DAY)
    d = derive_invoice(shape, inv, charges=[failed("ch_1", T0, shape)])
    opp = d.record("Opportunity")
    assert opp.key == ExternalKey("LostChurn_Recovery_ID__c", "in_A1")
    v = opp.values()
    assert v["Name"] == "Recovery - jane.doe@acme.com - 2026-05-28"
    assert v["StageName"] == "Prospecting"
    assert v["CloseDate"] == dt.date(2026, 5, 31)  # next attempt
    assert v["RecordTypeId"] == RecordTypeRef("Opportunity", "LostChurn_Recovery")
    assert v["AccountId"] == Ref("Account", ExternalKey("LostChurn_Stripe_Customer_ID__c", "cus_A"))
    rec = values(d, "LostChurn_Recovery__c")
    assert rec["Opportunity__c"] == Ref("Opportunity", opp.key)
    assert rec["Contact__c"] == Ref("Contact", ExternalKey("LostChurn_ID__c", "cus_A"))


@pytest.mark.parametrize(("status", "stage"), [
    ("Started", "Prospecting"), ("Retrying", "Negotiation/Review"),
    ("Succeeded", "Closed Won"), ("Exhausted", "Closed Lost"),
])
def test_stage_mapping(status, stage):
    over = {
        "Started": dict(attempt_count=1),
        "Retrying": dict(attempt_count=3),
        "Succeeded": dict(status="paid", attempt_count=2, amount_paid=2000, paid_at=T0 + DAY,
                          next_payment_attempt=None),
        "Exhausted": dict(status="uncollectible", attempt_count=4, next_payment_attempt=None),
    }[status]
    inv = invoice("current", **over)
    d = derive_invoice("current", inv, charges=[failed("ch_1", T0, "current")])
    assert values(d, "LostChurn_Recovery__c")["Status__c"] == status
    assert values(d, "Opportunity")["StageName"] == stage


def test_stage_mapping_is_a_setting():
    rules = RulesSettings()
    rules.stage_mapping["Started"] = "Qualification"
    inv = invoice("current", attempt_count=1)
    d = derive_invoice("current", inv, rules=rules)
    assert values(d, "Opportunity")["StageName"] == "Qualification"


@pytest.mark.parametrize("shape", SHAPES)
def test_close_date_is_completion_date_when_done(shape):
    inv = invoice(shape, status="paid", attempt_count=2, amount_paid=2000,
                  paid_at=T0 + 5 * DAY, next_payment_attempt=None)
    d = derive_invoice(shape, inv, charges=[failed("ch_1", T0, shape)], sub_status="active")
    assert values(d, "Opportunity")["CloseDate"] == utc(T0 + 5 * DAY).date()


def test_name_falls_back_to_invoice_email_then_customer_id():
    inv = invoice("current", email="billing@globex.io")
    sub = subscription("current")
    from test_rules_support import customer
    ctx = context(cust=customer(email=None, name=None), subs=[sub], invoices=[inv])
    d = run(event("invoice.payment_failed", inv), ctx)
    assert values(d, "Opportunity")["Name"].startswith("Recovery - billing@globex.io - ")
    inv2 = invoice("current", email=None)
    ctx2 = context(cust=customer(email=None, name=None), subs=[sub], invoices=[inv2])
    d2 = run(event("invoice.payment_failed", inv2), ctx2)
    assert values(d2, "Opportunity")["Name"].startswith("Recovery - cus_A - ")


def event_types(d):
    return sorted(i.dedupe_key for i in d.inserts if i.sobject == "LostChurn_Recovery_Event__e")


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize(("over", "fails", "keys"), [
    (dict(attempt_count=1), [0], ["in_A1:started"]),
    (dict(attempt_count=3), [0, 3, 5], ["in_A1:failed:2", "in_A1:failed:3", "in_A1:started"]),
    (dict(status="paid", attempt_count=2, amount_paid=2000, paid_at=T0 + 6 * DAY,
          next_payment_attempt=None), [0],
     ["in_A1:started", "in_A1:succeeded"]),
    (dict(status="uncollectible", attempt_count=2, next_payment_attempt=None), [0, 3],
     ["in_A1:exhausted", "in_A1:failed:2", "in_A1:started"]),
])
def test_platform_events_implied_by_the_state(shape, over, fails, keys):
    inv = invoice(shape, **over)
    charges = [failed(f"ch_{i}", T0 + d * DAY, shape, decline=f"code{i}")
               for i, d in enumerate(fails)]
    d = derive_invoice(shape, inv, charges=charges, created=T0 + 10 * DAY)
    assert event_types(d) == keys
    by_key = {i.dedupe_key: i.fields for i in d.inserts}
    started = by_key["in_A1:started"]
    assert started["Event_Type__c"] == "started"
    assert started["Customer_Email__c"] == "jane.doe@acme.com"
    assert started["Decline_Code__c"] == "code0"
    if "in_A1:failed:2" in by_key:
        assert by_key["in_A1:failed:2"]["Decline_Code__c"] == "code1"
    if "in_A1:succeeded" in by_key:
        assert by_key["in_A1:succeeded"]["Amount__c"] == Decimal("20.00")


@pytest.mark.parametrize("shape", SHAPES)
def test_charge_failed_event_updates_its_invoice_recovery(shape):
    inv = invoice(shape, attempt_count=2)
    chs = [failed("ch_0", T0, shape), failed("ch_1", T0 + 3 * DAY, shape)]
    ctx = context(subs=[subscription(shape, status="past_due")], invoices=[inv], charges=chs)
    d = run(event("charge.failed", chs[1], created=T0 + 3 * DAY, shape=shape), ctx)
    assert values(d, "LostChurn_Recovery__c")["Status__c"] == "Retrying"


@pytest.mark.parametrize("shape", SHAPES)
def test_action_required_waits_for_the_customer(shape):
    inv = invoice(shape, attempt_count=1, next_payment_attempt=None)
    d = derive_invoice(shape, inv, etype="invoice.payment_action_required")
    assert values(d, "LostChurn_Recovery__c")["Status__c"] == "Started"
