"""`lc-console sandbox [SERVICE]`: run the local emulators (Salesforce org, Stripe account) that
the demo and the tests talk to. With no SERVICE, every registered service runs, and each
service's options take its name as a prefix (`--salesforce-port`).

Each service is one `Service` entry in SERVICES: how to add its options and how to start it.
Runs until SIGINT / SIGTERM. With --json, the first line of stdout is ONE JSON object keyed by
service name ({"salesforce": {"url", "client_id", "ca_file", "users": [...]}, ...}).
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from lc_console.cli import sandbox_stripe
from lc_console.cli.common import add_command, fail


class Running(Protocol):
    def info(self) -> dict[str, Any]: ...

    def stop(self) -> None: ...


@dataclass(frozen=True)
class Service:
    name: str
    help: str
    add_arguments: Callable[[argparse.ArgumentParser, str], None]  # (parser, option prefix)
    start: Callable[[argparse.Namespace, str], Running]  # raises ValueError / OSError
    describe: Callable[[dict[str, Any]], list[str]]  # human-readable lines from info()


def _opt(args: argparse.Namespace, prefix: str, name: str) -> Any:
    return getattr(args, (prefix + name).replace("-", "_"))


# -- Salesforce -----------------------------------------------------------------------------------


def _salesforce_arguments(p: argparse.ArgumentParser, prefix: str) -> None:
    from lc_console.sandbox.salesforce.clock import EDITION_LIMITS

    o = f"--{prefix}"
    p.add_argument(f"{o}port", type=int, default=0, metavar="P",
                   help="port on 127.0.0.1 (0 picks a free one)")  # fmt: skip
    p.add_argument(f"{o}edition", choices=sorted(EDITION_LIMITS), default="enterprise",
                   help="org edition: sets the daily API request limit")  # fmt: skip
    p.add_argument(f"{o}daily-api-limit", type=int, default=None, metavar="N",
                   help="daily API request limit (overrides the edition's)")  # fmt: skip
    p.add_argument(f"{o}state", default=None, metavar="FILE",
                   help="keep the org (records, metadata, usage) in this file across restarts")  # fmt: skip
    p.add_argument(f"{o}latency-ms", type=float, default=0.0, metavar="N",
                   help="added latency per request")  # fmt: skip
    p.add_argument(f"{o}fault-rate", type=float, default=0.0, metavar="F",
                   help="share of API requests that fail (UNABLE_TO_LOCK_ROW, 503, dropped connection)")  # fmt: skip
    p.add_argument(f"{o}seed", type=int, default=None, metavar="S", help="seed for injected faults")
    p.add_argument(f"{o}token-ttl", type=float, default=7200.0, metavar="SECONDS",
                   help="access token lifetime (default 2 hours)")  # fmt: skip
    p.add_argument(f"{o}sandbox-org", action="store_true",
                   help="be a Sandbox org (Organization.IsSandbox), not a Production one")  # fmt: skip
    p.add_argument(f"{o}cert-dir", default=None, metavar="DIR",
                   help="where the local CA and server certificate live (default: the user state dir)")  # fmt: skip


class _RunningSalesforce:
    def __init__(self, sandbox: Any) -> None:
        self.sandbox = sandbox

    def info(self) -> dict[str, Any]:
        return self.sandbox.info()

    def stop(self) -> None:
        self.sandbox.stop()


def _salesforce_start(args: argparse.Namespace, prefix: str) -> Running:
    from lc_console.sandbox.salesforce.sandbox import SalesforceSandbox

    rate = _opt(args, prefix, "fault-rate")
    if not 0.0 <= rate <= 1.0:
        raise ValueError(f"--{prefix}fault-rate must be between 0 and 1 (got {rate})")
    state = _opt(args, prefix, "state")
    if state and not Path(state).expanduser().parent.is_dir():
        raise ValueError(f"the folder for --{prefix}state does not exist: {Path(state).expanduser().parent}")
    sandbox = SalesforceSandbox(
        port=_opt(args, prefix, "port"),
        edition=_opt(args, prefix, "edition"),
        daily_api_limit=_opt(args, prefix, "daily-api-limit"),
        state_file=Path(state).expanduser() if state else None,
        latency_ms=_opt(args, prefix, "latency-ms"),
        fault_rate=rate,
        seed=_opt(args, prefix, "seed"),
        token_ttl_seconds=_opt(args, prefix, "token-ttl"),
        cert_dir=_opt(args, prefix, "cert-dir"),
        is_sandbox=_opt(args, prefix, "sandbox-org"),
    )
    return _RunningSalesforce(sandbox.start())


def _salesforce_describe(info: dict[str, Any]) -> list[str]:
    lines = [
        f"Salesforce sandbox: {info['url']}",
        f"  connected app client id: {info['client_id']}",
        f"  CA certificate (trust it with tls.ca_bundle): {info['ca_file']}",
        f"  OAuth callback URLs: {', '.join(info['callback_urls'])}",
    ]
    for u in info["users"]:
        perm = "with" if u["customize_application"] else "without"
        lines.append(f"  user {u['username']} / {u['password']} ({perm} Customize Application)")
    lines.append(f"  admin endpoint: {info['url']}/__sandbox__/ (header X-Sandbox-Admin-Secret: "
                 f"{info['admin_secret']})")  # fmt: skip
    return lines


SERVICES: dict[str, Service] = {
    "salesforce": Service("salesforce", "run a local emulator of a Salesforce org (HTTPS)",
                          _salesforce_arguments, _salesforce_start, _salesforce_describe),  # fmt: skip
    "stripe": Service("stripe", "run a local emulator of a Stripe account with a billing history",
                      sandbox_stripe.add_arguments, sandbox_stripe.start, sandbox_stripe.describe),  # fmt: skip
}


# -- command ----------------------------------------------------------------------------------------


def register(sub: Any) -> None:
    parser = add_command(sub, "sandbox", "run local emulators of Salesforce and Stripe for the demo and tests")
    parser.add_argument("--json", action="store_true", help="print one JSON object on the first line")
    services = parser.add_subparsers(dest="service", metavar="SERVICE")
    for svc in SERVICES.values():
        p = services.add_parser(svc.name, help=svc.help, description=svc.help)
        p.add_argument("--json", action="store_true", default=argparse.SUPPRESS,
                       help="print one JSON object on the first line")  # fmt: skip
        svc.add_arguments(p, "")
        p.set_defaults(handler=lambda args, svc=svc: _run([(svc, "")], args))
    for svc in SERVICES.values():
        group = parser.add_argument_group(f"{svc.name} (when no SERVICE is named)")
        svc.add_arguments(group, f"{svc.name}-")  # type: ignore[arg-type]
    parser.set_defaults(handler=lambda args: _run([(s, f"{s.name}-") for s in SERVICES.values()], args))


def _run(selected: list[tuple[Service, str]], args: argparse.Namespace) -> int:
    running: list[tuple[Service, Running]] = []
    for svc, prefix in selected:
        try:
            running.append((svc, svc.start(args, prefix)))
        except (ValueError, OSError) as exc:
            for _, r in running:
                r.stop()
            return fail(f"could not start the {svc.name} sandbox: {exc}")
    infos = {svc.name: r.info() for svc, r in running}
    if getattr(args, "json", False):
        print(json.dumps(infos), flush=True)
    else:
        for svc, _ in running:
            print("\n".join(svc.describe(infos[svc.name])), flush=True)
        print("Press Ctrl+C to stop.", flush=True)
    stop = threading.Event()

    def on_signal(signum: int, frame: Any) -> None:
        stop.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        while not stop.wait(0.5):
            pass
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        for _, r in running:
            r.stop()
    if not getattr(args, "json", False):
        print("Sandbox stopped.", file=sys.stderr)
    return 0
