"""The real stripe-python client against the Stripe sandbox: paging both ways across page
boundaries, retrieving every object type, filters, and the exceptions Stripe raises."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import stripe
import stripe_shapes as shapes

from lc_console.sandbox.stripe import DEFAULT_API_VERSION, StripeSandbox

NOW = 1_790_000_000


def client(st: StripeSandbox, key: str = "secret", **kwargs: Any) -> stripe.StripeClient:
    api_key = st.keys[key] if key in st.keys else key
    return stripe.StripeClient(api_key, base_addresses={"api": st.url}, **kwargs)


@pytest.fixture(scope="module")
def st() -> Iterator[StripeSandbox]:
    with StripeSandbox("small", seed=7, now=NOW) as sandbox:
        yield sandbox


def valid(obj: Any) -> dict[str, Any]:
    """The JSON the client received for `obj`, checked against Stripe's reference data."""
    data = json.loads(obj.last_response.body)
    errors = shapes.response_errors(data, DEFAULT_API_VERSION,
                                    data.get("url") if data.get("object") == "list" else None)
    assert not errors, "\n".join(errors[:10])
    return data


def all_event_ids(c: stripe.StripeClient) -> list[str]:
    """Newest first, by explicit starting_after pages of 100 (every event is checked against
    the reference in test_stripe_sandbox_shapes; here the first page is)."""
    ids: list[str] = []
    params: dict[str, Any] = {"limit": 100}
    while True:
        page = c.v1.events.list(params=params)
        if not ids:
            valid(page)
        ids += [e.id for e in page.data]
        if not page.has_more:
            return ids
        params = {"limit": 100, "starting_after": page.data[-1].id}


def test_auto_paging_iter_walks_back_in_time_across_pages(st: StripeSandbox) -> None:
    c = client(st)
    reference = all_event_ids(c)
    assert len(reference) > 150 and len(set(reference)) == len(reference)
    walked = [e.id for e in c.v1.events.list(params={"limit": 9}).auto_paging_iter()]
    assert walked == reference
    created = [e.created for e in c.v1.events.list(params={"limit": 100}).data]
    assert created == sorted(created, reverse=True)


def test_ending_before_pages_forward_from_a_cursor_with_no_gap(st: StripeSandbox) -> None:
    c = client(st)
    reference = all_event_ids(c)
    cursor = reference[60]  # 60 events are newer than this one
    page = c.v1.events.list(params={"ending_before": cursor, "limit": 7})
    valid(page)
    # The first page holds the 7 events just after the cursor, still newest first.
    assert [e.id for e in page.data] == reference[53:60]
    assert page.has_more is True
    forward = [e.id for e in page.auto_paging_iter()]
    assert forward == list(reversed(reference[:60]))  # oldest to newest, none missing
    newest = c.v1.events.list(params={"ending_before": reference[0], "limit": 7})
    assert newest.data == [] and newest.has_more is False


def test_forward_cursor_sees_new_events_once(st: StripeSandbox) -> None:
    c = client(st)
    cursor = c.v1.events.list(params={"limit": 1}).data[0].id
    new_ids = st.advance(days=3)
    assert new_ids, "three days of billing emit events"
    seen = [e.id for e in c.v1.events.list(
        params={"ending_before": cursor, "limit": 5}).auto_paging_iter()]
    assert seen == new_ids


def test_retrieve_every_object_type(st: StripeSandbox) -> None:
    c = client(st)
    account = c.v1.accounts.retrieve_current()
    valid(account)
    assert account.settings.dashboard.display_name
    customer = c.v1.customers.list(params={"limit": 1}).data[0]
    assert valid(c.v1.customers.retrieve(customer.id))["id"] == customer.id
    sub = c.v1.subscriptions.list(params={"limit": 1}).data[0]
    assert valid(c.v1.subscriptions.retrieve(sub.id))["items"]["data"]
    invoice = c.v1.invoices.list(params={"limit": 1, "status": "paid"}).data[0]
    assert valid(c.v1.invoices.retrieve(invoice.id))["status"] == "paid"
    charge = c.v1.charges.list(params={"limit": 1}).data[0]
    valid(c.v1.charges.retrieve(charge.id))
    pi = c.v1.payment_intents.retrieve(charge.payment_intent,
                                       params={"expand": ["latest_charge"]})
    assert valid(pi)["latest_charge"]["object"] == "charge"
    refund = c.v1.refunds.list(params={"limit": 1}).data[0]
    assert valid(c.v1.refunds.retrieve(refund.id))["charge"] == refund.charge
    event = c.v1.events.list(params={"limit": 1}).data[0]
    assert valid(c.v1.events.retrieve(event.id))["id"] == event.id
    with pytest.raises(stripe.InvalidRequestError) as missing:
        c.v1.customers.retrieve("cus_doesnotexist00")
    assert missing.value.http_status == 404 and missing.value.code == "resource_missing"
    assert "No such customer: 'cus_doesnotexist00'" in str(missing.value)


def test_filters(st: StripeSandbox) -> None:
    c = client(st)
    failed = c.v1.events.list(params={"types": ["invoice.payment_failed", "charge.failed"],
                                      "limit": 100})
    assert failed.data and {e.type for e in failed.data} <= {"invoice.payment_failed",
                                                             "charge.failed"}
    invoice_events = c.v1.events.list(params={"type": "invoice.*", "limit": 100})
    assert {e.type.split(".")[0] for e in invoice_events.data} == {"invoice"}
    newest = c.v1.events.list(params={"limit": 100}).data
    window = {"gte": newest[-1].created, "lt": newest[0].created}
    in_window = c.v1.events.list(params={"created": window, "limit": 100}).data
    assert in_window and all(window["gte"] <= e.created < window["lt"] for e in in_window)
    customer = c.v1.invoices.list(params={"limit": 1}).data[0].customer
    theirs = c.v1.invoices.list(params={"customer": customer, "limit": 100})
    assert theirs.data and {i.customer for i in theirs.data} == {customer}
    open_subs = c.v1.subscriptions.list(params={"limit": 100})
    assert all(s.status != "canceled" for s in open_subs.data)
    canceled = c.v1.subscriptions.list(params={"status": "canceled", "limit": 100})
    assert all(s.status == "canceled" for s in canceled.data)
    with_customers = c.v1.invoices.list(params={"limit": 3, "expand": ["data.customer"]})
    assert all(i.customer.object == "customer" for i in with_customers.data)


def test_wrong_key_raises_authentication_error(st: StripeSandbox) -> None:
    with pytest.raises(stripe.AuthenticationError) as err:
        client(st, "sk_test_51notarealkey000000000000000000wxyz").v1.customers.list()
    assert err.value.http_status == 401
    assert err.value.request_id and err.value.request_id.startswith("req_")
    rest = "51notarealkey000000000000000000wxyz"
    assert err.value.error.message == ("Invalid API Key provided: sk_test_" +
                                       "*" * (len(rest) - 4) + "wxyz")


def test_restricted_key_without_invoice_read_raises_permission_error(st: StripeSandbox) -> None:
    ok = client(st, "restricted")
    assert ok.v1.invoices.list(params={"limit": 1}).data
    assert ok.v1.accounts.retrieve_current().id.startswith("acct_")
    limited = client(st, "restricted_missing")
    assert limited.v1.customers.list(params={"limit": 1}).data
    assert limited.v1.events.list(params={"limit": 1}).data
    with pytest.raises(stripe.PermissionError) as err:
        limited.v1.invoices.list()
    assert err.value.http_status == 403
    message = err.value.error.message
    assert "'rak_invoice_read' permission would allow this request to continue" in message
    assert st.keys["restricted_missing"] not in message  # keys are masked
    sub = limited.v1.subscriptions.list(params={"limit": 1}).data[0]
    with pytest.raises(stripe.PermissionError):
        limited.v1.subscriptions.retrieve(sub.id, params={"expand": ["latest_invoice"]})


def test_rate_limit_raises_rate_limit_error_and_is_not_retried() -> None:
    with StripeSandbox("small", seed=2, now=NOW, rate_limit=3) as sandbox:
        c = client(sandbox, max_network_retries=2)
        with pytest.raises(stripe.RateLimitError) as err:
            for _ in range(20):
                c.v1.customers.list(params={"limit": 1})
        assert err.value.http_status == 429
        assert err.value.error.code == "rate_limit"
        assert err.value.headers["Stripe-Should-Retry"] == "false"


def test_test_and_live_keys_see_different_accounts_data(st: StripeSandbox) -> None:
    test_customers = client(st).v1.customers.list(params={"limit": 100}).data
    live = stripe.StripeClient(st.live_keys["secret"], base_addresses={"api": st.url})
    live_customers = live.v1.customers.list(params={"limit": 100}).data
    assert all(not c.livemode for c in test_customers)
    assert live_customers and all(c.livemode for c in live_customers)
    assert len(live_customers) < len(test_customers)
    assert not {c.id for c in live_customers} & {c.id for c in test_customers}
    with pytest.raises(stripe.InvalidRequestError) as err:
        live.v1.customers.retrieve(test_customers[0].id)
    assert "a similar object exists in test mode, but a live mode key was used" in str(err.value)


def test_faults_surface_as_api_errors_and_retries_recover() -> None:
    with StripeSandbox("small", seed=5, now=NOW, fault_rate=0.5) as sandbox:
        plain = client(sandbox)
        kinds = set()
        for _ in range(30):
            try:
                plain.v1.customers.list(params={"limit": 1})
            except stripe.APIConnectionError:
                kinds.add("dropped")
            except stripe.APIError as exc:
                assert exc.http_status == 500
                kinds.add("500")
        assert kinds == {"dropped", "500"}
    with StripeSandbox("small", seed=5, now=NOW, fault_rate=0.2) as sandbox:
        retrying = client(sandbox, max_network_retries=6)
        for _ in range(5):
            assert retrying.v1.customers.list(params={"limit": 1}).data


def test_events_older_than_30_days_are_gone() -> None:
    with StripeSandbox("small", seed=8, now=NOW) as sandbox:
        c = client(sandbox)
        oldest = c.v1.events.list(params={"limit": 100})
        ids = [e.id for e in oldest.auto_paging_iter()]
        assert min(e.created for e in c.v1.events.list(params={"limit": 100}).data) >= \
            NOW - 30 * 86400
        last = ids[-1]
        assert c.v1.events.retrieve(last).id == last
        sandbox.advance(days=31)
        with pytest.raises(stripe.InvalidRequestError) as gone:
            c.v1.events.retrieve(last)
        assert gone.value.http_status == 404 and gone.value.code == "resource_missing"
        with pytest.raises(stripe.InvalidRequestError) as cursor:
            c.v1.events.list(params={"ending_before": last})
        assert cursor.value.http_status == 400 and cursor.value.param == "ending_before"
        remaining = [e.created for e in c.v1.events.list(params={"limit": 100}).auto_paging_iter()]
        assert remaining and min(remaining) >= sandbox.now - 30 * 86400
