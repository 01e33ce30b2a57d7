"""Flows through the console, driven with Pilot: what a user presses and what they then see."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable
from pathlib import Path

import keyring
import keyring.backends.fail
import pytest
from textual.command import CommandList
from textual.message import Message
from textual.notifications import Notify
from textual.pilot import Pilot
from textual.widgets import Static

from lc_console import paths, secrets, settings
from lc_console.app import ConsoleApp, make_app
from lc_console.screens.doctor import DoctorReport, DoctorScreen
from lc_console.screens.help import EVERYWHERE, HERE, HelpScreen
from lc_console.screens.home import Dashboard, HomeScreen
from lc_console.screens.settings_error import ErrorDetails, SettingsErrorScreen
from lc_console.services import doctor
from lc_console.services.doctor import Check

PROFILE = "default"
SIZE = (100, 30)


async def until(pilot: Pilot[None], done: Callable[[], bool], timeout: float = 10.0) -> None:
    for _ in range(int(timeout / 0.02)):
        if done():
            await pilot.pause()
            return
        await pilot.pause(0.02)
    raise AssertionError("timed out waiting for the console")


def dashboard_ready(app: ConsoleApp) -> bool:
    found = app.screen.query(Dashboard)
    return isinstance(app.screen, HomeScreen) and bool(found) and found.first().status is not None


def texts(app: ConsoleApp, selector: str) -> list[str]:
    return [str(w.content) for w in app.screen.query(selector).results(Static)]


def notices(messages: list[Message]) -> list[str]:
    return [m.notification.message for m in messages if isinstance(m, Notify)]


async def run_from_palette(pilot: Pilot[None], query: str, title: str) -> None:
    """Open the command palette, type `query`, wait for `title` to be the top hit, run it."""
    app = pilot.app
    await pilot.press("ctrl+p", *query)

    def top_hit_is_title() -> bool:
        found = app.screen.query(CommandList)
        if not found:
            return False
        hits = found.first()
        if hits.highlighted is None:
            return False
        return str(hits.get_option_at_index(hits.highlighted).prompt).startswith(title)

    await until(pilot, top_hit_is_title)
    await pilot.press("enter")


def write_settings_file(text: str) -> Path:
    path = paths.config_file(PROFILE)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


# --- themes -------------------------------------------------------------------------------


async def test_theme_switched_from_the_palette_is_remembered() -> None:
    app = make_app(PROFILE)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: dashboard_ready(app))
        assert app.theme == "lc-dark"
        await run_from_palette(pilot, "light", "Theme: switch to lc-light")
        await until(pilot, lambda: app.theme == "lc-light")
    assert settings.load(PROFILE).ui.theme == "lc-light"
    assert make_app(PROFILE).theme == "lc-light"  # the next start opens in it


async def test_t_toggles_the_theme_back_and_forth_and_saves_each_choice() -> None:
    app = make_app(PROFILE)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: dashboard_ready(app))
        await pilot.press("t")
        assert app.theme == "lc-light"
        assert settings.load(PROFILE).ui.theme == "lc-light"
        await pilot.press("t")
        assert app.theme == "lc-dark"
        assert settings.load(PROFILE).ui.theme == "lc-dark"


async def test_only_the_consoles_own_themes_are_offered() -> None:
    app = make_app(PROFILE)
    assert set(app.available_themes) == {"lc-dark", "lc-light"}


async def test_theme_change_never_overwrites_a_broken_settings_file() -> None:
    path = write_settings_file("[sync]\nmax_batch_size = 500\n")
    before = path.read_bytes()
    messages: list[Message] = []
    app = make_app(PROFILE)
    async with app.run_test(size=SIZE, message_hook=messages.append) as pilot:
        await pilot.pause()
        await pilot.press("t")
        await pilot.pause()
        assert app.theme == "lc-light"
    assert path.read_bytes() == before
    assert any("Theme not saved" in n for n in notices(messages))


# --- help ---------------------------------------------------------------------------------


async def test_question_mark_opens_help_and_escape_closes_it() -> None:
    app = make_app(PROFILE)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: dashboard_ready(app))
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        rows = {(r.section, r.description): r.keys for r in app.screen.rows}
        assert rows[(HERE, "Refresh")] == "r"
        assert rows[(EVERYWHERE, "Help")] == "? / f1"
        assert rows[(EVERYWHERE, "Doctor")] == "d"
        assert rows[(EVERYWHERE, "Theme")] == "t"
        assert (EVERYWHERE, "Home") not in rows  # already here: not listed as working
        assert "Refresh" in texts(app, ".help-desc")
        await pilot.press("escape")
        assert isinstance(app.screen, HomeScreen)


async def test_f1_toggles_help_and_it_lists_the_current_screens_keys() -> None:
    app = make_app(PROFILE, mode="doctor")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press("f1")
        assert isinstance(app.screen, HelpScreen)
        rows = {(r.section, r.description) for r in app.screen.rows}
        assert (HERE, "Run again") in rows
        assert (EVERYWHERE, "Home") in rows
        assert (HERE, "Refresh") not in rows  # a key of another screen
        await pilot.press("f1")
        assert isinstance(app.screen, DoctorScreen)


async def test_screen_switching_keys_are_off_while_help_is_open() -> None:
    app = make_app(PROFILE)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: dashboard_ready(app))
        await pilot.press("question_mark", "d")
        assert isinstance(app.screen, HelpScreen)
        assert app.current_mode == "home"


# --- command palette ------------------------------------------------------------------------


async def test_palette_offers_every_action_of_the_screen_and_the_app() -> None:
    app = make_app(PROFILE)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: dashboard_ready(app))
        titles = [c.title for c in app.get_system_commands(app.screen)]
        assert {"Doctor", "Help", "Theme: switch to lc-light", "Quit", "Home: Refresh"} <= set(
            titles)
        assert "Home" not in titles  # already there
        await pilot.press("d")
        await pilot.pause()
        titles = [c.title for c in app.get_system_commands(app.screen)]
        assert {"Home", "Doctor: Run again"} <= set(titles)
        assert "Doctor" not in titles


async def test_palette_opens_the_doctor() -> None:
    app = make_app(PROFILE)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: dashboard_ready(app))
        await run_from_palette(pilot, "doctor", "Doctor")
        await until(pilot, lambda: isinstance(app.screen, DoctorScreen))


async def test_q_quits() -> None:
    app = make_app(PROFILE)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: dashboard_ready(app))
        await pilot.press("q")
        await pilot.pause()
        assert not app.is_running
    assert app.return_code == 0


# --- home ---------------------------------------------------------------------------------


async def test_home_says_how_to_get_a_keyring_when_there_is_none() -> None:
    keyring.set_keyring(keyring.backends.fail.Keyring())  # conftest restores the previous one
    app = make_app(PROFILE)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: dashboard_ready(app))
        assert "keyring unavailable" in texts(app, ".kv-value")
        details = " ".join(texts(app, ".step-detail"))
        assert "gnome-keyring" in details and "PYTHON_KEYRING_BACKEND" in details


async def test_refresh_shows_what_changed_outside_the_console() -> None:
    app = make_app(PROFILE)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: dashboard_ready(app))
        assert "stored in keyring" not in texts(app, ".kv-value")
        secrets.put(PROFILE, secrets.SecretKind.STRIPE_API_KEY, "rk_test_refreshtest")
        await pilot.press("r")
        await until(pilot, lambda: "restricted key, stored in keyring" in texts(app, ".kv-value"))
        assert not any("rk_test_refreshtest" in t for t in texts(app, "Static"))


# --- doctor -------------------------------------------------------------------------------


async def test_doctor_runs_again_and_shows_the_new_result(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []

    def flaky(profile: str) -> Check:
        calls.append(profile)
        if len(calls) == 1:
            return Check("keyring", False, "The OS keyring is locked.", "Unlock it.")
        return Check("keyring", True, "stores and reads secrets")

    monkeypatch.setattr(doctor, "CHECKS", [flaky])
    app = make_app(PROFILE)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: dashboard_ready(app))
        await pilot.press("d")

        def report_has(text: str) -> bool:
            found = app.screen.query(DoctorReport)
            return bool(found) and found.first().results is not None and any(
                text in t for t in texts(app, "Static"))

        await until(pilot, lambda: report_has("1 of 1 checks failed"))
        assert "Fix: Unlock it." in texts(app, ".check-fix")
        await pilot.press("r")
        await until(pilot, lambda: report_has("All 1 checks passed"))
        assert texts(app, ".check-fix") == []
    assert calls == [PROFILE, PROFILE]


# --- settings errors ------------------------------------------------------------------------


async def test_broken_settings_show_the_error_screen_and_reload_recovers() -> None:
    path = write_settings_file("[sync]\nmax_batch_size = 500\n")
    messages: list[Message] = []
    app = make_app(PROFILE)
    async with app.run_test(size=SIZE, message_hook=messages.append) as pilot:
        await pilot.pause()
        assert isinstance(app.screen, SettingsErrorScreen)
        shown = texts(app, "ErrorDetails .kv-value")
        assert "sync.max_batch_size" in shown
        assert any("between 1 and 200" in t for t in shown)
        await pilot.press("h")  # no way around the error to a home that cannot load
        assert isinstance(app.screen, SettingsErrorScreen)
        await pilot.press("r")  # still broken: stays, says so
        assert isinstance(app.screen, SettingsErrorScreen)
        path.write_text("[sync]\nmax_batch_size = 100\n")
        await pilot.press("r")
        await until(pilot, lambda: dashboard_ready(app))
        assert "Settings loaded." in notices(messages)
    assert settings.load(PROFILE).sync.max_batch_size == 100


async def test_settings_broken_while_running_bring_up_the_error_screen() -> None:
    app = make_app(PROFILE)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: dashboard_ready(app))
        write_settings_file("[ui]\ntheme = lc-light\n")
        await pilot.press("r")
        await until(pilot, lambda: isinstance(app.screen, SettingsErrorScreen))
        assert "2: theme = lc-light" in texts(app, "ErrorDetails .kv-value")


async def test_copy_path_puts_the_settings_file_on_the_clipboard() -> None:
    path = write_settings_file("not toml at all")
    app = make_app(PROFILE)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press("c")
        assert app.clipboard == str(path)


async def test_edit_hands_the_terminal_to_the_editor_then_reloads(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    write_settings_file("[sync]\nmax_batch_size = 500\n")
    fixer = tmp_path / "fix_settings.py"
    fixer.write_text("import sys\nopen(sys.argv[1], 'w').write('[sync]\\nmax_batch_size = 50\\n')\n")
    monkeypatch.setenv("VISUAL", f"{sys.executable} {fixer}")
    # The headless test driver cannot suspend; a real terminal can.
    monkeypatch.setattr(ConsoleApp, "suspend", lambda self: contextlib.nullcontext())
    app = make_app(PROFILE)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press("e")
        await until(pilot, lambda: dashboard_ready(app))
    assert settings.load(PROFILE).sync.max_batch_size == 50


async def test_edit_without_a_suspendable_terminal_says_what_to_do(
        monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_settings_file("[sync]\nmax_batch_size = 500\n")
    monkeypatch.setenv("VISUAL", "true")
    messages: list[Message] = []
    app = make_app(PROFILE)
    async with app.run_test(size=SIZE, message_hook=messages.append) as pilot:
        await pilot.pause()
        await pilot.press("e")
        await pilot.pause()
        assert isinstance(app.screen, SettingsErrorScreen)
        assert app.screen.query_one(ErrorDetails).error is not None
    assert any("in another terminal and press r" in n for n in notices(messages))
    assert path.read_text() == "[sync]\nmax_batch_size = 500\n"
