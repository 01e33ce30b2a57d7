"""Retrying failed records of the live sync by re-deriving them from the current Stripe state.

`failures.retry` calls `rederive` for the failures whose Stripe event is known (in the local
journal, or kept as the payload of an event that could not be processed): each such event
gets its object as Stripe holds it now (GET by id), is dated now (so its values win over any
older state), and runs through the sync's normal path: Stripe context, bulk lookups,
conflicts, describe pre-check (describe refreshed first), write, record. The batch resolves
the failures of the records it writes; what fails again is updated with Salesforce's new
answer. Failures without an event (backfill rows) are returned for the kept-payload path.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Sequence
from typing import Any

import stripe

from lc_console.salesforce import tokens
from lc_console.salesforce.writer import SessionExpired, WriteError
from lc_console.store import ACTIVE_FAILURE_STATUSES, Failure, Store
from lc_console.sync.batch import SYNC_OBJECTS, WorkItem
from lc_console.sync.stripe_context import StripeFetcher

RETRIEVE_PATHS = {"customer": "customers", "invoice": "invoices", "charge": "charges",
                  "subscription": "subscriptions", "payment_intent": "payment_intents",
                  "refund": "refunds"}


def current_event(fetcher: StripeFetcher, event: dict[str, Any], now: int) -> dict[str, Any]:
    """The event with its object as Stripe holds it now, dated now."""
    fresh = copy.deepcopy(dict(event))
    data = dict(fresh.get("data") or {})
    obj = data.get("object") or {}
    path = RETRIEVE_PATHS.get(str(obj.get("object")))
    if path and obj.get("id"):
        try:
            current = fetcher._retrieve(f"/v1/{path}/{obj['id']}")
        except stripe.StripeError:
            current = None
        if current:
            data["object"] = current
    fresh["data"] = data
    fresh["created"] = max(int(fresh.get("created") or 0), now)
    return fresh


def _event_of(f: Failure, journal: dict[str, Any]) -> dict[str, Any] | None:
    if f.object == "event" and isinstance(f.payload, dict) and f.payload.get("data"):
        return f.payload
    if f.source_event_id and f.source_event_id in journal:
        payload: dict[str, Any] = journal[f.source_event_id].payload
        return payload
    return None


def rederive(profile: str, store: Store, rows: Sequence[Failure], result: Any, *,
             clock: Callable[[], float] = time.time) -> list[Failure]:
    """Retry the failures that have a Stripe event; return the others, untouched."""
    from lc_console.services.sync import SyncSetupError, components

    journal = store.journal_get([f.source_event_id for f in rows if f.source_event_id])
    chosen: list[Failure] = []
    rest: list[Failure] = []
    events: dict[str, dict[str, Any]] = {}
    for f in rows:
        event = _event_of(f, journal) if f.status in ACTIVE_FAILURE_STATUSES else None
        if event is None or not event.get("id"):
            rest.append(f)
            continue
        chosen.append(f)
        events.setdefault(str(event["id"]), event)
    if not chosen:
        return rest
    try:
        parts = components(profile)
    except SyncSetupError as exc:
        result.failed += len(chosen)
        result.problems.append(exc.message.text().replace("\n", " "))
        return rest
    try:
        parts.runner.describes.invalidate(SYNC_OBJECTS)
        with store.transaction():
            for f in chosen:
                store.set_failure_status([f.id], "retrying")
                store.audit(object=f.object, action=f"retry {f.operation}", outcome="retrying",
                            stripe_event_id=f.source_event_id, external_key=f.key,
                            detail=f"manual retry of failure #{f.id} ({f.error_code}): "
                                   "re-derived from the current Stripe state")
        cursor = store.get_cursor()
        now = max(int(clock()), cursor.created if cursor else 0)
        items = [WorkItem(current_event(parts.fetcher, e, now)) for e in events.values()]
        for start in range(0, len(items), 200):
            prepared = parts.runner.prepare(items[start:start + 200])
            parts.runner.write(prepared)
    except (tokens.ConnectionExpired, tokens.NotConnected, SessionExpired) as exc:
        _reopen(store, chosen)
        result.failed += len(chosen)
        result.problems.append(f"The Salesforce login cannot be used ({exc}): reconnect "
                               "Salesforce, then retry.")
        return rest
    except (WriteError, stripe.StripeError) as exc:
        _reopen(store, chosen)
        result.failed += len(chosen)
        result.problems.append(f"The retry could not run: {exc}")
        return rest
    finally:
        parts.close()
    for f in chosen:
        now_f = store.get_failure(f.id)
        if now_f is None:
            continue
        if now_f.status == "resolved":
            result.resolved += 1
            store.audit(object=f.object, action=f"retry {f.operation}", outcome="ok",
                        stripe_event_id=f.source_event_id, external_key=f.key,
                        detail=f"failure #{f.id} resolved by the manual retry")
        elif now_f.status == "open":
            result.failed += 1
            result.problems.append(f"{f.object} {f.key}: {now_f.error_code}: {now_f.message}")
        else:
            store.set_failure_status([f.id], "open")
            result.failed += 1
            result.problems.append(f"{f.object} {f.key}: the current Stripe state no longer "
                                   "produces this record; discard it with a reason.")
    return rest


def _reopen(store: Store, rows: Sequence[Failure]) -> None:
    store.set_failure_status([f.id for f in rows], "open")
