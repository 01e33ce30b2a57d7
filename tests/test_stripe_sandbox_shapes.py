"""Every object and list the Stripe sandbox serves matches Stripe's reference data for its API
version: the 2020-08-27 OpenAPI spec (jsonschema) for old shapes, stripe-python 16's fields and
Stripe's 2026 fixtures for current ones."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import stripe_shapes as shapes

from lc_console.sandbox.stripe import DEFAULT_API_VERSION, LEGACY_API_VERSION, StripeSandbox

NOW = 1_790_000_000
VERSIONS = [DEFAULT_API_VERSION, LEGACY_API_VERSION, "2025-06-30.basil", "2024-06-20"]
ENDPOINTS = ["/v1/customers", "/v1/subscriptions", "/v1/invoices", "/v1/charges", "/v1/refunds",
             "/v1/payment_intents"]


@pytest.fixture(scope="module")
def sandbox() -> Iterator[StripeSandbox]:
    with StripeSandbox("small", seed=3, now=NOW) as st, httpx.Client() as http:
        st.http = http  # type: ignore[attr-defined]
        yield st


def get(st: StripeSandbox, path: str, version: str, **params: Any) -> dict[str, Any]:
    response = st.http.get(st.url + path, params=params,  # type: ignore[attr-defined]
                           headers={"Authorization": f"Bearer {st.keys['secret']}",
                                    "Stripe-Version": version})
    assert response.status_code == 200, response.text
    assert response.headers["Stripe-Version"] == version
    assert response.headers["Request-Id"].startswith("req_")
    return response.json()


def assert_valid(body: dict[str, Any], version: str, url: str | None = None) -> None:
    errors = shapes.response_errors(body, version, url)
    assert not errors, "\n".join(errors[:20])


def all_pages(st: StripeSandbox, path: str, version: str, **params: Any) -> Iterator[dict]:
    cursor = None
    while True:
        extra = {"starting_after": cursor} if cursor else {}
        page = get(st, path, version, limit=100, **params, **extra)
        yield page
        if not page["has_more"]:
            return
        cursor = page["data"][-1]["id"]


@pytest.mark.parametrize("version", [DEFAULT_API_VERSION, LEGACY_API_VERSION])
@pytest.mark.parametrize("path", ENDPOINTS)
def test_every_listed_object_matches_the_reference(sandbox: StripeSandbox, path: str,
                                                   version: str) -> None:
    params = {"status": "all"} if path == "/v1/subscriptions" else {}
    seen = 0
    for page in all_pages(sandbox, path, version, **params):
        assert_valid(page, version, path)
        seen += len(page["data"])
    assert seen > 0


@pytest.mark.parametrize("version", ["2025-06-30.basil", "2024-06-20"])
@pytest.mark.parametrize("path", ENDPOINTS)
def test_other_versions_list_valid_objects(sandbox: StripeSandbox, path: str,
                                           version: str) -> None:
    page = get(sandbox, path, version, limit=20)
    assert page["data"]
    assert_valid(page, version, path)


@pytest.mark.parametrize("version", [DEFAULT_API_VERSION, LEGACY_API_VERSION])
def test_every_event_matches_the_reference_of_its_own_version(sandbox: StripeSandbox,
                                                               version: str) -> None:
    versions = set()
    types = set()
    for page in all_pages(sandbox, "/v1/events", version):
        assert_valid(page, version, "/v1/events")
        for event in page["data"]:
            versions.add(event["api_version"])
            types.add(event["type"])
    # The account was upgraded mid-history: recent events hold both shapes.
    assert versions == {LEGACY_API_VERSION, DEFAULT_API_VERSION}
    assert {"invoice.payment_failed", "invoice.paid", "charge.failed",
            "customer.subscription.updated", "invoice_payment.paid"} <= types


@pytest.mark.parametrize("version", VERSIONS)
def test_retrieved_objects_match_the_reference(sandbox: StripeSandbox, version: str) -> None:
    assert_valid(get(sandbox, "/v1/account", version), version)
    for path in ENDPOINTS:
        listed = get(sandbox, path, version, limit=3)["data"]
        for obj in listed:
            body = get(sandbox, f"{path}/{obj['id']}", version)
            assert body == obj
            assert_valid(body, version)
    event = get(sandbox, "/v1/events", version, limit=1)["data"][0]
    assert_valid(get(sandbox, f"/v1/events/{event['id']}", version), version)


LEGACY_EXPANSIONS = {
    "/v1/invoices": ["data.customer", "data.subscription", "data.charge", "data.payment_intent",
                     "data.discounts", "data.lines.data.price.product"],
    "/v1/subscriptions": ["data.customer", "data.latest_invoice", "data.discounts"],
    "/v1/charges": ["data.customer", "data.invoice", "data.payment_intent"],
    "/v1/payment_intents": ["data.customer", "data.invoice", "data.payment_method"],
    "/v1/refunds": ["data.charge", "data.payment_intent"],
}
CURRENT_EXPANSIONS = {
    "/v1/invoices": ["data.customer", "data.parent.subscription_details.subscription",
                     "data.payments.data.payment.payment_intent", "data.discounts"],
    "/v1/subscriptions": ["data.customer", "data.latest_invoice.payments",
                          "data.items.data.price.product", "data.discounts.source.coupon"],
    "/v1/charges": ["data.customer", "data.payment_intent", "data.refunds"],
    "/v1/payment_intents": ["data.customer", "data.latest_charge"],
    "/v1/refunds": ["data.charge", "data.payment_intent"],
}


@pytest.mark.parametrize(("version", "table"), [(LEGACY_API_VERSION, LEGACY_EXPANSIONS),
                                                (DEFAULT_API_VERSION, CURRENT_EXPANSIONS)])
def test_expanded_objects_match_the_reference(sandbox: StripeSandbox, version: str,
                                              table: dict[str, list[str]]) -> None:
    for path, expand in table.items():
        params: dict[str, Any] = {"limit": 25, "expand[]": expand}
        if path == "/v1/subscriptions":
            params["status"] = "all"
        page = get(sandbox, path, version, **params)
        assert_valid(page, version, path)
        for obj in page["data"]:
            assert isinstance(obj["customer" if path != "/v1/refunds" else "charge"], dict)


def test_expansions_reach_the_fields_the_console_reads(sandbox: StripeSandbox) -> None:
    v = DEFAULT_API_VERSION
    inv = next(i for i in get(sandbox, "/v1/invoices", v, limit=100, status="paid")["data"]
               if i["amount_due"] > 0)
    full = get(sandbox, f"/v1/invoices/{inv['id']}", v,
               **{"expand[]": ["payments.data.payment.payment_intent.latest_charge",
                               "parent.subscription_details.subscription"]})
    payment = full["payments"]["data"][0]
    assert payment["invoice"] == inv["id"] and payment["status"] == "paid"
    pi = payment["payment"]["payment_intent"]
    assert pi["object"] == "payment_intent" and pi["latest_charge"]["object"] == "charge"
    assert full["parent"]["subscription_details"]["subscription"]["object"] == "subscription"
    assert_valid(full, v)
    old = get(sandbox, f"/v1/invoices/{inv['id']}", LEGACY_API_VERSION,
              **{"expand[]": ["charge", "payment_intent", "subscription"]})
    assert old["charge"]["id"] == pi["latest_charge"]["id"]
    assert old["payment_intent"]["id"] == pi["id"]
    assert old["paid"] is True and "parent" not in old
    assert_valid(old, LEGACY_API_VERSION)


def test_versions_differ_exactly_where_stripe_changed_them(sandbox: StripeSandbox) -> None:
    sub = get(sandbox, "/v1/subscriptions", DEFAULT_API_VERSION, limit=1)["data"][0]
    old = get(sandbox, f"/v1/subscriptions/{sub['id']}", LEGACY_API_VERSION)
    item = sub["items"]["data"][0]
    assert old["current_period_end"] == item["current_period_end"]
    assert "current_period_end" not in sub and "current_period_end" not in old["items"]["data"][0]
    pi = get(sandbox, "/v1/payment_intents", DEFAULT_API_VERSION, limit=1)["data"][0]
    old_pi = get(sandbox, f"/v1/payment_intents/{pi['id']}", LEGACY_API_VERSION)
    # 2022-11-15: PaymentIntent.charges became latest_charge.
    assert "charges" not in pi and "latest_charge" not in old_pi
    assert [c["id"] for c in old_pi["charges"]["data"]][:1] == [pi["latest_charge"]]
    newer = get(sandbox, f"/v1/payment_intents/{pi['id']}", "2024-06-20")
    assert newer["latest_charge"] == pi["latest_charge"] and "charges" not in newer
    assert newer["invoice"] == old_pi["invoice"]


def test_the_checks_catch_a_wrong_shape(sandbox: StripeSandbox) -> None:
    """The validators can fail: each mistake a sandbox could make is caught."""
    current = get(sandbox, "/v1/invoices", DEFAULT_API_VERSION, limit=1)["data"][0]
    old = get(sandbox, f"/v1/invoices/{current['id']}", LEGACY_API_VERSION)
    assert shapes.object_errors({**current, "paid": True}, DEFAULT_API_VERSION)  # old field
    assert shapes.object_errors({**current, "amount_due": "10"}, DEFAULT_API_VERSION)  # type
    without_total = {k: v for k, v in current.items() if k != "total"}
    assert shapes.object_errors(without_total, DEFAULT_API_VERSION)  # required
    assert shapes.object_errors({**old, "parent": current["parent"]}, LEGACY_API_VERSION)
    without_paid = {k: v for k, v in old.items() if k != "paid"}
    assert shapes.object_errors(without_paid, LEGACY_API_VERSION)
    assert shapes.object_errors({**old, "status": "pending"}, LEGACY_API_VERSION)  # enum
    page = get(sandbox, "/v1/invoices", DEFAULT_API_VERSION, limit=1)
    assert shapes.response_errors({**page, "url": "/v1/charges"}, DEFAULT_API_VERSION,
                                  "/v1/invoices")
