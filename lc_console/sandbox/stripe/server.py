"""HTTP/1.1 transport on 127.0.0.1 for the Stripe API and the sandbox's admin endpoint."""

from __future__ import annotations

import json
import socket
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from .api import Response, StripeApi

ADMIN_PREFIX = "/_sandbox/"

AdminHandler = Callable[[str, str, dict[str, str], bytes], tuple[int, dict[str, Any]]]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes: without TCP_NODELAY every keep-alive request
    # waits ~40 ms for the client's delayed ACK (Nagle), which real Stripe does not do.
    disable_nagle_algorithm = True
    server: SandboxHTTPServer

    def version_string(self) -> str:
        return "nginx"  # what api.stripe.com answers with

    def do_GET(self) -> None:  # noqa: N802 (http.server naming)
        self._dispatch("GET")

    def do_POST(self) -> None:  # noqa: N802
        self._dispatch("POST")

    def do_DELETE(self) -> None:  # noqa: N802
        self._dispatch("DELETE")

    def _dispatch(self, method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        if self.path.startswith(ADMIN_PREFIX):
            status, payload = self.server.admin(method, self.path, headers, body)
            self._send(Response(status, json.dumps(payload).encode(),
                                {"Content-Type": "application/json"}))
            return
        response = self.server.api.handle(method, self.path, headers)
        if response.drop:
            # A dropped connection: no status line at all, as when a proxy resets.
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        self._send(response)

    def _send(self, response: Response) -> None:
        self.send_response(response.status)
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        self.wfile.write(response.body)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        return  # quiet: the sandbox runs under tests and demos


class SandboxHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, host: str, port: int, api: StripeApi, admin: AdminHandler) -> None:
        super().__init__((host, port), _Handler)
        self.api = api
        self.admin = admin
