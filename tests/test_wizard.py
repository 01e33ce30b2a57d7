"""Setup wizard: steps, progress saved and resumed, environment choice, sign-in state read
from the keyring, install against the Salesforce sandbox, mapping review."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from console_helpers import SIZE, SMALL, Host, text_of, until
from install_helpers import connect
from pytest_textual_snapshot import SVGImageExtension
from textual.widgets import Input

from lc_console import settings
from lc_console.screens.mapping import MappingScreen
from lc_console.screens.wizard import WizardScreen
from lc_console.services import wizard as svc

PROFILE = "default"


@pytest.fixture(autouse=True)
def steady(isolated_dirs: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(isolated_dirs.parent))
    monkeypatch.setattr(Input, "_toggle_cursor", lambda self: None)


def test_progress_resumes_at_first_step_not_done() -> None:
    assert svc.progress([]).current == svc.ENVIRONMENT
    assert svc.progress(["environment", "stripe"]).current == svc.SALESFORCE
    assert svc.progress(list(svc.STEP_IDS)).finished
    with pytest.raises(ValueError, match="My Domain URL"):
        svc.set_environment(PROFILE, "custom", "acme.my.salesforce.com")
    svc.set_environment(PROFILE, "custom", "https://acme.my.salesforce.com/")
    assert settings.load(PROFILE).salesforce.login_url == "https://acme.my.salesforce.com"


async def test_environment_step_then_resume(snapshot: Any) -> None:
    svg = snapshot.use_extension(SVGImageExtension)
    app = Host(lambda: WizardScreen(PROFILE))
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: "Choose, then press o" in text_of(app, "#wizard-state"))
        assert text_of(app, "#wizard-title") == "Step 1 of 6: Environment"
        assert svg(name="environment") == app.export_screenshot()
        await pilot.click("#env-custom")
        await pilot.press("o")  # no URL yet: refused with the fix
        assert "Enter your My Domain URL" in text_of(app, "#wizard-state")
        await pilot.click("#env-sandbox")
        await pilot.press("o")
        await until(pilot, lambda: "Step 2 of 6" in text_of(app, "#wizard-title"))
        await until(pilot, lambda: "Not connected yet" in text_of(app, "#wizard-state"))
    cfg = settings.load(PROFILE)
    assert cfg.ui.wizard_completed == ["environment"]
    assert (cfg.salesforce.environment, cfg.salesforce.login_url) == (
        "sandbox", "https://test.salesforce.com")

    app = Host(lambda: WizardScreen(PROFILE))
    async with app.run_test(size=SMALL) as pilot:  # quitting mid-way resumes there
        await until(pilot, lambda: "Not connected yet" in text_of(app, "#wizard-state"))
        assert text_of(app, "#wizard-title") == "Step 2 of 6: Salesforce sign-in"
        assert "✓ 1. Environment" in str(app.screen.query_one("#nav-environment").render())
        assert svg(name="resumed") == app.export_screenshot()
        await pilot.press("b")
        assert text_of(app, "#wizard-title") == "Step 1 of 6: Environment"
        assert app.screen.query_one("#env-sandbox").value


@pytest.mark.slow
async def test_connected_profile_installs_and_reviews_mapping(salesforce_sandbox: Any,
                                                              snapshot: Any) -> None:
    svg = snapshot.use_extension(SVGImageExtension)
    connect(salesforce_sandbox)
    svc.mark(PROFILE, "environment")
    app = Host(lambda: WizardScreen(PROFILE, poll=(0.05, 0.1)))
    async with app.run_test(size=SIZE) as pilot:
        # Salesforce is connected (tokens in the keyring): that step is done by itself.
        await until(pilot, lambda: "✓ 2." in str(app.screen.query_one("#nav-salesforce").render()))
        assert text_of(app, "#wizard-title") == "Step 2 of 6: Salesforce sign-in"
        assert "✓ Connected to LostChurn Sandbox Org" in text_of(app, "#wizard-state")
        await pilot.press("n", "n")
        assert text_of(app, "#wizard-title") == "Step 4 of 6: Install the schema"
        await pilot.press("o")
        await until(pilot, lambda: "✓ 4." in str(app.screen.query_one("#nav-install").render()),
                    timeout=60)
        assert text_of(app, "#wizard-state").startswith("✓ Installed")
        assert svg(name="installed") == app.export_screenshot()
        await pilot.press("n", "o")
        await until(pilot, lambda: isinstance(app.screen, MappingScreen))
        await until(pilot, lambda: "Not checked" in text_of(app, "#mapping-status"))
        await pilot.press("escape")
        await until(pilot, lambda: isinstance(app.screen, WizardScreen))
        await until(pilot, lambda: "Reviewed" in text_of(app, "#wizard-state"))
    assert settings.load(PROFILE).ui.wizard_completed == [
        "environment", "salesforce", "install", "mapping"]


async def test_first_sync_previews_then_starts_in_the_monitor(
        monkeypatch: pytest.MonkeyPatch, snapshot: Any) -> None:
    from test_monitor import FakeSession

    from lc_console.screens import monitor
    from lc_console.services.sync import Preview

    svg = snapshot.use_extension(SVGImageExtension)
    session = FakeSession()
    monkeypatch.setattr(monitor, "_open_session", lambda profile: session)
    preview = Preview(events=42, totals={
        "Contact": {"create": 30, "update": 5, "skip": 2, "reject": 0},
        "LostChurn_Recovery__c": {"create": 12, "update": 0, "skip": 0, "reject": 1}},
        read_calls=3, write_calls=4)
    app = Host(lambda: WizardScreen(PROFILE, dry_run=lambda profile: preview))
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: "Choose, then press o" in text_of(app, "#wizard-state"))
        await pilot.press(*"nnnnn")
        assert text_of(app, "#wizard-title") == "Step 6 of 6: First sync"
        await pilot.press("o")
        await until(pilot, lambda: "42 pending events" in text_of(app, "#wizard-state"))
        assert text_of(app, "#wizard-state").splitlines()[:3] == [
            "42 pending events would cost about 7 API calls.",
            "  Contact: 30 create, 5 update, 2 skip",
            "  LostChurn_Recovery__c: 12 create, 1 reject"]
        assert svg(name="preview") == app.export_screenshot()
        await pilot.press("o")
        await until(pilot, lambda: isinstance(app.screen, monitor.MonitorScreen))
        await until(pilot, lambda: session.engine.calls == ["start"])
    assert "first_sync" in settings.load(PROFILE).ui.wizard_completed


async def test_backfill_without_connections_says_what_to_do_first() -> None:
    for step in svc.STEP_IDS[:-1]:
        svc.mark(PROFILE, step)
    app = Host(lambda: WizardScreen(PROFILE))
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: "Step 6 of 6" in text_of(app, "#wizard-title"))
        assert app.screen.query_one("#wizard-backfill").display
        await pilot.press("B")
        await until(pilot, lambda: "✗ Backfill not run" in text_of(app, "#backfill-text"))
        assert "connect Stripe first" in text_of(app, "#backfill-text")
        assert not app.screen.query_one("#backfill-read").display
        await pilot.press("b")  # the backfill belongs to the first-sync step only
        assert not app.screen.query_one("#wizard-backfill").display
        assert app.screen.check_action("backfill", ()) is False
