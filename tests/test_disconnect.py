"""Disconnect: screen and CLI against the Salesforce sandbox. After a disconnect with removal
the org has no LostChurn schema, the tokens no longer work and the keyring holds nothing for
the profile."""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any

import httpx
import pytest
from console_helpers import SIZE, SMALL, Host, text_of, until
from install_helpers import connect
from pytest_textual_snapshot import SVGImageExtension
from textual.widgets import Input

from lc_console import paths, secrets, settings
from lc_console.cli import main
from lc_console.screens.confirm_org_name import ConfirmOrgName
from lc_console.screens.disconnect import ConfirmDisconnect, DisconnectScreen
from lc_console.secrets import SecretKind
from lc_console.services import install
from lc_console.store import Store

PROFILE = "default"
ORG = "LostChurn Sandbox Org"
POLL = (0.05, 0.1)

pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True)
def steady(isolated_dirs: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(isolated_dirs.parent))
    monkeypatch.setattr(Input, "_toggle_cursor", lambda self: None)


def installed(sb: Any) -> install.Target:
    target = connect(sb)
    assert install.install(target, poll_interval=0.05, max_poll_interval=0.1).ok
    sf = target.client()
    sf.LostChurn_Recovery__c.create({"Recovery_ID__c": "rec_1"})
    sf.Contact.create({"LastName": "Ann", "LostChurn_MRR__c": 25})
    secrets.put(PROFILE, SecretKind.STRIPE_API_KEY, "rk_test_51OnlyForTests")
    with Store(paths.state_db(PROFILE)) as store:
        store.set_meta("cursor-note", "x")
    return target


def refresh_works(sb: Any, refresh_token: str) -> bool:
    with httpx.Client(verify=ssl.create_default_context(cafile=sb.ca_file)) as client:
        resp = client.post(sb.url + "/services/oauth2/token", data={
            "grant_type": "refresh_token", "refresh_token": refresh_token,
            "client_id": sb.client_id})
    return resp.status_code == 200


def access_works(sb: Any, token: str) -> bool:
    with httpx.Client(verify=ssl.create_default_context(cafile=sb.ca_file)) as client:
        resp = client.get(sb.url + "/services/data/v62.0/limits",
                          headers={"Authorization": f"Bearer {token}"})
    return resp.status_code == 200


async def test_disconnect_with_removal(salesforce_sandbox: Any, memory_keyring: Any,
                                       snapshot: Any) -> None:
    svg = snapshot.use_extension(SVGImageExtension)
    sb = salesforce_sandbox
    installed(sb)
    refresh = secrets.get(PROFILE, SecretKind.SALESFORCE_REFRESH_TOKEN)
    access = secrets.get(PROFILE, SecretKind.SALESFORCE_ACCESS_TOKEN)
    assert refresh and access and refresh_works(sb, refresh) and access_works(sb, access)
    app = Host(lambda: DisconnectScreen(PROFILE, poll=POLL))
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: ORG in text_of(app, "#disconnect-who"))
        assert svg(name="choose") == app.export_screenshot()
        await pilot.press("x")
        await until(pilot, lambda: "Removal deletes" in text_of(app, "#disconnect-preview"))
        assert text_of(app, "#disconnect-preview").startswith(
            "Removal deletes 1 LostChurn_Recovery__c record and 1 value in 1 populated "
            "LostChurn field")
        await pilot.press("s")
        assert svg(name="preview") == app.export_screenshot()
        await pilot.press("D")
        await until(pilot, lambda: isinstance(app.screen, ConfirmOrgName))
        await pilot.press(*ORG, "enter")
        await until(pilot, lambda: "Delete local state" in text_of(app, "#disconnect-steps"),
                    timeout=60)
        steps = text_of(app, "#disconnect-steps")
        assert "✓ Remove LostChurn metadata: Removed" in steps
        assert "✓ Revoke Salesforce tokens: revoked at Salesforce" in steps
        assert "✓ Delete keyring secrets: removed from the keyring (salesforce.refresh_token, "\
               "salesforce.access_token, stripe.api_key)" in steps
        assert "✗" not in steps
        assert app.screen.check_action("disconnect", ()) is None
        assert svg(name="summary") == app.export_screenshot()
    with pytest.raises(KeyError):
        sb.records("LostChurn_Recovery__c")
    assert not refresh_works(sb, refresh)
    assert not access_works(sb, access)
    assert memory_keyring.store == {}
    assert not paths.state_db(PROFILE).exists()


async def test_keep_metadata_keeps_the_org_and_state(salesforce_sandbox: Any, memory_keyring: Any,
                                                     snapshot: Any) -> None:
    svg = snapshot.use_extension(SVGImageExtension)
    sb = salesforce_sandbox
    target = installed(sb)
    refresh = secrets.get(PROFILE, SecretKind.SALESFORCE_REFRESH_TOKEN)
    assert refresh
    app = Host(lambda: DisconnectScreen(PROFILE, poll=POLL))
    async with app.run_test(size=SMALL) as pilot:
        await until(pilot, lambda: ORG in text_of(app, "#disconnect-who"))
        await pilot.press("D")
        await until(pilot, lambda: isinstance(app.screen, ConfirmDisconnect))
        assert svg(name="confirm") == app.export_screenshot()
        await pilot.click("#disconnect-yes")
        await until(pilot, lambda: "Keep local state" in text_of(app, "#disconnect-steps"))
        assert "✓ Keep LostChurn metadata" in text_of(app, "#disconnect-steps")
    assert len(sb.records("LostChurn_Recovery__c")) == 1
    assert paths.state_db(PROFILE).exists()
    assert not refresh_works(sb, refresh)
    assert secrets.status(PROFILE) == dict.fromkeys(SecretKind, False)
    assert settings.load(PROFILE).salesforce.org_name == ""
    del target


def test_cli_remove_needs_yes_off_a_terminal(salesforce_sandbox: Any,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    sb = salesforce_sandbox
    installed(sb)
    assert main(["disconnect", "--remove-metadata"]) == 2
    captured = capsys.readouterr()
    assert "Removal deletes 1 LostChurn_Recovery__c record" in captured.out
    assert "add --yes" in captured.err
    assert len(sb.records("LostChurn_Recovery__c")) == 1  # nothing changed
    assert main(["disconnect", "--remove-metadata", "--yes"]) == 0
    out = capsys.readouterr().out
    assert "✓ Remove LostChurn metadata: Removed" in out
    assert "✓ Delete local state: deleted" in out
    with pytest.raises(KeyError):
        sb.records("LostChurn_Recovery__c")
    assert not paths.state_db(PROFILE).exists()
    assert secrets.status(PROFILE) == dict.fromkeys(SecretKind, False)
