"""The command modules register their options without importing the heavy clients (simple-
salesforce, zeep, textual, the services): those load in the handlers, so `lc-console --help`
and every other command start fast. bench/bench_startup.py prints the times."""

from __future__ import annotations

import subprocess
import sys

import pytest

LIGHT_MODULES = ("config_cmd", "connect_cmd", "demo_cmd", "doctor_cmd", "install_cmd", "sandbox_cmd")
HEAVY = ("simple_salesforce", "zeep", "stripe", "textual", "keyring", "lc_console.services.connect",
         "lc_console.services.install", "lc_console.services.doctor", "lc_console.services.demo",
         "lc_console.sandbox.stripe.sandbox", "lc_console.sandbox.salesforce.sandbox")

CHILD = """
import argparse, importlib, sys
sub = argparse.ArgumentParser().add_subparsers()
importlib.import_module("lc_console.cli.{name}").register(sub)
print(" ".join(m for m in {heavy!r} if m in sys.modules))
"""


@pytest.mark.parametrize("name", LIGHT_MODULES)
def test_registering_a_command_imports_no_heavy_package(name: str) -> None:
    out = subprocess.run([sys.executable, "-c", CHILD.format(name=name, heavy=HEAVY)],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "", f"{name} imports at registration: {out.stdout.strip()}"


def test_scenario_names_named_by_the_cli_match_the_stripe_sandbox() -> None:
    from lc_console.cli import demo_cmd, sandbox_stripe
    from lc_console.sandbox.stripe import SCENARIOS
    from lc_console.services import demo

    assert sandbox_stripe.SCENARIO_NAMES == tuple(SCENARIOS)
    assert demo_cmd.SCENARIOS == tuple(SCENARIOS) == demo.SCENARIOS
    assert demo_cmd.DEMO_PROFILE == demo.DEMO_PROFILE
