"""The HTTPS server: TLS, keep-alive HTTP/1.1, one thread per connection, routing, auth,
API-usage counting, fault injection, latency and the request log.

Routes come from the modules in ROUTE_MODULES (each exposes `ROUTES: list[Route]`, see
http.py). Add a module here when it works.
"""

from __future__ import annotations

import importlib
import logging
import re
import secrets
import socket
import socketserver
import ssl
import threading
import time
import traceback
from dataclasses import dataclass, field
from email.utils import formatdate
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from lc_console.sandbox.salesforce.errors import ApiError
from lc_console.sandbox.salesforce.faults import Faults
from lc_console.sandbox.salesforce.http import (
    Headers,
    Request,
    Response,
    Route,
    error_response,
    json_response,
    xml_response,
)
from lc_console.sandbox.salesforce.org import Org, RequestRecord
from lc_console.sandbox.salesforce.tls import TlsFiles, server_context

log = logging.getLogger("lc_console.sandbox.salesforce")

ROUTE_MODULES: tuple[str, ...] = (
    "lc_console.sandbox.salesforce.admin",
    "lc_console.sandbox.salesforce.rest",
    "lc_console.sandbox.salesforce.oauth",
    "lc_console.sandbox.salesforce.soap_login",
    "lc_console.sandbox.salesforce.metadata_api",
    "lc_console.sandbox.salesforce.bulk_api",
)

SESSION_RE = re.compile(rb"<(?:[A-Za-z0-9_]+:)?sessionId>\s*([^<\s]+)\s*</(?:[A-Za-z0-9_]+:)?sessionId>")
DEFAULT_CLIENT_ID = "3MVG9lcConsoleSandbox.LocalConnectedApp0000000000000000000000000000000"


@dataclass
class AppConfig:
    client_id: str = DEFAULT_CLIENT_ID
    client_secret: str | None = None  # None: PKCE public client, no secret required
    callback_ports: tuple[int, ...] = (1717, 1718, 1719)
    latency_ms: float = 0.0
    admin_secret: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    login_host: str = ""  # host used in identity URLs (defaults to the server's own)
    device_interval_seconds: float = 5.0  # device flow polling interval

    def callback_urls(self) -> list[str]:
        out = []
        for port in self.callback_ports:
            out.append(f"http://localhost:{port}/OAuth/Callback")
            out.append(f"http://127.0.0.1:{port}/OAuth/Callback")
        return out


class App:
    """What route handlers see as `req.app`: the org, the config, faults and shared state
    other modules may hang their own objects on (`app.extensions["bulk"] = ...`). An extension
    with a `limits()` method adds its entries to GET /limits (e.g. DailyBulkApiBatches); one
    with `close()` is closed when the sandbox stops."""

    def __init__(self, org: Org, config: AppConfig, faults: Faults) -> None:
        self.org = org
        self.config = config
        self.faults = faults
        self.base_url = ""
        self.extensions: dict[str, Any] = {}
        self.routes: list[Route] = []
        for name in ROUTE_MODULES:
            module = importlib.import_module(name)
            self.routes.extend(module.ROUTES)
        self.stopping = threading.Event()

    def match(self, method: str, path: str) -> tuple[Route | None, dict[str, str], bool]:
        """(route, params, path_matched_other_method)."""
        other = False
        for r in self.routes:
            m = r.regex.fullmatch(path)
            if m is None:
                continue
            if method in r.methods or (method == "HEAD" and "GET" in r.methods):
                return r, {k: unquote(v) for k, v in m.groupdict().items() if v is not None}, False
            other = True
        return None, {}, other

    def authenticate(self, token: str | None):  # -> Session | None
        if not token:
            return None
        return self.org.sessions.get(token)


# -- responses used by the dispatcher -------------------------------------------------------------


def invalid_session() -> Response:
    return error_response(401, "INVALID_SESSION_ID", "Session expired or invalid")


def soap_fault(code: str, message: str, status: int = 500) -> Response:
    return xml_response(
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
        'xmlns:sf="http://soap.sforce.com/2006/04/metadata"><soapenv:Body><soapenv:Fault>'
        f"<faultcode>sf:{code}</faultcode><faultstring>{code}: {_xml_escape(message)}</faultstring>"
        "</soapenv:Fault></soapenv:Body></soapenv:Envelope>",
        status,
    )


def _xml_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _bearer(headers: Headers) -> str | None:
    auth = headers.get("Authorization") or ""
    scheme, _, token = auth.partition(" ")
    if scheme.lower() in ("bearer", "oauth") and token.strip():
        return token.strip()
    return None


def _lock_fault(req: Request) -> Response:
    """UNABLE_TO_LOCK_ROW: per record (HTTP 200) for collections, else a 400 error array."""
    msg = "unable to obtain exclusive access to this record or 1 records: "
    if "/composite/sobjects" in req.path and req.method in ("POST", "PATCH", "DELETE"):
        try:
            if req.method == "DELETE":
                n = len((req.arg("ids") or "").split(","))
            else:
                n = len(req.json().get("records") or [])
        except Exception:
            n = 1
        item = {"success": False, "errors": [{"statusCode": "UNABLE_TO_LOCK_ROW",
                                              "message": msg + "0018d000000LOCKED", "fields": []}]}  # fmt: skip
        return json_response([dict(item) for _ in range(max(n, 1))])
    return error_response(400, "UNABLE_TO_LOCK_ROW", msg + "0018d000000LOCKED", [])


def dispatch(app: App, req: Request) -> tuple[Response, int, str | None]:
    """Run one request through auth, limits, faults and its handler.
    Returns (response, api_calls_counted, fault_kind)."""
    route, params, other = app.match(req.method, req.path)
    if route is None:
        if other:
            return error_response(405, "METHOD_NOT_ALLOWED",
                                  f"HTTP Method '{req.method}' not allowed. Allowed are "
                                  "GET,HEAD,POST,PATCH,PUT,DELETE"), 0, None  # fmt: skip
        return error_response(404, "NOT_FOUND", "The requested resource does not exist"), 0, None
    req.params = params
    org = app.org
    counted = 0
    fault: str | None = None
    if route.auth == "admin":
        given = req.headers.get("X-Sandbox-Admin-Secret") or ""
        if not secrets.compare_digest(given.encode(), app.config.admin_secret.encode()):
            return error_response(401, "INVALID_SESSION_ID", "Missing or wrong X-Sandbox-Admin-Secret"), 0, None
    elif route.auth in ("api", "soap"):
        soap = route.auth == "soap"
        token = _bearer(req.headers)
        if soap:
            m = SESSION_RE.search(req.body[:65536])
            if m is not None:
                token = m.group(1).decode("utf-8", "replace")
        session = app.authenticate(token)
        if session is None:
            if soap:
                return soap_fault("INVALID_SESSION_ID",
                                  "Invalid Session ID found in SessionHeader: Illegal Session"), 0, None  # fmt: skip
            return invalid_session(), 0, None
        if not {"api", "full"} & set(session.scopes):
            if soap:
                return soap_fault("INVALID_SESSION_ID", "This session is not valid for use with "
                                  "the API"), 0, None  # fmt: skip
            return error_response(401, "INVALID_SESSION_ID", "This session is not valid for use "
                                  "with the REST API"), 0, None  # fmt: skip
        req.session = session
        req.access = org.access(session.user_id)
        fault = app.faults.pick(write=req.method != "GET")
        if fault in ("drop", "unavailable"):
            if fault == "drop":
                return Response(drop=True), 0, fault
            return error_response(503, "SERVER_UNAVAILABLE", "Server temporarily unavailable"), 0, fault
        if not org.usage.try_count():
            if soap:
                return soap_fault("REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded."), 0, None
            return error_response(403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded."), 0, None
        counted = 1
        if fault == "lock":
            return _lock_fault(req), counted, fault
    try:
        resp = route.handler(req)
    except ApiError as exc:
        if route.auth == "soap":
            resp = soap_fault(exc.code, exc.message)
        else:
            body = [exc.rest()] if exc.fields else [{"message": exc.message, "errorCode": exc.code}]
            resp = json_response(body, exc.status)
    except Exception:  # a bug in the sandbox: answer as Salesforce does, and log it
        log.error("sandbox handler failed for %s %s\n%s", req.method, req.path, traceback.format_exc())
        resp = error_response(500, "UNKNOWN_EXCEPTION", "An unexpected error occurred. Please "
                              "include this ErrorId if you contact support: 0000000000-0 (0)")  # fmt: skip
    return resp, counted, fault


# -- HTTP plumbing ----------------------------------------------------------------------------------


_REASONS = {status.value: status.phrase for status in HTTPStatus}
_date_cache: tuple[int, str] = (0, "")


def _http_date() -> str:
    global _date_cache
    now = int(time.time())
    if _date_cache[0] != now:
        _date_cache = (now, formatdate(now, usegmt=True))
    return _date_cache[1]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "SFDC"
    sys_version = ""
    timeout = 300  # idle keep-alive connections close after this
    app: App  # set on the subclass the server builds

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        log.debug("%s - %s", self.address_string(), format % args)

    def handle_one_request(self) -> None:
        try:
            super().handle_one_request()
        except (ssl.SSLError, ConnectionError, TimeoutError, OSError):
            self.close_connection = True

    def _read_body(self) -> bytes:
        if (self.headers.get("Transfer-Encoding") or "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _serve(self) -> None:
        app = self.app
        started = time.perf_counter()
        body = self._read_body()
        split = urlsplit(self.path)
        headers = Headers(list(self.headers.items()))
        req = Request(
            method=self.command, path=split.path,
            query_string=split.query, headers=headers, body=body, app=app,
            client=self.client_address[0], host=headers.get("Host") or "",
        )  # fmt: skip
        if app.config.latency_ms > 0:
            time.sleep(app.config.latency_ms / 1000.0)
        resp, counted, fault = dispatch(app, req)
        duration = (time.perf_counter() - started) * 1000
        app.org.log_request(RequestRecord(app.org.clock.now_ms(), req.method, req.path,
                                          0 if resp.drop else resp.status, req.user_id or None,
                                          counted, duration, fault))  # fmt: skip
        if resp.drop:
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        # one write per response: status line, headers and body in a single TLS record
        lines = [f"HTTP/1.1 {resp.status} {_REASONS.get(resp.status, 'Unknown')}",
                 "Server: SFDC", f"Date: {_http_date()}"]  # fmt: skip
        if resp.content_type:
            lines.append(f"Content-Type: {resp.content_type}")
        lines.extend(f"{k}: {v}" for k, v in resp.headers)
        if counted or (req.session is not None and resp.header("Sforce-Limit-Info") is None):
            lines.append(f"Sforce-Limit-Info: {app.org.usage.header()}")
        lines.append(f"Content-Length: {len(resp.body)}")
        if resp.close or app.stopping.is_set() or self.close_connection:
            lines.append("Connection: close")
            self.close_connection = True
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1", "replace")
        self.wfile.write(head if self.command == "HEAD" else head + resp.body)

    do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = do_HEAD = do_OPTIONS = _serve


class HttpsServer(socketserver.ThreadingMixIn, socketserver.TCPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256

    def __init__(self, app: App, port: int, tls: TlsFiles, host: str = "127.0.0.1") -> None:
        self.app = app
        self.ssl_context = server_context(tls)
        handler = type("SandboxHandler", (_Handler,), {"app": app})
        super().__init__((host, port), handler)
        self._conns: set[socket.socket] = set()
        self._conns_lock = threading.Lock()

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    def get_request(self) -> tuple[socket.socket, Any]:
        sock, addr = self.socket.accept()
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        tls_sock = self.ssl_context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        with self._conns_lock:
            self._conns.add(tls_sock)
        return tls_sock, addr

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            request.settimeout(30)
            request.do_handshake()
            request.settimeout(None)
        except (ssl.SSLError, OSError):
            self.shutdown_request(request)
            return
        super().process_request_thread(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._conns_lock:
            self._conns.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        with self._conns_lock:
            conns = list(self._conns)
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.debug("connection error from %s\n%s", client_address, traceback.format_exc())


def default_cert_dir() -> Path:
    """Where the sandbox keeps its CA when no directory is given (stable across runs)."""
    import os

    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "lc-console" / "sandbox-ca"
