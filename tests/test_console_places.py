"""Every console place opens from anywhere by its key, and the palette lists it."""

from __future__ import annotations

from pathlib import Path

import pytest
from console_helpers import SIZE
from textual.widgets import Input

from lc_console.app import PLACES, make_app
from lc_console.screens.audit import AuditScreen
from lc_console.screens.disconnect import DisconnectScreen
from lc_console.screens.failures import FailuresScreen
from lc_console.screens.mapping import MappingScreen
from lc_console.screens.monitor import MonitorScreen
from lc_console.screens.wizard import WizardScreen


@pytest.fixture(autouse=True)
def steady(isolated_dirs: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(isolated_dirs.parent))
    monkeypatch.setattr(Input, "_toggle_cursor", lambda self: None)


async def test_keys_open_each_place() -> None:
    app = make_app("default")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        for key, screen_type in (("f", FailuresScreen), ("y", MonitorScreen),
                                 ("h", None), ("l", AuditScreen), ("h", None),
                                 ("m", MappingScreen), ("h", None), ("w", WizardScreen),
                                 ("h", None), ("X", DisconnectScreen)):
            app.set_focus(None)  # keys reach the app, not a search box
            await pilot.press(key)
            await pilot.pause()
            if screen_type is not None:
                assert isinstance(app.screen, screen_type), key


async def test_palette_lists_places_and_screen_actions() -> None:
    app = make_app("default", mode="failures")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        titles = [c.title for c in app.get_system_commands(app.screen)]
        for mode in ("audit", "mapping", "wizard", "monitor", "disconnect"):
            assert PLACES[mode][0] in titles
        assert "Failures" not in titles  # the place already shown
        assert "Failures: Filter" in titles
