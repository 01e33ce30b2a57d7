"""Request / Response types and the route table shared by every API module.

A route module (rest.py, oauth.py, metadata_api.py, bulk_api.py, ...) exposes
`ROUTES: list[Route]`; server.py collects them from `ROUTE_MODULES`. A handler is
`def handler(req: Request) -> Response` and may raise `ApiError` (rendered as a REST error
array with its status) — SOAP handlers render their own faults instead.

Route.auth says what the server does before calling the handler:
- "public": nothing (OAuth endpoints, /services/data/ version list, login pages).
- "api":    REST auth. `Authorization: Bearer <token>` (or `OAuth <token>`) must name a live
            session, else 401 [{"message": "Session expired or invalid", "errorCode":
            "INVALID_SESSION_ID"}]. The request counts as ONE API call against the daily limit
            (403 REQUEST_LIMIT_EXCEEDED past it), fault injection applies, and the response gets
            `Sforce-Limit-Info: api-usage=N/M`. `req.session`, `req.user_id`, `req.access` are
            set.
- "soap":   Metadata API auth. The session id comes from the SOAP `SessionHeader/sessionId`
            element (or a Bearer header); an invalid one gets the HTTP 500 SOAP fault
            `sf:INVALID_SESSION_ID`. Counted as one API call like "api"; over the limit gets a
            500 fault `sf:REQUEST_LIMIT_EXCEEDED`. `req.session` etc. are set.
- "admin":  sandbox control endpoints; `X-Sandbox-Admin-Secret` must match.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

if TYPE_CHECKING:
    from lc_console.sandbox.salesforce.org import Access, Org
    from lc_console.sandbox.salesforce.server import App
    from lc_console.sandbox.salesforce.sessions import Session

JSON_TYPE = "application/json;charset=UTF-8"
XML_TYPE = "text/xml;charset=UTF-8"
CSV_TYPE = "text/csv"
HTML_TYPE = "text/html;charset=UTF-8"

_VERSION_RE = re.compile(r"/services/(?:data/v|Soap/[a-z]/|async/)(\d+\.\d)(?:/|$)")


class Headers:
    """Case-insensitive header map (first value wins)."""

    def __init__(self, items: list[tuple[str, str]] | None = None) -> None:
        self._items: dict[str, tuple[str, str]] = {}
        for k, v in items or []:
            self._items.setdefault(k.lower(), (k, v))

    def get(self, name: str, default: str | None = None) -> str | None:
        item = self._items.get(name.lower())
        return item[1] if item is not None else default

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._items

    def items(self) -> list[tuple[str, str]]:
        return list(self._items.values())


@dataclass(slots=True)
class Request:
    method: str
    path: str  # raw (percent-encoded) path without the query string; params are decoded
    query_string: str
    headers: Headers
    body: bytes
    app: App
    params: dict[str, str] = field(default_factory=dict)  # named groups of the route pattern
    session: Session | None = None
    access: Access | None = None
    client: str = ""
    host: str = ""  # Host header (with port), for absolute URLs
    _query: dict[str, list[str]] | None = None

    @property
    def org(self) -> Org:
        return self.app.org

    @property
    def user_id(self) -> str:
        return self.session.user_id if self.session is not None else ""

    @property
    def query(self) -> dict[str, list[str]]:
        if self._query is None:
            self._query = parse_qs(self.query_string, keep_blank_values=True)
        return self._query

    def arg(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[0] if values else default

    @property
    def api_version(self) -> str:
        """"62.0" for /services/data/v62.0/..., /services/Soap/m/62.0; else the default."""
        m = _VERSION_RE.search(self.path)
        return m.group(1) if m else "62.0"

    @property
    def content_type(self) -> str:
        return (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()

    def json(self) -> Any:
        """Parsed JSON body; raises ApiError JSON_PARSER_ERROR (400) on bad JSON."""
        from lc_console.sandbox.salesforce.errors import ApiError

        try:
            return json.loads(self.body.decode("utf-8") or "null")
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ApiError("JSON_PARSER_ERROR", f"Unexpected character: was expecting a JSON "
                           f"value at [line:1, column:{getattr(exc, 'colno', 1)}]") from None  # fmt: skip

    def form(self) -> dict[str, str]:
        """application/x-www-form-urlencoded body merged over the query string (first value)."""
        out = {k: v[0] for k, v in self.query.items()}
        if self.body:
            for k, v in parse_qs(self.body.decode("utf-8", "replace"), keep_blank_values=True).items():
                out[k] = v[0]
        return out

    def base_url(self) -> str:
        """https://host:port of this request (as the client addressed the sandbox)."""
        return f"https://{self.host}" if self.host else self.app.base_url


@dataclass(slots=True)
class Response:
    status: int = 200
    body: bytes = b""
    headers: list[tuple[str, str]] = field(default_factory=list)
    content_type: str | None = None
    close: bool = False  # close the connection after this response
    drop: bool = False  # drop the connection without answering (fault injection)

    def header(self, name: str) -> str | None:
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return None


def json_response(data: Any, status: int = 200, headers: list[tuple[str, str]] | None = None) -> Response:
    return Response(status, json.dumps(data, separators=(",", ":")).encode(), list(headers or []),
                    JSON_TYPE)  # fmt: skip


def error_response(status: int, code: str, message: str, fields: list[str] | None = None) -> Response:
    """Top-level REST error: a JSON array with one {"message", "errorCode"[, "fields"]}."""
    item: dict[str, Any] = {"message": message, "errorCode": code}
    if fields is not None:
        item["fields"] = fields
    return json_response([item], status)


def xml_response(text: str, status: int = 200) -> Response:
    return Response(status, text.encode("utf-8"), [], XML_TYPE)


def text_response(text: str, status: int = 200, content_type: str = "text/plain;charset=UTF-8") -> Response:
    return Response(status, text.encode("utf-8"), [], content_type)


def empty_response(status: int = 204) -> Response:
    return Response(status, b"", [], None)


Handler = Callable[[Request], Response]


@dataclass(slots=True)
class Route:
    """methods: e.g. ("GET", "POST"); pattern: regex matched against the whole path, named
    groups land in req.params (percent-decoded)."""

    methods: tuple[str, ...]
    pattern: str
    handler: Handler
    auth: str = "api"
    flags: int = 0
    regex: re.Pattern[str] = field(init=False)

    def __post_init__(self) -> None:
        if self.auth not in ("public", "api", "soap", "admin"):
            raise ValueError(f"unknown auth kind {self.auth}")
        self.regex = re.compile(self.pattern, self.flags)


def route(methods: str | tuple[str, ...], pattern: str, auth: str = "api",
          flags: int = 0) -> Callable[[Handler], Route]:  # fmt: skip
    """Decorator form: `@route("GET", r"/services/data/v(?P<v>\\d+\\.\\d)/limits/?")`."""
    ms = (methods,) if isinstance(methods, str) else methods

    def wrap(fn: Handler) -> Route:
        return Route(ms, pattern, fn, auth, flags)

    return wrap


DATA = r"/services/data/v(?P<version>\d+\.\d)"  # prefix for REST route patterns
