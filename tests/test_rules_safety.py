"""Only allow-listed Stripe fields are read; nothing card-like reaches a Salesforce payload."""

from __future__ import annotations

import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_rules_support import (
    T0,
    charge,
    context,
    customer,
    event,
    fixture,
    invoice,
    run,
    subscription,
)

from lc_console.sync import safety
from lc_console.sync.model import ExternalKey, IdKey, Ref

VISA = "4111111111111111"
AMEX = "378282246310005"


def payload_strings(derivation):
    """Every string the derivation would send to Salesforce."""
    out = []

    def add(value):
        if isinstance(value, str):
            out.append(value)
        elif isinstance(value, Ref):
            key = value.key
            out.append(key.value if isinstance(key, ExternalKey) else key.id)

    for record in derivation.records:
        add(record.key.value if isinstance(record.key, ExternalKey) else record.key.id)
        for f in record.fields.values():
            add(f.value)
    for insert in derivation.inserts:
        for v in insert.fields.values():
            add(v)
    return out


def has_pan(text: str) -> bool:
    for run_ in re.finditer(r"[0-9](?:[ \-]?[0-9])*", text):
        digits = re.sub(r"\D", "", run_.group())
        for i in range(len(digits)):
            for n in range(13, min(19, len(digits) - i) + 1):
                if safety.luhn_valid(digits[i:i + n]):
                    return True
    return False


def test_projection_keeps_only_allow_listed_fields():
    ch = safety.project(charge(), kind="charge")
    assert "payment_method_details" not in ch and "billing_details" not in ch
    assert "failure_message" not in ch and "description" not in ch and "metadata" not in ch
    assert ch["outcome"] == {"type": "issuer_declined", "reason": "insufficient_funds",
                             "network_status": "declined_by_network", "advice_code": None}
    cust = safety.project(customer(metadata={"salesforce_account_id": "001x", "note": VISA},
                                   description=VISA, phone="+1 555"), kind="customer")
    assert cust["metadata"] == {"salesforce_account_id": "001x"}
    assert "description" not in cust and "phone" not in cust and "address" not in cust
    pi = safety.project(fixture("payment_intent"))
    assert "client_secret" not in pi


def test_event_previous_attributes_are_projected_like_their_object():
    sub = subscription()
    ev = safety.project(event("customer.subscription.updated", sub,
                              previous={"metadata": {"card": VISA}, "status": "trialing"}))
    assert ev["data"]["previous_attributes"] == {"status": "trialing"}


def test_unknown_object_types_read_nothing():
    ev = safety.project(event("issuing_card.created", {"object": "issuing.card",
                                                       "number": VISA, "cvc": "123"}))
    assert ev["data"]["object"] == {}


@pytest.mark.parametrize(("text", "expected"), [
    ("Card 4111 1111 1111 1111 exp 12/30", "Card [redacted] exp 12/30"),
    ("4111-1111-1111-1111", "[redacted]"),
    (f"amex {AMEX}", "amex [redacted]"),
    ("cvc: 123", "[redacted]"),
    ("CVV2 1234 thanks", "[redacted] thanks"),
    ("security code 999", "[redacted]"),
    ("account number 000123456789", "[redacted]"),
    ("routing: 110000000", "[redacted]"),
    ("IBAN DE89 3704 0044 0532 0130 00", "IBAN [redacted]"),
    ("order 1234567890123", "order 1234567890123"),  # 13 digits, not Luhn-valid
    ("Acme Inc", "Acme Inc"),
    ("Recovery - jane@acme.com - 2026-05-28", "Recovery - jane@acme.com - 2026-05-28"),
    ("+1 (555) 010-9999", "+1 (555) 010-9999"),
])
def test_redact_table(text, expected):
    assert safety.redact(text) == expected


def luhn_complete(prefix: str) -> str:
    for d in "0123456789":
        if safety.luhn_valid(prefix + d):
            return prefix + d
    raise AssertionError


PANS = st.builds(lambda body: luhn_complete(body),
                 st.text(alphabet="0123456789", min_size=12, max_size=18))


def formatted(pan: str, sep: str, group: int) -> str:
    return sep.join(pan[i:i + group] for i in range(0, len(pan), group)) if sep else pan


FORMATTED = st.builds(formatted, PANS, st.sampled_from(["", " ", "-"]),
                      st.sampled_from([4, 5, 6]))
AROUND = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Nd", "Cs")),
                 max_size=12)


@given(FORMATTED, AROUND, AROUND)
def test_redact_removes_every_luhn_valid_run(pan, before, after):
    assert not has_pan(safety.redact(before + pan + after))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(FORMATTED, st.sampled_from(["name", "metadata", "description", "email", "invoice_name",
                                   "billing", "failure_message"]))
def test_no_card_number_reaches_a_payload(pan, where):
    cust = customer()
    inv = invoice("current", attempt_count=2)
    ch = charge("ch_1", "failed", T0, payment_intent="pi_1")
    if where == "name":
        cust["name"] = f"Jane {pan} Doe"
    elif where == "metadata":
        cust["metadata"] = {"salesforce_account_id": pan, "card": pan}
    elif where == "description":
        cust["description"] = pan
        inv["description"] = pan
    elif where == "email":
        cust["email"] = pan.replace(" ", "").replace("-", "") + "@acme.com"
    elif where == "invoice_name":
        cust["name"] = None
        inv["customer_name"] = pan
    elif where == "billing":
        ch["billing_details"]["name"] = pan
        ch["payment_method_details"]["card"]["last4"] = pan[-4:]
    else:
        ch["failure_message"] = f"card {pan} declined"
    ctx = context(cust=cust, subs=[subscription()], invoices=[inv], charges=[ch])
    for etype in ("invoice.payment_failed", "customer.updated"):
        obj = inv if etype.startswith("invoice") else cust
        d = run(event(etype, obj), ctx)
        for text in payload_strings(d):
            assert not has_pan(text), (where, text)


def test_card_like_email_is_not_used():
    cust = customer(email=VISA + "@acme.com")
    inv = invoice("current", email=VISA + "@acme.com")
    d = run(event("invoice.payment_failed", inv), context(cust=cust, invoices=[inv]))
    assert d.record("Contact") is None
    assert "no usable email" in " ".join(d.notes)


def test_name_is_redacted_before_it_is_split():
    cust = customer(name="4111 1111 1111 1111")
    inv = invoice("current")
    d = run(event("invoice.payment_failed", inv), context(cust=cust, invoices=[inv]))
    contact = d.record("Contact").values()
    assert (contact["FirstName"], contact["LastName"]) == (None, "[redacted]")


def test_key_values_are_stripe_ids():
    d = run(event("invoice.payment_failed", invoice("current")), context())
    for record in d.records:
        assert isinstance(record.key, ExternalKey | IdKey)
