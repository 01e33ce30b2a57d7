"""Builders for the sync-rule tests: Stripe's own fixtures, deep-copied and overridden.

`tests/data/stripe/fixtures-subset.json` (a verbatim copy of ../shared/stripe) holds Stripe's current (dahlia-era) fixtures; the
builders keep every field of them and adjust the ones a test is about. `shape="legacy"`
turns an invoice / subscription / charge into the pre-2025-03-31 (basil) shape: invoice
`subscription`, `charge`, `payment_intent`, `paid`, `paid_out_of_band` instead of
`parent` / `payments`; `current_period_*` on the subscription instead of on its items;
`charge.invoice`; `discount.coupon` instead of `discount.source.coupon`.
"""

from __future__ import annotations

import copy
import json
from functools import cache
from pathlib import Path
from typing import Any

from lc_console.settings import RulesSettings
from lc_console.sync.derive import Context, SalesforceContext, StripeContext, derive
from lc_console.sync.model import Derivation

SHARED = Path(__file__).resolve().parent / "data" / "stripe"
SHAPES = ("current", "legacy")
DAY = 86400
T0 = 1_780_000_000  # 2026-05-28T20:26:40Z

@cache
def _fixtures() -> dict[str, Any]:
    return json.loads((SHARED / "fixtures-subset.json").read_text())["resources"]


def fixture(name: str) -> dict[str, Any]:
    return copy.deepcopy(_fixtures()[name])


def customer(cid: str = "cus_A", email: str | None = "jane.doe@acme.com",
             name: str | None = "Jane Doe", **over: Any) -> dict[str, Any]:
    obj = fixture("customer")
    obj.update(id=cid, email=email, name=name, discount=None, created=T0 - 400 * DAY)
    obj.update(over)
    return obj


def price(unit_amount: int = 2000, interval: str = "month", interval_count: int = 1,
          currency: str = "usd", **over: Any) -> dict[str, Any]:
    obj = fixture("price")
    obj.update(unit_amount=unit_amount, unit_amount_decimal=str(unit_amount), currency=currency,
               transform_quantity=None)
    obj["recurring"] = dict(obj["recurring"], interval=interval, interval_count=interval_count)
    obj.update(over)
    return obj


def item(unit_amount: int = 2000, quantity: int | None = 1, interval: str = "month",
         interval_count: int = 1, currency: str = "usd", discounts: list[Any] | None = None,
         period: tuple[int, int] = (T0 - 10 * DAY, T0 + 20 * DAY), **over: Any) -> dict[str, Any]:
    obj = fixture("subscription_item")
    p = price(unit_amount, interval, interval_count, currency)
    obj.update(price=p, quantity=quantity, discounts=discounts or [],
               current_period_start=period[0], current_period_end=period[1])
    # plan mirrors the price, as Stripe does
    obj["plan"] = dict(obj["plan"], amount=unit_amount, amount_decimal=str(unit_amount),
                       billing_scheme="per_unit", currency=currency, interval=interval,
                       interval_count=interval_count, transform_usage=None, id=p["id"])
    obj.update(over)
    return obj


def coupon(percent_off: float | None = None, amount_off: int | None = None,
           duration: str = "forever", currency: str | None = "usd",
           cid: str = "co_1") -> dict[str, Any]:
    return {"id": cid, "object": "coupon", "percent_off": percent_off, "amount_off": amount_off,
            "currency": currency if amount_off is not None else None, "duration": duration,
            "duration_in_months": None, "valid": True}


def discount(cpn: dict[str, Any], shape: str = "current", expanded: bool = True) -> dict[str, Any]:
    obj = copy.deepcopy(fixture("customer")["discount"])
    obj.update(id="di_" + cpn["id"], end=None, start=T0 - 100 * DAY)
    if shape == "legacy":
        obj.pop("source", None)
        obj["coupon"] = cpn
    else:
        obj["source"] = {"type": "coupon", "coupon": cpn if expanded else cpn["id"]}
    return obj


def subscription(shape: str = "current", sid: str = "sub_A", cid: str = "cus_A",
                 items: list[dict[str, Any]] | None = None, status: str = "active",
                 **over: Any) -> dict[str, Any]:
    obj = fixture("subscription")
    items = items if items is not None else [item()]
    obj.update(id=sid, customer=cid, status=status, cancel_at_period_end=False, cancel_at=None,
               canceled_at=None, ended_at=None, trial_end=None, trial_start=None,
               created=T0 - 300 * DAY, start_date=T0 - 300 * DAY, pending_update=None,
               latest_invoice=None)
    obj["items"] = dict(obj["items"], data=items,
                        url=f"/v1/subscription_items?subscription={sid}")
    for it in items:
        it["subscription"] = sid
    if shape == "legacy":
        obj["current_period_start"] = items[0]["current_period_start"] if items else T0
        obj["current_period_end"] = items[0]["current_period_end"] if items else T0
        for it in items:
            it.pop("current_period_start", None)
            it.pop("current_period_end", None)
        obj.pop("billing_mode", None)
        obj.pop("billing_schedules", None)
        obj["discount"] = None
    obj.update(over)
    return obj


def charge(chid: str = "ch_1", status: str = "failed", created: int = T0, cid: str = "cus_A",
           amount: int = 2000, currency: str = "usd", failure_code: str | None = "card_declined",
           decline_code: str | None = "insufficient_funds", invoice: str | None = None,
           payment_intent: str | None = None, shape: str = "current",
           **over: Any) -> dict[str, Any]:
    obj = fixture("charge")
    failed = status == "failed"
    obj.update(id=chid, status=status, created=created, customer=cid, amount=amount,
               currency=currency, paid=not failed, captured=not failed,
               amount_captured=0 if failed else amount,
               failure_code=failure_code if failed else None,
               failure_message="Your card was declined." if failed else None,
               payment_intent=payment_intent, source=None)
    obj["outcome"] = dict(obj["outcome"], type="issuer_declined" if failed else "authorized",
                          reason=decline_code if failed else None,
                          network_status="declined_by_network" if failed else
                          "approved_by_network")
    if shape == "legacy":
        obj["invoice"] = invoice
    obj.update(over)
    return obj


def invoice_payment(charge_id: str | None, pi_id: str | None, status: str = "open",
                    paid_at: int | None = None) -> dict[str, Any]:
    obj = fixture("invoice_payment")
    payment: dict[str, Any] = {"type": "payment_intent" if pi_id else "charge"}
    if pi_id:
        payment["payment_intent"] = pi_id
    if charge_id:
        payment["charge"] = charge_id
    obj.update(id="inpay_" + (pi_id or charge_id or "x"), payment=payment, status=status,
               currency="usd", amount_paid=None, amount_requested=2000)
    obj["status_transitions"] = {"canceled_at": None, "paid_at": paid_at}
    return obj


def invoice(shape: str = "current", iid: str = "in_A1", cid: str = "cus_A",
            sid: str | None = "sub_A", status: str = "open", amount_due: int = 2000,
            amount_paid: int = 0, attempt_count: int = 1,
            next_payment_attempt: int | None = T0 + 3 * DAY, charge_id: str | None = "ch_1",
            pi_id: str | None = "pi_1", created: int = T0 - 3600, currency: str = "usd",
            paid_at: int | None = None, period: tuple[int, int] | None = None,
            email: str | None = "jane.doe@acme.com", **over: Any) -> dict[str, Any]:
    obj = fixture("invoice")
    period = period or (created, created + 30 * DAY)
    obj.update(id=iid, customer=cid, status=status, amount_due=amount_due,
               amount_paid=amount_paid, amount_remaining=amount_due - amount_paid,
               attempt_count=attempt_count, attempted=attempt_count > 0,
               next_payment_attempt=next_payment_attempt, created=created, currency=currency,
               customer_email=email, customer_name="Jane Doe", billing_reason="subscription_cycle",
               auto_advance=True, from_invoice=None, last_finalization_error=None,
               due_date=None, total=amount_due, subtotal=amount_due)
    obj["status_transitions"] = {"finalized_at": created, "marked_uncollectible_at": None,
                                 "paid_at": paid_at, "voided_at": None}
    line = copy.deepcopy(obj["lines"]["data"][0])
    line.update(id="il_" + iid, invoice=iid, amount=amount_due, currency=currency,
                period={"start": period[0], "end": period[1]})
    obj["lines"] = dict(obj["lines"], data=[line], url=f"/v1/invoices/{iid}/lines")
    if shape == "legacy":
        for key in ("parent", "amount_overpaid", "customer_account"):
            obj.pop(key, None)
        obj.update(subscription=sid, charge=charge_id, payment_intent=pi_id,
                   paid=status == "paid", paid_out_of_band=False)
        line.pop("parent", None)
        line.update(subscription=sid, type="subscription", proration=False)
    else:
        obj.pop("subscription", None)
        obj["parent"] = ({"type": "subscription_details", "quote_details": None,
                          "subscription_details": {"metadata": {}, "subscription": sid}}
                         if sid else None)
        line["subscription"] = None
        line["parent"] = ({"type": "subscription_item_details", "invoice_item_details": None,
                           "subscription_item_details": {
                               "invoice_item": None, "proration": False,
                               "proration_details": {"credited_items": None},
                               "subscription": sid, "subscription_item": "si_1"}}
                          if sid else line["parent"])
        payments = []
        if charge_id or pi_id:
            payments.append(invoice_payment(None if pi_id else charge_id, pi_id,
                                            "paid" if status == "paid" else "open", paid_at))
        obj["payments"] = {"object": "list", "data": payments, "has_more": False,
                           "url": f"/v1/invoice_payments?invoice={iid}"}
    obj.update(over)
    return obj


def payment_intent(pi_id: str = "pi_1", cid: str = "cus_A", decline_code: str | None = None,
                   code: str | None = "card_declined", charge_id: str | None = "ch_1",
                   **over: Any) -> dict[str, Any]:
    obj = fixture("payment_intent")
    obj.update(id=pi_id, customer=cid, latest_charge=charge_id, client_secret="pi_secret_x")
    obj["last_payment_error"] = ({"type": "card_error", "code": code,
                                  "decline_code": decline_code, "charge": charge_id,
                                  "message": "Your card was declined."}
                                 if code or decline_code else None)
    obj.update(over)
    return obj


def refund(rid: str = "re_1", chid: str = "ch_ok", amount: int = 60000, currency: str = "usd",
           cid: str | None = "cus_A", **over: Any) -> dict[str, Any]:
    obj = fixture("refund")
    obj.update(id=rid, charge=chid, amount=amount, currency=currency, customer=cid,
               created=T0, status="succeeded", reason="requested_by_customer")
    obj.update(over)
    return obj


def event(etype: str, obj: dict[str, Any], created: int = T0, eid: str | None = None,
          previous: dict[str, Any] | None = None, shape: str = "current") -> dict[str, Any]:
    ev = fixture("event")
    ev.update(id=eid or f"evt_{etype.replace('.', '_')}_{created}", type=etype, created=created,
              api_version="2026-10-28.endive" if shape == "current" else "2024-06-20")
    ev["data"] = {"object": obj}
    if previous is not None:
        ev["data"]["previous_attributes"] = previous
    return ev


def sf_account(aid: str = "001000000000001AAA", name: str = "Acme", website: str | None = None,
               created: str = "2024-01-01T00:00:00.000+0000", owner: str = "005000000000001AAA",
               **over: Any) -> dict[str, Any]:
    rec = {"Id": aid, "Name": name, "Website": website, "CreatedDate": created,
           "OwnerId": owner, "LostChurn_Stripe_Customer_ID__c": None,
           "LostChurn_Payment_Health__c": None, "LostChurn_Churn_Risk_Flag__c": False}
    rec.update(over)
    return rec


def sf_contact(cid: str = "003000000000001AAA", email: str = "jane.doe@acme.com",
               created: str = "2024-01-01T00:00:00.000+0000", **over: Any) -> dict[str, Any]:
    rec = {"Id": cid, "Email": email, "CreatedDate": created, "AccountId": None,
           "LostChurn_ID__c": None, "FirstName": "Jane", "LastName": "Doe"}
    rec.update(over)
    return rec


def context(*, cust: dict[str, Any] | None = None, subs: list[Any] = (),  # type: ignore[assignment]
            invoices: list[Any] = (), charges: list[Any] = (),  # type: ignore[assignment]
            pis: list[Any] = (), coupons: list[Any] = (),  # type: ignore[assignment]
            discounts: list[Any] = (),  # type: ignore[assignment]
            contacts: list[Any] = (), accounts: list[Any] = (),  # type: ignore[assignment]
            rules: RulesSettings | None = None,
            known: frozenset[str] = frozenset()) -> Context:
    return Context(
        StripeContext(cust if cust is not None else customer(), tuple(subs), tuple(invoices),
                      tuple(charges), {p["id"]: p for p in pis}, {c["id"]: c for c in coupons},
                      {d["id"]: d for d in discounts}),
        SalesforceContext(tuple(contacts), tuple(accounts)),
        rules or RulesSettings(), known)


def run(ev: dict[str, Any], ctx: Context) -> Derivation:
    return derive(ev, ctx)


def values(derivation: Derivation, sobject: str) -> dict[str, Any]:
    rec = derivation.record(sobject)
    assert rec is not None, f"no {sobject} in {derivation}"
    return rec.values()
