"""`lc-console demo`: the console against local sandboxes, in a profile of its own.

Both faces share this module: the CLI starts a DemoSession and opens the console; the connect
screen offers "Sign in as the demo admin" from here.

The two sandboxes run in ONE child process (`lc-console sandbox --json`), not in threads of
the console: the Salesforce sandbox's TLS handshakes and JSON work and the Stripe sandbox's live
billing simulation would otherwise compete with the TUI for the GIL, and a child process is
stopped completely (every port closed) by ending it. It runs in its own session (a Ctrl+C in
the terminal reaches the console, which stops it) and, on Linux, is told to end with its parent
(PR_SET_PDEATHSIG: the thread that calls start() must live as long as the demo, which the
CLI's main thread does), so a console killed outright leaves no sandbox behind.

The demo profile is wiped at every start (settings, keyring secrets, state), so a second
`lc-console demo` starts fresh; real profiles are never read or written here.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import IO, Any
from urllib.parse import urljoin, urlsplit

from lc_console import net, paths, secrets, settings

DEMO_PROFILE = "demo"
DEFAULT_SCENARIO = "live"  # events keep flowing, so the sync has something to do
SCENARIOS = ("small", "demo", "large", "live")
START_TIMEOUT = 120.0  # seconds for the sandboxes to be ready (the large scenario is slow)
STOP_TIMEOUT = 15.0


class DemoError(Exception):
    """The demo could not start or sign in; the message says why and what to do."""


@dataclass(frozen=True)
class DemoLogin:
    username: str
    password: str = field(repr=False)


@dataclass
class DemoSession:
    """Running sandboxes and what the admin needs to connect them."""

    profile: str
    scenario: str
    seed: int
    salesforce_url: str
    client_id: str
    ca_file: str
    admin: DemoLogin
    stripe_url: str
    restricted_key: str = field(repr=False)
    log_file: Path
    _process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def stop(self) -> None:
        """Stop both sandboxes (their state files are saved on the way out)."""
        global _current
        proc, self._process = self._process, None
        if _current is self:
            _current = None
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()

    def hints(self) -> list[str]:
        """The lines the admin needs, as both faces show them."""
        return [
            f"Demo org: {self.salesforce_url} (My Domain URL) · sign in as "
            f"{self.admin.username} / {self.admin.password}",
            f"Stripe restricted key: {self.restricted_key}",
        ]

    def __enter__(self) -> DemoSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


# The session running in this process, for the screens (one demo per console).
_current: DemoSession | None = None


def current(profile: str | None = None) -> DemoSession | None:
    """The running demo session (for `profile`, when given), or None."""
    session = _current
    if session is None or not session.running:
        return None
    if profile is not None and profile != session.profile:
        return None
    return session


# --- the demo profile ---------------------------------------------------------------------


def state_dir(profile: str = DEMO_PROFILE) -> Path:
    """Where a demo keeps its sandboxes' state and log: under the profile's data dir."""
    return paths.data_dir(profile) / "sandboxes"


@contextmanager
def single_demo() -> Iterator[None]:
    """Held for a demo's lifetime: a second `lc-console demo` would wipe this one's profile."""
    try:
        import fcntl
    except ImportError:  # Windows: no advisory locks here; nothing to guard with
        yield
        return
    path = paths.data_dir(DEMO_PROFILE).parent / "demo.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as fh:  # not inherited by the sandboxes' process (O_CLOEXEC)
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            holder = fh.read().strip()
            raise DemoError("Another `lc-console demo` is running"
                            + (f" (process {holder})" if holder else "")
                            + ". Quit it first: each demo starts by wiping the demo "
                            "profile.") from None
        fh.seek(0)
        fh.truncate()
        fh.write(str(os.getpid()))
        fh.flush()
        try:
            yield
        finally:
            fh.seek(0)
            fh.truncate()
            fcntl.flock(fh, fcntl.LOCK_UN)


def wipe(profile: str = DEMO_PROFILE) -> list[str]:
    """Forget the previous demo: settings, keyring secrets and state. Returns what was removed.

    Raises secrets.KeyringUnavailable (the demo needs a keyring like any profile)."""
    if profile != DEMO_PROFILE:
        raise ValueError("only the demo profile is ever wiped")
    from lc_console.salesforce import tokens

    removed: list[str] = []
    kinds = secrets.delete_all(profile)
    if kinds:
        removed.append(f"{len(kinds)} keyring secret{'s' if len(kinds) != 1 else ''}")
    cfg = paths.config_file(profile)
    if cfg.exists():
        cfg.unlink()
        removed.append(f"settings ({cfg})")
    data = paths.data_dir(profile)
    if data.exists():
        shutil.rmtree(data)
        removed.append(f"state ({data})")
    # A token manager cached in this process would still hold the old access token.
    with tokens._managers_lock:
        tokens._managers.pop(profile, None)
    return removed


def write_settings(session: DemoSession) -> Path:
    """Point the demo profile at the sandboxes: the Salesforce sandbox as a custom My Domain
    with its connected app and CA, the Stripe sandbox as the API base."""
    cfg = settings.Settings()
    cfg.salesforce.environment = "custom"
    cfg.salesforce.login_url = session.salesforce_url
    cfg.salesforce.client_id = session.client_id
    cfg.tls.ca_bundle = session.ca_file
    cfg.stripe.api_base = session.stripe_url
    cfg.stripe.mode = "test"
    # Every port of callback_ports is registered on the sandbox's connected app: start with a
    # free one, so a port held by another program does not stop the demo's first sign-in.
    from lc_console.salesforce import ports

    sf = cfg.salesforce
    sf.callback_port = next((p for p in sf.callback_ports if ports.is_free(p)), sf.callback_port)
    return settings.save(session.profile, cfg)


# --- the sandboxes --------------------------------------------------------------------------


def _die_with_parent() -> None:  # pragma: no cover - runs in the child before exec
    if sys.platform.startswith("linux"):
        import ctypes

        PR_SET_PDEATHSIG = 1
        try:
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
        except (OSError, AttributeError):
            pass


def _sandbox_command(scenario: str, seed: int, state: Path) -> list[str]:
    # A Sandbox org: the demo uses Stripe test keys, and a Production org with a test key
    # rightly gets a warning the newcomer should not meet first.
    return [sys.executable, "-m", "lc_console", "sandbox", "--json",
            "--salesforce-state", str(state / "salesforce.json"), "--salesforce-sandbox-org",
            "--stripe-scenario", scenario, "--stripe-seed", str(seed),
            "--stripe-state", str(state / "stripe.json")]


def _first_line(stream: IO[bytes], timeout: float) -> bytes:
    """The child's first stdout line, or b'' when it ended or took too long."""
    box: list[bytes] = []
    reader = threading.Thread(target=lambda: box.append(stream.readline()), daemon=True)
    reader.start()
    reader.join(timeout)
    return box[0] if box else b""


def _log_tail(path: Path, lines: int = 6) -> str:
    try:
        text = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return "\n".join(text[-lines:])


def start(scenario: str = DEFAULT_SCENARIO, seed: int = 1, *, profile: str = DEMO_PROFILE,
          timeout: float = START_TIMEOUT) -> DemoSession:
    """Wipe the demo profile's state dir, start both sandboxes, write the demo settings.

    The caller wipes the profile first (wipe()) and stops the session when done."""
    global _current
    if scenario not in SCENARIOS:
        raise DemoError(f"Unknown scenario {scenario!r}: choose one of {', '.join(SCENARIOS)}.")
    state = state_dir(profile)
    state.mkdir(parents=True, exist_ok=True)
    log_file = state / "sandboxes.log"
    with open(log_file, "ab") as log:
        # stderr goes to a file: anything the child printed on the terminal would scribble
        # over the console's screen.
        proc = subprocess.Popen(_sandbox_command(scenario, seed, state), stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=log, start_new_session=True,
                                preexec_fn=_die_with_parent)
    assert proc.stdout is not None
    try:
        line = _first_line(proc.stdout, timeout)
    except BaseException:  # Ctrl+C while waiting: leave nothing running
        proc.kill()
        proc.wait()
        raise
    try:
        info = json.loads(line) if line else None
        sf, st = info["salesforce"], info["stripe"]  # type: ignore[index]
        admin = next(u for u in sf["users"] if u["customize_application"])
        session = DemoSession(
            profile=profile, scenario=scenario, seed=seed, salesforce_url=sf["url"],
            client_id=sf["client_id"], ca_file=sf["ca_file"],
            admin=DemoLogin(admin["username"], admin["password"]), stripe_url=st["url"],
            restricted_key=st["keys"]["restricted"], log_file=log_file, _process=proc)
    except (ValueError, TypeError, KeyError, StopIteration):
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        proc.stdout.close()
        why = "did not start in time" if proc.returncode in (-9, None) else "could not start"
        tail = _log_tail(log_file)
        raise DemoError(f"The sandboxes {why}." + (f"\n{tail}" if tail else "")
                        + f"\nThe full log is {log_file}.") from None
    try:
        write_settings(session)
    except BaseException:
        session.stop()
        raise
    _current = session
    return session


# --- "Sign in as the demo admin" ------------------------------------------------------------


def browser_available(env: dict[str, str] | None = None, platform: str | None = None) -> bool:
    """Whether a browser can plausibly open here (so the demo offers the browser first)."""
    env = dict(os.environ) if env is None else env
    platform = platform or sys.platform
    if env.get("SSH_CONNECTION") or env.get("SSH_TTY"):
        return False
    if platform.startswith("linux") or "bsd" in platform:
        return bool(env.get("DISPLAY") or env.get("WAYLAND_DISPLAY"))
    return True


class _LoginForm(HTMLParser):
    """The first form of a page: its action and its named inputs (hidden values kept)."""

    def __init__(self) -> None:
        super().__init__()
        self.action: str | None = None
        self.fields: dict[str, str] = {}
        self.buttons: list[tuple[str, str]] = []  # (name, value) of the submit buttons
        self.error = ""
        self._in_form = self._done = False
        self._in_error = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form" and not self._done and self.action is None:
            self.action, self._in_form = a.get("action", ""), True
        elif self._in_form and tag == "input" and a.get("name"):
            self.fields[a["name"]] = a.get("value", "")
        elif self._in_form and tag == "button" and a.get("name"):
            self.buttons.append((a["name"], a.get("value", "")))
        if "error" in a.get("class", "").split() or a.get("role") == "alert":
            self._in_error = True

    def handle_endtag(self, tag: str) -> None:
        if tag == "form" and self._in_form:
            self._in_form, self._done = False, True
        if self._in_error and tag in ("div", "p", "span"):
            self._in_error = False

    def handle_data(self, data: str) -> None:
        if self._in_error and data.strip():
            self.error = (self.error + " " + data.strip()).strip()


def _failure(what: str) -> DemoError:
    return DemoError(f"Signing in as the demo admin failed: {what}. Open the sign-in URL in a "
                     "browser instead, or restart `lc-console demo`.")


def drive_login_page(authorize_url: str, redirect_uri: str, login: DemoLogin, *,
                     ca_bundle: str, action: str = "Allow") -> int:
    """Play the admin's browser on the sandbox's sign-in page, as a person would: open the
    authorize URL, fill the form, press Allow (or Deny), and follow the answer to the
    console's own loopback callback. Returns the callback page's HTTP status.

    Only a redirect to `redirect_uri` is followed: anything else is refused."""
    import httpx

    try:
        with net.http_client(ca_bundle) as client:
            page = client.get(authorize_url)
            if page.status_code != 200:
                raise _failure(f"the sign-in page answered HTTP {page.status_code}")
            form = _LoginForm()
            form.feed(page.text)
            if form.action is None or not any(n == "action" for n, _ in form.buttons):
                raise _failure("the page has no sign-in form")
            data = dict(form.fields)
            data.update(username=login.username, password=login.password, action=action)
            if action != "Allow":
                data.pop("password")
            answer = client.post(urljoin(str(page.url), form.action), data=data)
            if answer.status_code not in (301, 302, 303, 307):
                again = _LoginForm()
                again.feed(answer.text)
                said = f" ({again.error})" if again.error else ""
                raise _failure(f"the sandbox did not accept the demo login{said}")
            location = answer.headers.get("Location", "")
            target, expected = urlsplit(location), urlsplit(redirect_uri)
            if (target.scheme, target.netloc, target.path) != (
                    expected.scheme, expected.netloc, expected.path):
                raise _failure(f"the sandbox sent the browser to {target.scheme}://"
                               f"{target.netloc}{target.path}, not to {redirect_uri}")
            # The callback server is on plain-HTTP loopback: a separate client, no proxies.
            with httpx.Client(timeout=10, trust_env=False) as loopback:
                return loopback.get(location).status_code
    except httpx.HTTPError as exc:
        raise _failure(f"{type(exc).__name__}: {exc}") from None


def sign_in_as_admin(web_login: Any, session: DemoSession, *,
                     on_driving: Callable[[], None] | None = None) -> Any:
    """Finish a started web login (services.connect.WebLogin) by driving the sandbox's page in
    a thread while the real callback server waits: state, PKCE and the token exchange run as
    with a browser. Returns services.connect.SalesforceConnected; raises ConnectError."""
    from lc_console.services.connect import ConnectError, UserMessage

    problem: list[DemoError] = []

    def drive() -> None:
        try:
            drive_login_page(web_login.authorize_url, web_login.redirect_uri, session.admin,
                             ca_bundle=session.ca_file)
        except DemoError as exc:
            problem.append(exc)
            web_login.cancel()

    driver = threading.Thread(target=drive, name="demo-sign-in", daemon=True)
    if on_driving is not None:
        on_driving()
    driver.start()
    try:
        result = web_login.wait()
    except ConnectError:
        driver.join(5)
        if problem:
            raise ConnectError(UserMessage("Could not sign in as the demo admin.",
                                           str(problem[0]))) from None
        raise
    driver.join(5)
    return result


def connect_salesforce(session: DemoSession, *, port: int | None = None) -> Any:
    """The whole demo sign-in for the CLI and tests: plan, callback server, drive, exchange."""
    from lc_console.services import connect

    plan = connect.plan_salesforce(session.profile, port=port)
    return sign_in_as_admin(connect.start_web_login(plan), session)


def connect_stripe(session: DemoSession) -> Any:
    """Check and store the Stripe sandbox's restricted key (services.connect.StripeConnected)."""
    from lc_console.services import connect

    return connect.connect_stripe(session.profile, session.restricted_key)
