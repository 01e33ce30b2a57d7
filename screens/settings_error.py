"""Shown instead of the console when the profile's settings file cannot be used.

It names the file, the key and the problem, and offers to edit the file, reload it and copy
its path. The file is never rewritten from here: fixing it is the admin's call.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path
from typing import ClassVar

from textual.app import ComposeResult, SuspendNotSupported
from textual.binding import Binding, BindingType
from textual.containers import Grid, Vertical, VerticalScroll
from textual.message import Message
from textual.reactive import reactive
from textual.widget import Widget
from textual.widgets import Footer, Header, Label, Static

from lc_console import paths, settings
from lc_console.screens.base import ConsoleScreen, tilde
from lc_console.settings import SettingsError


class SettingsBroken(Message):
    """The settings file turned out unusable (posted by any screen; the App shows this screen)."""

    def __init__(self, error: SettingsError) -> None:
        super().__init__()
        self.error = error


class SettingsFixed(Message):
    """The settings file loads again."""

    def __init__(self, loaded: settings.Settings) -> None:
        super().__init__()
        self.settings = loaded


def editor_command() -> list[str] | None:
    """$VISUAL, $EDITOR, or a common terminal editor that is installed."""
    for var in ("VISUAL", "EDITOR"):
        value = os.environ.get(var, "").strip()
        if value:
            return shlex.split(value)
    for name in ("sensible-editor", "nano", "vi"):
        found = shutil.which(name)
        if found:
            return [found]
    return None


def problem_text(error: SettingsError) -> str:
    """The error message without the leading file path (shown on its own line)."""
    text = str(error)
    if error.path is not None:
        text = text.removeprefix(f"{error.path}: ")
    return text


_AT_LINE = re.compile(r"at line (\d+), column (\d+)")


def offending_line(error: SettingsError, path: Path) -> str:
    """'N: <text of line N>' for a TOML syntax error, '' when there is no line to show."""
    found = _AT_LINE.search(str(error))
    if not found:
        return ""
    number = int(found.group(1))
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return ""
    if not 1 <= number <= len(lines):
        return ""
    return f"{number}: {lines[number - 1]}"


class ErrorDetails(Widget):
    error: reactive[SettingsError | None] = reactive(None, recompose=True)

    def __init__(self, error: SettingsError, path: Path) -> None:
        super().__init__()
        self.path = path
        self.set_reactive(ErrorDetails.error, error)

    def compose(self) -> ComposeResult:
        error = self.error
        if error is None:
            return
        with Grid(classes="kv"):
            yield Label("File", classes="kv-key")
            yield Static(tilde(self.path), classes="kv-value", markup=False)
            yield Label("Key", classes="kv-key")
            line = offending_line(error, self.path)
            yield Static(error.key or "— (a syntax error, not one key)",
                         classes="kv-value -fail", markup=False)
            if line:
                yield Label("Line", classes="kv-key")
                yield Static(line, classes="kv-value -fail", markup=False)
            yield Label("Problem", classes="kv-key")
            yield Static(problem_text(error), classes="kv-value", markup=False)


class SettingsErrorScreen(ConsoleScreen):
    SCREEN_NAME = "Settings error"
    COMPACT_FOOTER_BELOW = 100
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("e", "edit", "Edit file", tooltip="Open the settings file in $VISUAL / $EDITOR",
                id="settings_error.edit"),
        Binding("r", "reload", "Reload", tooltip="Read the settings file again",
                id="settings_error.reload"),
        Binding("c", "copy_path", "Copy path", tooltip="Copy the settings file's path",
                id="settings_error.copy_path"),
    ]

    def __init__(self, profile: str, error: SettingsError) -> None:
        super().__init__(profile)
        self.error = error
        self.path = error.path or paths.config_file(profile)

    def compose(self) -> ComposeResult:
        yield Header(icon="≡")
        with VerticalScroll(id="settings-error-body"):
            with Vertical(classes="card -fail", id="settings-error-card") as card:
                card.border_title = "Settings file cannot be used"
                yield ErrorDetails(self.error, self.path)
                yield Static(
                    "Press e to edit the file, then r to reload it; c copies its path; "
                    "d runs the doctor.",
                    classes="hint",
                )
        yield Footer()

    def show_error(self, error: SettingsError) -> None:
        self.error = error
        self.query_one(ErrorDetails).error = error

    def action_reload(self) -> None:
        try:
            loaded = settings.load(self.profile)
        except SettingsError as exc:
            self.show_error(exc)
            self.notify("The settings file still has a problem (shown above).",
                        severity="warning")
            return
        self.post_message(SettingsFixed(loaded))

    def action_copy_path(self) -> None:
        self.app.copy_to_clipboard(str(self.path))
        self.notify(f"Copied {tilde(self.path)} to the clipboard.", markup=False)

    def action_edit(self) -> None:
        command = editor_command()
        where = tilde(self.path)
        if command is None:
            self.notify(f"No editor found: set $EDITOR, or edit {where} in another terminal "
                        "and press r.", severity="warning", markup=False)
            return
        try:
            with self.app.suspend():
                subprocess.run([*command, str(self.path)], check=False)
        except SuspendNotSupported:
            self.notify(f"This terminal cannot hand over to an editor: edit {where} in "
                        "another terminal and press r.", severity="warning", markup=False)
            return
        except OSError as exc:
            self.notify(f"Could not start {command[0]}: {exc.strerror}. Set $EDITOR, or edit "
                        f"{where} in another terminal and press r.", severity="error",
                        markup=False)
            return
        self.action_reload()
