# ruff: noqa: F811  (pytest fixtures imported from the helper modules)
"""Re-sync All stops (cancel, or a crash: an exception out of the middle of a phase) and a
second run with the same scope resumes where it stopped: nothing is read twice that was
already kept, no Bulk job is created twice, and the org ends exactly as after a clean run,
with no duplicate record."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from engine_helpers import installed_org, org  # noqa: F401
from resync_helpers import expected_records, org_matches, runner, set_sync, store  # noqa: F401

from lc_console.services.resync import Options, Progress
from lc_console.store import Store


class Crash(Exception):
    pass


def _ingest_jobs(org: Any) -> list[dict[str, Any]]:
    return [r for r in org.requests() if r["method"] == "POST"
            and r["path"].endswith("/jobs/ingest")]


def test_cancel_while_reading_stripe_resumes_from_the_last_page(
        org: Any, stripe_sandbox: Any, store: Store) -> None:
    cancel = threading.Event()
    pages: list[Progress] = []

    def stop_after_three_pages(p: Progress) -> None:
        if p.phase == "read" and p.unit == "Stripe objects":
            pages.append(p)
            if len(pages) == 3:
                cancel.set()

    first = runner(stripe_sandbox, store, cancel=cancel, on_progress=stop_after_three_pages)
    first.lister.page_size = 20
    stopped = first.run(Options())
    assert stopped.status == "cancelled"
    assert "resume" in stopped.message
    assert org.records("Account") == []
    again = runner(stripe_sandbox, store)
    again.lister.page_size = 20
    done = again.run(Options())
    assert done.status == "done" and done.resumed
    # The three pages kept (all 50 customers) were not asked for again.
    assert first.lister.stats.requests == 3
    assert "customers" not in again.lister.stats.objects
    assert again.lister.stats.objects["subscriptions"] > 0
    assert org_matches(org, expected_records(stripe_sandbox)) == []


def test_crash_in_the_middle_of_collections_resumes_without_duplicates(
        org: Any, stripe_sandbox: Any, store: Store) -> None:
    def crash_on_contacts(p: Progress) -> None:
        if p.phase == "upload" and p.unit == "Contact records":
            raise Crash()

    with pytest.raises(Crash):
        runner(stripe_sandbox, store, on_progress=crash_on_contacts).run(Options())
    assert org.records("Account") and not org.records("Contact")
    done = runner(stripe_sandbox, store).run(Options())
    assert done.status == "done" and done.resumed
    assert done.counts["Account"].created == len(org.records("Account"))  # written once
    assert org_matches(org, expected_records(stripe_sandbox)) == []
    assert store.count_failures() == 0


def test_crash_while_a_bulk_job_runs_picks_the_job_up_instead_of_sending_again(
        org: Any, stripe_sandbox: Any, store: Store) -> None:
    set_sync(bulk_threshold=5)

    def crash_while_processing(p: Progress) -> None:
        if p.phase == "process" and p.unit == "Contact records":
            raise Crash()

    with pytest.raises(Crash):
        runner(stripe_sandbox, store, on_progress=crash_while_processing).run(Options())
    jobs_before = len(_ingest_jobs(org))
    assert jobs_before == 2  # Accounts done, Contacts sent
    done = runner(stripe_sandbox, store).run(Options())
    assert done.status == "done" and done.resumed
    # Contacts came from the job already sent (2 Opportunities and 2 recoveries are under
    # the threshold: collections): no new job.
    assert len(_ingest_jobs(org)) == jobs_before
    assert org_matches(org, expected_records(stripe_sandbox)) == []
    assert done.counts["Contact"].created == len(org.records("Contact"))


def test_cancel_during_a_bulk_job_leaves_it_to_finish_and_takes_its_results(
        org: Any, stripe_sandbox: Any, store: Store) -> None:
    set_sync(bulk_threshold=5)
    cancel = threading.Event()

    def cancel_on_first_job(p: Progress) -> None:
        if p.phase == "upload" and p.message.startswith("job "):
            cancel.set()

    stopped = runner(stripe_sandbox, store, cancel=cancel,
                     on_progress=cancel_on_first_job).run(Options())
    assert stopped.status == "cancelled"
    assert len(_ingest_jobs(org)) == 1
    done = runner(stripe_sandbox, store).run(Options())
    assert done.status == "done" and done.resumed
    assert len(_ingest_jobs(org)) == 2  # Accounts (picked up) and Contacts
    assert org_matches(org, expected_records(stripe_sandbox)) == []
