"""Readers accept both invoice / subscription shapes (before and after 2025-03-31.basil)."""

from __future__ import annotations

import pytest
import stripe
from test_rules_support import (
    SHAPES,
    T0,
    charge,
    context,
    coupon,
    discount,
    event,
    fixture,
    invoice,
    item,
    run,
    subscription,
    values,
)

from lc_console.sync import safety
from lc_console.sync import stripe_shapes as ss


@pytest.mark.parametrize("shape", SHAPES)
def test_invoice_subscription_id_in_both_shapes(shape):
    inv = safety.project(invoice(shape, sid="sub_X"))
    assert ss.invoice_subscription_id(inv) == "sub_X"
    assert ss.is_current_invoice_shape(inv) is (shape == "current")


def test_invoice_subscription_falls_back_to_line_items():
    inv = invoice("current", sid="sub_X")
    inv["parent"] = None
    assert ss.invoice_subscription_id(safety.project(inv)) == "sub_X"


@pytest.mark.parametrize("shape", SHAPES)
def test_invoice_without_subscription(shape):
    inv = invoice(shape, sid=None)
    inv["lines"]["data"][0]["parent"] = None
    assert ss.invoice_subscription_id(safety.project(inv)) is None


@pytest.mark.parametrize("shape", SHAPES)
def test_invoice_payment_references(shape):
    inv = safety.project(invoice(shape, charge_id="ch_9", pi_id="pi_9"))
    assert ss.invoice_payment_intent_ids(inv) == ["pi_9"]
    if shape == "legacy":
        assert ss.invoice_charge_ids(inv) == ["ch_9"]


def test_current_invoice_payments_with_charge_only():
    inv = safety.project(invoice("current", charge_id="ch_9", pi_id=None))
    assert ss.invoice_charge_ids(inv) == ["ch_9"]
    assert ss.invoice_payment_intent_ids(inv) == []


@pytest.mark.parametrize(("shape", "status", "paid_flag", "expected"), [
    ("current", "paid", None, True),
    ("current", "open", None, False),
    ("legacy", "paid", True, True),
    ("legacy", "open", False, False),
    ("legacy", "void", True, False),  # never trust `paid` on a voided invoice
])
def test_invoice_is_paid(shape, status, paid_flag, expected):
    inv = invoice(shape, status=status)
    if paid_flag is not None:
        inv["paid"] = paid_flag
    assert ss.invoice_is_paid(safety.project(inv)) is expected


def test_paid_at_from_status_transitions_or_payments():
    inv = invoice("current", status="paid", paid_at=T0)
    assert ss.invoice_paid_at(safety.project(inv)) == T0
    inv["status_transitions"]["paid_at"] = None
    assert ss.invoice_paid_at(safety.project(inv)) == T0  # from payments[].status_transitions


@pytest.mark.parametrize("shape", SHAPES)
def test_subscription_period_in_both_shapes(shape):
    sub = subscription(shape, items=[item(period=(T0, T0 + 30 * 86400))])
    assert ss.subscription_period(safety.project(sub)) == (T0, T0 + 30 * 86400)


@pytest.mark.parametrize("shape", SHAPES)
def test_discount_coupon_in_both_shapes(shape):
    cpn = coupon(percent_off=25)
    disc = safety.project(discount(cpn, shape), kind="discount")
    assert ss.discount_coupon(disc, {})["percent_off"] == 25


def test_unexpanded_coupon_is_read_from_the_context():
    cpn = coupon(percent_off=10, cid="co_x")
    disc = safety.project(discount(cpn, "current", expanded=False), kind="discount")
    assert ss.discount_coupon(disc, {}) is None
    assert ss.discount_coupon(disc, {"co_x": cpn})["percent_off"] == 10


@pytest.mark.parametrize("shape", SHAPES)
def test_charges_of_invoice_in_both_shapes(shape):
    inv = invoice(shape, charge_id="ch_1", pi_id="pi_1")
    linked = charge("ch_1", payment_intent="pi_1", invoice="in_A1", shape=shape)
    other = charge("ch_2", payment_intent="pi_2", invoice="in_B", shape=shape)
    found = ss.charges_of_invoice(safety.project(inv), [safety.project(linked),
                                                       safety.project(other)])
    assert [c["id"] for c in found] == ["ch_1"]


def test_current_invoice_links_charge_through_payment_intent_only():
    inv = safety.project(invoice("current", charge_id=None, pi_id="pi_7"))
    ch = safety.project(charge("ch_7", payment_intent="pi_7"))
    assert [c["id"] for c in ss.charges_of_invoice(inv, [ch])] == ["ch_7"]


def test_ref_id_of_expanded_objects():
    assert ss.ref_id("cus_1") == "cus_1"
    assert ss.ref_id({"id": "cus_1", "object": "customer"}) == "cus_1"
    assert ss.ref_id(None) is None and ss.ref_id("") is None


@pytest.mark.parametrize("shape", SHAPES)
def test_derive_accepts_stripe_objects(shape):
    inv = invoice(shape)
    ev = event("invoice.payment_failed", inv, shape=shape)
    as_object = stripe.Event.construct_from(ev, "sk_test_x")
    ctx = context(subs=[subscription(shape)], invoices=[inv],
                  charges=[charge(invoice="in_A1", payment_intent="pi_1", shape=shape)])
    assert run(as_object, ctx) == run(ev, ctx)
    assert values(run(as_object, ctx), "LostChurn_Recovery__c")["Status__c"] == "Started"


def test_fixture_invoice_itself_is_readable():
    # Stripe's verbatim fixture (placeholder values) must not break the readers.
    inv = safety.project(fixture("invoice"))
    assert ss.invoice_subscription_id(inv) == "subscription"
    assert ss.invoice_is_paid(inv) is False
