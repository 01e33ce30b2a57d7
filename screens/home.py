"""Home: the profile's connections, install and sync state, and what to do next."""

from __future__ import annotations

from collections.abc import Iterable
from typing import ClassVar

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Grid, Horizontal, Vertical, VerticalScroll
from textual.reactive import reactive
from textual.widget import Widget
from textual.widgets import Footer, Header, Label, Static
from textual.worker import Worker, WorkerState

from lc_console.screens.base import ConsoleScreen
from lc_console.screens.settings_error import SettingsBroken
from lc_console.services import status as status_service
from lc_console.services.status import Connection, ProfileStatus, SecretState
from lc_console.settings import SettingsError

DASH = "—"

# How each state reads, and the class that colours it (themes/home.tcss).
_CONNECTION_TEXT = {
    Connection.CONNECTED: ("✓ connected", "-ok"),
    Connection.NOT_CONNECTED: ("not connected", "-muted"),
    Connection.SECRET_MISSING: ("✗ reconnect needed", "-fail"),
    Connection.EXPIRED: ("✗ expired: reconnect", "-fail"),
    Connection.UNKNOWN: ("? keyring unavailable", "-warn"),
}
_SECRET_CLASS = {
    SecretState.STORED: "-ok",
    SecretState.MISSING: "-muted",
    SecretState.UNAVAILABLE: "-fail",
}


def _row(key: str, value: str, state: str = "") -> Iterable[Widget]:
    yield Label(key, classes="kv-key")
    yield Static(value or DASH, classes=f"kv-value {state}".strip(), markup=False)


def _host(url: str) -> str:
    return url.removeprefix("https://").rstrip("/")


class Dashboard(Widget):
    """The status cards; rebuilt whenever a new ProfileStatus arrives."""

    status: reactive[ProfileStatus | None] = reactive(None, recompose=True)

    def compose(self) -> ComposeResult:
        st = self.status
        if st is None:
            yield Static("Reading settings and keyring…", id="home-loading")
            return
        sf, stripe = st.salesforce, st.stripe
        with Horizontal(id="connections"):
            with Vertical(classes="card", id="card-salesforce") as card:
                card.border_title = "Salesforce"
                with Grid(classes="kv"):
                    yield from _row("Status", *_CONNECTION_TEXT[sf.connection])
                    org = f"{sf.org_name} ({sf.org_id})" if sf.org_name else sf.org_id
                    yield from _row("Org", org)
                    if sf.org_kind:
                        yield from _row("Type", sf.org_kind)
                    else:
                        yield from _row("Login", _host(sf.login_url))
                    yield from _row("User", sf.username)
                    yield from _row("Instance", _host(sf.instance_url))
                    yield from _row("Tokens", sf.tokens.value, _SECRET_CLASS[sf.tokens])
            with Vertical(classes="card", id="card-stripe") as card:
                card.border_title = "Stripe"
                with Grid(classes="kv"):
                    yield from _row("Status", *_CONNECTION_TEXT[stripe.connection])
                    account = (f"{stripe.account_name} ({stripe.account_id})"
                               if stripe.account_name else stripe.account_id)
                    yield from _row("Account", account)
                    yield from _row("Mode", stripe.mode, "-warn" if stripe.mode == "live" else "")
                    key = stripe.key.value
                    if stripe.key_kind:
                        key = f"{stripe.key_kind}, {key}"
                    yield from _row("API key", key, _SECRET_CLASS[stripe.key])
        with Vertical(classes="card", id="card-sync") as card:
            card.border_title = "Sync"
            with Grid(classes="kv"):
                yield from _row("Install", st.install)
                sync = st.sync
                yield from _row("State", sync.summary,
                                "-fail" if sync.error or sync.open_failures else "")
                last = sync.last_sync
                yield from _row("Last sync",
                                last.astimezone().strftime("%Y-%m-%d %H:%M %Z") if last else "never")
        if st.warnings:
            with Vertical(classes="card -warn", id="card-warnings") as card:
                card.border_title = "Check this"
                for text in st.warnings:
                    yield Static(text, classes="warning", markup=False)
        with Vertical(classes="card", id="card-next") as card:
            card.border_title = "Next"
            for number, step in enumerate(st.next_steps, start=1):
                with Vertical(classes="step"):
                    yield Label(f"{number}. {step.title}", classes="step-title", markup=False)
                    if step.detail:
                        yield Static(step.detail, classes="step-detail", markup=False)
                    how = []
                    if step.key:
                        how.append(f"press {step.key}")
                    if step.command:
                        how.append(f"run {step.command}")
                    if how:
                        yield Static(" or ".join(how), classes="step-how", markup=False)


class HomeScreen(ConsoleScreen):
    SCREEN_NAME = "Home"
    COMPACT_FOOTER_BELOW = 100
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("r", "refresh", "Refresh", tooltip="Read the settings and the keyring again",
                id="home.refresh"),
        Binding("c", "connect_salesforce", "Salesforce",
                tooltip="Connect or reconnect Salesforce (OAuth sign-in)",
                id="home.connect_salesforce"),
        Binding("s", "connect_stripe", "Stripe",
                tooltip="Enter or replace the Stripe API key", id="home.connect_stripe"),
    ]

    def compose(self) -> ComposeResult:
        yield Header(icon="≡")
        with VerticalScroll(id="home-body"):
            yield Dashboard()
        yield Footer()

    def on_screen_resume(self) -> None:
        # Also runs when coming back from another screen: what it did may have changed things.
        self.action_refresh()

    def action_refresh(self) -> None:
        self.load_status()

    # Imported on use: the connect screens pull in the HTTP clients, which would slow the
    # console's first frame.
    def action_connect_salesforce(self) -> None:
        from lc_console.screens.connect_salesforce import ConnectSalesforceScreen

        self.app.push_screen(ConnectSalesforceScreen(self.profile))

    def action_connect_stripe(self) -> None:
        from lc_console.screens.connect_stripe import ConnectStripeScreen

        self.app.push_screen(ConnectStripeScreen(self.profile))

    @work(thread=True, exclusive=True, group="status", exit_on_error=False,
          description="Reading the profile's status")
    def load_status(self) -> ProfileStatus:
        return status_service.gather(self.profile)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker.group != "status":
            return
        if event.state is WorkerState.SUCCESS:
            self.query_one(Dashboard).status = event.worker.result
        elif event.state is WorkerState.ERROR and isinstance(event.worker.error, SettingsError):
            event.prevent_default()
            self.post_message(SettingsBroken(event.worker.error))
