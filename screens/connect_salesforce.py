"""Connect Salesforce: environment, client id, then the browser (or device code), then the org.

Steps (one ContentSwitcher): form -> waiting for the browser | device code -> connected | error.
All I/O runs in one thread worker that talks back with messages; the words come from
services.connect, the same the CLI prints.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from types import ModuleType
from typing import Any, ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Grid, Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.widgets import (
    Button,
    ContentSwitcher,
    Footer,
    Header,
    Input,
    Label,
    RadioButton,
    RadioSet,
    Static,
)

from lc_console import settings
from lc_console.screens.base import ConsoleScreen
from lc_console.services import connect as connect_service
from lc_console.services import demo as demo_service
from lc_console.services.connect import ConnectError, SalesforceConnected, UserMessage

ENVIRONMENTS = ("production", "sandbox", "custom")
METHODS = ("browser", "url", "device", "demo")  # "demo": only in a running `lc-console demo`


def _clock_text(seconds: float) -> str:
    seconds = max(0, int(seconds))
    return f"{seconds // 60}:{seconds % 60:02d}"


class ConnectSalesforceScreen(ConsoleScreen):
    SCREEN_NAME = "Connect Salesforce"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "Back", tooltip="Cancel the sign-in or go back",
                id="connect_sf.back"),
        Binding("ctrl+s", "connect", "Connect", tooltip="Start the sign-in with these settings",
                id="connect_sf.connect"),
        Binding("c", "copy_url", "Copy URL", tooltip="Copy the sign-in URL to the clipboard",
                id="connect_sf.copy"),
        Binding("o", "open_browser", "Open browser", tooltip="Open the sign-in URL in a browser",
                id="connect_sf.open"),
    ]

    # Overridable in tests (snapshots need a still countdown).
    clock: ClassVar[Callable[[], float]] = staticmethod(time.monotonic)

    class Waiting(Message):
        def __init__(self, login: Any, opened: bool) -> None:
            super().__init__()
            self.login = login
            self.opened = opened

    class DeviceWaiting(Message):
        def __init__(self, login: Any) -> None:
            super().__init__()
            self.login = login

    class Connected(Message):
        def __init__(self, result: SalesforceConnected) -> None:
            super().__init__()
            self.result = result

    class Failed(Message):
        def __init__(self, message: UserMessage, in_form: bool = False) -> None:
            super().__init__()
            self.message = message
            self.in_form = in_form

    def __init__(self, profile: str, *, service: ModuleType | Any = connect_service) -> None:
        super().__init__(profile)
        self.service = service
        self._login: Any = None
        self._deadline = 0.0
        self._step = "step-form"
        self.demo = demo_service.current(profile)

    # --- layout ---------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        try:
            cfg = settings.load(self.profile).salesforce
        except settings.SettingsError:
            cfg = settings.SalesforceSettings()
        env_index = ENVIRONMENTS.index(cfg.environment) if cfg.environment in ENVIRONMENTS else 0
        yield Header(icon="≡")
        with VerticalScroll(id="connect-body"):
            with ContentSwitcher(initial="step-form", id="steps"):
                with Vertical(id="step-form", classes="step"):
                    yield Static("Sign in to your Salesforce org through your own connected "
                                 "app. The console asks for API access and a refresh token "
                                 "(scopes api, refresh_token).", classes="hint intro")
                    yield Label("Where to sign in", classes="field-label")
                    with RadioSet(id="env"):
                        yield RadioButton("Production · login.salesforce.com",
                                          value=env_index == 0)
                        yield RadioButton("Sandbox · test.salesforce.com", value=env_index == 1)
                        yield RadioButton("My Domain URL", value=env_index == 2)
                    yield Input(cfg.login_url if env_index == 2 else "",
                                placeholder="https://yourcompany.my.salesforce.com",
                                id="domain", disabled=env_index != 2)
                    yield Label("Consumer Key of the connected app (client id)",
                                classes="field-label")
                    yield Input(cfg.client_id, placeholder="3MVG9…", id="client-id")
                    yield Label("How to sign in", classes="field-label")
                    # In the demo with no browser here, signing in as the demo admin comes first.
                    demo_first = self.demo is not None and not demo_service.browser_available()
                    with RadioSet(id="method"):
                        yield RadioButton("Open a browser on this machine", value=not demo_first)
                        yield RadioButton("Show the URL to open elsewhere")
                        yield RadioButton("Device code (no browser here, e.g. SSH)")
                        if self.demo is not None:
                            yield RadioButton("Sign in as the demo admin (no browser needed)",
                                              value=demo_first, id="method-demo")
                    if self.demo is not None:
                        yield Static(f"Demo org: sign in as {self.demo.admin.username} / "
                                     f"{self.demo.admin.password}", id="demo-login",
                                     classes="hint", markup=False)
                    with Horizontal(id="port-row"):
                        yield Label("Callback port", classes="field-label")
                        yield Input(str(cfg.callback_port), id="port", type="integer",
                                    max_length=5)
                        yield Static(f"registered: {', '.join(map(str, cfg.callback_ports))}",
                                     classes="hint-inline", markup=False)
                    yield Static("", id="form-error", classes="-fail", markup=False)
                    yield Button("Connect", id="connect", variant="primary")
                with Vertical(id="step-waiting", classes="step"):
                    yield Static("", id="waiting-title", classes="step-title", markup=False)
                    yield Static("", id="waiting-help", markup=False)
                    yield Static("", id="auth-url", classes="url", markup=False)
                    yield Static("", id="waiting-status", classes="-muted", markup=False)
                    yield Button("Cancel", id="cancel", variant="error")
                    if self.demo is not None:
                        yield Button("Sign in as the demo admin", id="demo-sign-in")
                with Vertical(id="step-device", classes="step"):
                    yield Static("Enter the code on any device with a browser",
                                 classes="step-title")
                    yield Static("", id="device-url", classes="url", markup=False)
                    yield Static("", id="user-code", markup=False)
                    yield Static("", id="device-status", classes="-muted", markup=False)
                    yield Button("Cancel", id="device-cancel", variant="error")
                with Vertical(id="step-connected", classes="step"):
                    yield Static("", id="connected-title", classes="step-title -ok",
                                 markup=False)
                    yield Grid(id="connected-rows", classes="kv")
                    yield Vertical(id="connected-warnings", classes="card -warn")
                    yield Button("Done", id="done", variant="success")
                with Vertical(id="step-error", classes="step"):
                    yield Static("", id="error-title", classes="step-title -fail", markup=False)
                    yield Static("", id="error-detail", markup=False)
                    yield Static("", id="error-fix", classes="fix", markup=False)
                    with Horizontal(id="error-buttons"):
                        yield Button("Try again", id="retry", variant="primary")
                        yield Button("", id="use-port")
                        yield Button("Back", id="error-back")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#connected-warnings").border_title = "Check this"
        self.query_one("#use-port").display = False
        self._form_error(None)
        self._show("step-form")

    def _show(self, step: str) -> None:
        self._step = step
        self.query_one("#steps", ContentSwitcher).current = step
        self.refresh_bindings()
        focus = {"step-form": "#client-id", "step-waiting": "#cancel",
                 "step-device": "#device-cancel", "step-connected": "#done",
                 "step-error": "#retry"}[step]
        self.query_one(focus).focus()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ("copy_url", "open_browser"):
            return self._step == "step-waiting"
        if action == "connect":
            return self._step == "step-form"
        return True

    # --- the form -------------------------------------------------------------------------

    @on(RadioSet.Changed, "#env")
    def _env_changed(self, event: RadioSet.Changed) -> None:
        domain = self.query_one("#domain", Input)
        domain.disabled = event.index != 2
        if event.index == 2:
            domain.focus()

    @on(Input.Submitted)
    @on(Button.Pressed, "#connect")
    def action_connect(self) -> None:
        if self._step != "step-form":
            return
        env_index = self.query_one("#env", RadioSet).pressed_index
        env = ENVIRONMENTS[max(env_index, 0)]
        if env == "custom":
            env = self.query_one("#domain", Input).value.strip()
            if not env:
                self._form_error(UserMessage("Enter your My Domain URL.",
                                             "e.g. https://yourcompany.my.salesforce.com"))
                return
        client_id = self.query_one("#client-id", Input).value
        port_text = self.query_one("#port", Input).value.strip()
        try:
            port = int(port_text)
        except ValueError:
            self._form_error(UserMessage("The callback port must be a number.",
                                         "Use one of the registered ports, e.g. 1717."))
            return
        method = METHODS[max(self.query_one("#method", RadioSet).pressed_index, 0)]
        self._form_error(None)
        self.query_one("#connect", Button).disabled = True
        self.run_connect(env, client_id, port, method)

    def _form_error(self, message: UserMessage | None) -> None:
        box = self.query_one("#form-error", Static)
        box.update(message.text() if message else "")
        box.display = message is not None

    # --- the worker -----------------------------------------------------------------------

    @work(thread=True, exclusive=True, group="connect-salesforce", exit_on_error=False,
          description="Connecting Salesforce")
    def run_connect(self, env: str, client_id: str, port: int, method: str) -> None:
        svc = self.service
        try:
            plan = svc.plan_salesforce(self.profile, env=env, client_id=client_id, port=port)
        except ConnectError as exc:
            self.post_message(self.Failed(exc.message, in_form=True))
            return
        try:
            if method == "device":
                login = svc.start_device_login(plan)
                self.post_message(self.DeviceWaiting(login))
                result = login.wait()
            elif method == "demo" and self.demo is not None:
                login = svc.start_web_login(plan)
                self.post_message(self.Waiting(login, False))
                result = demo_service.sign_in_as_admin(login, self.demo)
            else:
                login = svc.start_web_login(plan)
                opened = login.open_browser() if method == "browser" else False
                self.post_message(self.Waiting(login, opened))
                result = login.wait()
        except ConnectError as exc:
            self.post_message(self.Failed(exc.message))
            return
        except Exception as exc:  # never a traceback: the one mapping explains it
            self.post_message(self.Failed(svc.describe_error(exc)))
            return
        self.post_message(self.Connected(result))

    # --- waiting --------------------------------------------------------------------------

    def on_connect_salesforce_screen_waiting(self, event: Waiting) -> None:
        login = event.login
        self._login = login
        label = login.plan.target.label
        self.query_one("#waiting-title", Static).update("Waiting for the browser")
        if event.opened:
            help_text = (f"A browser opened at {label}. Sign in and press Allow. If no browser "
                         "appeared, open this URL (c copies it):")
        else:
            help_text = (f"Open this URL in a browser (c copies it), sign in to {label} and "
                         "press Allow:")
        if self.demo is not None:
            help_text += (f"\nDemo org: sign in as {self.demo.admin.username} / "
                          f"{self.demo.admin.password}")
            self.query_one("#demo-sign-in").display = not event.opened
        self.query_one("#waiting-help", Static).update(help_text)
        self.query_one("#auth-url", Static).update(login.authorize_url)
        self._deadline = self.clock() + login.plan.timeout
        self._show("step-waiting")
        self._tick()
        self._ticker = self.set_interval(1.0, self._tick)

    def on_connect_salesforce_screen_device_waiting(self, event: DeviceWaiting) -> None:
        login = event.login
        self._login = login
        self.query_one("#device-url", Static).update(f"Open {login.verification_uri}")
        self.query_one("#user-code", Static).update(login.user_code)
        self.query_one("#device-status", Static).update(
            f"then sign in and press Allow. Checking every {login.code.interval:.0f} s; "
            "Esc cancels.")
        self._show("step-device")

    def _tick(self) -> None:
        if self._step != "step-waiting":
            return
        left = self._deadline - self.clock()
        redirect = getattr(self._login, "redirect_uri", "")
        self.query_one("#waiting-status", Static).update(
            f"Listening on {redirect} · {_clock_text(left)} left · Esc cancels")

    def _stop_ticker(self) -> None:
        ticker = getattr(self, "_ticker", None)
        if ticker is not None:
            ticker.stop()
            self._ticker = None

    def action_copy_url(self) -> None:
        if self._login is not None and hasattr(self._login, "authorize_url"):
            self.app.copy_to_clipboard(self._login.authorize_url)
            self.notify("Sign-in URL copied to the clipboard.")

    def action_open_browser(self) -> None:
        if self._login is not None and hasattr(self._login, "open_browser"):
            if not self._login.open_browser():
                self.notify("No browser could be opened here: copy the URL instead.",
                            severity="warning")

    @on(Button.Pressed, "#demo-sign-in")
    def _demo_sign_in(self) -> None:
        if self._login is not None and self.demo is not None:
            self.query_one("#demo-sign-in", Button).disabled = True
            self.drive_demo_sign_in(self._login)

    @work(thread=True, group="demo-sign-in", exit_on_error=False,
          description="Signing in as the demo admin")
    def drive_demo_sign_in(self, login: Any) -> None:
        # The connect worker is already waiting on the callback server; this plays the browser.
        assert self.demo is not None
        try:
            demo_service.drive_login_page(login.authorize_url, login.redirect_uri,
                                          self.demo.admin, ca_bundle=self.demo.ca_file)
        except demo_service.DemoError as exc:
            self.app.call_from_thread(self.notify, str(exc), severity="error", markup=False)
        finally:
            self.app.call_from_thread(self._demo_button_ready)

    def _demo_button_ready(self) -> None:
        for button in self.query("#demo-sign-in"):
            button.disabled = False

    @on(Button.Pressed, "#cancel, #device-cancel")
    def _cancel_pressed(self) -> None:
        self.action_back()

    def action_back(self) -> None:
        if self._step in ("step-waiting", "step-device"):
            if self._login is not None:
                self._login.cancel()  # the worker ends with "Sign-in cancelled"
            return
        if self._step == "step-error":
            self._show("step-form")
            return
        self.dismiss()

    def on_unmount(self) -> None:
        if self._login is not None:
            self._login.cancel()

    # --- outcomes -------------------------------------------------------------------------

    def on_connect_salesforce_screen_connected(self, event: Connected) -> None:
        self._stop_ticker()
        self._login = None
        result = event.result
        self.query_one("#connect", Button).disabled = False
        self.query_one("#connected-title", Static).update(
            f"✓ Connected to {result.org.org_name or 'Salesforce'} · {result.environment}")
        rows = self.query_one("#connected-rows", Grid)
        rows.remove_children()
        widgets = []
        for key, value in result.rows():
            widgets.append(Label(key, classes="kv-key"))
            cls = "kv-value"
            if value.startswith("✗"):
                cls += " -fail"
            elif value.startswith("?"):
                cls += " -warn"
            elif key == "Type":
                cls += " -warn" if value == "Production" else ""
            widgets.append(Static(value, classes=cls, markup=False))
        rows.mount_all(widgets)
        box = self.query_one("#connected-warnings", Vertical)
        box.remove_children()
        box.mount_all([Static(w, classes="warning", markup=False) for w in result.warnings])
        box.display = bool(result.warnings)
        self._show("step-connected")
        self.notify(f"Connected to Salesforce: {result.org.org_name}", markup=False)

    def on_connect_salesforce_screen_failed(self, event: Failed) -> None:
        self._stop_ticker()
        self._login = None
        self.query_one("#connect", Button).disabled = False
        msg = event.message
        if event.in_form:
            self._form_error(msg)
            self._show("step-form")
            return
        if msg.severity == "warning" and msg.title.startswith("Sign-in cancelled"):
            self._show("step-form")
            self.notify(f"{msg.title} {msg.detail}", severity="warning", markup=False)
            return
        self.query_one("#error-title", Static).update(f"✗ {msg.title}")
        self.query_one("#error-detail", Static).update(msg.detail)
        fix = self.query_one("#error-fix", Static)
        fix.update(f"What to do: {msg.fix}" if msg.fix else "")
        fix.display = bool(msg.fix)
        use_port = self.query_one("#use-port", Button)
        use_port.display = msg.suggested_port is not None
        if msg.suggested_port is not None:
            use_port.label = f"Use port {msg.suggested_port}"
            self._suggested_port = msg.suggested_port
        self._show("step-error")

    @on(Button.Pressed, "#retry")
    def _retry(self) -> None:
        self._show("step-form")

    @on(Button.Pressed, "#use-port")
    def _use_port(self) -> None:
        self.query_one("#port", Input).value = str(self._suggested_port)
        self._show("step-form")
        self.action_connect()

    @on(Button.Pressed, "#error-back, #done")
    def _leave(self) -> None:
        self.dismiss()
