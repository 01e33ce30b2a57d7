"""Billing health of a customer: MRR, CLV and tier, last payment, payment health, churn risk.

Everything is computed "as of" a moment (the event's `created`), never the wall clock, so a
replay gives the same values.

MRR (Stripe's definition, docs.stripe.com/billing/subscriptions/analytics/glossary):
- subscriptions in `active` or `past_due` only (trialing, canceled, unpaid, paused,
  incomplete count 0);
- each item: unit price (`unit_amount_decimal`, else `unit_amount`; legacy `plan.amount`)
  x quantity (after `transform_quantity`), or the tier math for tiered prices (volume or
  graduated, unit + flat amounts; tiers must be expanded); metered prices count 0;
- normalised to a month by interval and interval_count: month 1/n, year 1/(12n),
  week (52/12)/n, day (365/12)/n;
- discounts (expanded objects, or ids looked up in the discounts the engine fetched; their
  coupon expanded or looked up by id): only coupons with duration `forever` change MRR, as in Stripe's own MRR
  (once / repeating coupons do not). Item discounts apply first, then the subscription's
  (`discounts`, or the pre-basil singular `discount`); percent_off multiplies, amount_off
  (per billing period, same currency only) subtracts, never below 0;
- only items in the customer's currency (customer.currency, else the first counted
  subscription's) are summed: currencies are never mixed.

CLV = average monthly billed x lifespan months (setting, default 24). Average monthly
billed = (sum of `amount_paid` of paid invoices - refunds on their charges) / months the
paid invoices cover, taken from their line periods (earliest start to latest end, at least
one month); invoices without line periods count one month each. Zero-amount invoices (a
trial's $0 invoice) are not billing and are left out. Tier: High above the high
threshold, Low below the mid threshold, Mid in between (both ends inclusive).

Payment health: failed payment attempts (failed charges) in the rolling window ending at
as_of (default 90 days): 0 Green, 1 Yellow, 2+ Red.

Churn-risk flag: Red health, or a subscription past_due, or one set to cancel (at period end
or at a date). Contact churn risk 0-100 (decision, documented): 100 when the customer has no
live subscription left (all canceled / incomplete_expired); otherwise Green 0 / Yellow 35 /
Red 70, +20 when past_due or unpaid, +25 when a cancellation is scheduled, capped at 100.

Subscription status shown on the Account: with several subscriptions, the most telling
one: past_due, unpaid, active, trialing, paused, incomplete, incomplete_expired, canceled.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from lc_console.sync import money
from lc_console.sync import stripe_shapes as ss
from lc_console.sync.model import utc_date

Obj = Mapping[str, Any]

GREEN, YELLOW, RED = "Green", "Yellow", "Red"
HEALTH_ORDER = {GREEN: 0, YELLOW: 1, RED: 2}
MRR_STATUSES = ("active", "past_due")
LIVE_STATUSES = ("active", "past_due", "unpaid", "trialing", "paused", "incomplete")
STATUS_PRIORITY = ("past_due", "unpaid", "active", "trialing", "paused", "incomplete",
                   "incomplete_expired", "canceled")
DAYS_PER_MONTH = Decimal("365.25") / 12
SECONDS_PER_DAY = 86400


# --- MRR ----------------------------------------------------------------------------------


def monthly_factor(interval: str | None, interval_count: int | None) -> Decimal:
    n = Decimal(max(int(interval_count or 1), 1))
    if interval == "month":
        return 1 / n
    if interval == "year":
        return 1 / (12 * n)
    if interval == "week":
        return Decimal(52) / 12 / n
    if interval == "day":
        return Decimal(365) / 12 / n
    return Decimal(0)  # one-time or unknown: not recurring revenue


def _price(item: Obj) -> Obj:
    return item.get("price") or item.get("plan") or {}


def _interval(price: Obj) -> tuple[str | None, int | None]:
    recurring = price.get("recurring") or {}
    return (recurring.get("interval") or price.get("interval"),
            recurring.get("interval_count") or price.get("interval_count"))


def _usage_type(price: Obj) -> str | None:
    return (price.get("recurring") or {}).get("usage_type") or price.get("usage_type")


def _decimal(value: Any) -> Decimal | None:
    if value is None:
        return None
    try:
        return Decimal(str(value))
    except ArithmeticError:
        return None


def _quantity(item: Obj, price: Obj) -> Decimal:
    qty = Decimal(item.get("quantity") if item.get("quantity") is not None else 1)
    transform = price.get("transform_quantity") or price.get("transform_usage") or {}
    divide_by = transform.get("divide_by")
    if divide_by:
        ratio = qty / Decimal(divide_by)
        rounded = math.ceil(ratio) if transform.get("round") == "up" else math.floor(ratio)
        qty = Decimal(rounded)
    return qty


def _tiered_amount(price: Obj, qty: Decimal) -> Decimal:
    tiers = price.get("tiers") or []
    if not tiers:
        return Decimal(0)  # tiers not expanded: cannot price (see module doc)

    def unit(tier: Obj) -> Decimal:
        return _decimal(tier.get("unit_amount_decimal")) or _decimal(tier.get("unit_amount")) \
            or Decimal(0)

    def flat(tier: Obj) -> Decimal:
        return _decimal(tier.get("flat_amount_decimal")) or _decimal(tier.get("flat_amount")) \
            or Decimal(0)

    if price.get("tiers_mode") == "volume":
        for tier in tiers:
            up_to = tier.get("up_to")
            if up_to is None or qty <= Decimal(up_to):
                return unit(tier) * qty + flat(tier)
        return Decimal(0)
    total, lower = Decimal(0), Decimal(0)  # graduated
    for tier in tiers:
        up_to = tier.get("up_to")
        upper = qty if up_to is None else min(qty, Decimal(up_to))
        if upper > lower:
            total += unit(tier) * (upper - lower) + flat(tier)
        if up_to is None or qty <= Decimal(up_to):
            break
        lower = Decimal(up_to)
    return total


def _forever_coupons(discounts: Sequence[Any], coupons: Mapping[str, Obj],
                     as_of: int | None, discount_objects: Mapping[str, Obj] | None) -> list[Obj]:
    found = []
    for ref in discounts:
        discount = (discount_objects or {}).get(ref, ref) if isinstance(ref, str) else ref
        coupon = ss.discount_coupon(discount, coupons)
        if not coupon or coupon.get("duration") != "forever":
            continue
        end = discount.get("end") if isinstance(discount, Mapping) else None
        if end is not None and as_of is not None and end <= as_of:
            continue
        found.append(coupon)
    return found


def _apply(amount: Decimal, coupons: Sequence[Obj], currency: str) -> Decimal:
    for coupon in coupons:
        if coupon.get("percent_off") is not None:
            amount *= 1 - Decimal(str(coupon["percent_off"])) / 100
        elif coupon.get("amount_off") is not None:
            if str(coupon.get("currency") or currency).lower() == currency.lower():
                amount -= Decimal(coupon["amount_off"])
    return max(amount, Decimal(0))


def item_period_amount(item: Obj, coupons: Mapping[str, Obj] | None = None,
                       as_of: int | None = None,
                       discounts: Mapping[str, Obj] | None = None) -> Decimal:
    """Minor-unit amount of one item per billing period, after its own forever discounts."""
    price = _price(item)
    if _usage_type(price) == "metered":
        return Decimal(0)
    qty = _quantity(item, price)
    if price.get("billing_scheme") == "tiered":
        amount = _tiered_amount(price, qty)
    else:
        unit = (_decimal(price.get("unit_amount_decimal")) or _decimal(price.get("unit_amount"))
                or _decimal(price.get("amount_decimal")) or _decimal(price.get("amount"))
                or Decimal(0))
        amount = unit * qty
    currency = str(price.get("currency") or "")
    item_coupons = _forever_coupons(ss.list_data(item.get("discounts")), coupons or {}, as_of,
                                    discounts)
    return _apply(amount, item_coupons, currency)


def subscription_mrr_minor(subscription: Obj, currency: str,
                           coupons: Mapping[str, Obj] | None = None,
                           as_of: int | None = None,
                           discounts: Mapping[str, Obj] | None = None) -> Decimal:
    """Monthly recurring revenue of one subscription in minor units of `currency`."""
    if subscription.get("status") not in MRR_STATUSES:
        return Decimal(0)
    items = ss.subscription_items(subscription)
    if not items and subscription.get("plan"):
        items = [{"plan": subscription["plan"], "quantity": subscription.get("quantity")}]
    monthly, period_total, factor = Decimal(0), Decimal(0), None
    for item in items:
        price = _price(item)
        if str(price.get("currency") or currency).lower() != currency.lower():
            continue
        amount = item_period_amount(item, coupons, as_of, discounts)
        f = monthly_factor(*_interval(price))
        factor = f if factor is None else factor
        monthly += amount * f
        period_total += amount
    if factor is None:
        return Decimal(0)
    sub_coupons = _forever_coupons(ss.subscription_discounts(subscription), coupons or {}, as_of,
                                   discounts)
    for coupon in sub_coupons:
        if coupon.get("percent_off") is not None:
            monthly *= 1 - Decimal(str(coupon["percent_off"])) / 100
        elif coupon.get("amount_off") is not None and \
                str(coupon.get("currency") or currency).lower() == currency.lower():
            monthly -= Decimal(coupon["amount_off"]) * factor
    return max(monthly, Decimal(0))


def customer_currency(customer: Obj | None, subscriptions: Sequence[Obj]) -> str:
    if customer and customer.get("currency"):
        return str(customer["currency"]).lower()
    for sub in subscriptions:
        if sub.get("status") in MRR_STATUSES and sub.get("currency"):
            return str(sub["currency"]).lower()
    for sub in subscriptions:
        if sub.get("currency"):
            return str(sub["currency"]).lower()
    return "usd"


def mrr(subscriptions: Sequence[Obj], currency: str, coupons: Mapping[str, Obj] | None = None,
        as_of: int | None = None, discounts: Mapping[str, Obj] | None = None) -> Decimal:
    """Customer MRR in major units."""
    total = sum((subscription_mrr_minor(s, currency, coupons, as_of, discounts)
                 for s in subscriptions), Decimal(0))
    return money.to_major(total, currency)


# --- CLV ----------------------------------------------------------------------------------


def _paid_invoices(invoices: Sequence[Obj], currency: str) -> list[Obj]:
    return [i for i in invoices if ss.invoice_is_paid(i) and (i.get("amount_paid") or 0) > 0
            and str(i.get("currency") or "").lower() == currency.lower()]


def refunded_minor(invoice: Obj, charges: Sequence[Obj]) -> int:
    return sum(int(c.get("amount_refunded") or 0) for c in ss.charges_of_invoice(invoice, charges)
               if c.get("status") == "succeeded")


def average_monthly_billed(invoices: Sequence[Obj], charges: Sequence[Obj],
                           currency: str) -> Decimal:
    """Major units per month over the paid invoice history (net of refunds)."""
    paid = _paid_invoices(invoices, currency)
    if not paid:
        return Decimal("0.00")
    any_refund = any(c.get("amount_refunded") for c in charges)
    total = sum(Decimal(int(i["amount_paid"]) - (refunded_minor(i, charges) if any_refund else 0))
                for i in paid)
    periods = [p for i in paid for p in ss.invoice_line_periods(i)]
    without = sum(1 for i in paid if not ss.invoice_line_periods(i))
    months = Decimal(without)
    if periods:
        span_days = Decimal(max(e for _, e in periods) - min(s for s, _ in periods)) / SECONDS_PER_DAY
        months += max(span_days / DAYS_PER_MONTH, Decimal(0))
    months = max(months, Decimal(1))
    return money.to_major(max(total, Decimal(0)) / months, currency)


def clv(invoices: Sequence[Obj], charges: Sequence[Obj], currency: str,
        lifespan_months: int) -> Decimal:
    return money.round_money(average_monthly_billed(invoices, charges, currency) * lifespan_months)


def clv_tier(value: Decimal, high: float, mid: float) -> str:
    if value > Decimal(str(high)):
        return "High"
    if value < Decimal(str(mid)):
        return "Low"
    return "Mid"


# --- payments -----------------------------------------------------------------------------


def last_payment_date(invoices: Sequence[Obj], charges: Sequence[Obj],
                      as_of: int | None = None) -> dt.date | None:
    times = [ss.invoice_paid_at(i) for i in invoices
             if ss.invoice_is_paid(i) and (i.get("amount_paid") or 0) > 0]
    times += [c.get("created") for c in charges if c.get("status") == "succeeded"]
    times = [t for t in times if isinstance(t, int) and (as_of is None or t <= as_of)]
    return utc_date(max(times)) if times else None


def failed_payment_times(charges: Sequence[Obj]) -> list[int]:
    return sorted(int(c["created"]) for c in charges
                  if c.get("status") == "failed" and isinstance(c.get("created"), int))


def failures_in_window(times: Sequence[int], as_of: int, window_days: int) -> int:
    start = as_of - window_days * SECONDS_PER_DAY
    return sum(1 for t in times if start < t <= as_of)


def health_from_count(count: int) -> str:
    return GREEN if count == 0 else YELLOW if count == 1 else RED


def payment_health(charges: Sequence[Obj], as_of: int, window_days: int) -> str:
    return health_from_count(failures_in_window(failed_payment_times(charges), as_of, window_days))


# --- subscriptions and risk ---------------------------------------------------------------


def subscription_status(subscriptions: Sequence[Obj]) -> str | None:
    statuses = {s.get("status") for s in subscriptions if s.get("status")}
    for status in STATUS_PRIORITY:
        if status in statuses:
            return status
    return next(iter(sorted(s for s in statuses if s)), None)


def cancellation_scheduled(subscriptions: Sequence[Obj]) -> bool:
    return any(s.get("status") in LIVE_STATUSES
               and (s.get("cancel_at_period_end") or s.get("cancel_at"))
               for s in subscriptions)


def churn_risk_flag(health: str, subscriptions: Sequence[Obj]) -> bool:
    return (health == RED or any(s.get("status") == "past_due" for s in subscriptions)
            or cancellation_scheduled(subscriptions))


def churn_risk_score(health: str, subscriptions: Sequence[Obj]) -> int:
    if subscriptions and not any(s.get("status") in LIVE_STATUSES for s in subscriptions):
        return 100
    score = {GREEN: 0, YELLOW: 35, RED: 70}[health]
    if any(s.get("status") in ("past_due", "unpaid") for s in subscriptions):
        score += 20
    if cancellation_scheduled(subscriptions):
        score += 25
    return min(score, 100)


@dataclass(frozen=True)
class BillingSummary:
    currency: str
    mrr: Decimal
    clv: Decimal
    clv_tier: str
    last_payment_date: dt.date | None
    failed_in_window: int
    payment_health: str
    churn_risk_flag: bool
    churn_risk: int
    subscription_status: str | None


def summarize(*, customer: Obj | None, subscriptions: Sequence[Obj], invoices: Sequence[Obj],
              charges: Sequence[Obj], coupons: Mapping[str, Obj], as_of: int,
              discounts: Mapping[str, Obj] | None = None,
              lifespan_months: int, window_days: int, clv_high: float,
              clv_mid: float) -> BillingSummary:
    currency = customer_currency(customer, subscriptions)
    value = clv(invoices, charges, currency, lifespan_months)
    failed = failures_in_window(failed_payment_times(charges), as_of, window_days)
    health = health_from_count(failed)
    return BillingSummary(
        currency=currency,
        mrr=mrr(subscriptions, currency, coupons, as_of, discounts),
        clv=value,
        clv_tier=clv_tier(value, clv_high, clv_mid),
        last_payment_date=last_payment_date(invoices, charges, as_of),
        failed_in_window=failed,
        payment_health=health,
        churn_risk_flag=churn_risk_flag(health, subscriptions),
        churn_risk=churn_risk_score(health, subscriptions),
        subscription_status=subscription_status(subscriptions),
    )
