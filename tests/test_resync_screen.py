# ruff: noqa: F811  (pytest fixtures imported from the helper modules)
"""Re-sync and reconcile screen against both sandboxes: the forecast writes nothing, the
second b writes the Contacts to the org; reconcile shows an admin's edit as drift and F
fixes it; errors inline, never a traceback."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from console_helpers import SIZE, Host, text_of, until
from engine_helpers import connect_stripe, installed_org, org  # noqa: F401
from install_helpers import admin_client
from pytest_textual_snapshot import SVGImageExtension
from textual.widgets import DataTable

from lc_console.screens.resync import ResyncScreen
from lc_console.services import resync

PROFILE = "default"


@pytest.fixture(autouse=True)
def steady(isolated_dirs: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(isolated_dirs.parent))


async def test_forecast_then_run_writes_contacts(org: Any, stripe_sandbox: Any,
                                                 snapshot: Any,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    svg = snapshot.use_extension(SVGImageExtension)
    connect_stripe(stripe_sandbox)
    # The org's request counter moves by a call or two with token refreshes: the picture
    # pins today's usage (read from the org's real /limits answer, only `used` replaced).
    real_limits = resync.writer.limits
    monkeypatch.setattr(resync.writer, "limits", lambda sf: (5_000, real_limits(sf)[1]))
    app = Host(lambda: ResyncScreen(PROFILE))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("b")
        await until(pilot, lambda: "Forecast (nothing written" in text_of(app, "#resync-text"),
                    timeout=30)
        forecast = text_of(app, "#resync-text")
        assert "Contact" in forecast and "API calls" in forecast
        assert "API budget: 5,000 of 150,000 used today" in forecast and "Estimated time:" in forecast
        assert org.records("Contact") == []  # the forecast writes nothing
        assert svg(name="forecast") == app.export_screenshot()

        await pilot.press("b")
        await until(pilot, lambda: "Re-sync All done" in text_of(app, "#resync-text"),
                    timeout=30)
        assert "created" in text_of(app, "#resync-text")
        assert app.screen.query_one("#resync-phases").display
        assert "records written" in text_of(app, "#resync-status")
    assert org.records("Contact")


async def test_reconcile_shows_an_admin_edit_and_fixes_it(org: Any,
                                                          stripe_sandbox: Any) -> None:
    connect_stripe(stripe_sandbox)
    app = Host(lambda: ResyncScreen(PROFILE))
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        assert screen.check_action("fix", ()) is None  # nothing to fix yet
        await pilot.press("b")
        await until(pilot, lambda: "Forecast (" in text_of(app, "#resync-text"), timeout=30)
        await pilot.press("b")
        await until(pilot, lambda: "Re-sync All done" in text_of(app, "#resync-text"),
                    timeout=30)

        admin = admin_client(org)
        account = next(a for a in org.records("Account") if a.get("LostChurn_MRR__c"))
        admin.Account.update(account["Id"], {"LostChurn_MRR__c": 1.23})

        await pilot.press("r")
        await until(pilot, lambda: "Drift:" in text_of(app, "#reconcile-text"), timeout=30)
        assert "1 different" in text_of(app, "#reconcile-text")
        table = screen.query_one("#drift-table", DataTable)
        assert table.display
        row = table.get_row("Account")
        assert row[2] == "1" and "LostChurn_MRR__c (1)" in row[4]
        assert "LostChurn_MRR__c: 1.23 ->" in text_of(app, "#drift-items")
        mrr = next(a for a in org.records("Account") if a["Id"] == account["Id"])
        assert mrr["LostChurn_MRR__c"] == 1.23  # the report writes nothing

        await pilot.press("F")
        await until(pilot, lambda: "Drift fixed" in text_of(app, "#reconcile-text"),
                    timeout=30)
        fixed = next(a for a in org.records("Account") if a["Id"] == account["Id"])
        assert fixed["LostChurn_MRR__c"] == account["LostChurn_MRR__c"]
        await pilot.press("r")
        await until(pilot, lambda: "No drift" in text_of(app, "#reconcile-text"), timeout=30)
        assert not table.display


async def test_not_connected_is_said_inline_with_the_fix() -> None:
    app = Host(lambda: ResyncScreen(PROFILE))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("b")
        await until(pilot, lambda: "✗ Forecast not run" in text_of(app, "#resync-text"))
        assert "connect Stripe first" in text_of(app, "#resync-text")
        await pilot.press("r")
        await until(pilot, lambda: "✗ Reconcile not run" in text_of(app, "#reconcile-text"))
        assert app.screen.check_action("cancel", ()) is None


async def test_cancel_stops_the_run_and_b_resumes_it(org: Any, stripe_sandbox: Any) -> None:
    connect_stripe(stripe_sandbox)
    held, release = threading.Event(), threading.Event()

    def factory(profile: str, name: str, cancel: threading.Event,
                on_progress: Callable[[Any], None]) -> Any:
        def progress(p: Any) -> None:
            on_progress(p)
            if p.phase == "upload" and not release.is_set():
                held.set()  # hold the run here until the test has pressed c
                release.wait(10)

        return resync.for_profile(profile, name=name, cancel=cancel, on_progress=progress)

    app = Host(lambda: ResyncScreen(PROFILE, runner_factory=factory))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("b")
        await until(pilot, lambda: "Forecast (nothing written" in text_of(app, "#resync-text"),
                    timeout=30)
        await pilot.press("b")
        await until(pilot, held.is_set, timeout=30)
        assert app.screen.check_action("cancel", ()) is True
        await pilot.press("c")
        release.set()
        await until(pilot, lambda: "✗ Re-sync All cancelled" in text_of(app, "#resync-text"),
                    timeout=30)
        assert "Press b to resume" in text_of(app, "#resync-text")
        assert org.records("Contact") == []  # stopped before the first write
        await pilot.press("b")
        await until(pilot, lambda: "Re-sync All done (resumed" in text_of(app, "#resync-text"),
                    timeout=30)
    assert org.records("Contact")


async def test_the_console_opens_it_by_key_and_palette() -> None:
    from lc_console.app import make_app

    app = make_app(PROFILE)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        titles = [c.title for c in app.get_system_commands(app.screen)]
        assert "Re-sync and reconcile" in titles
        app.set_focus(None)
        await pilot.press("S")
        await until(pilot, lambda: isinstance(app.screen, ResyncScreen))
        titles = [c.title for c in app.get_system_commands(app.screen)]
        assert "Re-sync and reconcile: Re-sync All" in titles
        assert "Re-sync and reconcile: Reconcile" in titles
