"""Audit log: the screen's search (email any case, Stripe ids, 15/18-char Salesforce ids),
paging to older writes, empty/loading/error states, and the `lc-console audit` twin."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest
from console_helpers import SIZE, SMALL, Host, text_of, until
from pytest_textual_snapshot import SVGImageExtension
from textual.widgets import DataTable, Input

from lc_console import paths
from lc_console.cli import main
from lc_console.screens.audit import AuditScreen
from lc_console.services import audit as svc
from lc_console.store import Store

PROFILE = "default"
T0 = 1_763_950_000.0
ANN_ID = "0035g00000AnnAAAQA"


@pytest.fixture(autouse=True)
def steady(isolated_dirs: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(isolated_dirs.parent))
    monkeypatch.setattr(Input, "_toggle_cursor", lambda self: None)


def fill(extra: int = 0) -> None:
    clock = [T0]

    def tick() -> float:
        clock[0] += 1
        return clock[0]

    with Store(paths.state_db(PROFILE), clock=tick) as store:
        store.audit(object="Contact", action="upsert", outcome="created",
                    stripe_event_id="evt_1Ann", customer_id="cus_Ann",
                    external_key="ann@acme.example", salesforce_id=ANN_ID,
                    detail="Email, FirstName, LastName, LostChurn_ID__c")
        store.audit(object="Account", action="upsert", outcome="updated",
                    stripe_event_id="evt_1Ann", customer_id="cus_Ann",
                    external_key="acme.example", salesforce_id="0015g00000AcmeAAAQ",
                    detail="LostChurn_MRR__c 49.00 -> 99.00")
        store.audit(object="Contact", action="upsert", outcome="skipped",
                    stripe_event_id="evt_2Ann", customer_id="cus_Ann",
                    external_key="Ann@Acme.example", salesforce_id=ANN_ID,
                    detail="FirstName kept: salesforce_wins (edited in Salesforce)")
        store.audit(object="Contact", action="upsert", outcome="failed",
                    stripe_event_id="evt_1Bob", customer_id="cus_Bob",
                    external_key="bob@acme.example", detail="DUPLICATE_VALUE: duplicate")
        for i in range(extra):
            store.audit(object="Contact", action="upsert", outcome="updated",
                        external_key="many@acme.example", detail=f"write {i}")


def rows(app: Any) -> list[list[str]]:
    table = app.screen.query_one(DataTable)
    return [[str(c) for c in table.get_row_at(i)] for i in range(table.row_count)]


def test_search_matches_emails_stripe_and_salesforce_ids() -> None:
    fill()
    with Store(paths.state_db(PROFILE)) as store:
        assert [e.outcome for e in svc.search(store, "ANN@acme.example")] == ["skipped", "created"]
        assert [e.object for e in svc.search(store, "evt_1Ann")] == ["Account", "Contact"]
        assert len(svc.search(store, "cus_Ann")) == 3
        assert len(svc.search(store, ANN_ID)) == 2
        assert len(svc.search(store, ANN_ID[:15])) == 2  # the 15-character form
        assert svc.search(store, "nobody@acme.example") == []


async def test_screen_search_and_states(snapshot: Any) -> None:
    svg = snapshot.use_extension(SVGImageExtension)
    app = Host(lambda: AuditScreen(PROFILE))
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: "No writes yet" in text_of(app, "#audit-headline"))
        assert svg(name="empty") == app.export_screenshot()
    fill()
    app = Host(lambda: AuditScreen(PROFILE))
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: "latest 4 writes" in text_of(app, "#audit-headline"))
        await pilot.press(*"ann@ACME.example", "enter")
        await until(pilot, lambda: "2 writes for ann@ACME.example" in text_of(app, "#audit-headline"))
        assert [r[4] for r in rows(app)] == ["skipped", "created"]
        assert "salesforce_wins" in text_of(app, "#audit-detail")
        assert svg(name="email") == app.export_screenshot()

        await pilot.press("slash", "ctrl+u", *ANN_ID[:15], "enter")
        await until(pilot, lambda: f"2 writes for {ANN_ID[:15]}" in text_of(app, "#audit-headline"))
        await pilot.press("slash", "ctrl+u", *"evt_1Ann", "enter")
        await until(pilot, lambda: "2 writes for evt_1Ann" in text_of(app, "#audit-headline"))
        assert {r[1] for r in rows(app)} == {"Contact", "Account"}
        await pilot.press("slash", "ctrl+u", *"nobody@x.example", "enter")
        await until(pilot, lambda: "No writes found for nobody@x.example" in
                    text_of(app, "#audit-headline"))
        assert svg(name="none") == app.export_screenshot()


async def test_older_pages_at_80x24(snapshot: Any) -> None:
    svg = snapshot.use_extension(SVGImageExtension)
    fill(extra=svc.PAGE_SIZE + 5)
    app = Host(lambda: AuditScreen(PROFILE, term="many@acme.example"))
    async with app.run_test(size=SMALL) as pilot:
        await until(pilot, lambda: "200+ writes" in text_of(app, "#audit-headline"))
        assert svg(name="small") == app.export_screenshot()
        app.screen.query_one(DataTable).focus()
        await pilot.press("n")
        await until(pilot, lambda: "205 writes" in text_of(app, "#audit-headline"))
        assert rows(app)[-1][7] == "write 0"
        assert app.screen.check_action("older", ()) is None


async def test_loading_and_error(snapshot: Any) -> None:
    svg = snapshot.use_extension(SVGImageExtension)
    gate = threading.Event()

    def broken() -> Store:
        gate.wait(10)
        raise OSError("disk I/O error")

    app = Host(lambda: AuditScreen(PROFILE, store_factory=broken))
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: "Reading the audit log" in text_of(app, "#audit-headline"))
        assert svg(name="loading") == app.export_screenshot()
        gate.set()
        await until(pilot, lambda: "Cannot read" in text_of(app, "#audit-headline"))
        assert svg(name="error") == app.export_screenshot()


def test_cli_text_and_json(capsys: pytest.CaptureFixture[str]) -> None:
    fill()
    assert main(["audit", "ann@acme.example"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "2 writes for ann@acme.example, newest first."
    assert "skipped" in out[1] and ANN_ID in out[1] and "evt_2Ann" in out[1]
    assert out[2].startswith("2025-11-24 02:06:41  Contact")
    assert main(["audit", "evt_1Ann", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [d["object"] for d in data] == ["Account", "Contact"]
    assert data[1]["salesforce_id"] == ANN_ID and data[1]["at_utc"] == "2025-11-24 02:06:41"
    assert main(["audit", "nobody@x.example"]) == 0
    assert capsys.readouterr().out.startswith("No writes found for nobody@x.example.")
    assert main(["audit", "x", "--limit", "0"]) == 2
    assert "--limit must be at least 1" in capsys.readouterr().err
