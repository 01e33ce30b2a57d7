"""Dunning as Stripe Billing runs it, and the other billing stories, as event sequences."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
import stripe
import stripe_shapes as shapes

from lc_console.sandbox.stripe import LEGACY_API_VERSION, SandboxError, StripeSandbox

NOW = 1_790_000_000
FAIL = ["charge.failed", "payment_intent.payment_failed", "invoice.payment_failed",
        "invoice.updated"]
PAID = ["charge.succeeded", "payment_intent.succeeded", "invoice_payment.paid", "invoice.paid",
        "invoice.payment_succeeded"]
RENEWAL = ["customer.subscription.updated", "invoice.created", "invoice.finalized",
           "payment_intent.created"]
TO_PAST_DUE = ["customer.subscription.updated"]


@pytest.fixture
def st() -> Iterator[StripeSandbox]:
    with StripeSandbox("small", seed=11, now=NOW) as sandbox:
        yield sandbox


def monthly_customer(st: StripeSandbox, skip: int = 0, plans: tuple[str, ...] = ()) -> str:
    """A customer with an active monthly usd subscription (on one of `plans`, by lookup key)."""
    c = stripe.StripeClient(st.keys["secret"], base_addresses={"api": st.url})
    subs = [s for s in c.v1.subscriptions.list(params={"status": "active", "limit": 100}).data
            if s["items"].data[0].price.recurring.interval == "month" and s.currency == "usd"
            and not s.cancel_at_period_end
            and (not plans or s["items"].data[0].price.lookup_key in plans)]
    return subs[skip].customer


def of_type(events: list[dict[str, Any]], type_: str) -> list[dict[str, Any]]:
    return [e for e in events if e["type"] == type_]


def assert_valid(events: list[dict[str, Any]]) -> None:
    for event in events:
        errors = shapes.object_errors(event, event["api_version"])
        assert not errors, "\n".join(errors[:10])


def test_soft_decline_recovered_on_the_second_retry(st: StripeSandbox) -> None:
    result = st.run_story(monthly_customer(st), "dunning_recovered",
                          decline_code="insufficient_funds")
    assert result.types == RENEWAL + FAIL + TO_PAST_DUE + FAIL + PAID + [
        "customer.subscription.updated"]
    assert_valid(result.events)
    # Renewals and retries are Stripe's own doing: no request behind them.
    assert all(e["request"]["id"] is None for e in result.events)
    failures = of_type(result.events, "invoice.payment_failed")
    assert [f["data"]["object"]["attempt_count"] for f in failures] == [1, 2]
    retry_at = [f["data"]["object"]["next_payment_attempt"] for f in failures]
    charges = of_type(result.events, "charge.failed")
    assert retry_at[0] > failures[0]["created"] and retry_at[1] > retry_at[0]
    assert charges[1]["created"] == retry_at[0]  # the retry happened when announced
    for charge in charges:
        obj = charge["data"]["object"]
        assert obj["failure_code"] == "card_declined"
        assert obj["outcome"]["reason"] == "insufficient_funds"
        assert obj["outcome"]["type"] == "issuer_declined"
        assert obj["outcome"]["network_status"] == "declined_by_network"
    pi_failed = of_type(result.events, "payment_intent.payment_failed")[0]["data"]["object"]
    error = pi_failed["last_payment_error"]
    assert (error["type"], error["code"], error["decline_code"]) == (
        "card_error", "card_declined", "insufficient_funds")
    assert error["charge"] == charges[0]["data"]["object"]["id"]
    paid = of_type(result.events, "invoice.paid")[0]["data"]["object"]
    assert paid["id"] == result.invoice and paid["attempt_count"] == 3
    assert paid["next_payment_attempt"] is None and paid["status"] == "paid"
    assert paid["amount_remaining"] == 0 and paid["amount_paid"] == paid["amount_due"]
    updates = of_type(result.events, "customer.subscription.updated")
    assert updates[1]["data"]["previous_attributes"] == {"status": "active"}
    assert updates[1]["data"]["object"]["status"] == "past_due"
    assert updates[2]["data"]["previous_attributes"] == {"status": "past_due"}
    invoice_updated = of_type(result.events, "invoice.updated")[0]["data"]
    assert invoice_updated["previous_attributes"]["attempt_count"] == 0
    assert invoice_updated["previous_attributes"]["attempted"] is False


def test_billing_now_is_a_request_and_the_retries_are_not(st: StripeSandbox) -> None:
    result = st.run_story(monthly_customer(st), "dunning_recovered_first_retry", when="now")
    assert result.types == RENEWAL + FAIL + TO_PAST_DUE + PAID + ["customer.subscription.updated"]
    first_attempt = len(RENEWAL + FAIL + TO_PAST_DUE)
    requests = {e["request"]["id"] for e in result.events[:first_attempt]}
    assert len(requests) == 1 and next(iter(requests)).startswith("req_")
    assert all(e["request"]["idempotency_key"] for e in result.events[:first_attempt])
    assert all(e["request"]["id"] is None for e in result.events[first_attempt:])
    created = of_type(result.events, "invoice.created")[0]["data"]["object"]
    assert created["billing_reason"] == "subscription_update"


def test_expired_card_recovers_after_the_customer_updates_the_card(st: StripeSandbox) -> None:
    result = st.run_story(monthly_customer(st), "dunning_card_updated")
    assert result.types == RENEWAL + FAIL + TO_PAST_DUE + FAIL + ["customer.updated"] + PAID + [
        "customer.subscription.updated"]
    assert_valid(result.events)
    failed = of_type(result.events, "charge.failed")
    assert {c["data"]["object"]["failure_code"] for c in failed} == {"expired_card"}
    update = of_type(result.events, "customer.updated")[0]
    assert update["request"]["id"].startswith("req_")
    before = update["data"]["previous_attributes"]["invoice_settings"]["default_payment_method"]
    after = update["data"]["object"]["invoice_settings"]["default_payment_method"]
    assert before != after
    succeeded = of_type(result.events, "charge.succeeded")[0]["data"]["object"]
    assert succeeded["payment_method"] == after
    assert failed[0]["data"]["object"]["payment_method"] == before


@pytest.mark.parametrize(("story", "ending"), [
    ("dunning_exhausted_canceled", "customer.subscription.deleted"),
    ("dunning_exhausted_unpaid", "customer.subscription.updated"),
])
def test_retries_exhausted(st: StripeSandbox, story: str, ending: str) -> None:
    result = st.run_story(monthly_customer(st), story, decline_code="do_not_honor")
    assert result.types == (RENEWAL + FAIL + TO_PAST_DUE + FAIL * 7 +
                            ["invoice.marked_uncollectible", ending])
    assert_valid(result.events)
    failures = of_type(result.events, "invoice.payment_failed")
    assert [f["data"]["object"]["attempt_count"] for f in failures] == list(range(1, 9))
    assert failures[-1]["data"]["object"]["next_payment_attempt"] is None
    assert all(f["data"]["object"]["next_payment_attempt"] for f in failures[:-1])
    # Smart Retries: eight tries within two weeks.
    assert failures[-1]["created"] - failures[0]["created"] <= 14 * 86400
    written_off = of_type(result.events, "invoice.marked_uncollectible")[0]["data"]["object"]
    assert written_off["status"] == "uncollectible"
    assert written_off["status_transitions"]["marked_uncollectible_at"]
    sub = result.events[-1]["data"]["object"]
    if ending == "customer.subscription.deleted":
        assert sub["status"] == "canceled"
        assert sub["cancellation_details"]["reason"] == "payment_failed"
        assert sub["ended_at"] == result.events[-1]["created"]
    else:
        assert sub["status"] == "unpaid"
        assert result.events[-1]["data"]["previous_attributes"] == {"status": "past_due"}


def test_hard_decline_stops_retries_and_ends_with_the_dunning_window(st: StripeSandbox) -> None:
    result = st.run_story(monthly_customer(st), "hard_decline_exhausted",
                          decline_code="lost_card")
    assert result.types == RENEWAL + FAIL + TO_PAST_DUE + [
        "invoice.marked_uncollectible", "customer.subscription.deleted"]
    failed = of_type(result.events, "invoice.payment_failed")[0]
    assert failed["data"]["object"]["next_payment_attempt"] is None
    pi = of_type(result.events, "payment_intent.payment_failed")[0]["data"]["object"]
    assert pi["last_payment_error"]["decline_code"] == "lost_card"
    assert pi["last_payment_error"]["advice_code"] == "do_not_try_again"
    assert result.events[-2]["created"] - failed["created"] == 14 * 86400


def test_fraudulent_payment_is_blocked_by_radar(st: StripeSandbox) -> None:
    result = st.run_story(monthly_customer(st), "dunning_recovered_first_retry",
                          decline_code="fraudulent")
    charge = of_type(result.events, "charge.failed")[0]["data"]["object"]
    assert charge["outcome"]["type"] == "blocked"
    assert charge["outcome"]["network_status"] == "not_sent_to_network"
    pi = of_type(result.events, "payment_intent.payment_failed")[0]["data"]["object"]
    assert pi["last_payment_error"]["decline_code"] == "fraudulent"


def test_pre_basil_account_sends_the_old_invoice_shape() -> None:
    with StripeSandbox("small", seed=11, now=NOW, api_version=LEGACY_API_VERSION) as st:
        result = st.run_story(monthly_customer(st), "dunning_recovered")
    assert "invoice_payment.paid" not in result.types
    assert {e["api_version"] for e in result.events} == {LEGACY_API_VERSION}
    assert_valid(result.events)
    failed = of_type(result.events, "invoice.payment_failed")[0]["data"]["object"]
    charge = of_type(result.events, "charge.failed")[0]["data"]["object"]
    assert failed["subscription"] == result.subscription and failed["paid"] is False
    assert failed["charge"] == charge["id"] and charge["invoice"] == failed["id"]
    assert failed["payment_intent"] == charge["payment_intent"]
    assert "parent" not in failed
    paid = of_type(result.events, "invoice.paid")[0]["data"]["object"]
    assert paid["paid"] is True
    renewal = of_type(result.events, "customer.subscription.updated")[0]["data"]
    assert {"current_period_start", "current_period_end"} <= set(renewal["previous_attributes"])


def test_upgrade_invoices_the_proration_at_once(st: StripeSandbox) -> None:
    customer = monthly_customer(st, plans=("starter_monthly",))
    result = st.run_story(customer, "upgrade")
    assert result.types[:4] == ["customer.subscription.updated", "invoice.created",
                                "invoice.finalized", "payment_intent.created"]
    update = result.events[0]
    assert update["request"]["id"].startswith("req_")
    assert "items" in update["data"]["previous_attributes"]
    new_price = update["data"]["object"]["items"]["data"][0]["price"]["unit_amount"]
    old_items = update["data"]["previous_attributes"]["items"]["data"]
    old_qty = old_items[0]["quantity"]
    new_qty = update["data"]["object"]["items"]["data"][0]["quantity"]
    assert new_price * new_qty > old_items[0]["price"]["unit_amount"] * old_qty
    invoice = result.events[1]["data"]["object"]
    assert invoice["billing_reason"] == "subscription_update"
    amounts = [line["amount"] for line in invoice["lines"]["data"]]
    assert amounts[0] < 0 < amounts[1]
    assert all(line["parent"]["subscription_item_details"]["proration"]
               for line in invoice["lines"]["data"])


def test_downgrade_cancel_and_refund(st: StripeSandbox) -> None:
    customer = monthly_customer(st, plans=("pro_monthly",))
    down = st.run_story(customer, "downgrade")
    assert down.types == ["customer.subscription.updated"]
    cancel = st.run_story(customer, "cancel_at_period_end")
    assert cancel.types == ["customer.subscription.updated"]
    data = cancel.events[0]["data"]
    assert data["object"]["cancel_at_period_end"] is True
    assert data["previous_attributes"]["cancel_at_period_end"] is False
    assert data["object"]["cancellation_details"]["reason"] == "cancellation_requested"
    period_end = data["object"]["cancel_at"]
    new = st.advance(to=period_end + 60)
    c = stripe.StripeClient(st.keys["secret"], base_addresses={"api": st.url})
    ended = [c.v1.events.retrieve(i) for i in new]
    deleted = [e for e in ended if e.type == "customer.subscription.deleted"
               and e.data.object.id == cancel.subscription]
    assert len(deleted) == 1 and deleted[0].request.id is None
    assert deleted[0].data.object.ended_at == period_end
    refund = st.run_story(customer, "refund")
    assert refund.types == ["charge.refunded", "refund.created"]
    charge = refund.events[0]["data"]["object"]
    assert charge["refunded"] is True and charge["amount_refunded"] == charge["amount"]
    assert refund.events[1]["data"]["object"]["charge"] == charge["id"]
    assert refund.events[0]["request"]["id"] == refund.events[1]["request"]["id"] is not None
    assert_valid(down.events + cancel.events + refund.events)


def test_story_errors_say_what_is_wrong(st: StripeSandbox) -> None:
    with pytest.raises(SandboxError, match="unknown story"):
        st.run_story(monthly_customer(st), "dunning_forever")
    with pytest.raises(SandboxError, match="unknown decline code"):
        st.run_story(monthly_customer(st), "dunning_recovered", decline_code="nope")
    with pytest.raises(SandboxError, match="no such customer"):
        st.run_story("cus_doesnotexist00", "dunning_recovered")


def test_the_generated_history_holds_every_dunning_outcome() -> None:
    st = StripeSandbox("demo", seed=4, now=NOW).build()
    renderer = st.api.modes[False].renderer
    events = [renderer.event(e) for e in st.test.ledger.events]
    types = Counter(e["type"] for e in events)
    for needed in ("invoice.payment_failed", "invoice.marked_uncollectible", "invoice.voided",
                   "customer.subscription.deleted", "customer.subscription.trial_will_end",
                   "charge.refunded", "refund.created", "customer.updated"):
        assert types[needed] > 0, needed
    declines = Counter(e["data"]["object"]["outcome"]["reason"]
                       for e in events if e["type"] == "charge.failed")
    assert len(declines) >= 5
    recovered = [e for e in events if e["type"] == "invoice.paid"
                 and e["data"]["object"]["attempt_count"] > 1]
    assert recovered
    statuses = Counter(e["data"]["object"]["status"] for e in events
                       if e["type"] == "customer.subscription.updated")
    assert {"past_due", "active", "unpaid"} <= set(statuses)
