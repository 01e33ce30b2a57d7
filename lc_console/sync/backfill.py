"""The pure parts of Re-sync All and Reconcile: Stripe state now -> records, and the forecast.

A backfill has no events: it reads each customer's current Stripe state (customer,
subscriptions of every status, invoices, charges, payment intents) and asks the same sync
rules what Salesforce should hold *as of now*. It does so by handing `derive` one snapshot
per object that matters, dated `as_of`:

- `customer.updated` with the customer: the Contact and the Account with billing health;
- `invoice.updated` per invoice that failed at least once: its recovery record and
  recovery Opportunity (and the Contact / Account again, identical).

Snapshots are not events: Tasks and platform events derived from them (alerts such as
"Payment failed - contact within 24 hours", recovery notifications) are dropped, because a
backfill replays state, not moments; alerting on last quarter's failures would be noise.
Expansion Opportunities exist only for `customer.subscription.updated` events that raised
MRR; they are the live sync's (within Stripe's 30 days, `lc-console sync --since` replays
them).

Also here: the forecast (records, API calls, share of today's budget, time) and the
reconcile schedule (`due`).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from lc_console.settings import RulesSettings
from lc_console.sync import derive as rules_derive
from lc_console.sync import recoveries
from lc_console.sync import stripe_shapes as ss
from lc_console.sync.derive import Context, SalesforceContext, StripeContext
from lc_console.sync.model import Derivation

SNAPSHOT_PREFIX = "backfill:"
# Objects a backfill writes, parents first (children reference them by external id).
OBJECTS = ("Account", "Contact", "Opportunity", "LostChurn_Recovery__c")
OBJECT_ALIASES = {"account": "Account", "accounts": "Account", "contact": "Contact",
                  "contacts": "Contact", "opportunity": "Opportunity",
                  "opportunities": "Opportunity", "recovery": "LostChurn_Recovery__c",
                  "recoveries": "LostChurn_Recovery__c",
                  "lostchurn_recovery__c": "LostChurn_Recovery__c"}


def parse_objects(names: Iterable[str]) -> tuple[str, ...]:
    """--objects values (any case, singular or plural, comma separated) -> object names."""
    found: list[str] = []
    for raw in names:
        for part in str(raw).split(","):
            word = part.strip()
            if not word:
                continue
            name = OBJECT_ALIASES.get(word.lower())
            if name is None:
                raise ValueError(f"--objects: unknown object {word!r}; use any of "
                                 "accounts, contacts, opportunities, recoveries")
            if name not in found:
                found.append(name)
    return tuple(o for o in OBJECTS if o in found) or OBJECTS


@dataclass
class CustomerBundle:
    """One customer's Stripe state, as listed."""

    customer: dict[str, Any]
    subscriptions: list[dict[str, Any]] = field(default_factory=list)
    invoices: list[dict[str, Any]] = field(default_factory=list)
    charges: list[dict[str, Any]] = field(default_factory=list)
    payment_intents: list[dict[str, Any]] = field(default_factory=list)

    @property
    def id(self) -> str:
        return str(self.customer["id"])

    def stripe_context(self) -> StripeContext:
        return StripeContext(self.customer, self.subscriptions, self.invoices, self.charges,
                             {p["id"]: p for p in self.payment_intents if p.get("id")})

    def last_activity(self) -> int:
        """Newest `created` among the customer's objects (for --since)."""
        times = [int(o.get("created") or 0) for group in (
            [self.customer], self.subscriptions, self.invoices, self.charges) for o in group]
        return max(times, default=0)


def snapshot(kind_event: str, obj: Mapping[str, Any], as_of: int) -> dict[str, Any]:
    return {"id": f"{SNAPSHOT_PREFIX}{obj.get('id')}", "object": "event", "type": kind_event,
            "created": int(as_of), "data": {"object": dict(obj)}}


def may_be_recovery(invoice: Mapping[str, Any], bundle: CustomerBundle,
                    known_recovery_ids: frozenset[str]) -> bool:
    """Cheap filter before deriving an invoice (the rules decide for sure)."""
    if invoice.get("status") == "draft":
        return False
    if invoice.get("id") in known_recovery_ids:
        return True
    if int(invoice.get("attempt_count") or 0) > 1:
        return True
    if invoice.get("status") in ("open", "uncollectible", "void") and invoice.get("attempt_count"):
        return True
    pis = {p["id"]: p for p in bundle.payment_intents if p.get("id")}
    return bool(recoveries.failed_charges(invoice, ss.ChargeIndex(bundle.charges), pis))


def derive_customer(bundle: CustomerBundle, org: SalesforceContext, rules: RulesSettings,
                    as_of: int, known_recovery_ids: frozenset[str] = frozenset()
                    ) -> list[Derivation]:
    """What the rules say Salesforce should hold for this customer now (records only)."""
    if bundle.customer.get("deleted"):
        return []
    ctx = Context(bundle.stripe_context(), org, rules, known_recovery_ids)
    out = [_records_only(rules_derive.derive(snapshot("customer.updated", bundle.customer,
                                                      as_of), ctx))]
    for invoice in bundle.invoices:
        if (invoice.get("created") or 0) > as_of:
            continue
        if may_be_recovery(invoice, bundle, known_recovery_ids):
            d = rules_derive.derive(snapshot("invoice.updated", invoice, as_of), ctx)
            out.append(_records_only(d))
    return out


def _records_only(d: Derivation) -> Derivation:
    return Derivation(d.event_id, d.event_type, d.version, d.customer_id, d.records, (),
                      d.notes)


# --- forecast ---------------------------------------------------------------------------

COLLECTION_RECORDS_PER_CALL = 1000  # 5 collections of 200 in one composite call
BULK_CALLS_PER_JOB = 6  # create, upload, close, ~2 polls, failed results
SECONDS_PER_CALL = 0.3
BULK_RECORDS_PER_SECOND = 1000  # processing plus recording the results (measured ~300/s on the sandbox)


@dataclass(frozen=True)
class Forecast:
    records: dict[str, int]  # per object, what will be sent (skip-unchanged applied)
    paths: dict[str, str]  # per object: collections | bulk
    calls: dict[str, int]  # per object
    read_calls: int  # already spent reading the org (not part of `total_calls`)
    used: int  # API requests used today (from /limits)
    limit: int  # the org's daily limit
    threshold_percent: int
    seconds: float  # estimated time of the writes
    skipped: int = 0  # records already up to date

    @property
    def total_calls(self) -> int:
        return sum(self.calls.values())

    @property
    def total_records(self) -> int:
        return sum(self.records.values())

    @property
    def remaining(self) -> int:
        return max(self.limit - self.used, 0)

    @property
    def threshold(self) -> int:
        return self.limit * self.threshold_percent // 100

    @property
    def share_of_remaining(self) -> float:
        """Percent of today's remaining API requests the writes will use."""
        return 100.0 * self.total_calls / self.remaining if self.remaining else 100.0

    @property
    def crosses_threshold(self) -> bool:
        return self.used + self.total_calls > self.threshold

    def lines(self) -> list[str]:
        out = []
        for obj in OBJECTS:
            if obj in self.records:
                out.append(f"  {obj:<24} {self.records[obj]:>9,} records  "
                           f"{self.paths[obj]:<11} {self.calls[obj]:>6,} API calls")
        out.append(f"  {'total':<24} {self.total_records:>9,} records  {'':<11} "
                   f"{self.total_calls:>6,} API calls")
        if self.skipped:
            out.append(f"  {self.skipped:,} records already hold these values (skipped).")
        out.append(f"  API budget: {self.used:,} of {self.limit:,} used today; this run uses "
                   f"{self.share_of_remaining:.1f}% of what remains; throttle at "
                   f"{self.threshold_percent}% ({self.threshold:,}).")
        out.append(f"  Estimated time: {format_duration(self.seconds)}.")
        return out

    def refusal(self) -> str:
        return (f"This re-sync needs about {self.total_calls:,} API calls, which would take the "
                f"org from {self.used:,} to {self.used + self.total_calls:,} of its "
                f"{self.limit:,} daily requests, past the throttle threshold of "
                f"{self.threshold_percent}% ({self.threshold:,}). Lower the scope "
                "(--objects, --since) or confirm with --force.")


def path_for(count: int, bulk_threshold: int) -> str:
    return "bulk" if count > bulk_threshold else "collections"


def calls_for(count: int, path: str, bytes_estimate: int = 0,
              max_upload_bytes: int = 100_000_000) -> int:
    if count <= 0:
        return 0
    if path == "collections":
        return math.ceil(count / COLLECTION_RECORDS_PER_CALL)
    jobs = max(1, math.ceil(bytes_estimate / max_upload_bytes)) if bytes_estimate else 1
    return jobs * BULK_CALLS_PER_JOB


def forecast(records: Mapping[str, int], *, bulk_threshold: int, used: int, limit: int,
             threshold_percent: int, read_calls: int = 0, skipped: int = 0,
             bytes_per_object: Mapping[str, int] | None = None,
             max_upload_bytes: int = 100_000_000) -> Forecast:
    paths, calls = {}, {}
    seconds = 0.0
    for obj, n in records.items():
        paths[obj] = path_for(n, bulk_threshold)
        calls[obj] = calls_for(n, paths[obj], (bytes_per_object or {}).get(obj, 0),
                               max_upload_bytes)
        seconds += calls[obj] * SECONDS_PER_CALL
        if paths[obj] == "bulk":
            seconds += n / BULK_RECORDS_PER_SECOND
    return Forecast(dict(records), paths, calls, read_calls, used, limit, threshold_percent,
                    seconds, skipped)


def format_duration(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    if seconds < 60:
        return f"{seconds}s"
    minutes, sec = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{sec:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def eta(done: int, total: int, elapsed: float) -> float | None:
    """Seconds left at the rate so far (None before anything is done)."""
    if done <= 0 or total <= 0 or elapsed <= 0:
        return None
    return max(0.0, elapsed * (total - done) / done)


# --- reconcile schedule -----------------------------------------------------------------

SCHEDULE_SECONDS = {"daily": 86_400, "weekly": 7 * 86_400}


def due(now: float, last_run: float | None, schedule: str) -> bool:
    """Whether a scheduled reconcile should run now (`settings.sync.reconcile_schedule`)."""
    if schedule == "off":
        return False
    if schedule not in SCHEDULE_SECONDS:
        raise ValueError(f"sync.reconcile_schedule {schedule!r}: use off, daily or weekly")
    return last_run is None or now - last_run >= SCHEDULE_SECONDS[schedule]


def parse_since(text: str, now: float) -> int:
    """--since for a backfill: a date, a date and time, or a duration (90d); no 30-day limit
    (a backfill reads objects, not events)."""
    import re

    m = re.fullmatch(r"\s*(\d+)\s*([dhm])\s*", text)
    if m:
        return int(now - int(m.group(1)) * {"d": 86400, "h": 3600, "m": 60}[m.group(2)])
    try:
        parsed = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"--since {text!r} is not a date (2026-11-01), a date and time "
                         "(2026-11-01T08:00) or a duration (90d, 12h)") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    ts = int(parsed.timestamp())
    if ts > now:
        raise ValueError(f"--since {text!r} is in the future")
    return ts


def group_by_customer(objects: Sequence[Mapping[str, Any]]) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {}
    for obj in objects:
        cid = ss.customer_id_of(obj) if obj.get("object") != "customer" else obj.get("id")
        if cid:
            out.setdefault(str(cid), []).append(obj)
    return out
