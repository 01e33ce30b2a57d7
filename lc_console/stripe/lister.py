"""List a Stripe account's customers and billing history page by page (the backfill's reader).

Lists are read with the official client's `raw_request` and kept as plain dicts (building
StripeObjects costs ten times the HTTP round trip, see source.py). Every list is a generator
of pages: the caller stores or derives each page and lets it go, so 100,000 customers never
sit in memory at once. Each page carries the id to resume after (`starting_after`), which the
backfill checkpoints.

Rate limits: a 429 is waited out and asked again, with exponential backoff and jitter. When
Stripe says `Stripe-Should-Retry: true` (a lock timeout, worth asking again soon) the wait is
short; otherwise (`false` on a global or endpoint rate limit) the wait grows from one second,
capped at 30 s, for up to `max_attempts` tries. Other errors propagate.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import stripe

PAGE_SIZE = 100

# kind -> (path, fixed params). Subscriptions of every status (canceled ones matter for churn
# and recoveries); invoices with their payments (basil and later omit them), subscriptions
# with their discounts' coupons (MRR), as the sync rules need them.
KINDS: dict[str, tuple[str, dict[str, Any]]] = {
    "customers": ("/v1/customers", {}),
    "subscriptions": ("/v1/subscriptions",
                      {"status": "all", "expand": ["data.discounts.source.coupon"]}),
    "invoices": ("/v1/invoices", {"expand": ["data.payments"]}),
    "charges": ("/v1/charges", {}),
    "payment_intents": ("/v1/payment_intents", {}),
}
# The lists a backfill reads, customers first.
BACKFILL_KINDS = ("customers", "subscriptions", "invoices", "charges", "payment_intents")


@dataclass(frozen=True)
class Page:
    kind: str
    data: list[dict[str, Any]]
    has_more: bool

    @property
    def last_id(self) -> str | None:
        return self.data[-1]["id"] if self.data else None


@dataclass
class ListerStats:
    requests: int = 0
    rate_limited: int = 0
    waited_seconds: float = 0.0
    objects: dict[str, int] = field(default_factory=dict)


class RateLimitedTooLong(Exception):
    def __init__(self, kind: str, attempts: int):
        super().__init__(
            f"Stripe kept answering 429 (rate limited) while listing {kind}, {attempts} times "
            "in a row. Another integration may be using the account's rate limit; run the "
            "backfill again later: it resumes where it stopped.")


class StripeLister:
    def __init__(self, client: stripe.StripeClient, *, page_size: int = PAGE_SIZE,
                 max_attempts: int = 8, sleep: Callable[[float], None] = time.sleep,
                 rng: random.Random | None = None) -> None:
        self.client = client
        self.page_size = page_size
        self.max_attempts = max_attempts
        self.sleep = sleep
        self.rng = rng or random.Random()
        self.stats = ListerStats()

    def _wait(self, attempt: int, should_retry: str | None) -> float:
        if should_retry == "true":
            base, cap = 0.5, 5.0
        else:
            base, cap = 1.0, 30.0
        delay = min(cap, base * 2 ** attempt)
        return delay * (0.5 + self.rng.random() / 2)

    def _get(self, kind: str, path: str, params: dict[str, Any]) -> dict[str, Any]:
        for attempt in range(self.max_attempts):
            self.stats.requests += 1
            try:
                return self.client.raw_request("get", path, **params).data  # type: ignore[no-any-return]
            except stripe.RateLimitError as exc:
                self.stats.rate_limited += 1
                headers = exc.headers or {}
                should = headers.get("Stripe-Should-Retry") or headers.get("stripe-should-retry")
                delay = self._wait(attempt, should)
                retry_after = headers.get("Retry-After") or headers.get("retry-after")
                if retry_after and str(retry_after).isdigit():
                    delay = max(delay, float(retry_after))
                self.stats.waited_seconds += delay
                self.sleep(delay)
        raise RateLimitedTooLong(kind, self.max_attempts)

    def pages(self, kind: str, *, created_gte: int | None = None,
              starting_after: str | None = None) -> Iterator[Page]:
        """Every page of a list, newest first, from `starting_after` (a checkpoint) on."""
        path, fixed = KINDS[kind]
        after = starting_after
        while True:
            params: dict[str, Any] = {**fixed, "limit": self.page_size}
            if created_gte is not None:
                params["created"] = {"gte": int(created_gte)}
            if after:
                params["starting_after"] = after
            answer = self._get(kind, path, params)
            data = [dict(o) for o in answer.get("data") or []]
            self.stats.objects[kind] = self.stats.objects.get(kind, 0) + len(data)
            page = Page(kind, data, bool(answer.get("has_more")))
            yield page
            if not data or not page.has_more:
                return
            after = page.last_id

    def iterate(self, kind: str, **kwargs: Any) -> Iterator[dict[str, Any]]:
        for page in self.pages(kind, **kwargs):
            yield from page.data


def customer_of(obj: dict[str, Any]) -> str | None:
    """The customer id an object belongs to (customer objects: their own id)."""
    if obj.get("object") == "customer":
        return obj.get("id")
    ref = obj.get("customer")
    if isinstance(ref, dict):
        return ref.get("id")
    return ref if isinstance(ref, str) else None
