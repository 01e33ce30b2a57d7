"""Fetch what the sync rules need beyond the event, with the official Stripe client.

Per customer of a batch, once (`derive.needs` says what the events need):

    GET /v1/subscriptions?customer=&status=all     (the customer, discounts and their
                                                    coupons expanded)
    GET /v1/customers/{id}                         (only when it has no subscription)
    GET /v1/invoices?customer=                     (payments expanded, for basil+ linking)
    GET /v1/charges?customer=
    GET /v1/payment_intents?customer=              (only when an event names one)

Lists are read to the end (100 a page). A refund event that names no customer costs one
GET /v1/charges/{id} to learn it. Calls are counted (`calls`) and run on a small thread
pool, one Stripe client per worker thread: they are I/O bound and independent per customer.
Answers are used as plain dicts (`raw_request`), as the rules want them.

Cache: a context fetched for one batch serves the next batches too, as long as it cannot be
older than their events: each entry remembers the newest Stripe event known when it was
fetched (`horizon`, Stripe's clock), and a customer's event created at or after it means
Stripe changed since, so the context is fetched again. Entries also expire after `ttl`
seconds. So a burst or a replayed window fetches each customer once, while a live stream
(new events) always reads fresh state; derive puts the event's own object over the
fetched copy either way.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import stripe

from lc_console.sync import derive
from lc_console.sync import stripe_shapes as ss

PAGE = 100
SUBSCRIPTION_EXPAND = ["data.customer", "data.discounts.source.coupon"]
INVOICE_EXPAND = ["data.payments"]


@dataclass
class CustomerNeeds:
    """What the batch's events of one customer need, merged."""

    customer_id: str
    history: bool = False
    payment_intents: bool = False

    def add(self, needs: derive.Needs) -> None:
        self.history = self.history or needs.history
        self.payment_intents = self.payment_intents or bool(needs.payment_intent_ids)


class StripeFetcher:
    def __init__(self, client_factory: Callable[[], stripe.StripeClient], *,
                 concurrency: int = 4, ttl: float = 300.0, max_entries: int = 5000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._factory = client_factory
        self._local = threading.local()
        self.concurrency = max(1, concurrency)
        self._lock = threading.Lock()
        self.calls = 0  # every Stripe request made, for the counters
        self._pool: ThreadPoolExecutor | None = None
        self.ttl = ttl
        self.max_entries = max_entries
        self._clock = clock
        # customer -> (context, needs it covers, horizon, fetched at)
        self._cache: OrderedDict[str, tuple[derive.StripeContext, CustomerNeeds, int, float]] = (
            OrderedDict())

    def _client(self) -> stripe.StripeClient:
        client = getattr(self._local, "client", None)
        if client is None:
            client = self._local.client = self._factory()
        return client

    def _get(self, path: str, **params: Any) -> Mapping[str, Any]:
        with self._lock:
            self.calls += 1
        return self._client().raw_request("get", path, **params).data  # type: ignore[no-any-return]

    def _list(self, path: str, **params: Any) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        after: str | None = None
        while True:
            page_params = dict(params, limit=PAGE)
            if after:
                page_params["starting_after"] = after
            page = self._get(path, **page_params)
            items = [dict(i) for i in page.get("data") or []]
            out.extend(items)
            if not items or not page.get("has_more"):
                return out
            after = items[-1]["id"]

    def _retrieve(self, path: str) -> dict[str, Any] | None:
        try:
            return dict(self._get(path))
        except stripe.InvalidRequestError as exc:
            if exc.http_status == 404:
                return None
            raise

    def customer_of_charge(self, charge_id: str) -> str | None:
        charge = self._retrieve(f"/v1/charges/{charge_id}")
        return ss.ref_id(charge.get("customer")) if charge else None

    def context(self, needs: CustomerNeeds) -> derive.StripeContext:
        cid = needs.customer_id
        if not needs.history:
            return derive.StripeContext(customer=self._retrieve(f"/v1/customers/{cid}"))
        subs = self._list("/v1/subscriptions", customer=cid, status="all",
                          expand=SUBSCRIPTION_EXPAND)
        # The customer comes expanded in its subscriptions (one call less per customer).
        customer = next((dict(s["customer"]) for s in subs
                         if isinstance(s.get("customer"), Mapping)), None)
        for sub in subs:
            if isinstance(sub.get("customer"), Mapping):
                sub["customer"] = sub["customer"].get("id")
        if customer is None:
            customer = self._retrieve(f"/v1/customers/{cid}")
        invoices = self._list("/v1/invoices", customer=cid, expand=INVOICE_EXPAND)
        charges = self._list("/v1/charges", customer=cid)
        intents: dict[str, Any] = {}
        if needs.payment_intents:
            intents = {p["id"]: p for p in self._list("/v1/payment_intents", customer=cid)}
        coupons: dict[str, Any] = {}
        for sub in subs:
            for disc in ss.subscription_discounts(sub):
                coupon = ss.dig(disc, "source.coupon") if isinstance(disc, Mapping) else None
                if isinstance(coupon, Mapping) and coupon.get("id"):
                    coupons[coupon["id"]] = coupon
        return derive.StripeContext(customer=customer, subscriptions=tuple(subs),
                                    invoices=tuple(invoices), charges=tuple(charges),
                                    payment_intents=intents, coupons=coupons)

    def fetch(self, needs: Iterable[CustomerNeeds], *, horizon: int | None = None,
              newest: Mapping[str, int] | None = None) -> dict[str, derive.StripeContext]:
        """Contexts by customer id; the first Stripe error is raised (the batch retries).

        `horizon`: the newest Stripe event `created` known now (cached with what is fetched);
        `newest`: per customer, the newest event `created` of this batch (a cached context
        older than that is fetched again). Without `horizon` nothing is cached."""
        wanted = list(needs)
        out: dict[str, derive.StripeContext] = {}
        missing: list[CustomerNeeds] = []
        now = self._clock()
        for n in wanted:
            held = self._cache.get(n.customer_id) if horizon is not None else None
            if (held is not None and now - held[3] < self.ttl
                    and (newest or {}).get(n.customer_id, 0) < held[2]
                    and (held[1].history or not n.history)
                    and (held[1].payment_intents or not n.payment_intents)):
                out[n.customer_id] = held[0]
                self._cache.move_to_end(n.customer_id)
            else:
                missing.append(n)
        if len(missing) <= 1 or self.concurrency == 1:
            fetched = {n.customer_id: self.context(n) for n in missing}
        else:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.concurrency, thread_name_prefix="lc-stripe")
            futures = {n.customer_id: self._pool.submit(self.context, n) for n in missing}
            fetched = {cid: f.result() for cid, f in futures.items()}
        if horizon is not None:
            for n in missing:
                self._cache[n.customer_id] = (fetched[n.customer_id], n, horizon, now)
                self._cache.move_to_end(n.customer_id)
            while len(self._cache) > self.max_entries:
                self._cache.popitem(last=False)
        out.update(fetched)
        return out

    def forget(self) -> None:
        self._cache.clear()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
