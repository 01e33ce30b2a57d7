"""Read Stripe objects in every API version the console meets.

Events keep `data.object` in the API version they were created under, so one account's
history holds both shapes (stripe.md section 2.1):

| what | before 2025-03-31.basil | basil and later |
|---|---|---|
| invoice's subscription | `invoice.subscription` | `invoice.parent.subscription_details.subscription` |
| invoice's payments | `invoice.charge`, `invoice.payment_intent` | `invoice.payments.data[].payment.{charge,payment_intent}` |
| invoice paid? | `invoice.paid` (also true when paid out of band) | `invoice.status == "paid"` |
| billing period | `subscription.current_period_start/end` | `subscription.items.data[].current_period_start/end` |
| charge's invoice | `charge.invoice` | gone: link through the invoice's payments |
| discount's coupon | `discount.coupon` (object) | `discount.source.coupon` (id, or object when expanded; clover) |

Every reader takes plain dicts (what `safety.project` returns, or `to_dict()` of a stripe
object) and accepts either shape; expandable fields may be ids or expanded objects.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

Obj = Mapping[str, Any]


def dig(obj: Any, path: str, default: Any = None) -> Any:
    """obj["a"]["b"]... for a dotted path; `default` when any step is missing or null."""
    node = obj
    for part in path.split("."):
        # dict first: projected objects are plain dicts and the ABC check is slow
        if not (type(node) is dict or isinstance(node, Mapping)) or node.get(part) is None:
            return default
        node = node[part]
    return node


def ref_id(value: Any) -> str | None:
    """Id of an expandable field: the id string, or the expanded object's id."""
    if isinstance(value, str):
        return value or None
    if isinstance(value, Mapping):
        found = value.get("id")
        return found if isinstance(found, str) else None
    return None


def list_data(value: Any) -> list[Any]:
    """Elements of a Stripe list object ({"data": [...]}) or of a plain list."""
    if type(value) is dict or isinstance(value, Mapping):
        value = value.get("data")
    return [v for v in value if v is not None] if isinstance(value, list | tuple) else []


def is_current_invoice_shape(invoice: Obj) -> bool:
    """True for the basil+ shape (parent / payments), False for the older one."""
    legacy = any(k in invoice for k in ("paid", "charge", "payment_intent", "subscription"))
    current = any(k in invoice for k in ("parent", "payments"))
    return current or not legacy


# --- invoice ------------------------------------------------------------------------------


def invoice_customer_id(invoice: Obj) -> str | None:
    return ref_id(invoice.get("customer"))


def invoice_subscription_id(invoice: Obj) -> str | None:
    found = ref_id(dig(invoice, "parent.subscription_details.subscription"))
    if found:
        return found
    found = ref_id(invoice.get("subscription"))
    if found:
        return found
    # Line items name the subscription too (current: parent.subscription_item_details).
    for line in list_data(invoice.get("lines")):
        found = ref_id(dig(line, "parent.subscription_item_details.subscription")) or ref_id(
            line.get("subscription"))
        if found:
            return found
    return None


def _payments(invoice: Obj) -> list[Obj]:
    return [p for p in list_data(invoice.get("payments")) if isinstance(p, Mapping)]


def invoice_charge_refs(invoice: Obj) -> list[Any]:
    """Charge ids or expanded charges the invoice names (legacy `charge`, current payments)."""
    refs: list[Any] = []
    if invoice.get("charge"):
        refs.append(invoice["charge"])
    for payment in _payments(invoice):
        if dig(payment, "payment.charge"):
            refs.append(payment["payment"]["charge"])
    return refs


def invoice_payment_intent_refs(invoice: Obj) -> list[Any]:
    refs: list[Any] = []
    if invoice.get("payment_intent"):
        refs.append(invoice["payment_intent"])
    for payment in _payments(invoice):
        if dig(payment, "payment.payment_intent"):
            refs.append(payment["payment"]["payment_intent"])
    return refs


def invoice_charge_ids(invoice: Obj) -> list[str]:
    return _unique(ref_id(r) for r in invoice_charge_refs(invoice))


def invoice_payment_intent_ids(invoice: Obj) -> list[str]:
    return _unique(ref_id(r) for r in invoice_payment_intent_refs(invoice))


def invoice_is_paid(invoice: Obj) -> bool:
    if invoice.get("status") == "paid":
        return True
    return invoice.get("paid") is True and invoice.get("status") not in ("void", "uncollectible")


def invoice_paid_at(invoice: Obj) -> int | None:
    paid_at = dig(invoice, "status_transitions.paid_at")
    if paid_at:
        return int(paid_at)
    times = [dig(p, "status_transitions.paid_at") for p in _payments(invoice)]
    times = [int(t) for t in times if t]
    return max(times) if times else None


def invoice_line_periods(invoice: Obj) -> list[tuple[int, int]]:
    periods = []
    for line in list_data(invoice.get("lines")):
        start, end = dig(line, "period.start"), dig(line, "period.end")
        if isinstance(start, int) and isinstance(end, int) and end >= start:
            periods.append((start, end))
    return periods


class ChargeIndex(list):  # type: ignore[type-arg]
    """A customer's charges (a list) with lookups by id, payment intent and legacy invoice."""

    def __init__(self, charges: Iterable[Obj] = ()) -> None:
        super().__init__(c for c in charges if isinstance(c, Mapping))
        self.by_id: dict[str, Obj] = {}
        self.by_pi: dict[str, list[Obj]] = {}
        self.by_invoice: dict[str, list[Obj]] = {}
        self.memo: dict[tuple[Any, int], tuple[Obj, list[Obj]]] = {}
        for charge in self:
            cid = charge.get("id")
            if cid:
                self.by_id[cid] = _fresher_charge(self.by_id.get(cid), charge)
            pi = ref_id(charge.get("payment_intent"))
            if pi:
                self.by_pi.setdefault(pi, []).append(charge)
            inv = ref_id(charge.get("invoice"))
            if inv:
                self.by_invoice.setdefault(inv, []).append(charge)


def charges_of_invoice(invoice: Obj, charges: Iterable[Obj],
                       payment_intents: Mapping[str, Obj] | None = None) -> list[Obj]:
    """The charges that paid or tried to pay `invoice`, oldest first.

    Linked by the legacy `charge.invoice`, by the charge ids the invoice names, or by the
    payment intents the invoice names (`charge.payment_intent`). Expanded charges on the
    invoice itself are included.
    """
    index = charges if isinstance(charges, ChargeIndex) else ChargeIndex(charges)
    invoice_id = invoice.get("id")
    memo_key = (invoice_id, id(invoice))
    if memo_key in index.memo:
        return list(index.memo[memo_key][1])
    found: dict[str, Obj] = {}

    def add(charge: Obj | None) -> None:
        if charge and charge.get("id"):
            found[charge["id"]] = _fresher_charge(found.get(charge["id"]), charge)

    if invoice_id:
        for charge in index.by_invoice.get(invoice_id, ()):
            add(charge)
    for ref in invoice_charge_refs(invoice):
        add(index.by_id.get(ref_id(ref) or ""))
        if isinstance(ref, Mapping):
            add(ref)
    for ref in invoice_payment_intent_refs(invoice):
        for charge in index.by_pi.get(ref_id(ref) or "", ()):
            add(charge)
        latest = ref.get("latest_charge") if isinstance(ref, Mapping) else None
        if isinstance(latest, Mapping):
            add(latest)
    linked = sorted(found.values(), key=lambda c: (c.get("created") or 0, c.get("id") or ""))
    index.memo[memo_key] = (invoice, linked)  # holding the invoice keeps id() unique
    return list(linked)


def _fresher_charge(old: Obj | None, new: Obj) -> Obj:
    # Two copies of one charge (event snapshot, fetched list): prefer the more advanced one.
    if old is None:
        return new
    rank = {"pending": 0, "failed": 1, "succeeded": 1}
    if rank.get(new.get("status"), 0) > rank.get(old.get("status"), 0):
        return new
    if (new.get("amount_refunded") or 0) > (old.get("amount_refunded") or 0):
        return new
    return old


# --- subscription -------------------------------------------------------------------------


def subscription_items(subscription: Obj) -> list[Obj]:
    return [i for i in list_data(subscription.get("items")) if isinstance(i, Mapping)
            and not i.get("deleted")]


def subscription_period(subscription: Obj) -> tuple[int | None, int | None]:
    """(start, end) of the current period: legacy top-level fields, else across items."""
    start, end = subscription.get("current_period_start"), subscription.get("current_period_end")
    if start is not None or end is not None:
        return start, end
    starts = [i.get("current_period_start") for i in subscription_items(subscription)]
    ends = [i.get("current_period_end") for i in subscription_items(subscription)]
    starts = [s for s in starts if isinstance(s, int)]
    ends = [e for e in ends if isinstance(e, int)]
    return (min(starts) if starts else None, max(ends) if ends else None)


def subscription_customer_id(subscription: Obj) -> str | None:
    return ref_id(subscription.get("customer"))


def subscription_discounts(subscription: Obj) -> list[Any]:
    """Subscription-level discounts: the `discounts` list, else the pre-basil `discount`."""
    found = list(list_data(subscription.get("discounts")))
    if not found and isinstance(subscription.get("discount"), Mapping):
        found.append(subscription["discount"])
    return found


def discount_coupon(discount: Any, coupons: Mapping[str, Obj],
                    discounts: Mapping[str, Obj] | None = None) -> Obj | None:
    """The coupon of a discount (legacy `coupon`, clover `source.coupon`), id or object.

    Subscriptions list their discounts as ids unless expanded: those are looked up in
    `discounts` (by discount id), and coupon ids in `coupons`.
    """
    if isinstance(discount, str):
        discount = (discounts or {}).get(discount)
    if not isinstance(discount, Mapping):
        return None
    ref = dig(discount, "source.coupon") or discount.get("coupon")
    if isinstance(ref, Mapping):
        return ref
    if isinstance(ref, str):
        return coupons.get(ref)
    return None


# --- charge / payment intent ---------------------------------------------------------------


def charge_invoice_id(charge: Obj) -> str | None:
    return ref_id(charge.get("invoice"))


def customer_id_of(obj: Obj) -> str | None:
    """The Stripe customer an event's object belongs to, whatever its type."""
    kind = obj.get("object")
    if kind == "customer":
        return obj.get("id")
    return ref_id(obj.get("customer"))


def _unique(values: Iterable[str | None]) -> list[str]:
    seen: list[str] = []
    for v in values:
        if v and v not in seen:
            seen.append(v)
    return seen


def newest_by_id(*groups: Sequence[Obj]) -> dict[str, Obj]:
    """Merge object lists by id; a later group's copy overrides an earlier one's fields.

    Fields the later copy lacks are kept: event payloads leave out what only expansion
    brings (an invoice's `payments`), which the fetched copy may hold.
    """
    merged: dict[str, Obj] = {}
    for group in groups:
        for obj in group:
            if isinstance(obj, Mapping) and obj.get("id"):
                held = merged.get(obj["id"])
                merged[obj["id"]] = obj if held is None else {**held, **obj}
    return merged
