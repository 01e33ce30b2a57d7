"""Connect Stripe: a key in a password field, checked against the account, then stored.

The result is the table of read permissions the sync needs (granted / missing, with the exact
names to add). The key lives only in the Input while the screen is open and in the keyring
once every permission checked out; it is never shown or logged.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any, ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Grid, Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.widgets import Button, Footer, Header, Input, Label, Static

from lc_console.screens.base import ConsoleScreen
from lc_console.services import connect as connect_service
from lc_console.services import demo as demo_service
from lc_console.services.connect import ConnectError, StripeConnected, UserMessage
from lc_console.stripe.keys import NEEDED


class ConnectStripeScreen(ConsoleScreen):
    SCREEN_NAME = "Connect Stripe"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "Back", tooltip="Go back without storing anything",
                id="connect_stripe.back"),
        Binding("ctrl+s", "check", "Check key", tooltip="Check the key with Stripe and store it "
                "when every permission is there", id="connect_stripe.check"),
    ]

    class Checked(Message):
        def __init__(self, result: StripeConnected) -> None:
            super().__init__()
            self.result = result

    class Failed(Message):
        def __init__(self, message: UserMessage) -> None:
            super().__init__()
            self.message = message

    def __init__(self, profile: str, *, service: ModuleType | Any = connect_service) -> None:
        super().__init__(profile)
        self.service = service
        self.demo = demo_service.current(profile)

    def compose(self) -> ComposeResult:
        reads = ", ".join(n.resource for n in NEEDED)
        yield Header(icon="≡")
        with VerticalScroll(id="stripe-body"):
            yield Static("Paste a restricted key (rk_live_… or rk_test_…) from the Stripe "
                         "Dashboard, Developers > API keys, with Read access to: "
                         f"{reads}. A secret key (sk_…) works but can do far more than the "
                         "console needs.", classes="hint intro", markup=False)
            yield Label("Stripe API key", classes="field-label")
            with Horizontal(id="key-row"):
                # In a running `lc-console demo`, the Stripe sandbox's restricted key.
                yield Input(self.demo.restricted_key if self.demo else "", password=True,
                            placeholder="rk_live_…", id="key")
                yield Button("Check key", id="check", variant="primary")
            if self.demo is not None:
                yield Static("Demo: the Stripe sandbox's restricted key is filled in; press "
                             "Check key.", id="demo-key-hint", classes="hint", markup=False)
            yield Static("", id="key-status", markup=False)
            with Vertical(id="stripe-result"):
                yield Grid(id="account-rows", classes="kv")
                yield Label("Permissions the sync needs", classes="field-label")
                yield Grid(id="permissions")
                yield Vertical(id="stripe-warnings", classes="card -warn")
                yield Static("", id="stripe-outcome", markup=False)
                with Horizontal(id="stripe-buttons"):
                    yield Button("Done", id="stripe-done", variant="success")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#stripe-warnings").border_title = "Check this"
        self.query_one("#stripe-result").display = False
        self.query_one("#key-status").display = False
        self.query_one("#key", Input).focus()

    def action_back(self) -> None:
        self.dismiss()

    @on(Input.Submitted, "#key")
    @on(Button.Pressed, "#check")
    def action_check(self) -> None:
        key = self.query_one("#key", Input).value
        if not key.strip():
            self._status("Paste a key first.", "-fail")
            return
        self.query_one("#check", Button).disabled = True
        self.query_one("#stripe-result").display = False
        self._status("Checking the key with Stripe…", "-muted")
        self.check_key(key)

    def _status(self, text: str, cls: str = "") -> None:
        box = self.query_one("#key-status", Static)
        box.set_classes(cls)
        box.update(text)
        box.display = bool(text)

    @work(thread=True, exclusive=True, group="connect-stripe", exit_on_error=False,
          description="Checking the Stripe key")
    def check_key(self, key: str) -> None:
        try:
            result = self.service.connect_stripe(self.profile, key)
        except ConnectError as exc:
            self.post_message(self.Failed(exc.message))
            return
        except Exception as exc:
            self.post_message(self.Failed(self.service.describe_error(exc)))
            return
        self.post_message(self.Checked(result))

    def on_connect_stripe_screen_failed(self, event: Failed) -> None:
        self.query_one("#check", Button).disabled = False
        msg = event.message
        self._status(msg.text(), "-fail")
        self.query_one("#key", Input).focus()

    def on_connect_stripe_screen_checked(self, event: Checked) -> None:
        result = event.result
        self.query_one("#check", Button).disabled = False
        self._status("", "")
        rows = self.query_one("#account-rows", Grid)
        rows.remove_children()
        cells: list[Label | Static] = []
        for key, value in result.rows():
            cells.append(Label(key, classes="kv-key"))
            cls = "kv-value -warn" if key == "Mode" and value == "live" else "kv-value"
            cells.append(Static(value, classes=cls, markup=False))
        rows.mount_all(cells)
        table = self.query_one("#permissions", Grid)
        table.remove_children()
        cells = [Label(h, classes="th") for h in ("Permission", "Status", "API name", "Needed for")]
        for p in result.check.permissions:
            state = ("✓ granted", "-ok") if p.granted else ("✗ missing", "-fail")
            cells += [Static(p.permission, markup=False),
                      Static(state[0], classes=state[1], markup=False),
                      Static(p.api_name, classes="-muted", markup=False),
                      Static(p.needed_for, markup=False)]
        table.mount_all(cells)
        box = self.query_one("#stripe-warnings", Vertical)
        box.remove_children()
        box.mount_all([Static(w, classes="warning", markup=False) for w in result.warnings])
        box.display = bool(result.warnings)
        outcome = self.query_one("#stripe-outcome", Static)
        if result.stored:
            outcome.set_classes("-ok")
            outcome.update("✓ Key stored in the OS keyring.")
            self.query_one("#key", Input).value = ""
            self.notify(f"Stripe connected: {result.check.account_id} ({result.check.mode})",
                        markup=False)
        else:
            outcome.set_classes("-fail")
            outcome.update(result.missing_message().text())
        self.query_one("#stripe-done", Button).display = result.stored
        self.query_one("#stripe-result").display = True
        (self.query_one("#stripe-done") if result.stored else self.query_one("#check")).focus()
        self.call_after_refresh(outcome.scroll_visible, animate=False)

    @on(Button.Pressed, "#stripe-done")
    def _done(self) -> None:
        self.dismiss()
