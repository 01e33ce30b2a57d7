"""`lc-console install` against the Salesforce sandbox: plan, JSON, install, remove needing --yes."""

from __future__ import annotations

import json
from typing import Any

import certifi
import pytest
from install_helpers import connect, deploy_requests
from simple_salesforce import Salesforce

from lc_console import net
from lc_console.cli import main
from lc_console.sandbox.salesforce import metadata_api
from lc_console.services import install as svc


@pytest.fixture(autouse=True)
def fast_polling(monkeypatch: pytest.MonkeyPatch) -> None:
    for fn in ("install", "remove"):
        real = getattr(svc, fn)

        def fast(target: Any, on_progress: Any = None, _real: Any = real, **_: Any) -> Any:
            return _real(target, on_progress=on_progress, poll_interval=0.05, max_poll_interval=0.2)

        monkeypatch.setattr(svc, fn, fast)


def test_not_connected_says_how_to_connect(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["install", "--plan"]) == 2
    err = capsys.readouterr().err
    assert "Salesforce is not connected." in err and "lc-console connect salesforce" in err


def test_yes_without_remove_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["install", "--yes"]) == 2
    assert "--yes only confirms --remove" in capsys.readouterr().err


@pytest.mark.slow
def test_plan_install_and_remove(salesforce_sandbox: Any, capsys: pytest.CaptureFixture[str]) -> None:
    sb = salesforce_sandbox
    connect(sb)

    assert main(["install", "--plan"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].split() == ["STATUS", "KIND", "COMPONENT", "NEEDS"]
    assert any(line.split()[:4] == ["missing", "Field", "Contact.LostChurn_ID__c", "Text(64),"]
               for line in lines)
    assert lines[-1] == "36 missing."

    assert main(["install", "--plan", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["counts"]["missing"] == 36 and data["conflicts"] == 0
    assert {"kind": "Custom object", "name": "LostChurn_Recovery__c", "status": "missing",
            "action": "create", "expected": "LostChurn Recovery, Auto Number name", "found": "",
            "detail": ""} in data["items"]
    assert deploy_requests(sb) == []

    assert main(["install"]) == 0
    out = capsys.readouterr().out
    assert out.index("36 missing.") < out.index("Validating: submitted") < out.index(
        "Deploying: Succeeded, 35/35 components")
    assert "Installed: 35 created, LostChurn_Integration assigned" in out

    assert main(["install", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["outcome"] == "nothing_to_change" and result["ok"] is True

    assert main(["install", "--remove"]) == 1
    captured = capsys.readouterr()
    assert captured.out.startswith("Removal deletes 0 LostChurn_Recovery__c records")
    assert "Nothing was deleted. To delete all of this, run: lc-console install --remove --yes" in captured.err
    assert svc.plan(svc.target_for_profile("default")).nothing_to_change

    assert main(["install", "--remove", "--yes", "--json"]) == 0
    removed = json.loads(capsys.readouterr().out)
    assert removed["confirmed"] is True and removed["ok"] is True
    assert removed["message"].startswith("Removed 16 components")

    assert main(["install", "--remove"]) == 0  # nothing left to remove
    assert "Nothing to remove" in capsys.readouterr().out


@pytest.mark.slow
def test_conflict_exits_1_with_what_to_decide(salesforce_sandbox: Any,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    from install_helpers import admin_client, deploy_specs, field_as

    from lc_console.salesforce.schema_manifest import FieldKind

    sb = salesforce_sandbox
    connect(sb)
    deploy_specs(admin_client(sb), [field_as("Account.LostChurn_CLV_Tier__c", kind=FieldKind.CHECKBOX,
                                             values=())])
    assert main(["install", "--plan"]) == 1
    out = capsys.readouterr().out
    assert "conflict  Field" in out
    assert "-> Account.LostChurn_CLV_Tier__c exists as Checkbox; the console needs Picklist" in out
    assert main(["install"]) == 1
    out = capsys.readouterr().out
    assert "Install stopped: 1 component conflicts with what the console needs" in out


def test_tls_ca_bundle_wins_over_requests_ca_bundle(salesforce_sandbox: Any,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """REQUESTS_CA_BUNDLE (set system-wide on many machines) must not replace tls.ca_bundle."""
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", certifi.where())
    monkeypatch.setenv("CURL_CA_BUNDLE", certifi.where())
    sb = salesforce_sandbox
    metadata_api.configure(sb.app)
    sf = Salesforce(instance_url=sb.url, session_id=sb.login(sb.admin), version="62.0",
                    session=net.requests_session(sb.ca_file))
    assert sf.Contact.describe()["name"] == "Contact"


def test_doctor_reports_the_installed_schema(salesforce_sandbox: Any) -> None:
    from lc_console.services.doctor import CHECKS, check_installed_schema

    assert check_installed_schema in CHECKS
    not_connected = check_installed_schema("default")
    assert not_connected.ok and not_connected.level == "info"

    target = connect(salesforce_sandbox)
    empty = check_installed_schema("default")
    assert (empty.ok, empty.detail, empty.fix) == (
        False, "36 missing.", "Run `lc-console install` to install or repair.")
    assert svc.install(target).ok
    done = check_installed_schema("default")
    assert (done.ok, done.detail) == (
        True, "all 36 LostChurn components installed, permission set assigned")
