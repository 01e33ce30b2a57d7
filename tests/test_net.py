"""tls.ca_bundle reaches every HTTP client, whatever the environment or the client passes."""

from __future__ import annotations

import certifi
import pytest
import requests
import stripe

from lc_console import net
from lc_console.stripe.client import make_client


def test_requests_session_trusts_extra_ca(salesforce_sandbox) -> None:
    session = net.requests_session(salesforce_sandbox.ca_file)
    assert session.get(f"{salesforce_sandbox.url}/services/data/", timeout=10).status_code == 200


def test_environment_bundle_does_not_replace_extra_ca(salesforce_sandbox, monkeypatch) -> None:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", certifi.where())
    session = net.requests_session(salesforce_sandbox.ca_file)
    assert session.get(f"{salesforce_sandbox.url}/services/data/", timeout=10).status_code == 200


def test_per_request_bundle_does_not_replace_extra_ca(salesforce_sandbox) -> None:
    # The stripe client passes its own CA bundle with every request.
    session = net.requests_session(salesforce_sandbox.ca_file)
    response = session.get(f"{salesforce_sandbox.url}/services/data/", timeout=10,
                           verify=certifi.where())
    assert response.status_code == 200


def test_without_extra_ca_the_local_ca_is_refused(salesforce_sandbox) -> None:
    session = net.requests_session("")
    with pytest.raises(requests.exceptions.SSLError):
        session.get(f"{salesforce_sandbox.url}/services/data/", timeout=10)


def test_stripe_client_uses_extra_ca(salesforce_sandbox) -> None:
    # Any HTTPS server signed by the extra CA will do: the point is that TLS succeeds, so
    # the error is an HTTP-level one from the server, not a connection error.
    client = make_client("sk_test_x", api_base=salesforce_sandbox.url,
                         ca_bundle=salesforce_sandbox.ca_file, max_network_retries=0)
    with pytest.raises(stripe.StripeError) as err:
        client.v1.events.list()
    assert not isinstance(err.value, stripe.APIConnectionError)
    client = make_client("sk_test_x", api_base=salesforce_sandbox.url, max_network_retries=0)
    with pytest.raises(stripe.APIConnectionError):
        client.v1.events.list()
