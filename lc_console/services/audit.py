"""The audit log, for the Audit screen and `lc-console audit`: every write for one record,
found by email (or another record key), Stripe event or customer id, or Salesforce id."""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict
from typing import Any

from lc_console.store import AuditEntry, Store

PAGE_SIZE = 200
COLUMNS = ("When (UTC)", "Object", "Record", "Action", "Outcome", "Salesforce id",
           "Stripe event", "Detail")


def search(store: Store, term: str, *, limit: int = PAGE_SIZE,
           before_id: int | None = None) -> list[AuditEntry]:
    """Newest first; an empty term lists the latest writes."""
    return store.search_audit(term, limit=limit, before_id=before_id)


def when(at: float) -> str:
    return dt.datetime.fromtimestamp(at, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


def row(entry: AuditEntry) -> tuple[str, ...]:
    return (when(entry.at), entry.object, entry.external_key or entry.customer_id or "",
            entry.action, entry.outcome, entry.salesforce_id or "", entry.stripe_event_id or "",
            entry.detail)


def to_dict(entry: AuditEntry) -> dict[str, Any]:
    data = asdict(entry)
    data["at_utc"] = when(entry.at)
    return data


def headline(term: str, entries: list[AuditEntry], more: bool) -> str:
    count = f"{len(entries):,}{'+' if more else ''}"
    if not term.strip():
        return (f"The latest {count} writes. Search by email, Stripe id (cus_, evt_) or "
                "Salesforce id." if entries else
                "No writes yet: each record the sync writes is logged here.")
    if not entries:
        return (f"No writes found for {term.strip()}. Emails match any case; Salesforce ids "
                "match in their 15- or 18-character form.")
    noun = "write" if len(entries) == 1 else "writes"
    return f"{count} {noun} for {term.strip()}, newest first."
