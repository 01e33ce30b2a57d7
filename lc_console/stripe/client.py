"""The one way to build a Stripe client: official `stripe` package, our TLS settings, our base URL."""

from __future__ import annotations

import stripe

from lc_console import net


def make_client(api_key: str, api_base: str = "https://api.stripe.com", ca_bundle: str = "",
                max_network_retries: int = 2) -> stripe.StripeClient:
    """A StripeClient over a requests session that trusts tls.ca_bundle in addition to the
    public CAs. `api_base` points it at the local sandbox in the demo and the tests."""
    http_client = stripe.RequestsClient(session=net.requests_session(ca_bundle))
    return stripe.StripeClient(
        api_key,
        base_addresses={"api": api_base.rstrip("/")},
        http_client=http_client,
        max_network_retries=max_network_retries,
    )
