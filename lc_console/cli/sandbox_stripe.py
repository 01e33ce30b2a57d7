"""The `stripe` service of `lc-console sandbox`: options, start, and the lines it prints."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

# The keys of lc_console.sandbox.stripe.SCENARIOS, named here so that registering the command
# (every CLI start) does not import the whole emulator; tests/test_cli_startup.py keeps them
# in step.
SCENARIO_NAMES = ("small", "demo", "large", "live")


def add_arguments(p: argparse.ArgumentParser, prefix: str) -> None:
    from lc_console.sandbox.stripe.versions import DEFAULT_API_VERSION

    o = f"--{prefix}"
    p.add_argument(f"{o}port", type=int, default=0, metavar="P",
                   help="port on 127.0.0.1 (0 picks a free one)")  # fmt: skip
    p.add_argument(f"{o}scenario", choices=SCENARIO_NAMES, default="demo",
                   help="small (50 customers, 90 days), demo (500), large (100,000), live "
                        "(demo, then new events in real time)")  # fmt: skip
    p.add_argument(f"{o}customers", type=int, default=None, metavar="N",
                   help="number of customers (overrides the scenario's)")  # fmt: skip
    p.add_argument(f"{o}days", type=int, default=None, metavar="D",
                   help="days of billing history (overrides the scenario's)")  # fmt: skip
    p.add_argument(f"{o}seed", type=int, default=1, metavar="S",
                   help="seed of the generated account (same seed, same account)")  # fmt: skip
    p.add_argument(f"{o}state", default=None, metavar="FILE",
                   help="keep the account (configuration and every change) in this file across restarts")  # fmt: skip
    p.add_argument(f"{o}rate-limit", type=float, default=None, metavar="RPS",
                   help="answer 429 rate_limit past this many requests per second")  # fmt: skip
    p.add_argument(f"{o}fault-rate", type=float, default=0.0, metavar="F",
                   help="share of API requests that fail with a 500 or a dropped connection")  # fmt: skip
    p.add_argument(f"{o}events-per-minute", type=int, default=60, metavar="N",
                   help="live scenario: rate of new events (default 60)")  # fmt: skip
    p.add_argument(f"{o}api-version", default=DEFAULT_API_VERSION, metavar="V",
                   help=f"the account's default Stripe API version (default {DEFAULT_API_VERSION})")  # fmt: skip


def _opt(args: argparse.Namespace, prefix: str, name: str) -> Any:
    return getattr(args, (prefix + name).replace("-", "_"))


def start(args: argparse.Namespace, prefix: str) -> Any:
    from lc_console.sandbox.stripe import StripeSandbox

    state = _opt(args, prefix, "state")
    if state and not Path(state).expanduser().parent.is_dir():
        raise ValueError(f"the folder for --{prefix}state does not exist: "
                         f"{Path(state).expanduser().parent}")
    epm = _opt(args, prefix, "events-per-minute")
    if epm < 1:
        raise ValueError(f"--{prefix}events-per-minute must be at least 1 (got {epm})")
    sandbox = StripeSandbox(
        _opt(args, prefix, "scenario"),
        customers=_opt(args, prefix, "customers"),
        days=_opt(args, prefix, "days"),
        seed=_opt(args, prefix, "seed"),
        port=_opt(args, prefix, "port"),
        state=Path(state).expanduser() if state else None,
        rate_limit=_opt(args, prefix, "rate-limit"),
        fault_rate=_opt(args, prefix, "fault-rate"),
        events_per_minute=epm,
        api_version=_opt(args, prefix, "api-version"),
    )
    return sandbox.start()


def describe(info: dict[str, Any]) -> list[str]:
    keys = info["keys"]
    return [
        f"Stripe sandbox: {info['url']} ({info['scenario']} scenario, API version "
        f"{info['api_version']})",
        f"  secret key: {keys['secret']}",
        f"  restricted key (read access the console needs): {keys['restricted']}",
        f"  restricted key without invoice read: {keys['restricted_missing']}",
        f"  admin endpoint: {info['url']}/_sandbox/ (Bearer the secret key)",
    ]
