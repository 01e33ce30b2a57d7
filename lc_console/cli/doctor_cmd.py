"""`lc-console doctor`: check the environment and say how to fix what is wrong."""

from __future__ import annotations

import argparse
from typing import Any

from lc_console.cli.common import add_command, print_json


def register(sub: Any) -> None:
    parser = add_command(sub, "doctor", "check versions, paths, keyring, terminal, TLS and connections")
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.set_defaults(handler=_doctor)


def _doctor(args: argparse.Namespace) -> int:
    from lc_console.services.doctor import run_checks  # imported here: --help stays fast

    results = run_checks(args.profile)
    if args.json:
        print_json([r.__dict__ for r in results])
    else:
        for r in results:
            mark = "info" if r.level == "info" else ("ok" if r.ok else "FAIL")
            print(f"[{mark:>4}] {r.name}: {r.detail}")
            if not r.ok and r.fix:
                print(f"       fix: {r.fix}")
    return 0 if all(r.ok for r in results) else 1
