"""`lc-console demo`: both sandboxes in a child process, the separate demo profile, "sign in as
the demo admin" through the real OAuth path, the Stripe key check, stopping, the console in
demo mode (Pilot and snapshot) and the real command.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import keyring
import pytest

from lc_console import net, paths, secrets, settings
from lc_console.app import HOME
from lc_console.salesforce import tokens
from lc_console.secrets import SecretKind
from lc_console.services import demo
from lc_console.services import status as status_service
from lc_console.services.connect import ConnectError

DEMO = demo.DEMO_PROFILE


@pytest.fixture(autouse=True)
def fresh_managers() -> Iterator[None]:
    tokens._managers.clear()
    yield
    tokens._managers.clear()


@pytest.fixture
def session() -> Iterator[demo.DemoSession]:
    demo.wipe()
    s = demo.start("small", 1)
    yield s
    s.stop()


def port_open(url: str) -> bool:
    parts = urlsplit(url)
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex((parts.hostname or "127.0.0.1", parts.port or 0)) == 0


# --- the service --------------------------------------------------------------------------------


def test_start_runs_both_sandboxes_and_writes_the_demo_settings(session: demo.DemoSession) -> None:
    assert session.running and demo.current() is session and demo.current("default") is None
    cfg = settings.load(DEMO)
    assert (cfg.salesforce.environment, cfg.salesforce.login_url, cfg.salesforce.client_id) == (
        "custom", session.salesforce_url, session.client_id)
    assert cfg.tls.ca_bundle == session.ca_file and Path(cfg.tls.ca_bundle).is_file()
    assert cfg.stripe.api_base == session.stripe_url and cfg.stripe.mode == "test"
    # Nothing of a real profile was written.
    assert not paths.config_file("default").exists()
    # Both answer: Salesforce over HTTPS trusted through the CA the settings name.
    with net.http_client(cfg.tls.ca_bundle) as client:
        versions = client.get(f"{session.salesforce_url}/services/data/")
        assert versions.status_code == 200 and versions.json()[0]["version"]
    unauthorized = httpx.get(f"{session.stripe_url}/v1/customers", timeout=5)
    assert unauthorized.status_code == 401
    # The state of the demo lives under the demo profile's data dir.
    assert session.log_file.parent == paths.data_dir(DEMO) / "sandboxes"
    assert session.admin.username.startswith("admin@")
    hints = session.hints()
    assert session.admin.password in hints[0] and session.restricted_key in hints[1]
    assert session.restricted_key.startswith("rk_test_")
    assert session.admin.password not in repr(session)
    assert session.restricted_key not in repr(session)


def test_sign_in_as_the_demo_admin_runs_the_real_oauth_path(
        session: demo.DemoSession, memory_keyring: Any) -> None:
    result = demo.connect_salesforce(session)
    assert result.org.org_name == "LostChurn Sandbox Org"
    assert result.org.kind == "Sandbox" and not result.warnings  # test key + Sandbox org
    assert result.org.username == session.admin.username
    assert all(p.granted for p in result.org.permissions)
    sf = settings.load(DEMO).salesforce
    assert sf.instance_url == session.salesforce_url and sf.username == session.admin.username
    assert secrets.get(DEMO, SecretKind.SALESFORCE_REFRESH_TOKEN)
    assert secrets.get(DEMO, SecretKind.SALESFORCE_ACCESS_TOKEN)
    # Every secret went to the demo profile, none to a real one.
    accounts = [account for (_, account) in memory_keyring.store]
    assert accounts and all(a.startswith(f"{DEMO}:") for a in accounts)
    assert status_service.gather(DEMO).salesforce.connection is status_service.Connection.CONNECTED
    # The callback server is gone: the port is free for the next sign-in.
    assert not port_open(f"http://127.0.0.1:{sf.callback_port}")


def test_stripe_restricted_key_check_passes(session: demo.DemoSession) -> None:
    result = demo.connect_stripe(session)
    assert result.stored and result.check.ok and not result.check.missing
    assert result.check.mode == "test" and str(result.check.kind).startswith("restricted")
    assert secrets.get(DEMO, SecretKind.STRIPE_API_KEY) == session.restricted_key
    assert secrets.get("default", SecretKind.STRIPE_API_KEY) is None


def test_a_wrong_demo_login_says_so_and_stores_nothing(session: demo.DemoSession) -> None:
    wrong = dataclasses.replace(session, admin=demo.DemoLogin(session.admin.username, "nope"))
    with pytest.raises(ConnectError) as info:
        demo.connect_salesforce(wrong)
    msg = info.value.message
    assert msg.title == "Could not sign in as the demo admin."
    assert "did not accept the demo login" in msg.detail
    assert not any(secrets.status(DEMO).values())
    assert settings.load(DEMO).salesforce.org_id == ""


def test_driver_follows_only_the_consoles_own_callback(session: demo.DemoSession) -> None:
    from lc_console.services import connect

    login = connect.start_web_login(connect.plan_salesforce(DEMO))
    try:
        with pytest.raises(demo.DemoError, match="not to http://127.0.0.1:1/OAuth/Callback"):
            demo.drive_login_page(login.authorize_url, "http://127.0.0.1:1/OAuth/Callback",
                                  session.admin, ca_bundle=session.ca_file)
    finally:
        login.cancel()
        login.server.close()


def test_stop_stops_both_sandboxes(session: demo.DemoSession) -> None:
    urls = (session.salesforce_url, session.stripe_url)
    assert all(port_open(u) for u in urls)
    session.stop()
    assert not session.running and demo.current() is None
    assert not any(port_open(u) for u in urls)
    session.stop()  # twice is harmless


def test_a_second_demo_starts_fresh_and_real_profiles_are_untouched(
        session: demo.DemoSession) -> None:
    secrets.put("default", SecretKind.STRIPE_API_KEY, "rk_test_real_profile_key")
    settings.save("default", settings.Settings())
    demo.connect_stripe(session)
    session.stop()
    removed = demo.wipe()
    assert removed[0] == "1 keyring secret" and any(r.startswith("settings (") for r in removed)
    assert any(r.startswith("state (") for r in removed)
    assert not paths.config_file(DEMO).exists() and not paths.data_dir(DEMO).exists()
    assert not any(secrets.status(DEMO).values())
    assert secrets.get("default", SecretKind.STRIPE_API_KEY) == "rk_test_real_profile_key"
    assert paths.config_file("default").exists()
    with pytest.raises(ValueError):
        demo.wipe("default")


def test_unknown_scenario_is_refused_before_anything_starts() -> None:
    with pytest.raises(demo.DemoError, match="choose one of small, demo, large, live"):
        demo.start("huge")


@pytest.mark.parametrize(("env", "platform", "expected"), [
    ({}, "linux", False),
    ({"DISPLAY": ":0"}, "linux", True),
    ({"WAYLAND_DISPLAY": "wayland-0"}, "linux", True),
    ({"DISPLAY": ":0", "SSH_CONNECTION": "10.0.0.1 5 10.0.0.2 22"}, "linux", False),
    ({}, "darwin", True),
    ({"SSH_TTY": "/dev/pts/1"}, "darwin", False),
    ({}, "win32", True),
])
def test_browser_available(env: dict[str, str], platform: str, expected: bool) -> None:
    assert demo.browser_available(env, platform) is expected


@pytest.mark.secret_service
def test_real_secret_service_holds_the_demo_tokens_under_the_demo_profile_only(
        secret_service: Any) -> None:
    demo.wipe()
    with demo.start("small", 1) as s:
        demo.connect_salesforce(s)
        assert demo.connect_stripe(s).stored
    try:
        for kind in SecretKind:
            assert keyring.get_password(secrets.SERVICE, f"{DEMO}:{kind.value}")
            assert keyring.get_password(secrets.SERVICE, f"default:{kind.value}") is None
    finally:
        assert len(demo.wipe()) == 3
    assert not any(secrets.status(DEMO).values())


# --- the console in demo mode ------------------------------------------------------------------


async def test_console_opens_with_the_demo_logins_then_signs_in_and_connects_stripe(
        session: demo.DemoSession, monkeypatch: pytest.MonkeyPatch) -> None:
    from textual.widgets import Button, ContentSwitcher, RadioButton, RadioSet, Static

    from lc_console.screens.connect_salesforce import ConnectSalesforceScreen
    from lc_console.screens.demo import DemoInfo, make_demo_app
    from lc_console.screens.home import HomeScreen

    for var in ("DISPLAY", "WAYLAND_DISPLAY"):
        monkeypatch.delenv(var, raising=False)
    app = make_demo_app(session)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        assert isinstance(app.screen, DemoInfo)
        shown = {w.id: str(w.render()) for w in app.screen.query(Static) if w.id}
        assert shown["demo-username"] == session.admin.username
        assert shown["demo-password"] == session.admin.password
        assert shown["demo-stripe-key"] == session.restricted_key
        assert shown["demo-org-url"] == session.salesforce_url
        await pilot.press("escape")
        await pilot.pause()
        # Under the panel: the setup wizard when the console has one, else Home.
        if importlib.util.find_spec("lc_console.screens.wizard") is not None:
            assert type(app.screen).__name__ == "WizardScreen"
        else:
            assert isinstance(app.screen, HomeScreen)
        await pilot.press("f2")
        await pilot.pause()
        assert isinstance(app.screen, DemoInfo)
        await pilot.press("s")  # Stripe with the sandbox's restricted key
        for _ in range(500):
            await pilot.pause(0.02)
            if not isinstance(app.screen, DemoInfo):
                break
        assert not isinstance(app.screen, DemoInfo)
        assert secrets.get(DEMO, SecretKind.STRIPE_API_KEY) == session.restricted_key

        # The Salesforce step (the wizard's and Home's both open this screen).
        screen = ConnectSalesforceScreen(DEMO)
        await app.push_screen(screen)
        await pilot.pause()
        assert session.admin.password in str(screen.query_one("#demo-login", Static).render())
        methods = list(screen.query_one("#method", RadioSet).query(RadioButton))
        assert methods[-1].id == "method-demo" and methods[-1].value  # no browser here
        screen.query_one("#connect", Button).press()

        def step() -> str:
            return str(screen.query_one("#steps", ContentSwitcher).current)

        for _ in range(1000):
            await pilot.pause(0.02)
            if step() in ("step-connected", "step-error"):
                break
        assert step() == "step-connected"
        assert "LostChurn Sandbox Org" in str(screen.query_one("#connected-title", Static).render())
    assert secrets.get(DEMO, SecretKind.SALESFORCE_REFRESH_TOKEN)


async def test_connect_screen_outside_the_demo_has_no_demo_sign_in(
        session: demo.DemoSession) -> None:
    from textual.widgets import RadioButton, RadioSet

    from lc_console.app import make_app
    from lc_console.screens.connect_salesforce import ConnectSalesforceScreen

    app = make_app("default")
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("c")
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, ConnectSalesforceScreen)
        assert len(list(screen.query_one("#method", RadioSet).query(RadioButton))) == 3
        assert not screen.query("#demo-login") and not screen.query("#demo-sign-in")


def _still_session() -> demo.DemoSession:
    """Fixed values for the snapshot (a real run has a random password and ports)."""
    return demo.DemoSession(
        profile=DEMO, scenario="live", seed=1, salesforce_url="https://127.0.0.1:50443",
        client_id="3MVG9lcConsoleSandbox.LocalConnectedApp0000000000000000000000000000000",
        ca_file="/tmp/lc-demo/ca.pem", admin=demo.DemoLogin("admin@lc-sandbox.example.com",
                                                            "Demo-Pass-1234"),
        stripe_url="http://127.0.0.1:50080",
        restricted_key="rk_test_51ZSrDTbpZyYqyqp7G6T8iuYZTCETo3WsUXjsclAtmQE3YFinAP4vpC1btz2tP"
                       "NL1LmDF6cMNs5MQ1Vue6CtBBOXXa6iIPedSqCe",
        log_file=Path("/tmp/lc-demo/sandboxes.log"))


def _write_still_settings(still: demo.DemoSession) -> None:
    demo.write_settings(still)
    cfg = settings.load(DEMO)
    cfg.salesforce.callback_port = 1717  # whatever else this machine holds right now
    settings.save(DEMO, cfg)


def test_snapshot_demo_first_screen(snap_compare: Any) -> None:
    from lc_console.screens.demo import make_demo_app

    still = _still_session()
    _write_still_settings(still)
    # Pinned to Home, so the picture changes only with the demo panel and Home.
    assert snap_compare(make_demo_app(still, first=HOME), terminal_size=(100, 30))


def test_snapshot_demo_first_screen_at_80x24(snap_compare: Any) -> None:
    from lc_console.screens.demo import make_demo_app

    still = _still_session()
    _write_still_settings(still)
    assert snap_compare(make_demo_app(still, first=HOME), terminal_size=(80, 24))


# --- the real command ------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.secret_service
def test_demo_command_without_console_connects_both_and_stops_on_ctrl_c(
        secret_service: Any, tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "lc_console", "--profile", "prod", "demo", "--no-console",
         "--scenario", "small"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=dict(os.environ))
    assert proc.stdout is not None and proc.stderr is not None
    try:
        deadline = time.monotonic() + 60
        line = ""
        while time.monotonic() < deadline and line != "ready\n":
            line = proc.stdout.readline()
            if not line:
                break
        assert line == "ready\n", proc.stderr.read() if proc.poll() is not None else "no ready"
        cfg = settings.load(DEMO)
        assert port_open(cfg.salesforce.login_url) and port_open(cfg.stripe.api_base)
        assert secrets.get(DEMO, SecretKind.SALESFORCE_REFRESH_TOKEN)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    err = proc.stderr.read()
    assert "profile 'prod' is ignored and left untouched" in err
    assert "Salesforce: connected to LostChurn Sandbox Org as admin@" in err
    assert "Stripe: connected to" in err and "(test mode)" in err
    assert "Demo stopped: both sandboxes are shut down." in err
    assert not port_open(cfg.salesforce.login_url) and not port_open(cfg.stripe.api_base)
    assert not paths.config_file("prod").exists()
    demo.wipe()


@pytest.mark.slow
@pytest.mark.secret_service
def test_demo_command_in_a_terminal_shows_the_logins_and_quitting_stops_the_sandboxes(
        secret_service: Any, tmp_path: Path) -> None:
    """The real `lc-console demo` in a pseudo-terminal (tmux), bounded in time."""
    import re
    import shlex
    import shutil

    if shutil.which("tmux") is None:
        pytest.skip("needs tmux")
    sock = f"lc-demo-test-{os.getpid()}"
    env = " ".join(f"{k}={shlex.quote(v)}" for k, v in os.environ.items()
                   if k.startswith(("XDG_", "DBUS_", "LC_", "PATH", "HOME")))
    done = tmp_path / "exit"
    command = (f"env -u DISPLAY -u WAYLAND_DISPLAY {env} {shlex.quote(sys.executable)} -m "
               f"lc_console demo --scenario small; echo $? > {shlex.quote(str(done))}")
    tmux = ["tmux", "-L", sock]

    def screen() -> str:
        return subprocess.run(tmux + ["capture-pane", "-p", "-t", "demo"], capture_output=True,
                              text=True, timeout=10).stdout

    def wait_for(pred: Any, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if pred():
                return
            time.sleep(0.2)
        raise AssertionError(f"timed out; the terminal shows:\n{screen()}")

    subprocess.run(tmux + ["new-session", "-d", "-s", "demo", "-x", "100", "-y", "30",
                           "sh", "-c", command + "; sleep 60"], check=True, timeout=10)
    try:
        wait_for(lambda: "Demo · local sandboxes" in screen() and "Stripe key" in screen())
        text = screen()
        url = re.search(r"Org URL\s+(https://127\.0\.0\.1:\d+)", text)
        assert url and "admin@lc-sandbox.example.com" in text and "rk_test_" in text
        cfg = settings.load(DEMO)
        assert cfg.salesforce.login_url == url.group(1)
        assert port_open(cfg.salesforce.login_url) and port_open(cfg.stripe.api_base)
        subprocess.run(tmux + ["send-keys", "-t", "demo", "Escape"], check=True, timeout=10)
        wait_for(lambda: "Demo · local sandboxes" not in screen())
        subprocess.run(tmux + ["send-keys", "-t", "demo", "C-q"], check=True, timeout=10)
        wait_for(lambda: done.exists() and done.read_text().strip() != "", timeout=30)
        assert done.read_text().strip() == "0"
        assert "Demo stopped: both sandboxes are shut down." in screen()
        assert not port_open(cfg.salesforce.login_url) and not port_open(cfg.stripe.api_base)
    finally:
        subprocess.run(tmux + ["kill-server"], capture_output=True, timeout=10)
    demo.wipe()


def test_snapshot_connect_salesforce_in_the_demo_without_a_browser(
        snap_compare: Any, monkeypatch: pytest.MonkeyPatch, isolated_dirs: Path) -> None:
    from console_helpers import Host
    from textual.widgets import Input

    from lc_console.screens.connect_salesforce import ConnectSalesforceScreen

    monkeypatch.setenv("HOME", str(isolated_dirs.parent))
    monkeypatch.setattr(Input, "_toggle_cursor", lambda self: None)  # no blinking in pictures
    for var in ("DISPLAY", "WAYLAND_DISPLAY"):
        monkeypatch.delenv(var, raising=False)
    still = _still_session()
    _write_still_settings(still)
    monkeypatch.setattr(demo, "current", lambda profile=None: still)
    assert snap_compare(Host(lambda: ConnectSalesforceScreen(DEMO)), terminal_size=(100, 30))


@pytest.mark.skipif(sys.platform == "win32", reason="advisory locks are POSIX")
def test_only_one_demo_at_a_time() -> None:
    with demo.single_demo():
        with pytest.raises(demo.DemoError,
                           match=rf"Another `lc-console demo` is running \(process {os.getpid()}\)"):
            with demo.single_demo():
                pass
    with demo.single_demo():  # released when the first demo ended
        pass


def test_demo_command_defaults_to_the_live_scenario() -> None:
    from lc_console import cli

    args = cli.build_parser().parse_args(["demo"])
    assert (args.scenario, args.seed, args.no_console) == ("live", 1, False)
    assert args.handler.__module__ == "lc_console.cli.demo_cmd"


async def test_waiting_for_a_browser_that_never_opened_offers_the_demo_sign_in(
        session: demo.DemoSession) -> None:
    from textual.widgets import Button, ContentSwitcher, RadioButton, RadioSet

    from lc_console.screens.connect_salesforce import ConnectSalesforceScreen
    from lc_console.screens.demo import make_demo_app

    app = make_demo_app(session, show_info=False)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = ConnectSalesforceScreen(DEMO)
        await app.push_screen(screen)
        await pilot.pause()
        list(screen.query_one("#method", RadioSet).query(RadioButton))[1].value = True  # URL
        await pilot.pause()
        screen.query_one("#connect", Button).press()

        def step() -> str:
            return str(screen.query_one("#steps", ContentSwitcher).current)

        for _ in range(500):
            await pilot.pause(0.02)
            if step() == "step-waiting":
                break
        assert step() == "step-waiting"
        assert session.admin.password in str(screen.query_one("#waiting-help").render())
        button = screen.query_one("#demo-sign-in", Button)
        assert button.display
        button.press()
        for _ in range(1000):
            await pilot.pause(0.02)
            if step() != "step-waiting":
                break
        assert step() == "step-connected"
    assert secrets.get(DEMO, SecretKind.SALESFORCE_REFRESH_TOKEN)


def test_demo_settings_start_on_a_free_callback_port() -> None:
    from lc_console.salesforce import ports

    still = _still_session()
    registered = settings.Settings().salesforce.callback_ports
    free = [p for p in registered if ports.is_free(p)]
    if len(free) < 2:
        pytest.skip("needs two free callback ports")
    with socket.socket() as held:
        held.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # past a TIME_WAIT
        held.bind(("127.0.0.1", free[0]))
        held.listen()
        demo.write_settings(still)
    assert settings.load(DEMO).salesforce.callback_port == free[1]
    demo.write_settings(still)
    assert settings.load(DEMO).salesforce.callback_port == free[0]


async def test_stripe_step_in_the_demo_offers_the_sandbox_key(session: demo.DemoSession) -> None:
    from textual.widgets import Input, Static

    from lc_console.screens.connect_stripe import ConnectStripeScreen
    from lc_console.screens.demo import make_demo_app

    app = make_demo_app(session, show_info=False)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = ConnectStripeScreen(DEMO)
        await app.push_screen(screen)
        await pilot.pause()
        assert screen.query_one("#key", Input).value == session.restricted_key
        assert screen.query_one("#key", Input).password  # filled in, never shown
        assert "restricted key is filled in" in str(screen.query_one("#demo-key-hint",
                                                                     Static).render())
        await pilot.press("ctrl+s")
        for _ in range(500):
            await pilot.pause(0.02)
            if secrets.get(DEMO, SecretKind.STRIPE_API_KEY):
                break
    assert secrets.get(DEMO, SecretKind.STRIPE_API_KEY) == session.restricted_key
    assert settings.load(DEMO).stripe.mode == "test"
