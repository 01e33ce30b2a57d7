"""Walk a current-shape object back to an older API version.

Only the breaking changes that touch what the console reads are modelled:
- 2025-03-31.basil: invoices regain `subscription`, `charge`, `payment_intent`, `paid`,
  `paid_out_of_band`, singular `discount` and the tax fields, and lose `parent`, `payments`,
  `amount_overpaid`; line items regain `type`, `proration`, `subscription_item`, `price`,
  `plan`; subscriptions regain `current_period_start/end` (items lose them) and `discount`;
  charges and payment intents regain `invoice`; recurring prices regain `aggregate_usage`.
- 2022-11-15: payment intents list their `charges` (no `latest_charge`) and charges include
  `refunds` without being asked.
- 2025-09-30.clover (discount.source vs discount.coupon) is handled where discounts render.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .versions import BASIL, CHARGES_ON_PI_REMOVED, at_least

if TYPE_CHECKING:
    from .render import Renderer


def downgrade(kind: str, out: dict[str, Any], version: str, r: Renderer, obj: Any,
              st: Any) -> dict[str, Any]:
    if at_least(version, BASIL):
        return out
    fn = _DOWNGRADES.get(kind)
    return fn(out, version, r, obj, st) if fn else out


def legacy_price(price: dict[str, Any]) -> dict[str, Any]:
    price = dict(price)
    if price.get("recurring") is not None:
        price["recurring"] = {"aggregate_usage": None, **price["recurring"]}
    return price


def legacy_plan(plan: dict[str, Any]) -> dict[str, Any]:
    return {"aggregate_usage": None, **plan}


def _invoice(out: dict[str, Any], version: str, r: Renderer, inv: Any,
             st: Any) -> dict[str, Any]:
    out = dict(out)
    for key in ("parent", "payments", "amount_overpaid", "confirmation_secret",
                "total_pretax_credit_amounts", "total_taxes"):
        out.pop(key, None)
    out["application_fee_amount"] = None
    out["charge"] = r.id("charge", st.charge.n) if st.charge is not None else None
    out["discount"] = r.discount(inv.discount, version) if inv.discount is not None else None
    out["paid"] = st.status == "paid"
    out["paid_out_of_band"] = False
    out["payment_intent"] = (r.id("payment_intent", st.payment_intent.n)
                             if st.payment_intent is not None else None)
    out["quote"] = None
    out["subscription"] = r.id("subscription", inv.sub.n) if inv.sub is not None else None
    out["tax"] = None
    out["total_tax_amounts"] = []
    out["transfer_data"] = None
    lines = out["lines"]
    data = [_line(line_out, line, r) for line_out, line in zip(lines["data"], inv.lines,
                                                              strict=True)]
    out["lines"] = {**lines, "data": data, "total_count": len(data)}
    return out


def _line(out: dict[str, Any], line: Any, r: Renderer) -> dict[str, Any]:
    out = dict(out)
    parent = out.pop("parent")
    for key in ("pricing", "taxes", "pretax_credit_amounts", "subtotal", "quantity_decimal"):
        out.pop(key, None)
    details = parent["subscription_item_details"]
    out["amount_excluding_tax"] = out["amount"]
    out["plan"] = legacy_plan(r.plan(line.price))
    out["price"] = legacy_price(r.price(line.price))
    out["proration"] = details["proration"]
    out["proration_details"] = details["proration_details"]
    out["subscription"] = details["subscription"]
    out["subscription_item"] = details["subscription_item"]
    out["tax_amounts"] = []
    out["tax_rates"] = []
    out["type"] = "subscription"
    out["unit_amount_excluding_tax"] = str(line.price.plan.unit_amount)
    return out


def _subscription(out: dict[str, Any], version: str, r: Renderer, sub: Any,
                  st: Any) -> dict[str, Any]:
    out = dict(out)
    out["current_period_end"] = st.period_end
    out["current_period_start"] = st.period_start
    out["discount"] = r.discount(st.discount, version) if st.discount is not None else None
    items = []
    for item in out["items"]["data"]:
        item = dict(item)
        item.pop("current_period_end", None)
        item.pop("current_period_start", None)
        item["plan"] = legacy_plan(item["plan"])
        item["price"] = legacy_price(item["price"])
        items.append(item)
    out["items"] = {**out["items"], "data": items, "total_count": len(items)}
    if len(items) == 1:
        out["plan"] = items[0]["plan"]
        out["quantity"] = items[0]["quantity"]
    return out


def _charge(out: dict[str, Any], version: str, r: Renderer, ch: Any, st: Any) -> dict[str, Any]:
    out = dict(out)
    out["invoice"] = r.id("invoice", ch.invoice.n) if ch.invoice is not None else None
    if not at_least(version, CHARGES_ON_PI_REMOVED) and "refunds" not in out:
        refunds = r.refund_list(ch, st, version)
        out["refunds"] = {**refunds, "total_count": len(refunds["data"])}
    return out


def _payment_intent(out: dict[str, Any], version: str, r: Renderer, pi: Any,
                    st: Any) -> dict[str, Any]:
    out = dict(out)
    out["invoice"] = r.id("invoice", pi.invoice.n) if pi.invoice is not None else None
    if not at_least(version, CHARGES_ON_PI_REMOVED):
        out.pop("latest_charge", None)
        charges = [r.render("charge", c, version) for c in reversed(st.charges)]
        pid = out["id"]
        out["charges"] = {"object": "list", "data": charges, "has_more": False,
                          "total_count": len(charges), "url": f"/v1/charges?payment_intent={pid}"}
    return out


_DOWNGRADES = {
    "invoice": _invoice,
    "subscription": _subscription,
    "charge": _charge,
    "payment_intent": _payment_intent,
}
