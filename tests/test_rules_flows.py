"""Seeded flows: payment failure Task, cancellation win-back, expansion, refund review."""

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
    customer,
    event,
    invoice,
    item,
    refund,
    run,
    sf_account,
    subscription,
    values,
)

from lc_console.settings import RulesSettings
from lc_console.sync.model import ExternalKey, IdKey, RecordTypeRef, Ref


def tasks(d, prefix=""):
    return [i for i in d.inserts if i.sobject == "Task" and i.dedupe_key.startswith(prefix)]


def failure(shape, *, earlier=(), sub_over=None, accounts=(), iid="in_A1", at=T0,
            other_invoices=()):
    inv = invoice(shape, iid=iid, attempt_count=1, created=at - 3600)
    charges = [charge(f"ch_e{i}", "failed", at - d * DAY, invoice="in_old", shape=shape,
                      payment_intent=f"pi_e{i}") for i, d in enumerate(earlier)]
    charges.append(charge("ch_now", "failed", at, invoice=iid, payment_intent="pi_1",
                          shape=shape))
    sub = subscription(shape, status="past_due", **(sub_over or {}))
    ctx = context(subs=[sub], invoices=[inv, *other_invoices], charges=charges,
                  accounts=list(accounts))
    return run(event("invoice.payment_failed", inv, created=at, shape=shape), ctx)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize(("earlier", "subject", "health"), [
    ((), "Payment failed - contact Acme Inc within 24 hours", "Yellow"),
    ((30,), "Payment failed - contact Acme Inc within 24 hours", "Red"),
    ((30, 60), "URGENT - Payment failed - contact Acme Inc within 24 hours", None),
    ((100,), "Payment failed - contact Acme Inc within 24 hours", "Yellow"),  # outside window
])
def test_payment_failure_task_on_move_to_yellow_or_red(shape, earlier, subject, health):
    acct = sf_account("001W", "Acme Inc", "acme.com", OwnerId="005OWNER0000001AAA")
    d = failure(shape, earlier=earlier, accounts=[acct])
    found = tasks(d, "task:payment_failed:")
    if health is None:  # already Red: no move, no Task
        assert found == []
        return
    (task,) = found
    assert task.fields["Subject"] == subject
    assert task.fields["Priority"] == "High"
    assert task.fields["OwnerId"] == "005OWNER0000001AAA"
    assert task.fields["ActivityDate"] == dt.date(2026, 5, 29)
    assert task.fields["WhatId"] == Ref("Account", IdKey("001W"))  # matched by website
    assert task.dedupe_key == f"task:payment_failed:cus_A:ch_now:{health}"


@pytest.mark.parametrize("shape", SHAPES)
def test_urgent_when_churn_risk_flag_was_already_set(shape):
    # Yellow -> Red with a cancellation already scheduled: URGENT.
    d = failure(shape, earlier=(20,), sub_over={"cancel_at_period_end": True})
    (task,) = tasks(d, "task:payment_failed:")
    assert task.fields["Subject"].startswith("URGENT - Payment failed - contact acme.com")
    # An earlier invoice still open after a failure: the subscription was past_due already.
    old = invoice(shape, iid="in_old", attempt_count=2, created=T0 - 30 * DAY)
    d2 = failure(shape, other_invoices=[old])
    (task2,) = tasks(d2, "task:payment_failed:")
    assert task2.fields["Subject"].startswith("URGENT - ")


@pytest.mark.parametrize("shape", SHAPES)
def test_no_task_without_a_move(shape):
    assert tasks(failure(shape, earlier=(10, 20)), "task:payment_failed:") == []


def test_failure_not_in_history_counts_at_event_time():
    inv = invoice("current", attempt_count=1)
    d = run(event("invoice.payment_failed", inv), context(subs=[subscription()], invoices=[inv]))
    (task,) = tasks(d, "task:payment_failed:")
    assert task.dedupe_key == "task:payment_failed:cus_A:in_A1#1:Yellow"


def test_charge_failed_and_invoice_failed_give_one_task():
    inv = invoice("current", attempt_count=1)
    ch = charge("ch_now", "failed", T0, payment_intent="pi_1")
    ctx = context(subs=[subscription()], invoices=[inv], charges=[ch])
    a = tasks(run(event("invoice.payment_failed", inv), ctx), "task:payment_failed:")
    b = tasks(run(event("charge.failed", ch), ctx), "task:payment_failed:")
    assert [t.dedupe_key for t in a] == [t.dedupe_key for t in b] == [
        "task:payment_failed:cus_A:ch_now:Yellow"]


@pytest.mark.parametrize("shape", SHAPES)
def test_cancellation_sets_status_and_creates_winback_task(shape):
    sub = subscription(shape, status="canceled", ended_at=T0, canceled_at=T0,
                       items=[item(5000)], cancellation_details={"reason": "cancellation_requested",
                                                                 "comment": None,
                                                                 "feedback": None})
    d = run(event("customer.subscription.deleted", sub, shape=shape), context(subs=[sub]))
    assert values(d, "Account")["LostChurn_Subscription_Status__c"] == "canceled"
    assert values(d, "Account")["LostChurn_MRR__c"] == Decimal("0.00")
    (task,) = tasks(d, "task:winback:")
    assert task.dedupe_key == "task:winback:sub_A"
    assert task.fields["ActivityDate"] == dt.date(2026, 6, 11)  # 14 days
    assert task.fields["Subject"] == "Win back acme.com: subscription canceled"
    assert "50.00 USD" in task.fields["Description"]
    assert "cancellation_requested" in task.fields["Description"]


def test_winback_days_is_a_setting_and_no_task_while_another_subscription_lives():
    rules = RulesSettings(winback_task_days=30)
    gone = subscription(status="canceled", ended_at=T0)
    d = run(event("customer.subscription.deleted", gone), context(subs=[gone], rules=rules))
    assert tasks(d, "task:winback:")[0].fields["ActivityDate"] == dt.date(2026, 6, 27)
    other = subscription(sid="sub_B", status="active")
    d2 = run(event("customer.subscription.deleted", gone), context(subs=[gone, other]))
    assert tasks(d2, "task:winback:") == []
    assert values(d2, "Account")["LostChurn_Subscription_Status__c"] == "active"


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize(("before_items", "before_status", "expected"), [
    ([item(2000, quantity=5)], "active", Decimal("1200.00")),  # 100 -> 200 a month
    ([item(2000, quantity=10)], "active", None),  # unchanged
    ([item(2000, quantity=20)], "active", None),  # downgrade
    ([item(2000, quantity=5)], "trialing", None),  # conversion, not expansion
])
def test_expansion_opportunity(shape, before_items, before_status, expected):
    sub = subscription(shape, items=[item(2000, quantity=10)])
    previous = {"items": {"object": "list", "data": before_items, "has_more": False},
                "status": before_status}
    ev = event("customer.subscription.updated", sub, eid="evt_up1", previous=previous,
               shape=shape)
    d = run(ev, context(subs=[sub]))
    opps = [r for r in d.records if r.sobject == "Opportunity"]
    assert values(d, "Account")["LostChurn_MRR__c"] == Decimal("200.00")
    if expected is None:
        assert opps == []
        return
    (opp,) = opps
    assert opp.key == ExternalKey("LostChurn_Recovery_ID__c", "expansion:evt_up1")
    v = opp.values()
    assert v["Amount"] == expected
    assert v["StageName"] == "Closed Won"
    assert v["RecordTypeId"] == RecordTypeRef("Opportunity", "LostChurn_Expansion")
    assert v["CloseDate"] == dt.date(2026, 5, 28)
    assert v["Name"] == "Expansion - acme.com - 2026-05-28"
    assert all(f.policy in ("key", "fill_if_empty") for f in opp.fields.values())


@pytest.mark.parametrize("shape", SHAPES)
def test_expansion_by_price_change_in_legacy_plan_field(shape):
    sub = subscription(shape, items=[item(5000)])
    old_items = {"data": [item(3000)]}
    d = run(event("customer.subscription.updated", sub, previous={"items": old_items},
                  shape=shape), context(subs=[sub]))
    assert values(d, "Opportunity")["Amount"] == Decimal("240.00")


@pytest.mark.parametrize(("amount", "currency", "task"), [
    (60000, "usd", True), (50000, "usd", False), (90000, "jpy", True), (400, "jpy", False),
])
def test_refund_review_task_above_threshold(amount, currency, task):
    paid = invoice("current", status="paid", amount_due=100000, amount_paid=100000,
                   paid_at=T0 - 10 * DAY, created=T0 - 10 * DAY, charge_id="ch_ok", pi_id=None,
                   next_payment_attempt=None, currency=currency)
    ch = charge("ch_ok", "succeeded", T0 - 10 * DAY, amount=100000, amount_refunded=amount,
                currency=currency)
    re = refund(amount=amount, currency=currency)
    ctx = context(cust=customer(currency=currency), invoices=[paid], charges=[ch])
    d = run(event("refund.created", re), ctx)
    found = tasks(d, "task:refund_review:")
    assert bool(found) is task
    if found:
        assert found[0].dedupe_key == "task:refund_review:re_1"
        assert found[0].fields["Subject"].startswith("Review refund of ")


def test_refund_lowers_clv():
    paid = invoice("current", status="paid", amount_due=100000, amount_paid=100000,
                   paid_at=T0 - 10 * DAY, created=T0 - 10 * DAY, charge_id="ch_ok", pi_id=None,
                   next_payment_attempt=None, period=(T0 - 10 * DAY, T0 - 10 * DAY + 30 * DAY))
    before = charge("ch_ok", "succeeded", T0 - 10 * DAY, amount=100000)
    after = dict(before, amount_refunded=60000, refunded=False)
    clv = []
    for ch in (before, after):
        d = run(event("charge.refunded", ch), context(invoices=[paid], charges=[before]))
        clv.append(values(d, "Account")["LostChurn_CLV__c"])
    assert clv[1] < clv[0]


def test_charge_refunded_with_listed_refunds_dedupes_with_refund_created():
    re = refund(amount=70000)
    ch = charge("ch_ok", "succeeded", T0 - DAY, amount=100000, amount_refunded=70000)
    ch["refunds"] = {"object": "list", "data": [re], "has_more": False}
    ctx = context(charges=[ch])
    a = tasks(run(event("charge.refunded", ch), ctx), "task:refund_review:")
    b = tasks(run(event("refund.created", re), ctx), "task:refund_review:")
    assert [t.dedupe_key for t in a] == [t.dedupe_key for t in b] == ["task:refund_review:re_1"]


def test_refund_threshold_is_a_setting():
    re = refund(amount=20000)
    ctx = context(charges=[charge("ch_ok", "succeeded", T0 - DAY)],
                  rules=RulesSettings(refund_review_threshold=100))
    assert tasks(run(event("refund.created", re), ctx), "task:refund_review:")
