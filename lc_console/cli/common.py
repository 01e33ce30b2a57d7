"""Helpers shared by the command modules: error output and JSON printing."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any


def fail(message: str, code: int = 2) -> int:
    print(f"error: {message}", file=sys.stderr)
    return code


def print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, sort_keys=True, default=str))


def profile_parent() -> argparse.ArgumentParser:
    """--profile on every subcommand, without overriding one given before the command."""
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument(
        "--profile",
        default=argparse.SUPPRESS,
        help="profile to use (default: $LC_CONSOLE_PROFILE or 'default')",
    )
    return parent


def add_command(sub: Any, name: str, help: str, **kwargs: Any) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = sub.add_parser(
        name, help=help, description=help, parents=[profile_parent()], **kwargs
    )
    return parser
