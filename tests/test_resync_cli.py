# ruff: noqa: F811  (pytest fixtures imported from the helper modules)
"""`lc-console resync` and `lc-console reconcile` in-process against both sandboxes: the
forecast, plain progress lines when stdout is not a terminal, summaries, JSON, exit codes."""

from __future__ import annotations

import json
from typing import Any

from engine_helpers import connect_stripe, installed_org, org  # noqa: F401

from lc_console.cli import main


def test_resync_dry_run_then_run_then_reconcile(org: Any, stripe_sandbox: Any,
                                                capsys: Any) -> None:
    connect_stripe(stripe_sandbox)
    assert main(["resync", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "Forecast:" in out and "API calls" in out and "Dry run: nothing was written." in out
    assert "\r" not in out  # not a terminal: one plain line per phase
    assert any(line.startswith("derive") for line in out.splitlines())
    assert org.records("Contact") == []

    assert main(["resync"]) == 0
    out = capsys.readouterr().out
    assert "Re-sync done:" in out
    # The forecast is shown before anything is written.
    assert out.index("Forecast:") < out.index("\nupload") < out.index("Re-sync done:")
    assert "Contact" in out and "created" in out and "API calls:" in out
    assert org.records("Contact")

    assert main(["reconcile", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["status"] == "dry-run"
    assert data["totals"] == {"missing": 0, "different": 0, "orphaned": 0}


def test_bad_input_is_named_with_the_fix(org: Any, stripe_sandbox: Any, capsys: Any) -> None:
    connect_stripe(stripe_sandbox)
    assert main(["resync", "--objects", "invoices"]) == 2
    err = capsys.readouterr().err
    assert "unknown object 'invoices'" in err and "accounts, contacts" in err
    assert main(["resync", "--since", "last tuesday"]) == 2
    assert "not a date" in capsys.readouterr().err


def test_not_connected_to_stripe_says_how(org: Any, capsys: Any) -> None:
    assert main(["resync"]) == 2
    assert "lc-console connect stripe" in capsys.readouterr().err
