"""The console in demo mode: the normal app, plus the demo's sign-in details where the admin
needs them (a welcome panel at start, F2 and the palette bring it back) and a one-key Stripe
connection with the sandbox's restricted key.

The sandboxes themselves belong to services.demo; `lc-console demo` stops them when the app
exits.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import ClassVar

from textual import on, work
from textual.app import ComposeResult, SystemCommand
from textual.binding import Binding, BindingType
from textual.containers import Grid, Horizontal, Vertical
from textual.screen import ModalScreen, Screen
from textual.widgets import Button, Label, Static

from lc_console import app as console_app
from lc_console.services import demo as demo_service
from lc_console.services.connect import ConnectError
from lc_console.settings import Settings, SettingsError

WIZARD = "wizard"


class DemoInfo(ModalScreen[None]):
    """The demo's sign-in details: the org's URL and admin login, the Stripe key."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "dismiss", "Continue", tooltip="Close this panel", id="demo.close"),
        Binding("k", "copy_key", "Copy key", tooltip="Copy the Stripe restricted key",
                id="demo.copy_key"),
        Binding("s", "connect_stripe", "Connect Stripe",
                tooltip="Check and store the Stripe sandbox's restricted key",
                id="demo.connect_stripe"),
    ]

    def __init__(self, session: demo_service.DemoSession) -> None:
        super().__init__()
        self.session = session

    def compose(self) -> ComposeResult:
        s = self.session
        with Vertical(id="demo-box") as box:
            box.border_title = "Demo · local sandboxes"
            box.border_subtitle = "F2 shows this again · esc closes"
            yield Static("The console runs against a local Salesforce org and Stripe account "
                         f"(scenario {s.scenario}, seed {s.seed}) in the separate 'demo' "
                         "profile. Quitting stops them.", classes="demo-intro", markup=False)
            with Grid(classes="kv", id="demo-rows"):
                for key, value, ident in (
                        ("Org URL", s.salesforce_url, "demo-org-url"),
                        ("Username", s.admin.username, "demo-username"),
                        ("Password", s.admin.password, "demo-password"),
                        ("Stripe key", s.restricted_key, "demo-stripe-key")):
                    yield Label(key, classes="kv-key")
                    yield Static(value, id=ident, classes="kv-value", markup=False)
            yield Static("Salesforce: on the Salesforce step, the sign-in page takes the username and "
                         "password above (no browser here? choose 'Sign in as the demo admin'). "
                         "Stripe: press s to use the restricted key, or k to copy it.",
                         classes="hint", markup=False)
            with Horizontal(id="demo-buttons"):
                yield Button("Connect Stripe", id="demo-stripe", variant="primary")
                yield Button("Copy key", id="demo-copy")
                yield Button("Continue", id="demo-continue", variant="success")

    def on_mount(self) -> None:
        self.query_one("#demo-continue").focus()

    @on(Button.Pressed, "#demo-continue")
    def _continue(self) -> None:
        self.dismiss()

    @on(Button.Pressed, "#demo-copy")
    def action_copy_key(self) -> None:
        self.app.copy_to_clipboard(self.session.restricted_key)
        self.notify("Stripe restricted key copied: paste it with ctrl+v in the key field.")

    @on(Button.Pressed, "#demo-stripe")
    def action_connect_stripe(self) -> None:
        self.query_one("#demo-stripe", Button).disabled = True
        self._connect_stripe()

    @work(thread=True, exclusive=True, group="demo-stripe", exit_on_error=False,
          description="Connecting the Stripe sandbox")
    def _connect_stripe(self) -> None:
        try:
            result = demo_service.connect_stripe(self.session)
        except ConnectError as exc:
            self.app.call_from_thread(self._stripe_done, exc.message.text(), "error")
            return
        if result.stored:
            c = result.check
            text = f"Stripe connected: {c.account_name or c.account_id} ({c.mode} mode)."
            self.app.call_from_thread(self._stripe_done, text, "information")
        else:
            self.app.call_from_thread(self._stripe_done, result.missing_message().text(),
                                      "error")

    def _stripe_done(self, text: str, severity: str) -> None:
        self.query_one("#demo-stripe", Button).disabled = False
        self.app.notify(text, severity=severity, markup=False)  # type: ignore[arg-type]
        if severity == "information":
            self.dismiss()


class DemoConsoleApp(console_app.ConsoleApp):
    """The console for the demo profile, with its sandboxes' sign-in details at hand."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("f2", "demo_info", "Demo logins", tooltip="Show the demo's sign-in details",
                id="app.demo_info"),
    ]

    def __init__(self, session: demo_service.DemoSession, loaded: Settings | None,
                 settings_error: SettingsError | None = None, *, show_info: bool = True,
                 first: str | None = None) -> None:
        # The setup wizard first (tests pin another place with `first`).
        super().__init__(session.profile, loaded, settings_error,
                         mode=first if first is not None else WIZARD)
        self.session = session
        self.show_info = show_info
        self.title = "lc-console demo"

    def on_mount(self) -> None:
        super().on_mount()
        if self.show_info and self.settings_error is None:
            # After the first screen is up, so the panel sits on top of it.
            self.call_after_refresh(self.action_demo_info)

    def action_demo_info(self) -> None:
        if not isinstance(self.screen, DemoInfo):
            self.push_screen(DemoInfo(self.session))

    def get_system_commands(self, screen: Screen[object]) -> Iterable[SystemCommand]:
        yield SystemCommand("Demo: sign-in details",
                            "The demo org's URL and admin login, and the Stripe sandbox's key",
                            self.action_demo_info)
        yield from super().get_system_commands(screen)


def make_demo_app(session: demo_service.DemoSession, *, show_info: bool = True,
                  first: str | None = None) -> DemoConsoleApp:
    from lc_console import settings

    try:
        loaded: Settings | None = settings.load(session.profile)
        error = None
    except SettingsError as exc:
        loaded, error = None, exc
    return DemoConsoleApp(session, loaded, error, show_info=show_info, first=first)
