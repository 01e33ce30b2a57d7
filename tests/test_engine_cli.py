"""`lc-console sync`, `lc-console failures` and the sync part of `lc-console status`, run
through the real CLI entry point against both sandboxes."""

from __future__ import annotations

import json
from typing import Any

import pytest
from engine_helpers import connect_stripe, fast_settings, installed_org, org  # noqa: F401

from lc_console import secrets
from lc_console.cli import main
from lc_console.sandbox.stripe import StripeSandbox
from lc_console.store import Store

pytestmark = pytest.mark.slow
PROFILE = "default"
MONTH_AGO = "30d"


@pytest.fixture
def linked(org: Any) -> Any:  # noqa: F811
    with StripeSandbox(scenario="small", seed=1) as st:
        connect_stripe(st)
        fast_settings()
        yield org, st


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_sync_once_writes_everything_prints_a_line_per_batch_and_exits_0(
        linked: Any, capsys: pytest.CaptureFixture[str]) -> None:
    org_, _ = linked
    code, out, err = _run(capsys, "sync", "--once", "--since", MONTH_AGO)
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].startswith("Replaying ")
    batches = [ln for ln in lines if " batch " in ln]
    assert len(batches) == 2
    assert "200 events -> Account +" in batches[0] and "SF calls" in batches[0]
    assert lines[-1].startswith("Done: ") and "0 failed; 0 queued." in lines[-1]
    assert org_.records("Contact")
    code, out, _ = _run(capsys, "status")
    assert code == 0
    rows = {ln.split(":", 1)[0].strip(): ln.split(":", 1)[1].strip()
            for ln in out.splitlines() if ln.startswith("  ") and ":" in ln}
    assert rows["Queued"] == "0 events" and rows["Failed"] == "0 records"
    assert rows["Synced"].startswith("Account ") and "Contact" in rows["Synced"]
    assert "writes pause at 120,000" in rows["API usage"]
    assert rows["Cursor"].startswith("evt_") and rows["Engine"].startswith("stopped")
    code, out, _ = _run(capsys, "status", "--json")
    sync = json.loads(out)["sync"]
    assert sync["records_synced"]["Contact"] == len(org_.records("Contact"))
    assert sync["api_used"] > 0 and sync["engine_state"] == "stopped"


def test_failed_records_exit_1_and_the_failures_commands_show_retry_and_discard_them(
        linked: Any, capsys: pytest.CaptureFixture[str]) -> None:
    org_, _ = linked
    org_.add_validation_rule("Contact", "no_big", lambda r: (r.get("LostChurn_MRR__c") or 0) > 150,
                             "Big accounts are handled by hand", "LostChurn_MRR__c")
    code, out, err = _run(capsys, "sync", "--once", "--since", MONTH_AGO)
    assert code == 1
    assert "lc-console failures list" in err
    code, out, _ = _run(capsys, "failures", "list", "--json")
    listed = json.loads(out)
    assert code == 0 and listed["total"] == len(listed["failures"]) > 1
    first = next(f for f in listed["failures"] if f["object"] == "Contact")
    assert first["error_code"] == "FIELD_CUSTOM_VALIDATION_EXCEPTION"
    code, out, _ = _run(capsys, "failures", "list", "--code", "FIELD_CUSTOM_VALIDATION_EXCEPTION")
    assert code == 0 and first["key"][:32] in out and "shown." in out.splitlines()[-1]
    code, out, _ = _run(capsys, "failures", "show", str(first["id"]))
    assert code == 0
    assert "Error: FIELD_CUSTOM_VALIDATION_EXCEPTION: Big accounts are handled by hand" in out
    assert "What to do: A validation rule in the org rejected the record." in out
    assert '"LostChurn_MRR__c"' in out and "Salesforce's answer:" in out
    # Still refused: the retry says so and exits 1; nothing is lost.
    code, out, _ = _run(capsys, "failures", "retry", str(first["id"]))
    assert code == 1 and "1 failed again" in out and "Big accounts" in out
    # Discard needs a reason; then it is gone from the open list, and audited.
    code, _, err = _run(capsys, "failures", "discard", str(first["id"]), "--reason", " ")
    assert code == 2 and "reason" in err
    code, out, _ = _run(capsys, "failures", "discard", str(first["id"]), "--reason",
                        "handled by finance")
    assert code == 0 and "Discarded 1" in out
    with Store.for_profile(PROFILE) as store:
        assert any(a.action.startswith("discard") and "handled by finance" in a.detail
                   for a in store.search_audit(first["key"]))
    # The admin removes the rule: retry --all --code clears the rest.
    org_.remove_validation_rule("Contact", "no_big")
    code, out, _ = _run(capsys, "failures", "retry", "--all", "--code",
                        "FIELD_CUSTOM_VALIDATION_EXCEPTION")
    assert code == 0 and "failed again" not in out
    code, out, _ = _run(capsys, "failures", "retry", "--all")  # the dependants
    assert code == 0
    code, out, _ = _run(capsys, "failures", "list")
    assert out.strip() == "No failed records."


def test_the_dry_run_prints_fields_rules_totals_and_calls_and_writes_nothing(
        linked: Any, capsys: pytest.CaptureFixture[str]) -> None:
    org_, _ = linked
    before = org_.usage()
    code, out, _ = _run(capsys, "sync", "--dry-run", "--since", MONTH_AGO, "--json")
    data = json.loads(out)
    assert code == 0 and data["events"] > 300
    assert data["api_calls"]["reads"] == org_.usage() - before
    assert data["api_calls"]["writes"] >= 2
    assert data["totals"]["Contact"]["create"] == len(
        [r for r in data["records"] if r["object"] == "Contact"])
    record = next(r for r in data["records"] if r["object"] == "Account")
    assert {f["rule"] for f in record["fields"]} == {"create"}
    assert org_.records("Account") == []
    code, out, _ = _run(capsys, "sync", "--dry-run", "--since", "7d", "--limit", "40")
    assert code == 0
    assert out.startswith("Dry run: 40 Stripe events; nothing is written.")
    assert "Totals:" in out and "API calls the sync would cost:" in out
    assert "   [create (contact.email)]" in out or "[create (account.mrr)]" in out


def test_configuration_problems_exit_2_with_the_fix(
        org: Any, capsys: pytest.CaptureFixture[str]) -> None:  # noqa: F811
    code, _, err = _run(capsys, "sync", "--once")
    assert code == 2 and "Stripe is not connected" in err and "lc-console connect stripe" in err
    secrets.put(PROFILE, secrets.SecretKind.STRIPE_API_KEY, "rk_test_nope")
    code, _, err = _run(capsys, "sync", "--once", "--since", "45d")
    assert code == 2 and "more than 30 days ago" in err
    code, _, err = _run(capsys, "failures", "retry")
    assert code == 2 and "--all" in err
    code, _, err = _run(capsys, "failures", "show", "999")
    assert code == 2 and "no failed record #999" in err
