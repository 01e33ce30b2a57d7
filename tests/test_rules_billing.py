"""Billing fields: MRR, CLV and tier, last payment date, health, churn risk, status."""

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
    coupon,
    customer,
    discount,
    event,
    invoice,
    item,
    run,
    subscription,
    values,
)

from lc_console.settings import RulesSettings
from lc_console.sync import billing, safety


def sub_mrr(shape, items, status="active", currency="usd", coupons=(), **over):
    sub = safety.project(subscription(shape, items=items, status=status, **over))
    return billing.mrr([sub], currency, {c["id"]: c for c in coupons}, T0)


MRR_TABLE = [
    pytest.param([item(2000)], "20.00", id="monthly"),
    pytest.param([item(24000, interval="year")], "20.00", id="yearly"),
    pytest.param([item(6000, interval="month", interval_count=3)], "20.00", id="quarterly"),
    pytest.param([item(24000, interval="year", interval_count=2)], "10.00", id="two-yearly"),
    pytest.param([item(1000, interval="week")], "43.33", id="weekly-52/12"),
    pytest.param([item(100, interval="day")], "30.42", id="daily-365/12"),
    pytest.param([item(1500, quantity=10)], "150.00", id="per-seat"),
    pytest.param([item(1500, quantity=None)], "15.00", id="null-quantity-is-one"),
    pytest.param([item(2000), item(12000, interval="year", quantity=2)], "40.00",
                 id="two-items"),
    pytest.param([item(2000, currency="eur")], "0.00", id="other-currency-excluded"),
]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize(("items", "expected"), MRR_TABLE)
def test_mrr_normalised_to_a_month(shape, items, expected):
    assert sub_mrr(shape, items) == Decimal(expected)


@pytest.mark.parametrize("status", ["trialing", "canceled", "unpaid", "incomplete", "paused",
                                    "incomplete_expired"])
def test_mrr_only_counts_active_and_past_due(status):
    assert sub_mrr("current", [item(2000)], status=status) == Decimal("0.00")
    assert sub_mrr("current", [item(2000)], status="past_due") == Decimal("20.00")


def test_metered_prices_do_not_count():
    it = item(2000)
    it["price"]["recurring"]["usage_type"] = "metered"
    assert sub_mrr("current", [it]) == Decimal("0.00")


def test_transform_quantity_rounds_as_stripe_does():
    it = item(1000, quantity=11)
    it["price"]["transform_quantity"] = {"divide_by": 5, "round": "up"}
    assert sub_mrr("current", [it]) == Decimal("30.00")
    it["price"]["transform_quantity"] = {"divide_by": 5, "round": "down"}
    assert sub_mrr("current", [it]) == Decimal("20.00")


@pytest.mark.parametrize(("mode", "qty", "expected"), [
    ("volume", 5, "50.00"),  # all 5 at tier 1 (1000)
    ("volume", 15, "120.00"),  # all 15 at tier 2 (800)
    ("graduated", 15, "140.00"),  # 10 x 1000 + 5 x 800
    ("graduated", 25, "207.00"),  # 10x1000 + 10x800 + 5x500 + last tier's flat 200
])
def test_tiered_prices(mode, qty, expected):
    it = item(0, quantity=qty)
    it["price"].update(billing_scheme="tiered", tiers_mode=mode, unit_amount=None,
                       unit_amount_decimal=None, tiers=[
                           {"up_to": 10, "unit_amount": 1000, "flat_amount": None},
                           {"up_to": 20, "unit_amount": 800, "flat_amount": None},
                           {"up_to": None, "unit_amount": 500, "flat_amount": 200}])
    assert sub_mrr("current", [it]) == Decimal(expected)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize(("cpn", "level", "expected"), [
    pytest.param(coupon(percent_off=25), "subscription", "75.00", id="percent-sub"),
    pytest.param(coupon(amount_off=1000), "subscription", "90.00", id="amount-sub"),
    pytest.param(coupon(percent_off=50), "item", "75.00", id="percent-item"),
    pytest.param(coupon(amount_off=2000), "item", "80.00", id="amount-item"),
    pytest.param(coupon(percent_off=50, duration="repeating"), "subscription", "100.00",
                 id="repeating-ignored"),
    pytest.param(coupon(percent_off=50, duration="once"), "subscription", "100.00",
                 id="once-ignored"),
    pytest.param(coupon(amount_off=50000), "subscription", "0.00", id="never-negative"),
    pytest.param(coupon(amount_off=1000, currency="eur"), "subscription", "100.00",
                 id="amount-other-currency-ignored"),
])
def test_forever_discounts(shape, cpn, level, expected):
    disc = discount(cpn, shape)
    if level == "item":
        items = [item(5000, discounts=[disc]), item(5000)]
        assert sub_mrr(shape, items) == Decimal(expected)
        return
    items = [item(5000), item(5000)]
    over = {"discount": disc} if shape == "legacy" else {"discounts": [disc]}
    assert sub_mrr(shape, items, **over) == Decimal(expected)


def test_yearly_amount_discount_is_spread_over_twelve_months():
    disc = discount(coupon(amount_off=12000), "current")
    assert sub_mrr("current", [item(120000, interval="year")], discounts=[disc]) == \
        Decimal("90.00")


def test_unexpanded_coupon_from_context():
    cpn = coupon(percent_off=10, cid="co_ten")
    disc = discount(cpn, "current", expanded=False)
    assert sub_mrr("current", [item(10000)], discounts=[disc], coupons=[cpn]) == \
        Decimal("90.00")


def test_expired_discount_no_longer_applies():
    disc = discount(coupon(percent_off=50), "current")
    disc["end"] = T0 - DAY
    assert sub_mrr("current", [item(10000)], discounts=[disc]) == Decimal("100.00")


def test_zero_decimal_currency_mrr():
    sub = safety.project(subscription(items=[item(5000, currency="jpy")]))
    assert billing.mrr([sub], "jpy", {}, T0) == Decimal("5000.00")


def paid_invoice(iid, created, amount, months=1, shape="current", **over):
    return safety.project(invoice(shape, iid=iid, status="paid", amount_due=amount,
                                  amount_paid=amount, paid_at=created, created=created,
                                  period=(created, created + int(months * 30.4375 * DAY)),
                                  next_payment_attempt=None, **over))


@pytest.mark.parametrize("shape", SHAPES)
def test_clv_average_monthly_billed_times_lifespan(shape):
    invoices = [paid_invoice(f"in_{i}", T0 + i * 30 * DAY, 10000, shape=shape)
                for i in range(3)]
    avg = billing.average_monthly_billed(invoices, [], "usd")
    assert abs(avg - Decimal("100")) < Decimal("2")
    value = billing.clv(invoices, [], "usd", 24)
    assert abs(value - Decimal("2400")) < Decimal("40")


def test_clv_of_yearly_plan_spreads_the_payment_over_its_period():
    invoices = [paid_invoice("in_y", T0, 120000, months=12)]
    assert billing.average_monthly_billed(invoices, [], "usd") == Decimal("100.00")
    assert billing.clv(invoices, [], "usd", 24) == Decimal("2400.00")


def test_clv_ignores_unpaid_and_other_currency_invoices_and_nets_refunds():
    invoices = [
        paid_invoice("in_1", T0, 10000, months=1, charge_id="ch_1", pi_id=None),
        safety.project(invoice("current", iid="in_open", amount_due=99900)),
        paid_invoice("in_eur", T0, 50000, currency="eur"),
    ]
    assert billing.average_monthly_billed(invoices, [], "usd") == Decimal("100.00")
    refunded = safety.project(charge("ch_1", "succeeded", T0, amount=10000,
                                     amount_refunded=4000))
    assert billing.average_monthly_billed(invoices, [refunded], "usd") == Decimal("60.00")


def test_clv_without_history_is_zero():
    assert billing.clv([], [], "usd", 24) == Decimal("0.00")


@pytest.mark.parametrize(("value", "tier"), [
    ("5000.01", "High"), ("5000.00", "Mid"), ("1000.00", "Mid"), ("999.99", "Low"),
    ("0", "Low"),
])
def test_clv_tier(value, tier):
    assert billing.clv_tier(Decimal(value), 5000, 1000) == tier


def test_last_payment_date_from_paid_invoices_and_charges():
    invoices = [paid_invoice("in_1", T0, 1000), paid_invoice("in_2", T0 + 40 * DAY, 1000)]
    later = safety.project(charge("ch_9", "succeeded", T0 + 50 * DAY))
    assert billing.last_payment_date(invoices, []) == dt.date(2026, 7, 7)
    assert billing.last_payment_date(invoices, [later]) == dt.date(2026, 7, 17)
    assert billing.last_payment_date(invoices, [later], as_of=T0 + 45 * DAY) == dt.date(2026, 7, 7)
    assert billing.last_payment_date([], []) is None


@pytest.mark.parametrize(("offsets", "health"), [
    ([], "Green"),
    ([10], "Yellow"),
    ([10, 50], "Red"),
    ([10, 50, 80], "Red"),
    ([95], "Green"),  # outside the rolling 90 days
    ([95, 10], "Yellow"),
    ([-1], "Green"),  # after as_of: not counted
])
def test_payment_health_rolling_window(offsets, health):
    as_of = T0 + 100 * DAY
    charges = [safety.project(charge(f"ch_{i}", "failed", as_of - d * DAY))
               for i, d in enumerate(offsets)]
    charges.append(safety.project(charge("ch_ok", "succeeded", as_of - 5 * DAY)))
    assert billing.payment_health(charges, as_of, 90) == health


@pytest.mark.parametrize(("health", "statuses", "cancel", "flag", "score"), [
    ("Green", ["active"], False, False, 0),
    ("Yellow", ["active"], False, False, 35),
    ("Red", ["active"], False, True, 70),
    ("Green", ["past_due"], False, True, 20),
    ("Yellow", ["past_due"], False, True, 55),
    ("Green", ["active"], True, True, 25),
    ("Red", ["past_due"], True, True, 100),
    ("Green", ["canceled"], False, False, 100),
    ("Green", ["canceled", "active"], False, False, 0),
])
def test_churn_risk_flag_and_score(health, statuses, cancel, flag, score):
    subs = [safety.project(subscription(sid=f"sub_{i}", status=s, cancel_at_period_end=cancel))
            for i, s in enumerate(statuses)]
    assert billing.churn_risk_flag(health, subs) is flag
    assert billing.churn_risk_score(health, subs) == score


def test_cancel_at_date_counts_as_scheduled_cancellation():
    sub = safety.project(subscription(cancel_at=T0 + 30 * DAY))
    assert billing.churn_risk_flag("Green", [sub]) is True


@pytest.mark.parametrize(("statuses", "expected"), [
    (["active"], "active"),
    (["active", "past_due"], "past_due"),
    (["canceled", "active"], "active"),
    (["canceled"], "canceled"),
    (["trialing", "canceled"], "trialing"),
    ([], None),
])
def test_subscription_status_shown(statuses, expected):
    subs = [{"id": f"s{i}", "status": s} for i, s in enumerate(statuses)]
    assert billing.subscription_status(subs) == expected


@pytest.mark.parametrize("shape", SHAPES)
def test_account_billing_fields_end_to_end(shape):
    rules = RulesSettings()
    subs = [subscription(shape, items=[item(300000, interval="year")])]  # 250 / month
    invoices = [invoice(shape, iid=f"in_{i}", status="paid", amount_due=25000, amount_paid=25000,
                        paid_at=T0 - (12 - i) * 30 * DAY, created=T0 - (12 - i) * 30 * DAY,
                        period=(T0 - (12 - i) * 30 * DAY, T0 - (11 - i) * 30 * DAY),
                        next_payment_attempt=None, charge_id=f"ch_ok{i}", pi_id=None)
                for i in range(12)]
    fails = [charge("ch_f1", "failed", T0 - 20 * DAY), charge("ch_f2", "failed", T0 - 5 * DAY)]
    ev = event("customer.subscription.updated", subs[0], created=T0, shape=shape)
    d = run(ev, context(subs=subs, invoices=invoices, charges=fails, rules=rules))
    acct = values(d, "Account")
    assert acct["LostChurn_MRR__c"] == Decimal("250.00")
    # 12 x 250.00 over 360 days (11.83 months) = 253.65 a month, x 24 months
    assert acct["LostChurn_CLV__c"] == Decimal("6087.60")
    assert acct["LostChurn_CLV_Tier__c"] == "High"
    assert acct["LostChurn_Payment_Health__c"] == "Red"
    assert acct["LostChurn_Churn_Risk_Flag__c"] is True
    assert acct["LostChurn_Subscription_Status__c"] == "active"
    assert acct["LostChurn_Last_Payment_Date__c"] == dt.date(2026, 4, 28)
    contact = values(d, "Contact")
    assert contact["LostChurn_MRR__c"] == Decimal("250.00")
    assert contact["LostChurn_Churn_Risk__c"] == 70


def test_recovery_count_counts_recovered_invoices():
    invs = [invoice("current", iid="in_1", status="paid", attempt_count=3, amount_paid=2000,
                    paid_at=T0 - 50 * DAY, created=T0 - 60 * DAY, next_payment_attempt=None),
            invoice("current", iid="in_2", status="paid", attempt_count=1, amount_paid=2000,
                    paid_at=T0 - 20 * DAY, created=T0 - 30 * DAY, next_payment_attempt=None),
            invoice("current", iid="in_3", status="uncollectible", attempt_count=4,
                    created=T0 - 10 * DAY, next_payment_attempt=None)]
    d = run(event("customer.updated", customer()), context(invoices=invs))
    assert values(d, "Contact")["LostChurn_Recovery_Count__c"] == 1


@pytest.mark.parametrize("level", ["subscription", "item"])
def test_discount_ids_are_looked_up_in_the_fetched_discounts_and_coupons(level):
    # As Stripe returns them unexpanded: the subscription lists discount ids, the discount
    # names its coupon by id.
    cpn = coupon(percent_off=20, cid="co_20")
    disc = discount(cpn, "current", expanded=False)
    if level == "item":
        sub = subscription(items=[item(10000, discounts=[disc["id"]])])
    else:
        sub = subscription(items=[item(10000)], discounts=[disc["id"]])
    d = run(event("customer.subscription.updated", sub), context(
        subs=[sub], coupons=[cpn], discounts=[disc]))
    assert values(d, "Account")["LostChurn_MRR__c"] == Decimal("80.00")
    d2 = run(event("customer.subscription.updated", sub), context(subs=[sub]))
    assert values(d2, "Account")["LostChurn_MRR__c"] == Decimal("100.00")  # nothing to apply
