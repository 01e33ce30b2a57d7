# ruff: noqa: F811  (pytest fixtures imported from the helper modules)
"""Re-sync All against both sandboxes with the real clients: the collections path and the
Bulk API 2.0 path give the org exactly what the sync rules derive from Stripe; a second run
sends nothing; the forecast refuses past the throttle threshold; dry runs write nothing."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from engine_helpers import installed_org, org, snapshot  # noqa: F401
from install_helpers import connect
from resync_helpers import expected_records, org_matches, runner, set_sync, store  # noqa: F401

from lc_console.sandbox.salesforce import SalesforceSandbox
from lc_console.services.resync import Options, Progress
from lc_console.store import Store
from lc_console.sync import backfill as bf


def test_small_scenario_through_collections_gives_the_org_the_rules_derive(
        org: Any, stripe_sandbox: Any, store: Store) -> None:
    seen: list[Progress] = []
    result = runner(stripe_sandbox, store, on_progress=seen.append,
                    chunk_customers=7).run(Options())
    assert result.status == "done", result.message
    assert result.forecast is not None
    assert set(result.forecast.paths.values()) == {"collections"}
    assert org_matches(org, expected_records(stripe_sandbox)) == []
    # Phases in order, with counts; derive reports an ETA once it has a rate.
    phases = [p.phase for p in seen]
    assert phases.index("read") < phases.index("derive") < phases.index("upload")
    assert "results" in phases
    derive = [p for p in seen if p.phase == "derive"]
    assert derive[-1].done == derive[-1].total == 50
    # 4 objects of < 200 records: one composite call each, plus describe, limits and reads.
    assert result.salesforce_calls <= 12
    counts = store.counters()
    assert counts["Contact"].created == len(org.records("Contact"))
    assert store.count_failures() == 0
    assert any(a.action == "resync upsert" for a in store.recent_audit(limit=5))


def test_a_second_run_sends_nothing(org: Any, stripe_sandbox: Any, store: Store) -> None:
    first = runner(stripe_sandbox, store).run(Options())
    assert first.status == "done"
    before = org.usage()
    again = runner(stripe_sandbox, store).run(Options())
    assert again.status == "done" and not again.resumed
    assert again.forecast is not None and again.forecast.total_records == 0
    assert sum(c.created + c.updated for c in again.counts.values()) == 0
    assert sum(c.skipped for c in again.counts.values()) == first.forecast.total_records
    # Reads and the limits check only: describe is cached, nothing is written.
    assert org.usage() - before <= 8


def test_bulk_path_gives_the_same_org_as_collections(
        org: Any, installed_org: dict[str, Path], stripe_sandbox: Any, store: Store,
        tmp_path: Path) -> None:
    # Collections into `org` first, then Bulk 2.0 into a second org from the same state.
    assert runner(stripe_sandbox, store).run(Options()).status == "done"
    by_collections = snapshot(org, bf.OBJECTS)
    state = tmp_path / "org2.json"
    shutil.copy(installed_org["state"], state)
    with SalesforceSandbox(state_file=state, cert_dir=installed_org["certs"],
                           save_interval=3600) as org2, Store(tmp_path / "s2.db") as store2:
        connect(org2)
        set_sync(bulk_threshold=5)
        seen: list[Progress] = []
        result = runner(stripe_sandbox, store2, on_progress=seen.append).run(Options())
        assert result.status == "done", result.message
        assert result.forecast is not None
        assert set(result.forecast.paths.values()) == {"bulk"} or all(
            result.forecast.records[o] <= 5 for o, p in result.forecast.paths.items()
            if p == "collections")
        jobs = [r for r in org2.requests() if r["path"].endswith("/jobs/ingest")
                and r["method"] == "POST"]
        assert len(jobs) >= 2
        assert any(p.phase == "process" for p in seen)
        assert snapshot(org2, bf.OBJECTS) == by_collections
        assert store2.count_failures() == 0


def test_forecast_refuses_past_the_throttle_threshold_unless_forced(
        org: Any, stripe_sandbox: Any, store: Store) -> None:
    org.set_daily_limit(1000)
    org.set_usage(789)  # threshold 800: the reads fit, the four composite calls would not
    result = runner(stripe_sandbox, store).run(Options())
    assert result.status == "refused"
    assert "--force" in result.message and "--objects" in result.message
    assert "80%" in result.message
    assert org.records("Contact") == []
    # Lowering the scope fits under the threshold: the run resumes at the forecast with the
    # staged plan (Stripe is not read again).
    org.set_usage(790)
    accounts = runner(stripe_sandbox, store).run(Options(objects=("Account",)))
    assert accounts.status == "done", accounts.message
    assert accounts.resumed and accounts.stripe_calls == result.stripe_calls
    assert org.records("Account") and not org.records("Contact")
    forced = runner(stripe_sandbox, store).run(Options(force=True))
    assert forced.status == "done"
    assert org.records("Contact")


def test_dry_run_prints_a_forecast_and_writes_nothing(org: Any, stripe_sandbox: Any,
                                                      store: Store) -> None:
    result = runner(stripe_sandbox, store).run(Options(dry_run=True))
    assert result.status == "dry-run"
    fc = result.forecast
    assert fc is not None and fc.records["Contact"] > 0
    text = "\n".join(fc.lines())
    assert "API calls" in text and "Estimated time" in text and "of what remains" in text
    assert org.records("Account") == []
    assert store.counters() == {}


def test_since_limits_the_scope_to_recent_customers(org: Any, stripe_sandbox: Any,
                                                    store: Store) -> None:
    since = stripe_sandbox.now - 3 * 86400
    result = runner(stripe_sandbox, store).run(Options(since=since,
                                                       objects=("Account", "Contact")))
    assert result.status == "done", result.message
    assert result.failed == 0
    written = org.records("Contact")
    assert 0 < len(written) < 45
    assert org.records("Opportunity") == [] and org.records("LostChurn_Recovery__c") == []


def test_live_sync_and_backfill_never_write_a_record_twice(org: Any, stripe_sandbox: Any,
                                                           store: Store) -> None:
    """Both keep last-written values in the store (same keys and layout as sync/batch.py):
    a record the live sync wrote after the backfill read Stripe is newer, so the backfill
    leaves it; what the backfill wrote is what the live sync's skip-unchanged compares to."""
    live: dict[str, str] = {}

    def live_sync_writes_a_contact(p: Progress) -> None:
        if p.phase == "results" and p.unit == "Account records" and not live:
            contact = next(r for (o, _k), r in expected_records(stripe_sandbox).items()
                           if o == "Contact")
            live["key"] = str(contact.key)
            store.put_last_written("Contact", live["key"], {
                "values": {"LastName": "from the live sync"},
                "versions": {"LastName": [stripe_sandbox.now + 5, "evt_live"]}})

    result = runner(stripe_sandbox, store, on_progress=live_sync_writes_a_contact).run(
        Options())
    assert result.status == "done"
    assert result.counts["Contact"].newer == 1
    cid = live["key"].split("=", 1)[1]
    assert not any(c.get("LostChurn_ID__c") == cid for c in org.records("Contact"))
    written = store.get_last_written("Account", f"LostChurn_Stripe_Customer_ID__c={cid}") or \
        next(iter(store.get_last_written_many("Account", [
            f"LostChurn_Stripe_Customer_ID__c={r['LostChurn_Stripe_Customer_ID__c']}"
            for r in org.records("Account")]).values()))
    assert set(written.values) == {"values", "versions"}
    assert written.values["values"]["LostChurn_Stripe_Customer_ID__c"]
    assert all(v[1].startswith("backfill:") for v in written.values["versions"].values())


def test_reading_the_org_alone_past_the_threshold_is_refused_before_any_read(
        org: Any, stripe_sandbox: Any, store: Store) -> None:
    org.set_daily_limit(1000)
    org.set_usage(797)
    result = runner(stripe_sandbox, store).run(Options())
    assert result.status == "refused"
    assert "Reading the org" in result.message and "--force" in result.message
    assert result.stripe_calls == 0
    assert org.records("Account") == []
