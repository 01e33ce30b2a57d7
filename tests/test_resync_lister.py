"""The backfill's Stripe lister against the Stripe sandbox with the real client: every
object once across pages, resumable from a page's last id, 429s waited out, counted."""

from __future__ import annotations

import time
from typing import Any

import pytest

from lc_console.sandbox.stripe import StripeSandbox
from lc_console.stripe.client import make_client
from lc_console.stripe.lister import RateLimitedTooLong, StripeLister, customer_of


def _lister(sandbox: Any, **kwargs: Any) -> StripeLister:
    client = make_client(sandbox.keys["restricted"], api_base=sandbox.url,
                         max_network_retries=0)
    return StripeLister(client, **kwargs)


def test_lists_every_object_once_across_pages_and_resumes_after_a_page(
        stripe_sandbox: Any) -> None:
    lister = _lister(stripe_sandbox, page_size=7)
    pages = list(lister.pages("customers"))
    ids = [c["id"] for p in pages for c in p.data]
    assert len(ids) == len(set(ids)) == 50
    assert len(pages) == 8 and lister.stats.requests == 8
    assert lister.stats.objects["customers"] == 50
    # From a checkpoint (the last id of page 3), the rest and nothing else.
    rest = [c["id"] for c in lister.iterate("customers", starting_after=pages[2].last_id)]
    assert rest == ids[21:]
    subs = list(lister.iterate("subscriptions"))
    assert {s["status"] for s in subs} >= {"active", "canceled"}  # every status
    invoices = list(_lister(stripe_sandbox).iterate("invoices"))
    assert all(customer_of(i) for i in invoices)
    # Payments are expanded: basil+ invoices link to their payment intents.
    assert any((i.get("payments") or {}).get("data") for i in invoices)


def test_created_filter(stripe_sandbox: Any) -> None:
    lister = _lister(stripe_sandbox)
    since = stripe_sandbox.now - 10 * 86400
    recent = list(lister.iterate("invoices", created_gte=since))
    everything = list(lister.iterate("invoices"))
    assert 0 < len(recent) < len(everything)
    assert all(i["created"] >= since for i in recent)


def test_rate_limits_are_waited_out() -> None:
    with StripeSandbox(scenario="small", seed=1, rate_limit=4) as sandbox:
        waits: list[float] = []

        def sleep(seconds: float) -> None:
            waits.append(seconds)
            time.sleep(0.3)  # enough for the sandbox's bucket to refill one request

        lister = _lister(sandbox, page_size=5, sleep=sleep)
        ids = [c["id"] for c in lister.iterate("customers")]
        assert len(ids) == len(set(ids)) == 50
        assert lister.stats.rate_limited == len(waits) > 0
        # Stripe-Should-Retry: false on a rate limit -> the longer backoff (from 1 s).
        assert all(0.5 <= w <= 30 for w in waits)
        assert lister.stats.requests == 10 + lister.stats.rate_limited

        stubborn = _lister(sandbox, page_size=5, sleep=lambda s: None, max_attempts=2)
        with pytest.raises(RateLimitedTooLong, match="resumes where it stopped"):
            for _ in range(30):
                list(stubborn.iterate("customers"))
