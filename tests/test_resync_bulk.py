# ruff: noqa: F811  (pytest fixtures imported from the helper modules)
"""Bulk API 2.0 path of Re-sync All: CSV serialisation, jobs split under the upload limit,
rows Salesforce rejects land in failures with its error and can be retried."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from engine_helpers import installed_org, org  # noqa: F401
from resync_helpers import expected_records, org_matches, runner, set_sync, store  # noqa: F401

from lc_console.salesforce import bulk
from lc_console.services import failures
from lc_console.services.resync import Options, Progress
from lc_console.store import FailureFilter, Store


def test_csv_cells_follow_bulk_rules() -> None:
    assert bulk.csv_value(None) == "#N/A"
    assert bulk.csv_value(True) == "true" and bulk.csv_value(False) == "false"
    assert bulk.csv_value(1234.5) == "1234.5"
    assert bulk.csv_value(1e-7) == "0.0000001"
    assert bulk.csv_value(Decimal("10.00")) == "10.00"
    assert bulk.csv_value(dt.date(2026, 11, 2)) == "2026-11-02"
    assert bulk.csv_value(dt.datetime(2026, 11, 2, 8, 30, tzinfo=dt.UTC)) == \
        "2026-11-02T08:30:00.000Z"
    header, data = bulk.to_csv([
        {"LostChurn_ID__c": "cus_1", "LastName": 'O"Hara, Jr', "Account":
         {"LostChurn_Stripe_Customer_ID__c": "cus_1"}, "LostChurn_MRR__c": None},
        {"LostChurn_ID__c": "cus_2", "LastName": "Line\nbreak"},
    ])
    assert header == ["LostChurn_ID__c", "LastName", "Account.LostChurn_Stripe_Customer_ID__c",
                      "LostChurn_MRR__c"]
    lines = data.decode().split("\n")
    assert lines[0] == "LostChurn_ID__c,LastName,Account.LostChurn_Stripe_Customer_ID__c,LostChurn_MRR__c"
    assert lines[1] == 'cus_1,"O""Hara, Jr",cus_1,#N/A'
    # A column the row lacks stays empty: Salesforce leaves that field unchanged.
    assert data.decode().endswith('cus_2,"Line\nbreak",,\n')


def test_sf_error_is_split_into_code_message_fields() -> None:
    assert bulk.parse_error("REQUIRED_FIELD_MISSING:Required fields are missing: "
                            "[LastName]:LastName --") == (
        "REQUIRED_FIELD_MISSING", "Required fields are missing: [LastName]", ("LastName",))
    assert bulk.parse_error("INVALID_CROSS_REFERENCE_KEY:invalid cross reference id:--") == (
        "INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id", ())
    assert bulk.parse_error("") == ("UNKNOWN_ERROR", "", ())


def test_chunks_stay_under_the_upload_limit() -> None:
    rows = [{"LostChurn_ID__c": f"cus_{i}", "LastName": "x" * 50} for i in range(100)]
    groups = list(bulk.chunk_rows(rows, max_bytes=1000))
    assert len(groups) > 5
    assert sum(len(g) for g in groups) == 100
    assert all(len(bulk.to_csv(g)[1]) <= 1000 for g in groups)


def test_jobs_split_under_the_upload_limit_give_the_same_org(
        org: Any, stripe_sandbox: Any, store: Store) -> None:
    set_sync(bulk_threshold=5)
    result = runner(stripe_sandbox, store, max_upload_bytes=3000).run(Options())
    assert result.status == "done", result.message
    jobs = [r for r in org.requests() if r["method"] == "POST"
            and r["path"].endswith("/jobs/ingest")]
    assert len(jobs) > 4  # several jobs for one object
    assert org_matches(org, expected_records(stripe_sandbox)) == []


def test_rows_salesforce_rejects_land_in_failures_and_a_retry_clears_them(
        org: Any, stripe_sandbox: Any, store: Store) -> None:
    set_sync(bulk_threshold=5)
    tier = org.org.schema.objects["Account"].field("LostChurn_CLV_Tier__c")
    values = list(tier.picklist_values)
    assert tier.restricted_picklist

    def admin_removes_a_value(p: Progress) -> None:
        # After the console read the describe: Salesforce, not the pre-check, refuses.
        if p.phase == "upload":
            tier.picklist_values = [v for v in values if v.value != "Low"]

    result = runner(stripe_sandbox, store, on_progress=admin_removes_a_value).run(
        Options())
    assert result.status == "done", result.message
    lows = [r for r in expected_records(stripe_sandbox).values()
            if r.sobject == "Account" and r.values().get("LostChurn_CLV_Tier__c") == "Low"]
    assert lows
    failed = store.list_failures(FailureFilter(object="Account"), limit=500).rows
    assert len(failed) == len(lows) == result.counts["Account"].failed
    first = failed[0]
    assert first.error_code == "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"
    assert "LostChurn_CLV_Tier__c" in first.fields or "restricted picklist" in first.message
    assert first.payload["LostChurn_Stripe_Customer_ID__c"] == first.key
    assert first.payload["LostChurn_CLV_Tier__c"] == "Low"
    # Their Contacts point at Accounts that were not created: failed too, kept.
    contacts = store.list_failures(FailureFilter(object="Contact"), limit=500).rows
    assert contacts and all(f.payload.get("LostChurn_ID__c") == f.key for f in contacts)

    # The admin puts the value back; retrying parents first clears everything.
    tier.picklist_values = values
    run = failures.runner_for_profile("default")
    for obj in ("Account", "Contact", "Opportunity", "LostChurn_Recovery__c"):
        ids = failures.active_ids(store, object=obj)
        if ids:
            retried = failures.retry(store, ids, run)
            assert retried.failed == 0, retried.problems
    assert failures.active_ids(store) == []
    assert org_matches(org, expected_records(stripe_sandbox)) == []


def test_transient_failures_are_asked_again(org: Any, stripe_sandbox: Any,
                                            store: Store) -> None:
    set_sync(bulk_threshold=20)  # Accounts and Contacts by Bulk, the rest by collections
    waits: list[float] = []
    injected: set[str] = set()

    def outage(p: Progress) -> None:
        # A 503 / dropped connection while a job is polled, then on a composite call.
        if p.phase == "process" and "poll" not in injected:
            injected.add("poll")
            org.faults.inject("unavailable", 2)
        if p.phase == "upload" and p.unit == "Opportunity records" and "rest" not in injected:
            injected.add("rest")
            org.faults.inject("unavailable", 1)

    result = runner(stripe_sandbox, store, on_progress=outage, sleep=waits.append).run(
        Options())
    assert result.status == "done", result.message
    assert injected == {"poll", "rest"} and len(waits) >= 3
    assert org_matches(org, expected_records(stripe_sandbox)) == []
    assert store.count_failures() == 0
