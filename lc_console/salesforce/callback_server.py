"""One-shot loopback server that receives Salesforce's answer to the authorize request.

It binds 127.0.0.1 on the chosen port, serves only GET /OAuth/Callback, takes exactly one
answer whose `state` is checked, shows the browser a small escaped result page and shuts down.
Other paths get 404 (browsers ask for /favicon.ico), other methods 405, and a request whose
Host is not the loopback name gets 400 (DNS rebinding). Waiting ends with the code, or with a
CallbackError that says what happened: timeout, cancel, Deny, state mismatch, or an error
Salesforce sent.
"""

from __future__ import annotations

import errno
import hmac
import html
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from lc_console.salesforce import ports
from lc_console.salesforce.oauth import CALLBACK_PATH, redirect_uri

DEFAULT_TIMEOUT = 300.0


# --- outcomes ---------------------------------------------------------------------------------


class CallbackError(Exception):
    """The browser step ended without an authorization code."""


class CallbackTimeout(CallbackError):
    def __init__(self, seconds: float):
        super().__init__(f"no answer from the browser within {seconds:.0f} seconds")
        self.seconds = seconds


class CallbackCancelled(CallbackError):
    def __init__(self) -> None:
        super().__init__("cancelled while waiting for the browser")


class AuthorizationDenied(CallbackError):
    def __init__(self, description: str = ""):
        super().__init__(description or "access denied")
        self.description = description


class AuthorizationFailed(CallbackError):
    """Salesforce answered the callback with an error other than Deny."""

    def __init__(self, error: str, description: str = ""):
        super().__init__(f"{error}: {description}" if description else error)
        self.error = error
        self.description = description


class StateMismatch(CallbackError):
    def __init__(self) -> None:
        super().__init__("the answer belongs to another sign-in attempt (state mismatch)")


class PortInUse(CallbackError):
    def __init__(self, port: int, holder: ports.PortHolder | None, alternatives: list[int]):
        who = holder.describe() if holder else "another program"
        super().__init__(f"port {port} is in use by {who}")
        self.port = port
        self.holder = holder
        self.alternatives = alternatives


# --- the result page --------------------------------------------------------------------------

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body {{ font: 16px/1.5 system-ui, sans-serif; margin: 0; background: #f6f7f9; color: #1c2430; }}
main {{ max-width: 34rem; margin: 12vh auto; padding: 2rem; background: #fff;
        border-radius: 10px; box-shadow: 0 1px 4px rgba(0,0,0,.12); }}
h1 {{ font-size: 1.3rem; margin: 0 0 .75rem; color: {color}; }}
p {{ margin: .5rem 0; }}
code {{ background: #eef0f3; padding: 0 .25rem; border-radius: 3px; }}
</style></head>
<body><main><h1 id="lc-result" data-outcome="{outcome}">{title}</h1>{body}</main></body></html>
"""


def render_page(outcome: str, title: str, paragraphs: list[str]) -> bytes:
    """A small page; every piece of text is HTML-escaped (Salesforce's error text included)."""
    color = "#1a7f37" if outcome == "success" else "#b42318"
    body = "".join(f"<p>{html.escape(p)}</p>" for p in paragraphs)
    page = _PAGE.format(title=html.escape(title), color=color, outcome=html.escape(outcome),
                        body=body)
    return page.encode("utf-8")


# --- the server -------------------------------------------------------------------------------


@dataclass
class _Outcome:
    code: str | None = None
    error: CallbackError | None = None
    done: threading.Event = field(default_factory=threading.Event)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, port: int, state: str, path: str):
        self.expected_state = state
        self.callback_path = path
        self.port = port
        self.outcome = _Outcome()
        self.lock = threading.Lock()
        super().__init__(("127.0.0.1", port), _Handler)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    timeout = 15  # an idle browser pre-connection must not hold a thread forever
    server_version = "lc-console"
    sys_version = ""

    def log_message(self, format: str, *args: object) -> None:
        # The default logs the request line to stderr: that would print the code.
        return

    def _send(self, status: int, page: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(page)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("Referrer-Policy", "no-referrer")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Content-Security-Policy",
                         "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'")
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(page)

    def _host_ok(self) -> bool:
        host = (self.headers.get("Host") or "").lower()
        return host in (f"localhost:{self.server.port}", f"127.0.0.1:{self.server.port}")

    def do_GET(self) -> None:  # noqa: N802 (http.server naming)
        parts = urlsplit(self.path)
        if parts.path != self.server.callback_path:
            self._send(404, render_page("error", "Not found", ["Nothing to see here."]))
            return
        if not self._host_ok():
            self._send(400, render_page("error", "Wrong address",
                                        ["This page only answers on localhost."]))
            return
        query = {k: v[0] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        if not {"code", "error", "state"} & query.keys():
            self._send(400, render_page("error", "Not an OAuth answer",
                                        ["This address receives Salesforce's sign-in answer."]))
            return
        with self.server.lock:
            if self.server.outcome.done.is_set():
                self._send(409, render_page("error", "Already finished", [
                    "lc-console already received an answer for this sign-in. "
                    "You can close this tab."]))
                return
            status, page, outcome = self._judge(query)
            self._send(status, page)
            self.wfile.flush()
            self.server.outcome.code, self.server.outcome.error = outcome
            self.server.outcome.done.set()

    def _judge(self, q: dict[str, str]) -> tuple[int, bytes, tuple[str | None, CallbackError | None]]:
        state = q.get("state", "")
        error = q.get("error", "")
        description = q.get("error_description", "")
        if error in ("access_denied", "access-denied"):
            return 200, render_page("denied", "Access was denied", [
                "You pressed Deny, so lc-console is not connected and nothing was stored.",
                "Go back to the terminal to try again or to cancel. You can close this tab."]), \
                (None, AuthorizationDenied(description))
        if error:
            shown = f"{error}: {description}" if description else error
            return 200, render_page("error", "Salesforce refused the sign-in", [
                f"Salesforce answered: {shown}",
                "Nothing was stored. The terminal says what to do next. You can close this tab."]), \
                (None, AuthorizationFailed(error, description))
        if not hmac.compare_digest(state.encode(), self.server.expected_state.encode()):
            return 400, render_page("error", "This answer is for another sign-in", [
                "The browser returned an answer that does not belong to the sign-in lc-console "
                "is waiting for (the state value does not match), so it was rejected.",
                "Nothing was stored. Start the connection again from the terminal and use "
                "only the newest browser tab."]), (None, StateMismatch())
        code = q.get("code", "")
        if not code:
            return 400, render_page("error", "No authorization code", [
                "Salesforce's answer carried no authorization code. Nothing was stored."]), \
                (None, AuthorizationFailed("invalid_response", "no code in the callback"))
        return 200, render_page("success", "lc-console is connected to Salesforce", [
            "The sign-in worked. You can close this tab and go back to the terminal."]), \
            (code, None)

    def _not_allowed(self) -> None:
        self.send_response(405)
        self.send_header("Allow", "GET")
        self.send_header("Content-Length", "0")
        self.send_header("Connection", "close")
        self.end_headers()

    do_POST = do_PUT = do_DELETE = do_PATCH = _not_allowed  # noqa: N815


class CallbackServer:
    """Usage: with CallbackServer(port, state) as srv: ...open browser...; code = srv.wait()."""

    def __init__(self, port: int, state: str, *, timeout: float = DEFAULT_TIMEOUT,
                 alternatives: tuple[int, ...] | list[int] = (), path: str = CALLBACK_PATH):
        self.port = port
        self.state = state
        self.timeout = timeout
        self.path = path
        self.alternatives = list(alternatives)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._cancel = threading.Event()
        self._close_lock = threading.Lock()

    @property
    def redirect_uri(self) -> str:
        return redirect_uri(self.port)

    def start(self) -> None:
        """Bind now, before the browser opens. Raises PortInUse naming the holder."""
        taken = ports.bind_error(self.port)
        if taken is None:
            try:
                self._server = _Server(self.port, self.state, self.path)
            except OSError as exc:
                taken = exc
        if taken is not None:
            if taken.errno not in (errno.EADDRINUSE, errno.EACCES):
                raise taken
            raise PortInUse(self.port, ports.find_port_holder(self.port),
                            ports.free_alternatives(self.alternatives, self.port))
        assert self._server is not None
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.1},
                                        name=f"oauth-callback-{self.port}", daemon=True)
        self._thread.start()

    def cancel(self) -> None:
        """Thread-safe: makes wait() raise CallbackCancelled and frees the port."""
        self._cancel.set()
        self.close()

    def wait(self, cancel: threading.Event | None = None) -> str:
        """Block until the one answer arrives; returns the authorization code."""
        if self._cancel.is_set():
            raise CallbackCancelled()
        if self._server is None:
            raise RuntimeError("start() the callback server first")
        deadline = time.monotonic() + self.timeout
        outcome = self._server.outcome
        try:
            while not outcome.done.wait(0.1):
                if self._cancel.is_set() or (cancel is not None and cancel.is_set()):
                    raise CallbackCancelled()
                if time.monotonic() >= deadline:
                    raise CallbackTimeout(self.timeout)
            if outcome.error is not None:
                raise outcome.error
            assert outcome.code is not None
            return outcome.code
        finally:
            self.close()

    def close(self) -> None:
        with self._close_lock:
            server, self._server = self._server, None
            thread, self._thread = self._thread, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if thread is not None:
            thread.join(timeout=5)

    def __enter__(self) -> CallbackServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
