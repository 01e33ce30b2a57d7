"""Only allow-listed Stripe fields are read; nothing card-like reaches a Salesforce payload.

Two walls:

1. `project(obj)` keeps only the fields listed below for each Stripe object type (events,
   customers, invoices, subscriptions, charges, payment intents, refunds, discounts and
   coupons) and drops everything else: payment_method_details (last4, fingerprint),
   billing_details, descriptions, failure messages, addresses, phone numbers and all
   metadata keys except `salesforce_account_id`. `derive()` projects every Stripe input
   before any rule reads it, so a rule cannot read a field that is not on this list.
2. `redact(text)` scrubs free text that must pass (a customer's name, an email) of anything
   resembling card or bank data: Luhn-valid runs of 13-19 digits, also when split by spaces
   or dashes (PANs); labelled security codes ("CVC 123", "cvv2: 1234", "security code");
   labelled bank account and routing numbers ("account number 000123456789", "acct #",
   "routing", "IBAN"); and IBANs (country code, check digits, mod-97 valid). `scrub_value`
   applies it to every string of a payload; `derive()` runs it on every field it outputs.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

REDACTED = "[redacted]"


# --- allow-list ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Expandable:
    """An id string, or the expanded object projected with `spec`."""

    spec: Mapping[str, Any]


@dataclass(frozen=True)
class ListOf:
    """A JSON array whose elements are projected with `spec` (or are Expandable)."""

    spec: Any


class _ByObject:
    """The spec is chosen by the value's own `object` field (event data)."""


BY_OBJECT = _ByObject()
S = None  # a scalar: kept only when it is not a container

COUPON: dict[str, Any] = {
    "id": S, "object": S, "percent_off": S, "amount_off": S, "currency": S, "duration": S,
    "duration_in_months": S, "valid": S,
}
DISCOUNT: dict[str, Any] = {
    "id": S, "object": S, "start": S, "end": S,
    "coupon": Expandable(COUPON),  # before 2025-09-30.clover
    "source": {"type": S, "coupon": Expandable(COUPON)},  # clover and later
}
TIERS = ListOf({"up_to": S, "unit_amount": S, "unit_amount_decimal": S, "flat_amount": S,
                "flat_amount_decimal": S})
PRICE: dict[str, Any] = {
    "id": S, "object": S, "currency": S, "unit_amount": S, "unit_amount_decimal": S,
    "billing_scheme": S, "tiers_mode": S, "tiers": TIERS, "type": S,
    "recurring": {"interval": S, "interval_count": S, "usage_type": S},
    "transform_quantity": {"divide_by": S, "round": S},
}
PLAN: dict[str, Any] = {
    "id": S, "object": S, "currency": S, "amount": S, "amount_decimal": S, "interval": S,
    "interval_count": S, "usage_type": S, "billing_scheme": S, "tiers_mode": S, "tiers": TIERS,
    "transform_usage": {"divide_by": S, "round": S},
}
SUBSCRIPTION_ITEM: dict[str, Any] = {
    "id": S, "object": S, "quantity": S, "deleted": S, "current_period_start": S,
    "current_period_end": S, "price": PRICE, "plan": PLAN,
    "discounts": ListOf(Expandable(DISCOUNT)),
}
SUBSCRIPTION: dict[str, Any] = {
    "id": S, "object": S, "customer": Expandable({"id": S}), "status": S, "created": S,
    "start_date": S, "currency": S, "collection_method": S, "cancel_at_period_end": S,
    "cancel_at": S, "canceled_at": S, "ended_at": S, "trial_start": S, "trial_end": S,
    "current_period_start": S, "current_period_end": S,  # before 2025-03-31.basil
    "quantity": S, "plan": PLAN,  # legacy single-plan subscriptions
    "latest_invoice": Expandable({"id": S}),
    "discount": DISCOUNT,  # singular, before basil
    "discounts": ListOf(Expandable(DISCOUNT)),
    "items": {"object": S, "has_more": S, "data": ListOf(SUBSCRIPTION_ITEM)},
    "cancellation_details": {"reason": S},
    "pause_collection": {"behavior": S, "resumes_at": S},
}
REFUND: dict[str, Any] = {
    "id": S, "object": S, "amount": S, "currency": S, "charge": Expandable({"id": S}),
    "payment_intent": Expandable({"id": S}), "customer": Expandable({"id": S}), "status": S,
    "reason": S, "created": S,
}
CHARGE: dict[str, Any] = {
    "id": S, "object": S, "amount": S, "amount_captured": S, "amount_refunded": S,
    "currency": S, "customer": Expandable({"id": S}), "status": S, "paid": S, "refunded": S,
    "created": S, "failure_code": S, "invoice": Expandable({"id": S}),  # invoice: pre-basil
    "payment_intent": Expandable({"id": S}),
    "outcome": {"type": S, "reason": S, "network_status": S, "advice_code": S},
    "refunds": {"object": S, "has_more": S, "data": ListOf(REFUND)},
}
PAYMENT_INTENT: dict[str, Any] = {
    "id": S, "object": S, "amount": S, "currency": S, "customer": Expandable({"id": S}),
    "status": S, "created": S, "invoice": Expandable({"id": S}),  # pre-basil
    "latest_charge": Expandable(CHARGE),
    "last_payment_error": {"type": S, "code": S, "decline_code": S, "charge": S},
}
CUSTOMER: dict[str, Any] = {
    "id": S, "object": S, "email": S, "name": S, "created": S, "currency": S, "deleted": S,
    "delinquent": S, "livemode": S, "metadata": {"salesforce_account_id": S},
}
INVOICE_PAYMENT: dict[str, Any] = {
    "id": S, "object": S, "status": S, "amount_paid": S, "amount_requested": S, "currency": S,
    "is_default": S, "created": S,
    "payment": {"type": S, "charge": Expandable(CHARGE),
                "payment_intent": Expandable(PAYMENT_INTENT)},
    "status_transitions": {"paid_at": S, "canceled_at": S},
}
LINE_ITEM: dict[str, Any] = {
    "id": S, "object": S, "amount": S, "currency": S, "period": {"start": S, "end": S},
    "subscription": Expandable({"id": S}), "proration": S, "type": S,
    "parent": {"type": S,
               "subscription_item_details": {"subscription": S, "subscription_item": S,
                                             "proration": S},
               "invoice_item_details": {"subscription": S, "proration": S}},
}
INVOICE: dict[str, Any] = {
    "id": S, "object": S, "customer": Expandable(CUSTOMER), "customer_email": S,
    "customer_name": S, "currency": S, "amount_due": S, "amount_paid": S,
    "amount_remaining": S, "total": S, "attempt_count": S, "attempted": S,
    "next_payment_attempt": S, "status": S, "collection_method": S, "billing_reason": S,
    "created": S, "due_date": S, "period_start": S, "period_end": S, "livemode": S,
    "status_transitions": {"finalized_at": S, "marked_uncollectible_at": S, "paid_at": S,
                           "voided_at": S},
    # before 2025-03-31.basil
    "subscription": Expandable({"id": S}), "charge": Expandable(CHARGE),
    "payment_intent": Expandable(PAYMENT_INTENT), "paid": S, "paid_out_of_band": S,
    # basil and later
    "parent": {"type": S, "subscription_details": {"subscription": Expandable({"id": S})}},
    "payments": {"object": S, "has_more": S, "data": ListOf(INVOICE_PAYMENT)},
    "lines": {"object": S, "has_more": S, "data": ListOf(LINE_ITEM)},
}

SPECS: dict[str, dict[str, Any]] = {
    "customer": CUSTOMER, "invoice": INVOICE, "subscription": SUBSCRIPTION,
    "subscription_item": SUBSCRIPTION_ITEM, "charge": CHARGE,
    "payment_intent": PAYMENT_INTENT, "refund": REFUND, "discount": DISCOUNT,
    "coupon": COUPON, "price": PRICE, "plan": PLAN, "invoice_payment": INVOICE_PAYMENT,
    "line_item": LINE_ITEM,
}
EVENT: dict[str, Any] = {
    "id": S, "object": S, "type": S, "created": S, "api_version": S, "livemode": S,
    "request": {"id": S},
    "data": {"object": BY_OBJECT, "previous_attributes": BY_OBJECT},
}
SPECS["event"] = EVENT


def as_plain(obj: Any) -> Any:
    """A plain dict/list tree from a stripe object (`to_dict()`) or a dict."""
    to_dict = getattr(obj, "to_dict", None)
    if callable(to_dict) and not isinstance(obj, Mapping):
        return to_dict()
    return obj


def project(obj: Any, spec: Any = None, *, kind: str | None = None) -> Any:
    """Keep only allow-listed fields. `spec` defaults to the one for obj["object"] or kind."""
    obj = as_plain(obj)
    if spec is None:
        name = kind or (obj.get("object") if isinstance(obj, Mapping) else None)
        if name not in SPECS:
            raise ValueError(f"no allow-list for Stripe object type {name!r}")
        spec = SPECS[name]
    return _project(obj, spec, parent_object=None)


def _project(value: Any, spec: Any, parent_object: str | None) -> Any:
    if value is None:
        return None
    if spec is S:
        return value if isinstance(value, str | int | float | bool) else None
    if isinstance(spec, Expandable):
        if isinstance(value, str):
            return value
        return _project(value, spec.spec, parent_object) if isinstance(value, Mapping) else None
    if isinstance(spec, ListOf):
        if not isinstance(value, list | tuple):
            return None
        return [_project(v, spec.spec, parent_object) for v in value]
    if spec is BY_OBJECT:
        if not isinstance(value, Mapping):
            return None
        kind = value.get("object") or parent_object
        inner = SPECS.get(kind) if kind else None
        if inner is None:
            return {}
        return _project(value, inner, kind)
    if isinstance(spec, Mapping):
        if not isinstance(value, Mapping):
            return None
        out: dict[str, Any] = {}
        for key, sub in spec.items():
            if key in value:
                projected = _project(value[key], sub, parent_object)
                if projected is not None or value[key] is None:
                    out[key] = projected
        # previous_attributes carry no "object": project them like the object they describe
        if spec is EVENT and isinstance(value.get("data"), Mapping):
            data = value["data"]
            obj_kind = data.get("object", {}).get("object") if isinstance(
                data.get("object"), Mapping) else None
            prev = data.get("previous_attributes")
            if obj_kind in SPECS and isinstance(prev, Mapping):
                out["data"]["previous_attributes"] = _project(prev, SPECS[obj_kind], obj_kind)
        return out
    raise TypeError(f"bad allow-list spec {spec!r}")


# --- redaction ----------------------------------------------------------------------------

# 13-19 digits, optionally separated by single spaces or dashes (as people type card numbers).
_DIGIT_RUN = re.compile(r"(?<![0-9])[0-9](?:[ \-]?[0-9]){12,18}(?![0-9])")
_HAS_DIGIT = re.compile(r"[0-9]")
_ANY_DIGITS = re.compile(r"[0-9](?:[ \-]?[0-9])+")
_LABELLED_CODE = re.compile(
    r"(?i)\b(?:cvc2?|cvv2?|cid|csc|card\s*(?:security|verification)\s*(?:code|value)|"
    r"security\s*code)\b[\s:=#.\-]*[0-9]{3,4}\b"
)
_LABELLED_BANK = re.compile(
    r"(?i)\b(?:account|acct|a/c|bank\s*account|routing|aba|sort\s*code|bsb|iban|"
    r"kontonummer|rib)\b(?:\s*(?:number|no\.?|nr\.?|num|#))?[\s:=#.\-]*"
    r"[0-9][0-9 \-]{3,30}[0-9]"
)
# IBANs are written in capitals; lower-case look-alikes (emails, ids) are left alone.
_IBAN = re.compile(r"\b[A-Z]{2}[0-9]{2}(?:[ ]?[A-Z0-9]){11,30}\b")


def luhn_valid(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def _iban_valid(candidate: str) -> bool:
    compact = re.sub(r"\s", "", candidate).upper()
    if not 15 <= len(compact) <= 34:
        return False
    rearranged = compact[4:] + compact[:4]
    numeric = "".join(str(int(c, 36)) for c in rearranged)
    return int(numeric) % 97 == 1


def _pan_spans(text: str) -> list[tuple[int, int]]:
    """Spans of Luhn-valid 13-19 digit runs, also inside longer separated digit runs."""
    spans: list[tuple[int, int]] = []
    for run in _ANY_DIGITS.finditer(text):
        chunk = run.group()
        positions = [i for i, ch in enumerate(chunk) if ch.isdigit()]
        digits = "".join(chunk[i] for i in positions)
        if len(digits) < 13:
            continue
        # any window of 13-19 consecutive digits that passes Luhn is card-like
        for start in range(len(digits)):
            for length in range(13, min(19, len(digits) - start) + 1):
                if luhn_valid(digits[start:start + length]):
                    a = run.start() + positions[start]
                    b = run.start() + positions[start + length - 1] + 1
                    spans.append((a, b))
    return spans


def contains_card_data(text: str) -> bool:
    return bool(_pan_spans(text) or _LABELLED_CODE.search(text) or _LABELLED_BANK.search(text)
                or any(_iban_valid(m.group()) for m in _IBAN.finditer(text)))


def redact(text: str) -> str:
    """`text` with card numbers, security codes and bank account numbers replaced."""
    if not _HAS_DIGIT.search(text):
        return text
    spans = _pan_spans(text)
    spans += [m.span() for m in _LABELLED_CODE.finditer(text)]
    spans += [m.span() for m in _LABELLED_BANK.finditer(text)]
    spans += [m.span() for m in _IBAN.finditer(text) if _iban_valid(m.group())]
    if not spans:
        return text
    spans.sort()
    merged: list[list[int]] = []
    for a, b in spans:
        if merged and a <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], b)
        else:
            merged.append([a, b])
    out, last = [], 0
    for a, b in merged:
        out.append(text[last:a])
        out.append(REDACTED)
        last = b
    out.append(text[last:])
    return "".join(out)


def scrub_value(value: Any) -> Any:
    return redact(value) if isinstance(value, str) else value
