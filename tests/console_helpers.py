"""Helpers for the console screen tests (failures, audit, mapping, disconnect, wizard,
monitor): a host app with the console's themes and stylesheets around one screen, waiting
for a screen to settle, and reading a Static's text."""

from __future__ import annotations

import time
from collections.abc import Callable

from textual.app import App
from textual.pilot import Pilot
from textual.screen import Screen
from textual.widgets import Static

from lc_console import themes

SIZE = (100, 30)
SMALL = (80, 24)


class Host(App[None]):
    """One screen with the console's themes and stylesheets but without the app's global
    keys, so that its pictures change only when the screen does."""

    TITLE = "lc-console"
    CSS_PATH = themes.stylesheets()

    def __init__(self, first: Callable[[], Screen[object]], theme: str = themes.DEFAULT_THEME) -> None:
        super().__init__()
        for item in themes.THEMES.values():
            self.register_theme(item)
        self.theme = theme
        self.first = first

    def get_theme_variable_defaults(self) -> dict[str, str]:
        return dict(themes.VARIABLE_DEFAULTS)

    def on_mount(self) -> None:
        self.push_screen(self.first())


async def until(pilot: Pilot[None], done: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if done():
            await pilot.pause()
            return
        await pilot.pause(0.02)
    raise AssertionError("the screen did not settle")


def text_of(app: App[None], selector: str) -> str:
    return str(app.screen.query_one(selector, Static).render())
