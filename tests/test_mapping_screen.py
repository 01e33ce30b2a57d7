"""Field mapping screen: offline checks, policy rules, edits saved to settings, and the
check against the org's describe on the Salesforce sandbox."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from console_helpers import SIZE, SMALL, Host, text_of, until
from install_helpers import connect
from pytest_textual_snapshot import SVGImageExtension
from textual.widgets import DataTable, Input, TabbedContent

from lc_console import settings
from lc_console.screens.mapping import MappingScreen
from lc_console.services import mapping as svc

PROFILE = "default"


@pytest.fixture(autouse=True)
def steady(isolated_dirs: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(isolated_dirs.parent))
    monkeypatch.setattr(Input, "_toggle_cursor", lambda self: None)


def cell(app: Any, source: str, column: str) -> str:
    return str(app.screen.query_one(DataTable).get_cell(source, column))


def test_policies_and_offline_checks() -> None:
    assert "fill_if_empty" not in svc.allowed_policies("account.mrr")
    assert "fill_if_empty" in svc.allowed_policies("contact.first_name")
    draft = svc.Draft.from_settings(settings.Settings())
    with pytest.raises(ValueError, match="not allowed"):
        draft.set_policy("recovery.status", "fill_if_empty")
    draft.set_target("account.mrr", "Contact.LostChurn_MRR__c")
    draft.set_target("contact.first_name", "Contact")
    draft.set_target("contact.last_name", "Contact.LostChurn_MRR__c")
    problems = svc.offline_problems(draft)
    assert problems["account.mrr"] == "must be a field of Account"
    assert problems["contact.first_name"] == "Contact is not Object.Field"
    assert problems["contact.mrr"] == "contact.last_name writes this field too"
    describe = {"Contact": {"LostChurn_MRR__c": {"type": "currency"},
                            "Email": {"type": "email"}, "Birthdate": {"type": "date"}}}
    fresh = svc.Draft.from_settings(settings.Settings())
    fresh.set_target("contact.mrr", "Contact.Birthdate")
    checks = svc.check_against(fresh, describe)
    assert checks["contact.mrr"].text == "is date, needs currency"
    assert checks["contact.email"].ok is True
    assert checks["account.mrr"].text == "Account is not in the org (install first?)"


async def test_edit_policy_stage_threshold_and_save(snapshot: Any) -> None:
    svg = snapshot.use_extension(SVGImageExtension)
    app = Host(lambda: MappingScreen(PROFILE, describe_factory=lambda d: (_ for _ in ()).throw(
        RuntimeError("no org is connected for this profile"))))
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: "Not checked against the org" in text_of(app, "#mapping-status"))
        assert cell(app, "contact.email", "Check") == "– offline"
        assert svg(name="offline") == app.export_screenshot()

        table = app.screen.query_one(DataTable)
        table.move_cursor(row=list(settings.default_field_rules()).index("contact.first_name"))
        await pilot.press("p")
        assert cell(app, "contact.first_name", "Policy") == "lostchurn_wins"
        table.move_cursor(row=list(settings.default_field_rules()).index("account.mrr"))
        await pilot.press("p", "p")  # lostchurn_wins -> salesforce_wins -> lostchurn_wins
        assert cell(app, "account.mrr", "Policy") == "lostchurn_wins"

        await pilot.press("enter")
        await pilot.press("ctrl+u", *"Account.Annual", "enter")
        assert cell(app, "account.mrr", "Salesforce field") == "Account.Annual"
        assert cell(app, "account.mrr", "Check") == "– offline"
        await pilot.press("enter", "ctrl+u", *"Contact.X__c", "enter")
        assert cell(app, "account.mrr", "Check") == "✗ must be a field of Account"
        assert "1 field to fix" in text_of(app, "#mapping-problems")
        assert svg(name="flagged") == app.export_screenshot()
        await pilot.press("ctrl+s")
        assert settings.load(PROFILE).rules.fields["account.mrr"].target == \
            "Account.LostChurn_MRR__c"  # refused: nothing written
        await pilot.press("enter", "ctrl+u", *"Account.AnnualRevenue", "enter")

        app.screen.query_one(TabbedContent).active = "tab-stages"
        await pilot.pause()
        app.screen.query_one("#stage-Succeeded", Input).value = "Closed Won - Recovered"
        app.screen.query_one(TabbedContent).active = "tab-thresholds"
        await pilot.pause()
        app.screen.query_one("#threshold-throttle", Input).value = "abc"
        await pilot.press("ctrl+s")
        assert settings.load(PROFILE).sync.throttle_threshold_percent == 80
        app.screen.query_one("#threshold-throttle", Input).value = "65"
        assert svg(name="thresholds") == app.export_screenshot()
        await pilot.press("ctrl+s")
        await until(pilot, lambda: text_of(app, "#mapping-status").startswith("Saved."))
        await pilot.press("v")
        await until(pilot, lambda: "Checked offline only" in text_of(app, "#mapping-status"))
        assert "no org is connected" in text_of(app, "#mapping-status")
    saved = settings.load(PROFILE)
    assert saved.rules.fields["account.mrr"].target == "Account.AnnualRevenue"
    assert saved.rules.fields["account.mrr"].policy == "lostchurn_wins"
    assert saved.rules.fields["contact.first_name"].policy == "lostchurn_wins"
    assert saved.rules.stage_mapping["Succeeded"] == "Closed Won - Recovered"
    assert saved.sync.throttle_threshold_percent == 65


@pytest.mark.slow
async def test_check_against_the_sandbox_org(salesforce_sandbox: Any, snapshot: Any) -> None:
    svg = snapshot.use_extension(SVGImageExtension)
    connect(salesforce_sandbox)
    app = Host(lambda: MappingScreen(PROFILE))
    async with app.run_test(size=SMALL) as pilot:
        await until(pilot, lambda: "Not checked" in text_of(app, "#mapping-status"))
        table = app.screen.query_one(DataTable)
        table.move_cursor(row=list(settings.default_field_rules()).index("contact.first_name"))
        await pilot.press("enter", "ctrl+u", *"Contact.Birthdate", "enter")
        await pilot.press("v")
        await until(pilot, lambda: "Checked against the org" in text_of(app, "#mapping-status"))
        assert cell(app, "contact.email", "Check") == "✓ ok"
        assert cell(app, "contact.first_name", "Check") == "✗ is date, needs string"
        assert cell(app, "contact.mrr", "Check") == "✗ no field LostChurn_MRR__c on Contact"
        assert cell(app, "recovery.status", "Check") == \
            "✗ LostChurn_Recovery__c is not in the org (install first?)"
        assert svg(name="org") == app.export_screenshot()
        await pilot.press("ctrl+s")
        assert settings.load(PROFILE).rules.fields["contact.first_name"].target == \
            "Contact.FirstName"
