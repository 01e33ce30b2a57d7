"""The Textual console: routing between screens, themes, global keys, the command palette.

Screens live in screens/ (lc_console.screens) and styles in themes/ (lc_console.themes);
this class only wires them together. `make_app` is shared by the CLI and the tests.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import partial
from typing import ClassVar

from textual.app import App, SystemCommand
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.theme import Theme

from lc_console import settings, themes
from lc_console.screens.base import ConsoleScreen
from lc_console.screens.help import HelpScreen, help_rows
from lc_console.screens.home import HomeScreen
from lc_console.screens.settings_error import (
    SettingsBroken,
    SettingsErrorScreen,
    SettingsFixed,
)
from lc_console.settings import Settings, SettingsError
from lc_console.themes.stylesheet import ParsedOnceStylesheet

HOME = "home"
DOCTOR = "doctor"
INSTALL = "install"
FAILURES = "failures"
AUDIT = "audit"
MAPPING = "mapping"
DISCONNECT = "disconnect"
WIZARD = "wizard"
MONITOR = "monitor"
RESYNC = "resync"
SETTINGS_ERROR = "settings-error"

# Screens reachable by key and from the palette: mode -> (title, what it shows).
PLACES: dict[str, tuple[str, str]] = {
    HOME: ("Home", "Connections, install and sync state, and what to do next"),
    DOCTOR: ("Doctor", "Check versions, paths, keyring, terminal and TLS, with fixes"),
    INSTALL: ("Install", "Plan, install, repair or remove the LostChurn objects and fields"),
    FAILURES: ("Failures", "Records Salesforce refused, with its answer: retry or discard"),
    AUDIT: ("Audit log", "Every write for a record, by email, Stripe id or Salesforce id"),
    MAPPING: ("Field mapping", "Targets, conflict policies, stages, free-mail domains and "
              "thresholds, checked against the org"),
    WIZARD: ("Setup wizard", "Environment, Salesforce sign-in, Stripe key, install and mapping, "
             "step by step (resumes where you left off)"),
    MONITOR: ("Sync monitor", "Start, pause and resume the live sync; rates, API usage, "
              "records per object and a live tail"),
    RESYNC: ("Re-sync and reconcile", "Re-sync All from Stripe (forecast first, cancellable, "
             "resumable) and reconcile the org's drift per object and field"),
    DISCONNECT: ("Disconnect", "Revoke the tokens, delete the secrets, optionally remove the "
                 "LostChurn metadata and the local state"),
}

# Built-in palette commands kept next to ours (ours replace Theme, Keys and Quit).
_KEPT_SYSTEM_COMMANDS = {"Screenshot", "Maximize", "Minimize"}


class ConsoleApp(App[None]):
    TITLE = "lc-console"
    CSS_PATH = themes.stylesheets()
    # The footer shows the current screen's own keys, the way home, help and quit; the other
    # places and the theme are in help (?) and the palette, so that 80 columns stay enough
    # as screens are added.
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("question_mark,f1", "help", "Help",
                tooltip="List the keys that work here", id="app.help"),
        Binding("h", f"open('{HOME}')", "Home", tooltip=PLACES[HOME][1], id="app.home"),
        Binding("d", f"open('{DOCTOR}')", "Doctor", tooltip=PLACES[DOCTOR][1], id="app.doctor",
                show=False),
        Binding("i", f"open('{INSTALL}')", "Install", tooltip=PLACES[INSTALL][1],
                id="app.install", show=False),
        Binding("f", f"open('{FAILURES}')", "Failures", tooltip=PLACES[FAILURES][1],
                id="app.failures", show=False),
        Binding("l", f"open('{AUDIT}')", "Audit log", tooltip=PLACES[AUDIT][1],
                id="app.audit", show=False),
        Binding("m", f"open('{MAPPING}')", "Field mapping", tooltip=PLACES[MAPPING][1],
                id="app.mapping", show=False),
        Binding("w", f"open('{WIZARD}')", "Setup wizard", tooltip=PLACES[WIZARD][1],
                id="app.wizard", show=False),
        Binding("y", f"open('{MONITOR}')", "Sync monitor", tooltip=PLACES[MONITOR][1],
                id="app.monitor", show=False),
        Binding("S", f"open('{RESYNC}')", "Re-sync and reconcile", tooltip=PLACES[RESYNC][1],
                id="app.resync", show=False),
        Binding("X", f"open('{DISCONNECT}')", "Disconnect", tooltip=PLACES[DISCONNECT][1],
                id="app.disconnect", show=False),
        Binding("t", "toggle_theme", "Theme", tooltip="Switch between the dark and light theme",
                id="app.theme", show=False),
        Binding("q", "quit", "Quit", tooltip="Quit lc-console", id="app.quit"),
    ]

    def __init__(self, profile: str, loaded: Settings | None,
                 settings_error: SettingsError | None = None, *, mode: str = HOME) -> None:
        # The first screen is the start mode's own, not Textual's blank default screen that
        # on_mount would switch away from (mounting it and switching cost two CSS refreshes).
        self.DEFAULT_MODE = SETTINGS_ERROR if settings_error is not None else mode
        super().__init__()
        # Textual re-parses every stylesheet on each CSS refresh: see themes/stylesheet.py.
        self.stylesheet = ParsedOnceStylesheet(variables=self.get_css_variables())
        self.profile = profile
        self.settings_error = settings_error
        self.start_mode = mode
        # Only our themes: they are the ones checked for 16-colour terminals, and the only
        # names the settings file accepts.
        for name in list(self.available_themes):
            self.unregister_theme(name)
        for theme in themes.THEMES.values():
            self.register_theme(theme)
        self.theme = loaded.ui.theme if loaded else themes.DEFAULT_THEME
        factories: dict[str, Callable[[], Screen[None]]] = {
            HOME: partial(HomeScreen, profile),
            DOCTOR: partial(_lazy_screen, "doctor", "DoctorScreen", profile),
            INSTALL: partial(_lazy_screen, "install", "InstallScreen", profile),
            FAILURES: partial(_lazy_screen, "failures", "FailuresScreen", profile),
            AUDIT: partial(_lazy_screen, "audit", "AuditScreen", profile),
            MAPPING: partial(_lazy_screen, "mapping", "MappingScreen", profile),
            DISCONNECT: partial(_lazy_screen, "disconnect", "DisconnectScreen", profile),
            WIZARD: partial(_lazy_screen, "wizard", "WizardScreen", profile),
            MONITOR: partial(_lazy_screen, "monitor", "MonitorScreen", profile),
            RESYNC: partial(_lazy_screen, "resync", "ResyncScreen", profile),
        }
        for name, factory in factories.items():
            self.add_mode(name, factory)
        if settings_error is not None:
            self.add_mode(SETTINGS_ERROR, partial(SettingsErrorScreen, profile, settings_error))

    def get_theme_variable_defaults(self) -> dict[str, str]:
        return dict(themes.VARIABLE_DEFAULTS)

    def on_mount(self) -> None:
        # The start mode (or the settings error) is already on screen: see DEFAULT_MODE.
        self.theme_changed_signal.subscribe(self, self._remember_theme)

    # --- routing ----------------------------------------------------------------------------

    def _show_settings_error(self, error: SettingsError) -> None:
        self.settings_error = error
        if self.current_mode == SETTINGS_ERROR:
            screen = self.screen
            if isinstance(screen, SettingsErrorScreen):
                screen.show_error(error)
            return
        self.add_mode(SETTINGS_ERROR, partial(SettingsErrorScreen, self.profile, error))
        self.switch_mode(SETTINGS_ERROR)

    def on_settings_broken(self, message: SettingsBroken) -> None:
        self._show_settings_error(message.error)

    async def on_settings_fixed(self, message: SettingsFixed) -> None:
        self.settings_error = None
        self.theme = message.settings.ui.theme
        await self.switch_mode(HOME)
        await self.remove_mode(SETTINGS_ERROR)
        self.notify("Settings loaded.")

    def action_open(self, mode: str) -> None:
        self.switch_mode(mode)

    def _can_open(self, mode: str, screen: Screen[object]) -> bool:
        """Whether `mode` can be opened from `screen` (not the one already shown: its key
        would only take room in the footer)."""
        if screen.is_modal or (mode == HOME and self.settings_error is not None):
            return False
        return mode != self.current_mode

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "open" and parameters:
            return self._can_open(str(parameters[0]), self.screen)
        return True

    def action_help(self) -> None:
        if isinstance(self.screen, HelpScreen):
            self.screen.dismiss()
            return
        screen = self.screen
        name = screen.SCREEN_NAME if isinstance(screen, ConsoleScreen) else ""
        self.push_screen(HelpScreen(name, help_rows(self, screen.active_bindings)))

    # --- themes -----------------------------------------------------------------------------

    def action_toggle_theme(self) -> None:
        self.theme = themes.other_theme(self.theme)

    def _remember_theme(self, theme: Theme) -> None:
        """Save the chosen theme in the profile's settings, never over a broken file."""
        if self.settings_error is not None:
            self.notify("Theme not saved: the settings file has a problem.", severity="warning")
            return
        try:
            current = settings.load(self.profile)
            if current.ui.theme != theme.name:
                current.ui.theme = theme.name
                settings.save(self.profile, current)
        except SettingsError as exc:
            self.notify(f"Theme not saved: {exc}", severity="error", markup=False)
            self._show_settings_error(exc)
        except OSError as exc:
            self.notify(f"Theme not saved: {exc}", severity="error", markup=False)

    # --- command palette ----------------------------------------------------------------------

    def get_system_commands(self, screen: Screen[object]) -> Iterable[SystemCommand]:
        for mode, (title, help_text) in PLACES.items():
            # `screen` is where the palette was opened, not the palette itself.
            if self._can_open(mode, screen):
                yield SystemCommand(title, help_text, partial(self.action_open, mode))
        yield SystemCommand("Help", "List the keys that work on this screen", self.action_help)
        other = themes.other_theme(self.theme)
        yield SystemCommand(f"Theme: switch to {other}",
                            f"Use the {'light' if other == themes.LIGHT else 'dark'} theme "
                            "(remembered in the profile's settings)",
                            self.action_toggle_theme)
        yield SystemCommand("Quit", "Quit lc-console", self.action_quit)
        # Every action of the current screen, so that nothing needs its key to be remembered.
        seen: set[str] = set()
        for node, binding, enabled, tooltip in screen.active_bindings.values():
            if node is not screen or not enabled or not binding.description:
                continue
            if binding.action in seen:
                continue
            seen.add(binding.action)
            name = screen.SCREEN_NAME if isinstance(screen, ConsoleScreen) else ""
            title = f"{name}: {binding.description}" if name else binding.description
            yield SystemCommand(title, tooltip or binding.tooltip,
                                partial(screen.run_action, binding.action))
        for command in super().get_system_commands(screen):
            if command.title in _KEPT_SYSTEM_COMMANDS:
                yield command


def _lazy_screen(module: str, name: str, profile: str) -> Screen[None]:
    """A screen imported when first opened, so the console's first frame stays fast (the
    screens pull in the Salesforce and Stripe clients, the keyring, the sync engine)."""
    import importlib

    screen: Screen[None] = getattr(importlib.import_module(f"lc_console.screens.{module}"),
                                   name)(profile)
    return screen


def make_app(profile: str, *, mode: str = HOME) -> ConsoleApp:
    """The console for `profile`, opening at `mode`; a broken settings file opens the error
    screen instead (never a traceback)."""
    try:
        loaded: Settings | None = settings.load(profile)
        error = None
    except SettingsError as exc:
        loaded, error = None, exc
    return ConsoleApp(profile, loaded, error, mode=mode)


def run_app(profile: str) -> int:
    app = make_app(profile)
    app.run()
    return app.return_code or 0
