"""Connecting Salesforce end to end against the Salesforce sandbox (HTTPS, its own CA).

The browser is played over HTTP here (GET the authorize page, POST the login form, follow the
redirect to the callback server), exactly as the sandbox's page would be used; the real
Chromium run is test_connect_browser.py. Every failure path checks the message the admin
reads and that nothing was stored.
"""

from __future__ import annotations

import io
import re
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import redirect_stdout
from typing import Any

import httpx
import pytest

from lc_console import cli, secrets, settings
from lc_console.salesforce import device_flow, tokens
from lc_console.secrets import SecretKind
from lc_console.services import connect
from lc_console.services import status as status_service
from lc_console.services.connect import ConnectError

PROFILE = "default"


@pytest.fixture(autouse=True)
def fresh_managers() -> Iterator[None]:
    tokens._managers.clear()
    yield
    tokens._managers.clear()


@pytest.fixture
def sb(salesforce_sandbox: Any) -> Any:
    """The sandbox, with the profile trusting its CA (as `lc-console demo` sets it up)."""
    cfg = settings.Settings()
    cfg.tls.ca_bundle = salesforce_sandbox.ca_file
    settings.save(PROFILE, cfg)
    return salesforce_sandbox


def nothing_stored() -> bool:
    stored = secrets.status(PROFILE)
    sf = settings.load(PROFILE).salesforce
    return (not stored[SecretKind.SALESFORCE_REFRESH_TOKEN]
            and not stored[SecretKind.SALESFORCE_ACCESS_TOKEN]
            and sf.instance_url == "" and sf.org_id == "")


class Browser:
    """Plays the admin's browser on the sandbox's authorize page."""

    def __init__(self, sb: Any):
        self.sb = sb
        self.client = httpx.Client(verify=ssl.create_default_context(cafile=sb.ca_file), timeout=10)
        self.callback: httpx.Response | None = None

    def sign_in(self, url: str, *, user: Any = None, action: str = "Allow",
                tamper_state: bool = False) -> None:
        user = user or self.sb.admin
        page = self.client.get(url)
        assert page.status_code == 200, page.text
        request_id = re.search(r'name="request_id" value="([^"]+)"', page.text)
        assert request_id, page.text
        form = {"request_id": request_id.group(1), "action": action}
        if action == "Allow":
            form.update(username=user.username, password=user.password)
        answer = self.client.post(f"{self.sb.url}/services/oauth2/authorize", data=form)
        assert answer.status_code == 302, answer.text
        location = answer.headers["Location"]
        if tamper_state:
            location = re.sub(r"state=[^&]+", "state=forged", location)
        self.callback = httpx.get(location, timeout=10)

    def sign_in_later(self, login: Any, **kw: Any) -> threading.Thread:
        t = threading.Thread(target=self.sign_in, args=(login.authorize_url,), kwargs=kw)
        t.start()
        return t


def web_login(sb: Any, **plan_kw: Any) -> connect.WebLogin:
    plan = connect.plan_salesforce(PROFILE, env=sb.url, client_id=sb.client_id, **plan_kw)
    return connect.start_web_login(plan)


# --- success -------------------------------------------------------------------------------------


def test_web_flow_connects_and_stores(sb: Any) -> None:
    login = web_login(sb)
    assert login.authorize_url.startswith(f"{sb.url}/services/oauth2/authorize?")
    assert "code_challenge=" in login.authorize_url and "code_challenge_method=S256" in login.authorize_url
    browser = Browser(sb)
    t = browser.sign_in_later(login)
    result = login.wait()
    t.join()
    assert browser.callback is not None and browser.callback.status_code == 200
    assert 'data-outcome="success"' in browser.callback.text

    assert result.org.org_name == "LostChurn Sandbox Org"
    assert result.org.kind == "Production"
    assert result.org.username == sb.admin.username
    assert result.org.api_limit and result.org.api_used is not None
    assert all(p.granted for p in result.org.permissions)
    rows = dict(result.rows())
    assert rows["Type"] == "Production" and rows["Instance"] == sb.url

    cfg = settings.load(PROFILE).salesforce
    assert (cfg.instance_url, cfg.environment, cfg.login_url, cfg.client_id) == (
        sb.url, "custom", sb.url, sb.client_id)
    assert cfg.org_id == result.org.org_id and cfg.user_id == sb.admin.id
    assert cfg.username == sb.admin.username and cfg.org_name == result.org.org_name
    assert cfg.callback_port == 1717 and not cfg.connection_expired
    refresh = secrets.get(PROFILE, SecretKind.SALESFORCE_REFRESH_TOKEN)
    access = secrets.get(PROFILE, SecretKind.SALESFORCE_ACCESS_TOKEN)
    assert refresh and access and access.startswith(cfg.org_id[:15] + "!")
    st = status_service.gather(PROFILE)
    assert st.salesforce.connection is status_service.Connection.CONNECTED


def test_user_without_customize_application_is_told_what_is_missing(sb: Any) -> None:
    login = web_login(sb)
    t = Browser(sb).sign_in_later(login, user=sb.user)
    result = login.wait()
    t.join()
    missing = [p.label for p in result.org.missing_permissions]
    assert missing == ["Customize Application"]
    assert any(w.startswith("Customize Application is missing: installing the LostChurn "
                            "objects and fields needs it. In Setup, add 'Customize Application'")
               for w in result.warnings)
    assert "✗ Customize Application: missing" in [v for _, v in result.rows()]


def test_sandbox_org_and_live_stripe_key_warns(salesforce_sandbox: Any) -> None:
    from lc_console.sandbox.salesforce import SalesforceSandbox

    with SalesforceSandbox(is_sandbox=True) as sandbox_org:
        cfg = settings.Settings()
        cfg.tls.ca_bundle = sandbox_org.ca_file
        cfg.stripe.mode = "live"
        cfg.stripe.account_id = "acct_1"
        settings.save(PROFILE, cfg)
        secrets.put(PROFILE, SecretKind.STRIPE_API_KEY, "rk_" "live_1234567890abcdef")
        login = web_login(sandbox_org)
        t = Browser(sandbox_org).sign_in_later(login)
        result = login.wait()
        t.join()
    assert result.org.kind == "Sandbox"
    assert ("A Sandbox org with a live Stripe key: real customers' data would go to a sandbox."
            in result.warnings)


# --- failures: nothing stored ---------------------------------------------------------------------


def test_deny(sb: Any) -> None:
    login = web_login(sb)
    browser = Browser(sb)
    t = browser.sign_in_later(login, action="Deny")
    with pytest.raises(ConnectError) as info:
        login.wait()
    t.join()
    assert info.value.message.title == "You pressed Deny in Salesforce."
    assert "Nothing was stored" in info.value.message.detail
    assert browser.callback is not None and 'data-outcome="denied"' in browser.callback.text
    assert nothing_stored()


def test_timeout(sb: Any) -> None:
    login = web_login(sb, timeout=0.5)
    with pytest.raises(ConnectError) as info:
        login.wait()
    assert info.value.message.title == "No answer from the browser within 0.5 seconds."
    assert "--device" in info.value.message.fix
    assert nothing_stored()
    # the port is released for the next attempt
    web_login(sb).cancel()


def test_state_mismatch(sb: Any) -> None:
    login = web_login(sb)
    browser = Browser(sb)
    t = browser.sign_in_later(login, tamper_state=True)
    with pytest.raises(ConnectError) as info:
        login.wait()
    t.join()
    assert info.value.message.title == "The browser's answer belongs to another sign-in attempt."
    assert browser.callback is not None and browser.callback.status_code == 400
    assert nothing_stored()


def test_cancel(sb: Any) -> None:
    login = web_login(sb)
    threading.Timer(0.2, login.cancel).start()
    with pytest.raises(ConnectError) as info:
        login.wait()
    assert info.value.message.title == "Sign-in cancelled."
    assert nothing_stored()


def test_unknown_client_id_is_caught_before_the_browser_opens(sb: Any) -> None:
    plan = connect.plan_salesforce(PROFILE, env=sb.url, client_id="3MVG9NotARealConsumerKey")
    with pytest.raises(ConnectError) as info:
        connect.start_web_login(plan)
    msg = info.value.message
    assert msg.title == "Salesforce does not know this client id."
    assert "invalid_client_id (client identifier invalid)" in msg.detail
    assert "Manage Consumer Details" in msg.fix
    assert nothing_stored()
    web_login(sb).cancel()  # the callback port was released


def test_callback_url_not_on_the_connected_app(sb: Any) -> None:
    plan = connect.plan_salesforce(PROFILE, env=sb.url, client_id=sb.client_id, port=1720)
    with pytest.raises(ConnectError) as info:
        connect.start_web_login(plan)
    msg = info.value.message
    assert msg.title == ("The connected app does not list the callback URL "
                         "http://localhost:1720/OAuth/Callback.")
    assert "redirect_uri_mismatch" in msg.detail
    assert nothing_stored()


def test_port_taken_names_the_holder_and_the_next_port_works(sb: Any) -> None:
    with socket.socket() as squatter:
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        squatter.bind(("127.0.0.1", 1717))
        squatter.listen()
        with pytest.raises(ConnectError) as info:
            web_login(sb)
        msg = info.value.message
        assert msg.title.startswith("Port 1717 is in use by ")
        assert "pid" in msg.title
        assert msg.suggested_port == 1718
        login = web_login(sb, port=msg.suggested_port)
        t = Browser(sb).sign_in_later(login)
        result = login.wait()
        t.join()
    assert result.org.org_id
    assert settings.load(PROFILE).salesforce.callback_port == 1718


def test_unreachable_login_host(sb: Any) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]
    plan = connect.plan_salesforce(PROFILE, env=f"https://127.0.0.1:{dead}", client_id="x")
    with pytest.raises(ConnectError) as info:
        connect.start_web_login(plan)
    assert info.value.message.title == f"Could not reach https://127.0.0.1:{dead}."


def test_untrusted_certificate_says_how_to_trust_it(sb: Any) -> None:
    settings.save(PROFILE, settings.Settings())  # no tls.ca_bundle
    plan = connect.plan_salesforce(PROFILE, env=sb.url, client_id=sb.client_id)
    with pytest.raises(ConnectError) as info:
        connect.start_web_login(plan)
    assert "tls.ca_bundle" in info.value.message.detail


# --- token lifecycle -------------------------------------------------------------------------------


def connected(sb: Any) -> tokens.TokenManager:
    login = web_login(sb)
    t = Browser(sb).sign_in_later(login)
    login.wait()
    t.join()
    return tokens.manager_for(PROFILE)


def refreshes(sb: Any) -> int:
    return sum(1 for r in sb.requests() if r["path"].startswith("/services/oauth2/token"))


def test_expired_session_refreshes_once_transparently(sb: Any) -> None:
    manager = connected(sb)
    client = manager.salesforce()
    before = secrets.get(PROFILE, SecretKind.SALESFORCE_ACCESS_TOKEN)
    assert client.query("SELECT Id FROM Organization")["totalSize"] == 1
    base = refreshes(sb)
    sb.expire_tokens()
    # REST through simple-salesforce: the 401 INVALID_SESSION_ID is fixed under it
    assert client.query("SELECT Id FROM Organization")["totalSize"] == 1
    assert client.Contact.describe()["name"] == "Contact"  # SFType shares the new token
    assert refreshes(sb) == base + 1
    after = secrets.get(PROFILE, SecretKind.SALESFORCE_ACCESS_TOKEN)
    assert after != before and client.session_id == after
    assert client.headers["Authorization"] == f"Bearer {after}"
    # a second client built before the refresh does not refresh again
    statuses = [r["status"] for r in sb.requests()]
    assert 401 in statuses


def test_concurrent_clients_refresh_once(sb: Any) -> None:
    manager = connected(sb)
    clients = [manager.salesforce() for _ in range(4)]
    sb.expire_tokens()
    base = refreshes(sb)
    errors: list[BaseException] = []

    def use(c: Any) -> None:
        try:
            c.query("SELECT Id FROM Organization")
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=use, args=(c,)) for c in clients]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert refreshes(sb) == base + 1


def test_revoked_refresh_token_leads_to_expired_state_and_reconnect_clears_it(sb: Any) -> None:
    manager = connected(sb)
    client = manager.salesforce()
    sb.revoke(secrets.get(PROFILE, SecretKind.SALESFORCE_REFRESH_TOKEN))
    sb.expire_tokens()
    with pytest.raises(tokens.ConnectionExpired):
        client.query("SELECT Id FROM Organization")
    assert settings.load(PROFILE).salesforce.connection_expired
    st = status_service.gather(PROFILE)
    assert st.salesforce.connection is status_service.Connection.EXPIRED
    assert st.next_steps[0].title == "Reconnect Salesforce"
    msg = connect.describe_error(tokens.ConnectionExpired("invalid_grant", "expired access/refresh token"))
    assert msg.title == "The Salesforce connection has expired."
    assert "resumes" in msg.fix
    # later clients fail fast, without asking Salesforce
    with pytest.raises(tokens.ConnectionExpired):
        manager.salesforce()
    # reconnecting clears it
    connected(sb)
    assert not settings.load(PROFILE).salesforce.connection_expired
    assert tokens.manager_for(PROFILE).salesforce().query("SELECT Id FROM Organization")["totalSize"] == 1


def test_call_retries_a_whole_operation_once(sb: Any) -> None:
    manager = connected(sb)
    client = manager.salesforce()
    calls = []

    def op(c: Any) -> int:
        calls.append(c.session_id)
        return int(c.query("SELECT Id FROM Organization")["totalSize"])

    sb.expire_tokens()
    assert manager.call(op, client) == 1
    assert len(calls) == 1  # the adapter fixed it under the operation


# --- device flow -------------------------------------------------------------------------------------


def approve_device(sb: Any, user_code: str, action: str = "Allow") -> httpx.Response:
    with httpx.Client(verify=ssl.create_default_context(cafile=sb.ca_file), timeout=10) as c:
        return c.post(f"{sb.url}/setup/connect", data={
            "user_code": user_code, "username": sb.admin.username,
            "password": sb.admin.password, "action": action})


def test_device_flow_with_slow_down(sb: Any) -> None:
    sb.config.device_interval_seconds = 0.2
    plan = connect.plan_salesforce(PROFILE, env=sb.url, client_id=sb.client_id)
    login = connect.start_device_login(plan)
    assert login.verification_uri == f"{sb.url}/setup/connect"
    assert re.fullmatch(r"[A-Z0-9]{8}", login.user_code)
    asked: list[float] = []

    def sleep(seconds: float) -> None:
        asked.append(seconds)
        if len(asked) == 3:
            approve_device(sb, login.user_code)
        time.sleep(0 if len(asked) <= 2 else 0.25)  # the second poll comes too fast

    with httpx.Client(verify=ssl.create_default_context(cafile=sb.ca_file)) as client:
        tok = device_flow.poll(client, sb.url, sb.client_id, login.code, sleep=sleep)
    # the console never polls faster than once a second; slow_down adds 5 s for good
    assert asked[:3] == [1.0, 1.0, 6.0]
    assert tok.refresh_token and tok.org_id


def test_device_flow_connects_through_the_service(sb: Any) -> None:
    sb.config.device_interval_seconds = 0.2
    plan = connect.plan_salesforce(PROFILE, env=sb.url, client_id=sb.client_id)
    login = connect.start_device_login(plan)
    threading.Timer(0.3, approve_device, args=(sb, login.user_code)).start()
    result = login.wait()
    assert result.org.username == sb.admin.username
    assert secrets.get(PROFILE, SecretKind.SALESFORCE_REFRESH_TOKEN)


def test_device_flow_denied_and_expired(sb: Any) -> None:
    sb.config.device_interval_seconds = 0.2
    plan = connect.plan_salesforce(PROFILE, env=sb.url, client_id=sb.client_id)
    login = connect.start_device_login(plan)
    assert "denied" in approve_device(sb, login.user_code, action="Deny").text
    with pytest.raises(ConnectError) as info:
        login.wait()
    assert info.value.message.title == "You pressed Deny in Salesforce."

    login = connect.start_device_login(plan)
    sb.advance_clock(11 * 60)
    with pytest.raises(ConnectError) as info:
        login.wait()
    assert info.value.message.title == "The device code expired before it was approved."
    assert nothing_stored()


# --- CLI ------------------------------------------------------------------------------------------------


class LineTap(io.TextIOBase):
    """stdout for an in-process CLI run: keeps lines and wakes a waiter on each."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self._buf = ""
        self.event = threading.Event()

    def write(self, s: str) -> int:
        self._buf += s
        while "\n" in self._buf:
            line, self._buf = self._buf.split("\n", 1)
            self.lines.append(line)
            self.event.set()
        return len(s)


def run_cli(args: list[str], on_line: Any = None) -> tuple[int, list[str]]:
    tap = LineTap()
    result: dict[str, int] = {}

    def target() -> None:
        with redirect_stdout(tap):
            result["rc"] = cli.main(args)

    t = threading.Thread(target=target)
    t.start()
    handled = 0
    while t.is_alive():
        tap.event.wait(0.05)
        tap.event.clear()
        while on_line and handled < len(tap.lines):
            on_line(tap.lines[handled])
            handled += 1
    t.join()
    return result["rc"], tap.lines


def test_cli_no_browser_prints_the_url_on_its_own_line_and_connects(sb: Any, capsys: Any) -> None:
    browser = Browser(sb)

    def on_line(line: str) -> None:
        if line.startswith("https://"):
            threading.Thread(target=browser.sign_in, args=(line,)).start()

    rc, lines = run_cli(["connect", "salesforce", "--env", sb.url, "--client-id", sb.client_id,
                         "--no-browser"], on_line)
    assert rc == 0, capsys.readouterr().err
    url_lines = [ln for ln in lines if "/services/oauth2/authorize?" in ln]
    assert len(url_lines) == 1 and url_lines[0].startswith(f"{sb.url}/services/oauth2/authorize?")
    assert "Connected to Salesforce: My Domain" in "\n".join(lines)
    assert any(ln.strip().startswith("Org:") and "LostChurn Sandbox Org" in ln for ln in lines)
    err = capsys.readouterr().err
    assert "Open this URL in a browser" in err

    rc, lines = run_cli(["status", "--json"])
    assert rc == 0
    assert '"connection": "connected"' in "\n".join(lines)


def test_cli_failure_exits_non_zero_with_the_message(sb: Any, capsys: Any) -> None:
    rc, _ = run_cli(["connect", "salesforce", "--env", "https://acme.lightning.force.com",
                     "--client-id", "x", "--no-browser"])
    assert rc == 1
    err = capsys.readouterr().err
    assert "error: That login URL cannot be used." in err
    assert "https://acme.my.salesforce.com" in err

    def deny(line: str) -> None:
        if line.startswith("https://"):
            threading.Thread(target=Browser(sb).sign_in, args=(line,),
                             kwargs={"action": "Deny"}).start()

    rc, _ = run_cli(["connect", "salesforce", "--env", sb.url, "--client-id", sb.client_id,
                     "--no-browser"], deny)
    assert rc == 1
    assert "error: You pressed Deny in Salesforce." in capsys.readouterr().err
    assert nothing_stored()


def test_cli_device(sb: Any, capsys: Any) -> None:
    sb.config.device_interval_seconds = 0.2
    seen: list[str] = []

    def on_line(line: str) -> None:
        seen.append(line)
        if re.fullmatch(r"[A-Z0-9]{8}", line):
            threading.Timer(0.2, approve_device, args=(sb, line)).start()

    rc, lines = run_cli(["connect", "salesforce", "--env", sb.url, "--client-id", sb.client_id,
                         "--device"], on_line)
    assert rc == 0, capsys.readouterr().err
    assert lines[0] == f"{sb.url}/setup/connect"
    assert "Connected to Salesforce" in "\n".join(lines)


# --- doctor ------------------------------------------------------------------------------------------


def test_doctor_checks(sb: Any) -> None:
    from lc_console.services import doctor

    assert doctor.check_callback_port(PROFILE).ok
    with socket.socket() as squatter:
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        squatter.bind(("127.0.0.1", 1717))
        squatter.listen()
        check = doctor.check_callback_port(PROFILE)
        assert not check.ok and "Port 1717 is in use" in check.detail and "1718" in check.fix
    assert doctor.check_connections(PROFILE).ok  # nothing connected: nothing to check
    connected(sb)
    check = doctor.check_connections(PROFILE)
    assert check.ok and "Salesforce LostChurn Sandbox Org answers" in check.detail
    sb.revoke(secrets.get(PROFILE, SecretKind.SALESFORCE_REFRESH_TOKEN))
    sb.expire_tokens()
    check = doctor.check_connections(PROFILE)
    assert not check.ok and "has expired" in check.detail
    assert "lc-console connect salesforce" in check.fix


# --- the screen, end to end ---------------------------------------------------------------------


async def test_screen_connects_against_the_sandbox(sb: Any) -> None:
    from textual.widgets import Button, ContentSwitcher, Input, RadioButton, RadioSet

    from lc_console.app import make_app
    from lc_console.screens.connect_salesforce import ConnectSalesforceScreen

    app = make_app(PROFILE)
    async with app.run_test(size=(100, 32)) as pilot:
        await pilot.press("c")  # from home
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, ConnectSalesforceScreen)
        list(screen.query_one("#env", RadioSet).query(RadioButton))[2].value = True
        await pilot.pause()
        screen.query_one("#domain", Input).value = sb.url
        screen.query_one("#client-id", Input).value = sb.client_id
        list(screen.query_one("#method", RadioSet).query(RadioButton))[1].value = True
        await pilot.pause()
        screen.query_one("#connect", Button).press()

        def current() -> str:
            return str(screen.query_one("#steps", ContentSwitcher).current)

        for _ in range(500):
            await pilot.pause(0.02)
            if current() == "step-waiting":
                break
        assert current() == "step-waiting"
        url = screen._login.authorize_url
        browser = Browser(sb)
        t = threading.Thread(target=browser.sign_in, args=(url,))
        t.start()
        for _ in range(500):
            await pilot.pause(0.02)
            if current() != "step-waiting":
                break
        t.join()
        assert current() == "step-connected"
        assert secrets.get(PROFILE, SecretKind.SALESFORCE_REFRESH_TOKEN)
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, ConnectSalesforceScreen)
