"""Reconcile: what the org holds for the console's fields against what the rules derive now.

The same read and derive as Re-sync All (services/resync.py), with the planner's decisions
kept as a drift report per object and field:

- missing: a record the rules want that the org does not hold;
- different: fields whose Salesforce value differs from Stripe's (only fields the conflict
  rules would write: a Sales field a person owns is not drift);
- orphaned: console records whose Stripe customer (Contacts, Accounts) or invoice
  (recoveries) Stripe no longer lists, e.g. a deleted customer. They are reported, never
  deleted: CRM data belongs to the admin.

`--fix` writes the differences through the same path as a re-sync (collections or Bulk 2.0
by size, last-written values, failures, audit). `due()` tells the sync loop when a scheduled
run is due (settings.sync.reconcile_schedule).
"""

from __future__ import annotations

import time
from typing import Any

from lc_console.services.resync import Backfill, Options, Result
from lc_console.store import Store
from lc_console.sync.backfill import OBJECTS, due

LAST_RUN_KEY = "reconcile.last_run"

__all__ = ["LAST_RUN_KEY", "drift_lines", "due", "is_due", "run", "total_drift"]


def run(runner: Backfill, *, fix: bool = False, force: bool = False) -> Result:
    """Report drift (dry run), or with `fix` write the differences."""
    result = runner.run(Options(dry_run=not fix, force=force))
    if result.status in ("done", "dry-run"):
        runner.store.set_meta(LAST_RUN_KEY, {"at": runner.clock(), "fixed": fix,
                                             "drift": total_drift(result.drift)})
    return result


def is_due(store: Store, schedule: str, now: float | None = None) -> bool:
    """For the sync loop: `if reconcile.is_due(store, settings.sync.reconcile_schedule): ...`"""
    last = store.get_meta(LAST_RUN_KEY) or {}
    return due(time.time() if now is None else now, last.get("at"), schedule)


def total_drift(drift: dict[str, Any] | None) -> dict[str, int]:
    out = {"missing": 0, "different": 0, "orphaned": 0}
    for stats in (drift or {}).get("objects", {}).values():
        for k in out:
            out[k] += int(stats.get(k, 0))
    return out


def drift_lines(drift: dict[str, Any] | None, limit: int = 20) -> list[str]:
    drift = drift or {"objects": {}, "items": []}
    totals = total_drift(drift)
    if not any(totals.values()):
        return ["No drift: the org holds what the sync rules derive from Stripe now."]
    out = [f"{'OBJECT':<24} {'MISSING':>8} {'DIFFERENT':>10} {'ORPHANED':>9}  FIELDS"]
    for obj in OBJECTS:
        s = drift["objects"].get(obj)
        if not s or not (s["missing"] or s["different"] or s["orphaned"]):
            continue
        fields = ", ".join(f"{f} ({n:,})" for f, n in sorted(s["fields"].items(),
                                                            key=lambda kv: -kv[1]))
        out.append(f"{obj:<24} {s['missing']:>8,} {s['different']:>10,} {s['orphaned']:>9,}  "
                   f"{fields}")
    items = drift.get("items") or []
    if items:
        out.append("")
    for item in items[:limit]:
        label = item.get("label") or item["key"]
        if item["kind"] == "missing":
            out.append(f"  missing    {item['object']} {label}")
        elif item["kind"] == "orphaned":
            out.append(f"  orphaned   {item['object']} {label} (not in Stripe any more)")
        else:
            changes = "; ".join(f"{f}: {v['salesforce']!r} -> {v['stripe']!r}"
                                for f, v in item["fields"].items())
            out.append(f"  different  {item['object']} {label}: {changes}")
    if len(items) > limit:
        out.append(f"  ... {sum(totals.values()) - limit:,} more (--json lists up to 1,000)")
    return out
