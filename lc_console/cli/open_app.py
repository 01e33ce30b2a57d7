"""`lc-console` with no command: open the Textual console."""

from __future__ import annotations


def open_console(profile: str) -> int:
    from lc_console.app import run_app

    return run_app(profile)
