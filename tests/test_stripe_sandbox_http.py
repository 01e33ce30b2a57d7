"""The Stripe sandbox on the wire: auth headers, versions, parameters, errors, faults, admin."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from lc_console.sandbox.stripe import DEFAULT_API_VERSION, LEGACY_API_VERSION, StripeSandbox

NOW = 1_790_000_000


@pytest.fixture(scope="module")
def st() -> Iterator[StripeSandbox]:
    with StripeSandbox("small", seed=21, now=NOW) as sandbox:
        yield sandbox


@pytest.fixture(scope="module")
def http() -> Iterator[httpx.Client]:
    with httpx.Client() as client:
        yield client


def call(http: httpx.Client, st: StripeSandbox, path: str, *, key: str | None = None,
         version: str | None = None, method: str = "GET", **params: Any) -> httpx.Response:
    headers = {}
    if key is not False:
        headers["Authorization"] = f"Bearer {key or st.keys['secret']}"
    if version:
        headers["Stripe-Version"] = version
    return http.request(method, st.url + path, params=params, headers=headers)


def error_of(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["Request-Id"].startswith("req_")
    assert response.headers["Content-Type"] == "application/json"
    body = response.json()
    assert set(body) == {"error"}
    assert body["error"]["type"] in ("invalid_request_error", "api_error")
    return body["error"]


def test_bearer_and_basic_auth(st: StripeSandbox, http: httpx.Client) -> None:
    assert call(http, st, "/v1/customers").status_code == 200
    basic = base64.b64encode(f"{st.keys['secret']}:".encode()).decode()
    response = http.get(st.url + "/v1/customers", headers={"Authorization": f"Basic {basic}"})
    assert response.status_code == 200 and response.json()["object"] == "list"


def test_missing_and_wrong_keys(st: StripeSandbox, http: httpx.Client) -> None:
    missing = error_of(call(http, st, "/v1/customers", key=False), 401)  # type: ignore[arg-type]
    assert missing["message"].startswith("You did not provide an API key.")
    wrong = error_of(call(http, st, "/v1/customers", key="sk_test_abcdefgh1234"), 401)
    assert wrong == {"message": "Invalid API Key provided: sk_test_********1234",
                     "type": "invalid_request_error"}


def test_api_version_is_honoured_or_defaulted(st: StripeSandbox, http: httpx.Client) -> None:
    default = call(http, st, "/v1/invoices", limit=1)
    assert default.headers["Stripe-Version"] == DEFAULT_API_VERSION
    assert "parent" in default.json()["data"][0]
    old = call(http, st, "/v1/invoices", version=LEGACY_API_VERSION, limit=1)
    assert old.headers["Stripe-Version"] == LEGACY_API_VERSION
    assert "paid" in old.json()["data"][0] and "parent" not in old.json()["data"][0]
    for bad in ("2020-13-45", "2025-03-31", "2026-10-28.basil", "2031-01-01.zinnia", "latest"):
        error = error_of(call(http, st, "/v1/invoices", version=bad), 400)
        assert error["message"] == f"Invalid Stripe API version: {bad}"


@pytest.mark.parametrize(("params", "param", "code"), [
    ({"colour": "red"}, "colour", "parameter_unknown"),
    ({"limit": "0"}, "limit", None),
    ({"limit": "101"}, "limit", None),
    ({"limit": "ten"}, "limit", "parameter_invalid_integer"),
    ({"created[after]": "1"}, "created[after]", "parameter_unknown"),
    ({"starting_after": "evt_x", "ending_before": "evt_y"}, "ending_before",
     "parameters_exclusive"),
    ({"type": "invoice.paid", "types[0]": "charge.failed"}, "types", "parameters_exclusive"),
    ({"ending_before": "evt_1nosuchevent00000000000"}, "ending_before", "resource_missing"),
])
def test_bad_parameters(st: StripeSandbox, http: httpx.Client, params: dict[str, str],
                        param: str, code: str | None) -> None:
    error = error_of(call(http, st, "/v1/events", **params), 400)
    assert error["param"] == param
    assert error.get("code") == code
    if code:
        assert error["doc_url"] == "https://stripe.com/docs/error-codes/" + code.replace("_", "-")


def test_expand_errors(st: StripeSandbox, http: httpx.Client) -> None:
    error = error_of(call(http, st, "/v1/invoices", **{"expand[]": "customer"}), 400)
    assert error["message"] == ("This property cannot be expanded (customer). You may want to "
                                "try expanding 'data.customer' instead.")
    error = error_of(call(http, st, "/v1/invoices", **{"expand[]": "data.status"}), 400)
    assert error["message"] == "This property cannot be expanded (data.status)."
    event = call(http, st, "/v1/events", limit=1).json()["data"][0]
    error = error_of(call(http, st, f"/v1/events/{event['id']}",
                          **{"expand[]": "data.object.customer"}), 400)
    assert "cannot be expanded" in error["message"]


def test_unknown_urls_and_writes(st: StripeSandbox, http: httpx.Client) -> None:
    error = error_of(call(http, st, "/v1/widgets"), 404)
    assert error["message"].startswith("Unrecognized request URL (GET: /v1/widgets).")
    error = error_of(call(http, st, "/v1/customers", method="POST"), 404)
    assert error["message"].startswith("Unrecognized request URL (POST: /v1/customers).")
    error = error_of(call(http, st, "/v1/invoices/in_1nosuchinvoice000000000"), 404)
    assert error["code"] == "resource_missing" and error["param"] == "id"
    assert error["message"] == "No such invoice: 'in_1nosuchinvoice000000000'"


def test_list_envelope_and_filters(st: StripeSandbox, http: httpx.Client) -> None:
    page = call(http, st, "/v1/events", limit=3).json()
    assert set(page) == {"object", "data", "has_more", "url"}
    assert page["url"] == "/v1/events" and page["has_more"] is True and len(page["data"]) == 3
    default = call(http, st, "/v1/events").json()
    assert len(default["data"]) == 10  # Stripe's default page size
    exact = page["data"][0]["created"]
    same_second = call(http, st, "/v1/events", created=str(exact), limit=100).json()["data"]
    assert same_second and {e["created"] for e in same_second} == {exact}
    assert call(http, st, "/v1/events", delivery_success="false").json()["data"] == []
    customer = call(http, st, "/v1/customers", limit=1).json()["data"][0]
    by_email = call(http, st, "/v1/customers", email=customer["email"], limit=100).json()["data"]
    assert customer["id"] in {c["id"] for c in by_email}
    assert all(c["email"] == customer["email"] for c in by_email)
    assert call(http, st, "/v1/customers", email=customer["email"].upper(),
                limit=100).json()["data"] == [] or customer["email"] == customer["email"].upper()
    error = error_of(call(http, st, "/v1/invoices", customer="cus_nosuchcustomer1"), 400)
    assert error["param"] == "customer" and error["code"] == "resource_missing"


def test_every_response_carries_a_request_id(st: StripeSandbox, http: httpx.Client) -> None:
    for response in (call(http, st, "/v1/account"), call(http, st, "/v1/nope"),
                     call(http, st, "/v1/customers", key="sk_test_x"),
                     call(http, st, "/v1/invoices", key=st.keys["restricted_missing"])):
        assert response.headers["Request-Id"].startswith("req_")
    ids = {call(http, st, "/v1/account").headers["Request-Id"] for _ in range(5)}
    assert len(ids) == 5


def test_rate_limit_and_faults_on_the_wire(http: httpx.Client) -> None:
    with StripeSandbox("small", seed=2, now=NOW, rate_limit=2) as limited:
        responses = [call(http, limited, "/v1/customers") for _ in range(6)]
        limited_out = [r for r in responses if r.status_code == 429]
        assert limited_out and responses[0].status_code == 200
        error = error_of(limited_out[0], 429)
        assert error["code"] == "rate_limit" and error["type"] == "invalid_request_error"
        assert limited_out[0].headers["Stripe-Should-Retry"] == "false"
    with StripeSandbox("small", seed=2, now=NOW, fault_rate=0.6) as faulty:
        outcomes = set()
        for _ in range(25):
            try:
                response = call(http, faulty, "/v1/customers")
            except httpx.TransportError:
                outcomes.add("dropped")
                continue
            if response.status_code == 500:
                error = error_of(response, 500)
                assert error["type"] == "api_error"
                assert "Stripe-Should-Retry" not in response.headers  # the client decides
            outcomes.add(response.status_code)
        assert {"dropped", 500, 200} <= outcomes


def test_admin_endpoint(st: StripeSandbox, http: httpx.Client) -> None:
    auth = {"Authorization": f"Bearer {st.keys['secret']}"}
    assert http.get(st.url + "/_sandbox/state").status_code == 401
    state = http.get(st.url + "/_sandbox/state", headers=auth).json()
    assert state["scenario"] == "small" and state["counts"]["customer"] == 50
    advanced = http.post(st.url + "/_sandbox/advance", json={"days": 2}, headers=auth).json()
    assert advanced["now"] == state["now"] + 2 * 86400 and advanced["events"]
    assert call(http, st, f"/v1/events/{advanced['events'][0]}").status_code == 200
    bad = http.post(st.url + "/_sandbox/story", json={"customer": "cus_x", "story": "nope"},
                    headers=auth)
    assert bad.status_code == 400 and "unknown story" in bad.json()["error"]["message"]
