"""Failures screen: pages, filter, details, retry against the Salesforce sandbox, discard
with a required reason. Pictures are SVG snapshots taken inside the flows."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
from console_helpers import SIZE, SMALL, Host, text_of, until
from install_helpers import connect
from pytest_textual_snapshot import SVGImageExtension
from textual.widgets import DataTable, Input

from lc_console import paths
from lc_console.screens.failures import DiscardReason, FailuresScreen
from lc_console.services import failure_view as view
from lc_console.store import Store

PROFILE = "default"
T0 = 1_763_950_000.0  # 2025-11-24 02:06:40 UTC


@pytest.fixture(autouse=True)
def steady(isolated_dirs: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(isolated_dirs.parent))
    monkeypatch.setattr(Input, "_toggle_cursor", lambda self: None)


def fill(n: int, *, profile: str = PROFILE) -> None:
    clock = [T0]
    with Store(paths.state_db(profile), clock=lambda: clock[0]) as store:
        for i in range(n):
            clock[0] += 60
            long_name = i % 4 == 0
            store.record_failure(
                object="Contact" if i % 3 else "LostChurn_Recovery__c",
                key=f"user{i:03d}@acme.example", operation="upsert",
                payload={"Email": f"user{i:03d}@acme.example",
                         "LastName": "Long" * 20 if long_name else "Smith"},
                error_code="STRING_TOO_LONG" if long_name else "DUPLICATE_VALUE",
                message=("Last Name: data value too large: LongLongLong (max length=80)"
                         if long_name else "duplicate value found: Email duplicates value on "
                         "record with id: 0035g00000AbCdEAAZ"),
                fields=["LastName"] if long_name else ["Email"],
                salesforce_response={"success": False, "errors": [{
                    "statusCode": "STRING_TOO_LONG" if long_name else "DUPLICATE_VALUE",
                    "message": "…", "fields": ["LastName"] if long_name else ["Email"]}]})


def rows(app: Any) -> list[list[str]]:
    table = app.screen.query_one(DataTable)
    return [[str(c) for c in table.get_row_at(i)] for i in range(table.row_count)]


async def test_empty_then_populated_pages_and_filter(snapshot: Any) -> None:
    svg = snapshot.use_extension(SVGImageExtension)
    app = Host(lambda: FailuresScreen(PROFILE))
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: "No failed records" in text_of(app, "#failures-message"))
        assert svg(name="empty") == app.export_screenshot()

    fill(230)
    app = Host(lambda: FailuresScreen(PROFILE))
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: "of 230" in text_of(app, "#failures-position"))
        assert text_of(app, "#failures-position") == "rows 1–100 of 230 · page 1/3"
        first = rows(app)[0]
        assert first[1:5] == ["Contact", "user229@acme.example", "DUPLICATE_VALUE", "1"]
        assert "0035g00000AbCdEAAZ" in text_of(app, "#failures-summary")
        assert '"Email": "user229@acme.example"' in text_of(app, "#failures-payload")
        assert svg(name="populated") == app.export_screenshot()

        await pilot.press("n")
        await until(pilot, lambda: "page 2/3" in text_of(app, "#failures-position"))
        assert rows(app)[0][2] == "user129@acme.example"
        await pilot.press("n")
        await until(pilot, lambda: "page 3/3" in text_of(app, "#failures-position"))
        assert len(rows(app)) == 30
        assert app.screen.check_action("page", (1,)) is None  # no page after the last
        await pilot.press("p")
        await until(pilot, lambda: "page 2/3" in text_of(app, "#failures-position"))
        assert rows(app)[0][2] == "user129@acme.example"

        await pilot.press("slash", *"code:string_too_long object:Contact", "enter")
        await until(pilot, lambda: "of 38" in text_of(app, "#failures-position"))
        assert {r[3] for r in rows(app)} == {"STRING_TOO_LONG"}
        assert {r[1] for r in rows(app)} == {"Contact"}

        await pilot.press("slash", *"status:nope", "enter")
        assert app.screen.filter.error_code == "STRING_TOO_LONG"  # a bad filter changes nothing

        await pilot.press("slash", "ctrl+u", *"nobody@", "enter")
        await until(pilot, lambda: "No failed records match" in text_of(app, "#failures-message"))


async def test_loading_and_error_states(snapshot: Any) -> None:
    svg = snapshot.use_extension(SVGImageExtension)
    gate = threading.Event()

    def slow_store() -> Store:
        gate.wait(10)
        raise PermissionError("[Errno 13] Permission denied: 'state.db'")

    app = Host(lambda: FailuresScreen(PROFILE, store_factory=slow_store))
    async with app.run_test(size=SMALL) as pilot:
        await until(pilot, lambda: "Reading failed records" in text_of(app, "#failures-message"))
        assert svg(name="loading") == app.export_screenshot()
        gate.set()
        await until(pilot, lambda: "Cannot read" in text_of(app, "#failures-message"))
        assert text_of(app, "#failures-message") == (
            "Cannot read the failed records: [Errno 13] Permission denied: 'state.db'")
        assert svg(name="error") == app.export_screenshot()


async def test_populated_at_80x24(snapshot: Any) -> None:
    svg = snapshot.use_extension(SVGImageExtension)
    fill(12)
    app = Host(lambda: FailuresScreen(PROFILE))
    async with app.run_test(size=SMALL) as pilot:
        await until(pilot, lambda: "of 12" in text_of(app, "#failures-position"))
        await pilot.press("space", "down", "space", "down")
        assert app.screen.selected and len(app.screen.selected) == 2
        assert [r[0] for r in rows(app)[:3]] == ["●", "●", ""]
        assert svg(name="small") == app.export_screenshot()


async def test_discard_needs_a_reason(snapshot: Any) -> None:
    svg = snapshot.use_extension(SVGImageExtension)
    fill(3)
    app = Host(lambda: FailuresScreen(PROFILE))
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: "of 3" in text_of(app, "#failures-position"))
        await pilot.press("x")
        await until(pilot, lambda: isinstance(app.screen, DiscardReason))
        await pilot.press("enter")  # no reason: refused
        assert "A reason is required" in text_of(app, "#discard-error")
        assert isinstance(app.screen, DiscardReason)
        await pilot.press(*"merged by sales")
        assert svg(name="reason") == app.export_screenshot()
        await pilot.press("enter")
        await until(pilot, lambda: "of 2" in text_of(app, "#failures-position"))
    with Store(paths.state_db(PROFILE)) as store:
        done = store.list_failures(view.parse_filter("status:discarded").to_store()).rows
        assert [(f.key, f.discard_reason) for f in done] == [
            ("user002@acme.example", "merged by sales")]
        audit = store.search_audit("user002@acme.example")
        assert [(a.action, a.outcome, a.detail) for a in audit] == [
            ("discard upsert", "discarded", "merged by sales")]


async def test_escape_keeps_the_record() -> None:
    fill(1)
    app = Host(lambda: FailuresScreen(PROFILE))
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: "of 1" in text_of(app, "#failures-position"))
        await pilot.press("x")
        await until(pilot, lambda: isinstance(app.screen, DiscardReason))
        await pilot.press(*"oops", "escape")
        await pilot.pause()
        assert isinstance(app.screen, FailuresScreen)
    with Store(paths.state_db(PROFILE)) as store:
        assert store.failure_counts_by_status()["open"] == 1


@pytest.mark.slow
async def test_retry_against_the_sandbox(salesforce_sandbox: Any) -> None:
    sb = salesforce_sandbox
    connect(sb)
    with Store(paths.state_db(PROFILE)) as store:
        # Refused earlier (the org was down); Salesforce takes it now.
        store.record_failure(object="Contact", key="ann@acme.example", operation="insert",
                             payload={"LastName": "Ann", "Email": "ann@acme.example"},
                             error_code="SERVER_UNAVAILABLE", message="503")
        # Still refused: no LastName.
        store.record_failure(object="Contact", key="bob@acme.example", operation="insert",
                             payload={"Email": "bob@acme.example"},
                             error_code="SERVER_UNAVAILABLE", message="503")
    app = Host(lambda: FailuresScreen(PROFILE))
    notes: list[str] = []
    async with app.run_test(size=SIZE, message_hook=lambda m: notes.append(
            getattr(getattr(m, "notification", None), "message", ""))) as pilot:
        await until(pilot, lambda: "of 2" in text_of(app, "#failures-position"))
        await pilot.press("R")  # every open SERVER_UNAVAILABLE
        await until(pilot, lambda: any(n.startswith("Retry:") for n in notes))
        await until(pilot, lambda: "of 1" in text_of(app, "#failures-position"))
        summary = next(n for n in notes if n.startswith("Retry:"))
        assert summary.startswith("Retry: 1 resolved, 1 failed again.")
        assert "REQUIRED_FIELD_MISSING" in summary
        assert rows(app)[0][2:5] == ["bob@acme.example", "REQUIRED_FIELD_MI…", "2"]
        assert "REQUIRED_FIELD_MISSING" in text_of(app, "#failures-answer")
    contacts = [r for r in sb.records("Contact") if r.get("Email") == "ann@acme.example"]
    assert len(contacts) == 1
    with Store(paths.state_db(PROFILE)) as store:
        audit = store.search_audit("ann@acme.example")
        assert [(a.action, a.outcome, a.salesforce_id) for a in audit] == [
            ("retry insert", "ok", contacts[0]["Id"])]


async def test_retry_one_and_selected_through_the_service(monkeypatch: pytest.MonkeyPatch) -> None:
    """r retries the highlighted record, or the selected ones; what Salesforce answers
    (here a scripted client) decides each record."""
    from lc_console.salesforce import writer

    fill(4)
    writes: list[list[dict[str, Any]]] = []

    def fake_upsert(sf: Any, sobject: str, field: str, rows: list[dict[str, Any]]) -> list[Any]:
        writes.append(rows)
        return [writer.RecordResult(True, f"003{i:015d}", False) for i, _ in enumerate(rows)]

    def runner_factory() -> Any:
        return lambda fn: fn(None)

    monkeypatch.setattr(writer, "upsert", fake_upsert)
    app = Host(lambda: FailuresScreen(PROFILE, runner_factory=runner_factory))
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: "of 4" in text_of(app, "#failures-position"))
        await pilot.press("r")  # the highlighted one: user003
        await until(pilot, lambda: "of 3" in text_of(app, "#failures-position"))
        assert [r["Email"] for r in writes[0]] == ["user003@acme.example"]
        await pilot.press("space", "down", "down", "space", "r")  # user002 and user000
        await until(pilot, lambda: "of 1" in text_of(app, "#failures-position"))
        assert sorted(r["Email"] for w in writes[1:] for r in w) == [
            "user000@acme.example", "user002@acme.example"]
        assert rows(app)[0][2] == "user001@acme.example"
