"""Connect screens: snapshots of each step and Pilot flows, with a scripted service.

The screens talk to services.connect; here a fake service stands in for the network parts
(start_web_login / start_device_login / connect_stripe) so that the pictures are
deterministic. Input checks (plan_salesforce) and the error wording (describe_error) are the
real ones. test_connect_salesforce.py drives the same screens against the sandbox.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from textual.app import App
from textual.pilot import Pilot
from textual.widgets import Button, ContentSwitcher, Input, RadioSet, Static

from lc_console import settings, themes
from lc_console.app import make_app
from lc_console.salesforce import callback_server as cb
from lc_console.salesforce import oauth, ports
from lc_console.salesforce.org_info import OrgInfo, PermissionCheck
from lc_console.screens.connect_salesforce import ConnectSalesforceScreen
from lc_console.screens.connect_stripe import ConnectStripeScreen
from lc_console.services import connect
from lc_console.services.connect import ConnectError, SalesforceConnected, StripeConnected
from lc_console.stripe import keys

PROFILE = "default"
SIZE = (100, 32)


@pytest.fixture(autouse=True)
def still_clock(isolated_dirs: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(isolated_dirs.parent))
    monkeypatch.setattr(ConnectSalesforceScreen, "clock", staticmethod(lambda: 1000.0))
    monkeypatch.setattr(Input, "_toggle_cursor", lambda self: None)  # no blinking in pictures


ORG = OrgInfo(
    org_id="00D5g000004ABCDEAV", org_name="Acme Corp", edition="Enterprise Edition",
    is_sandbox=False, is_scratch=False, instance_name="NA224", user_id="0055g00000ABCDEAAA",
    username="admin@acme.example", user_display_name="Ada Admin", api_version="62.0",
    latest_api_version="64.0", api_limit=100000, api_used=1234,
    permissions=[
        PermissionCheck("API Enabled", "PermissionsApiEnabled", "every call", True, "granted"),
        PermissionCheck("Customize Application", "PermissionsCustomizeApplication",
                        "installing the LostChurn objects and fields", False,
                        "missing: installing needs it. In Setup, add 'Customize Application' to "
                        "the user's profile or assign a permission set that has it."),
    ],
)


class FakeWebLogin:
    def __init__(self, plan: connect.SalesforcePlan, outcome: Callable[[], SalesforceConnected]):
        self.plan = plan
        self.redirect_uri = oauth.redirect_uri(plan.port)
        self.authorize_url = (f"{plan.target.login_url}/services/oauth2/authorize?response_type=code"
                              f"&client_id={plan.client_id}&redirect_uri=http%3A%2F%2Flocalhost%3A"
                              f"{plan.port}%2FOAuth%2FCallback&state=STATE&code_challenge=CHALLENGE")
        self.outcome = outcome
        self.release = threading.Event()
        self.cancelled = threading.Event()
        self.opened = 0

    def open_browser(self) -> bool:
        self.opened += 1
        return False

    def cancel(self) -> None:
        self.cancelled.set()
        self.release.set()

    def wait(self) -> SalesforceConnected:
        self.release.wait(30)
        if self.cancelled.is_set():
            raise ConnectError(connect.describe_error(cb.CallbackCancelled()))
        return self.outcome()


class FakeDeviceLogin:
    def __init__(self, plan: connect.SalesforcePlan):
        self.plan = plan
        self.user_code = "KX4T-9QPZ"
        self.verification_uri = "https://login.salesforce.com/setup/connect"
        self.code = type("C", (), {"interval": 5.0})()
        self.release = threading.Event()

    def cancel(self) -> None:
        self.release.set()

    def wait(self) -> SalesforceConnected:
        self.release.wait(30)
        raise ConnectError(connect.describe_error(cb.CallbackCancelled()))


class FakeService:
    """services.connect with the network parts scripted."""

    plan_salesforce = staticmethod(connect.plan_salesforce)
    describe_error = staticmethod(connect.describe_error)

    def __init__(self, outcome: Callable[[], SalesforceConnected] | None = None,
                 start_error: BaseException | None = None,
                 stripe: Callable[[str], StripeConnected] | None = None) -> None:
        self.outcome = outcome or (lambda: SalesforceConnected(
            "Production (https://login.salesforce.com)", "https://acme.my.salesforce.com", ORG,
            ["Customize Application is missing: installing the LostChurn objects and fields "
             "needs it."]))
        self.start_error = start_error
        self.stripe = stripe
        self.logins: list[Any] = []

    def start_web_login(self, plan: connect.SalesforcePlan) -> FakeWebLogin:
        if self.start_error is not None:
            raise ConnectError(connect.describe_error(self.start_error))
        login = FakeWebLogin(plan, self.outcome)
        self.logins.append(login)
        return login

    def start_device_login(self, plan: connect.SalesforcePlan) -> FakeDeviceLogin:
        login = FakeDeviceLogin(plan)
        self.logins.append(login)
        return login

    def connect_stripe(self, profile: str, key: str) -> StripeConnected:
        assert self.stripe is not None
        return self.stripe(key)


class Host(App[None]):
    """The console's themes and stylesheets without its global keys, so that these pictures
    change only when the connect screens do (make_app is used by the Pilot flows)."""

    TITLE = "lc-console"
    CSS_PATH = themes.stylesheets()

    def __init__(self) -> None:
        super().__init__()
        for theme in themes.THEMES.values():
            self.register_theme(theme)
        self.theme = themes.DEFAULT_THEME

    def get_theme_variable_defaults(self) -> dict[str, str]:
        return dict(themes.VARIABLE_DEFAULTS)


async def until(pilot: Pilot[None], done: Callable[[], bool], timeout: float = 10.0) -> None:
    for _ in range(int(timeout / 0.02)):
        if done():
            await pilot.pause()
            return
        await pilot.pause(0.02)
    raise AssertionError("the screen did not settle")


def step(pilot: Pilot[None]) -> str:
    return str(pilot.app.screen.query_one("#steps", ContentSwitcher).current)


async def open_sf(pilot: Pilot[None], service: FakeService) -> ConnectSalesforceScreen:
    screen = ConnectSalesforceScreen(PROFILE, service=service)
    await pilot.app.push_screen(screen)
    await pilot.pause()
    return screen


async def fill_and_connect(pilot: Pilot[None], client_id: str = "3MVG9rZjd7MXFdLhEXAMPLEKEY",
                           method: int = 1) -> None:
    screen = pilot.app.screen
    screen.query_one("#client-id", Input).value = client_id
    radios = screen.query_one("#method", RadioSet)
    list(radios.query("RadioButton"))[method].value = True
    await pilot.pause()
    screen.query_one("#connect", Button).press()


# --- snapshots: Salesforce ---------------------------------------------------------------


def test_snapshot_salesforce_before(snap_compare: Any) -> None:
    async def run_before(pilot: Pilot[None]) -> None:
        await open_sf(pilot, FakeService())

    assert snap_compare(Host(), terminal_size=SIZE, run_before=run_before)


def test_snapshot_salesforce_waiting_for_browser(snap_compare: Any) -> None:
    service = FakeService()

    async def run_before(pilot: Pilot[None]) -> None:
        await open_sf(pilot, service)
        await fill_and_connect(pilot)
        await until(pilot, lambda: step(pilot) == "step-waiting")

    try:
        assert snap_compare(Host(), terminal_size=SIZE, run_before=run_before)
    finally:
        for login in service.logins:
            login.cancel()


def test_snapshot_salesforce_connected(snap_compare: Any) -> None:
    service = FakeService()

    async def run_before(pilot: Pilot[None]) -> None:
        await open_sf(pilot, service)
        await fill_and_connect(pilot)
        await until(pilot, lambda: bool(service.logins))
        service.logins[0].release.set()
        await until(pilot, lambda: step(pilot) == "step-connected")

    assert snap_compare(Host(), terminal_size=SIZE, run_before=run_before)


def test_snapshot_salesforce_error_port_in_use(snap_compare: Any) -> None:
    holder = ports.PortHolder(pid=4242, name="node", command="node /usr/bin/sf org login web")
    service = FakeService(start_error=cb.PortInUse(1717, holder, [1718]))

    async def run_before(pilot: Pilot[None]) -> None:
        await open_sf(pilot, service)
        await fill_and_connect(pilot)
        await until(pilot, lambda: step(pilot) == "step-error")

    assert snap_compare(Host(), terminal_size=SIZE, run_before=run_before)


def test_snapshot_salesforce_device_code(snap_compare: Any) -> None:
    service = FakeService()

    async def run_before(pilot: Pilot[None]) -> None:
        await open_sf(pilot, service)
        await fill_and_connect(pilot, method=2)
        await until(pilot, lambda: step(pilot) == "step-device")

    try:
        assert snap_compare(Host(), terminal_size=SIZE, run_before=run_before)
    finally:
        for login in service.logins:
            login.cancel()


def test_snapshot_salesforce_at_80x24(snap_compare: Any) -> None:
    async def run_before(pilot: Pilot[None]) -> None:
        await open_sf(pilot, FakeService())

    assert snap_compare(Host(), terminal_size=(80, 24), run_before=run_before)


# --- snapshots: Stripe -------------------------------------------------------------------------


def stripe_result(missing: set[str], stored: bool, mode: str = "live") -> StripeConnected:
    perms = [keys.PermissionResult(n.resource, n.permission, n.api_name, n.needed_for,
                                   n.resource not in missing,
                                   "granted" if n.resource not in missing else "add it")
             for n in keys.NEEDED]
    check = keys.KeyCheck(kind=keys.KeyKind.RESTRICTED, mode=mode, account_id="acct_1Nv0FGQ9RKHgCVdK",
                          account_name="Acme Billing", permissions=perms)
    return StripeConnected(check=check, stored=stored)


async def open_stripe(pilot: Pilot[None], service: FakeService) -> ConnectStripeScreen:
    screen = ConnectStripeScreen(PROFILE, service=service)
    await pilot.app.push_screen(screen)
    await pilot.pause()
    return screen


def test_snapshot_stripe_before(snap_compare: Any) -> None:
    async def run_before(pilot: Pilot[None]) -> None:
        await open_stripe(pilot, FakeService())

    assert snap_compare(Host(), terminal_size=SIZE, run_before=run_before)


def test_snapshot_stripe_missing_permissions(snap_compare: Any) -> None:
    service = FakeService(stripe=lambda key: stripe_result({"Refunds", "Events"}, stored=False))

    async def run_before(pilot: Pilot[None]) -> None:
        screen = await open_stripe(pilot, service)
        screen.query_one("#key", Input).value = "rk_" "live_51Nv0FGQ9RKHgCVdKsecretpart"
        await pilot.press("enter")
        await until(pilot, lambda: bool(screen.query_one("#stripe-result").display))

    assert snap_compare(Host(), terminal_size=SIZE, run_before=run_before)


def test_snapshot_stripe_publishable_key_refused(snap_compare: Any) -> None:
    def refuse(key: str) -> StripeConnected:
        raise ConnectError(connect.describe_error(keys.KeyRefused(
            f"{keys.mask(key)} is a publishable key. Publishable keys are meant for browsers "
            "and cannot read customers, invoices or events. Create a restricted key (rk_…).")))

    service = FakeService(stripe=refuse)

    async def run_before(pilot: Pilot[None]) -> None:
        screen = await open_stripe(pilot, service)
        screen.query_one("#key", Input).value = "pk_live_51Nv0FGQ9RKHgCVdKpublicpart"
        await pilot.press("enter")
        await until(pilot, lambda: "publishable" in str(screen.query_one("#key-status", Static).render()))

    assert snap_compare(Host(), terminal_size=SIZE, run_before=run_before)


# --- Pilot flows ---------------------------------------------------------------------------------


async def test_cancel_while_waiting_returns_to_the_form() -> None:
    service = FakeService()
    app = make_app(PROFILE)
    async with app.run_test(size=SIZE) as pilot:
        await open_sf(pilot, service)
        await fill_and_connect(pilot)
        await until(pilot, lambda: step(pilot) == "step-waiting")
        await pilot.press("escape")
        await until(pilot, lambda: step(pilot) == "step-form")
        assert service.logins[0].cancelled.is_set()
        assert not app.screen.query_one("#connect", Button).disabled


async def test_form_errors_stay_in_the_form() -> None:
    app = make_app(PROFILE)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_sf(pilot, FakeService())
        await fill_and_connect(pilot, client_id="")
        await until(pilot, lambda: "No client id" in str(screen.query_one("#form-error", Static).render()))
        assert step(pilot) == "step-form"
        list(screen.query_one("#env", RadioSet).query("RadioButton"))[2].value = True
        await pilot.pause()
        screen.query_one("#domain", Input).value = "https://acme.lightning.force.com"
        await fill_and_connect(pilot)
        await until(pilot, lambda: "acme.my.salesforce.com" in str(
            screen.query_one("#form-error", Static).render()))


async def test_copy_url_binding_only_while_waiting() -> None:
    service = FakeService()
    app = make_app(PROFILE)
    copied: list[str] = []
    app.copy_to_clipboard = copied.append  # type: ignore[method-assign]
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_sf(pilot, service)
        assert screen.check_action("copy_url", ()) is False
        await fill_and_connect(pilot)
        await until(pilot, lambda: step(pilot) == "step-waiting")
        await pilot.press("c")
        assert copied == [service.logins[0].authorize_url]
        await pilot.press("o")
        assert service.logins[0].opened == 1
        service.logins[0].release.set()
        await until(pilot, lambda: step(pilot) == "step-connected")
        await pilot.click("#done")
        await pilot.pause()
        assert not isinstance(app.screen, ConnectSalesforceScreen)


async def test_use_suggested_port_retries_with_it() -> None:
    holder = ports.PortHolder(pid=None, name="", user="postgres")
    service = FakeService(start_error=cb.PortInUse(1717, holder, [1719]))
    app = make_app(PROFILE)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_sf(pilot, service)
        await fill_and_connect(pilot)
        await until(pilot, lambda: step(pilot) == "step-error")
        assert "a process of user postgres" in str(screen.query_one("#error-title", Static).render())
        service.start_error = None
        screen.query_one("#use-port", Button).press()
        await until(pilot, lambda: bool(service.logins))
        assert service.logins[0].plan.port == 1719
        service.logins[0].release.set()
        await until(pilot, lambda: step(pilot) == "step-connected")


async def test_stripe_stored_clears_the_input() -> None:
    service = FakeService(stripe=lambda key: stripe_result(set(), stored=True))
    app = make_app(PROFILE)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_stripe(pilot, service)
        screen.query_one("#key", Input).value = "rk_" "live_51Nv0FGQ9RKHgCVdKsecretpart"
        await pilot.press("enter")
        await until(pilot, lambda: bool(screen.query_one("#stripe-result").display))
        assert screen.query_one("#key", Input).value == ""
        assert "stored in the OS keyring" in str(screen.query_one("#stripe-outcome", Static).render())
        assert settings.load(PROFILE).stripe.account_id == ""  # the fake stores nothing
