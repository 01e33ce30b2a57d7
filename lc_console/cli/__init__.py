"""Command-line entry point. Each command group lives in its own module with `register()`.

Every command works over the same services as the TUI, so the two faces say the same words.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

# Modules that add subcommands: each defines register(subparsers). Add new ones here.
COMMAND_MODULES = (
    "lc_console.cli.config_cmd",
    "lc_console.cli.doctor_cmd",
    "lc_console.cli.sandbox_cmd",
    "lc_console.cli.connect_cmd",
    "lc_console.cli.install_cmd",
    "lc_console.cli.audit_cmd",
    "lc_console.cli.disconnect_cmd",
    "lc_console.cli.resync_cmd",
    "lc_console.cli.demo_cmd",
    "lc_console.cli.sync_cmd",
    "lc_console.cli.failures_cmd",
)


class _Version(argparse.Action):
    """argparse's "version" action, reading the version only when --version is given."""

    def __init__(self, option_strings: Sequence[str], dest: str = argparse.SUPPRESS,
                 default: str = argparse.SUPPRESS,
                 help: str = "show program's version number and exit") -> None:
        super().__init__(option_strings, dest=dest, default=default, nargs=0, help=help)

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: object, option_string: str | None = None) -> None:
        from lc_console import __version__

        print(f"lc-console {__version__}")
        parser.exit()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lc-console",
        description="Connect a Stripe account to a Salesforce org and keep recovery and "
        "billing data flowing into the CRM. With no command, opens the console.",
    )
    parser.add_argument("--version", action=_Version)
    parser.add_argument(
        "--profile",
        default=None,
        help="profile to use (default: $LC_CONSOLE_PROFILE or 'default')",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from lc_console.cli.common import fail
    from lc_console.paths import ProfileNameError, resolve_profile

    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        args.profile = resolve_profile(args.profile)
    except ProfileNameError as exc:
        return fail(str(exc), code=2)
    from lc_console.logs import setup_logging

    setup_logging()
    handler = getattr(args, "handler", None)
    if handler is None:
        from lc_console.cli.open_app import open_console

        return open_console(args.profile)
    try:
        return int(handler(args) or 0)
    except KeyboardInterrupt:
        print("Interrupted.", file=sys.stderr)
        return 130
