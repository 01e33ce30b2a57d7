"""OAuth 2.0 as a Salesforce org serves it: the authorize page (login + consent), web-server
flow with PKCE, user-agent flow, refresh, username-password grant, device flow with its
verification page, revoke, introspect, identity URL and userinfo.

Error shapes follow the reference (§1.7): token endpoint errors are HTTP 400
{"error", "error_description"}; errors the browser can be sent back with go to the callback as
?error=...&error_description=...&state=...; an unknown client or a callback URL that is not
registered gets an error page (Salesforce never redirects to an unverified URL).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import html
import json
import secrets
import threading
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from lc_console.sandbox.salesforce import values as vals
from lc_console.sandbox.salesforce.http import (
    HTML_TYPE,
    Request,
    Response,
    empty_response,
    json_response,
    route,
    text_response,
)
from lc_console.sandbox.salesforce.sessions import Session

ALLOWED_SCOPES = frozenset({
    "api", "refresh_token", "offline_access", "web", "full", "id", "openid", "profile", "email",
    "address", "phone", "chatter_api", "custom_permissions", "visualforce", "content",
})  # fmt: skip
DEFAULT_SCOPES = ("api", "refresh_token", "web", "id")
CODE_TTL_MS = 15 * 60 * 1000
DEVICE_TTL_MS = 10 * 60 * 1000
AUTH_REQUEST_TTL_MS = 30 * 60 * 1000
LOGIN_ERROR = ("Please check your username and password. If you still can't log in, contact "
               "your Salesforce administrator.")  # fmt: skip


@dataclass(slots=True)
class AuthRequest:
    client_id: str
    redirect_uri: str
    response_type: str
    scopes: tuple[str, ...]
    state: str | None
    code_challenge: str | None
    prompt: str
    created_ms: int


@dataclass(slots=True)
class AuthCode:
    client_id: str
    redirect_uri: str
    user_id: str
    scopes: tuple[str, ...]
    code_challenge: str | None
    created_ms: int
    used: bool = False
    issued_tokens: list[str] = field(default_factory=list)


@dataclass(slots=True)
class DeviceGrant:
    client_id: str
    scopes: tuple[str, ...]
    user_code: str
    created_ms: int
    interval: float
    last_poll_ms: int = 0
    user_id: str | None = None
    denied: bool = False
    done: bool = False


class OAuthState:
    """Pending authorize requests, one-time codes, device grants and browser logins."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.requests: dict[str, AuthRequest] = {}
        self.codes: dict[str, AuthCode] = {}
        self.devices: dict[str, DeviceGrant] = {}
        self.browser_sessions: dict[str, str] = {}  # cookie value -> user id


def _state(req: Request) -> OAuthState:
    st = req.app.extensions.get("oauth")
    if st is None:
        st = req.app.extensions.setdefault("oauth", OAuthState())
    return st


def _device_interval(req: Request) -> float:
    return float(req.app.config.device_interval_seconds)


# -- helpers -------------------------------------------------------------------------------------


def oauth_error(error: str, description: str, status: int = 400) -> Response:
    return json_response({"error": error, "error_description": description}, status)


def _redirect(location: str, headers: list[tuple[str, str]] | None = None) -> Response:
    return Response(302, b"", [("Location", location), ("Cache-Control", "no-store"), *(headers or [])])


def _callback(uri: str, params: dict[str, str | None], fragment: bool = False) -> str:
    query = urlencode({k: v for k, v in params.items() if v is not None})
    return f"{uri}{'#' if fragment else ('&' if '?' in uri else '?')}{query}"


def _client_credentials(req: Request, form: dict[str, str]) -> tuple[str | None, str | None]:
    auth = req.headers.get("Authorization") or ""
    if auth.lower().startswith("basic "):
        try:
            cid, _, secret = base64.b64decode(auth[6:].strip()).decode().partition(":")
            return cid, secret
        except (ValueError, UnicodeDecodeError):
            return None, None
    return form.get("client_id"), form.get("client_secret")


def _check_client(req: Request, client_id: str | None, secret: str | None,
                  require_secret: bool = False) -> Response | None:  # fmt: skip
    cfg = req.app.config
    if not client_id or client_id != cfg.client_id:
        return oauth_error("invalid_client_id", "client identifier invalid")
    if cfg.client_secret is not None and (secret or require_secret):
        if not secret or not hmac.compare_digest(secret.encode(), cfg.client_secret.encode()):
            return oauth_error("invalid_client", "invalid client credentials")
    return None


def _parse_scopes(raw: str | None) -> tuple[str, ...] | None:
    if raw is None or not raw.strip():
        return DEFAULT_SCOPES
    scopes = tuple(dict.fromkeys(raw.replace("+", " ").split()))
    if any(s not in ALLOWED_SCOPES for s in scopes):
        return None
    return scopes


def _login_base(req: Request) -> str:
    return req.app.config.login_host or req.base_url()


def identity_url(req: Request, user_id: str) -> str:
    return f"{_login_base(req)}/id/{req.org.org_id}/{user_id}"


def token_response(req: Request, session: Session, refresh_token: str | None = None,
                   status: int = 200) -> Response:  # fmt: skip
    id_url = identity_url(req, session.user_id)
    issued = str(session.issued_ms)
    key = (req.app.config.client_secret or req.app.config.client_id).encode()
    signature = base64.b64encode(hmac.new(key, (id_url + issued).encode(), hashlib.sha256).digest()).decode()
    body: dict[str, Any] = {"access_token": session.token}
    if refresh_token:
        body["refresh_token"] = refresh_token
    body.update({"signature": signature, "scope": " ".join(session.scopes),
                 "instance_url": req.app.base_url or req.base_url(), "id": id_url,
                 "token_type": "Bearer", "issued_at": issued})  # fmt: skip
    return json_response(body, status, [("Cache-Control", "no-cache,must-revalidate,max-age=0,no-store,private")])


def _issue(req: Request, user_id: str, client_id: str, scopes: tuple[str, ...],
           with_refresh: bool = True) -> Response:  # fmt: skip
    org = req.org
    refresh = None
    if with_refresh and ("refresh_token" in scopes or "offline_access" in scopes):
        refresh = org.sessions.new_grant(user_id, client_id, scopes).refresh_token
    session = org.sessions.issue(user_id, client_id, scopes, refresh_token=refresh,
                                 login_host=_login_base(req))  # fmt: skip
    return token_response(req, session, refresh)


def _cookie(req: Request, name: str) -> str | None:
    raw = req.headers.get("Cookie") or ""
    for part in raw.split(";"):
        k, _, v = part.strip().partition("=")
        if k == name:
            return v
    return None


# -- pages ------------------------------------------------------------------------------------------

_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{{font-family:system-ui,sans-serif;background:#f3f3f3;margin:0}}
main{{max-width:26rem;margin:3rem auto;background:#fff;padding:2rem;border-radius:.5rem;
box-shadow:0 1px 4px rgba(0,0,0,.15)}}
h1{{font-size:1.3rem}} label{{display:block;margin-top:1rem}}
input[type=text],input[type=password]{{width:100%;padding:.5rem;box-sizing:border-box}}
.error{{color:#b00020}} .buttons{{margin-top:1.5rem;display:flex;gap:1rem}}
button{{padding:.5rem 1.5rem}} .note{{color:#555;font-size:.9rem}}
</style></head><body><main>
<h1>{title}</h1>
{body}
</main></body></html>"""


def page(title: str, body: str, status: int = 200, headers: list[tuple[str, str]] | None = None) -> Response:
    text = _PAGE.format(title=html.escape(title), body=body)
    return Response(status, text.encode(), [("Cache-Control", "no-store"),
                                            ("X-Frame-Options", "DENY"), *(headers or [])], HTML_TYPE)  # fmt: skip


def _error_page(error: str, description: str) -> Response:
    return page("Authorization error", f'<p class="error" id="error">error={html.escape(error)}'
                f'&amp;error_description={html.escape(description)}</p>', 400)  # fmt: skip


def _login_form(action: str, hidden: dict[str, str], app_name: str, scopes: tuple[str, ...],
                error: str | None = None, logged_in_as: str | None = None,
                extra_fields: str = "") -> str:  # fmt: skip
    parts = [f'<form method="post" action="{html.escape(action)}" id="login_form">']
    for k, v in hidden.items():
        parts.append(f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">')
    if error:
        parts.append(f'<p class="error" id="error" role="alert">{html.escape(error)}</p>')
    parts.append(extra_fields)
    if logged_in_as:
        parts.append(f'<p>Logged in as <strong id="current_user">{html.escape(logged_in_as)}</strong>.</p>')
    else:
        parts.append('<label for="username">Username</label>'
                     '<input type="text" id="username" name="username" autocomplete="username" required>'
                     '<label for="password">Password</label>'
                     '<input type="password" id="password" name="password" '
                     'autocomplete="current-password" required>')  # fmt: skip
    scope_items = "".join(f"<li>{html.escape(s)}</li>" for s in scopes)
    parts.append(f'<p class="note"><strong>{html.escape(app_name)}</strong> is asking to:</p>'
                 f'<ul id="scopes">{scope_items}</ul>'
                 '<div class="buttons"><button type="submit" name="action" value="Allow" id="allow">'
                 'Allow</button><button type="submit" name="action" value="Deny" id="deny" formnovalidate>'
                 'Deny</button></div></form>')  # fmt: skip
    return "".join(parts)


APP_NAME = "lc-console (sandbox connected app)"


# -- authorize ----------------------------------------------------------------------------------------


@route(("GET", "POST"), r"/services/oauth2/authorize/?", auth="public")
def authorize(req: Request) -> Response:
    st = _state(req)
    org = req.org
    now = org.clock.now_ms()
    form = req.form()
    if req.method == "POST" and form.get("request_id"):
        return _authorize_submit(req, st, form, now)
    cfg = req.app.config
    client_id = form.get("client_id")
    if not client_id or client_id != cfg.client_id:
        return _error_page("invalid_client_id", "client identifier invalid")
    redirect_uri = form.get("redirect_uri") or ""
    if redirect_uri not in cfg.callback_urls():
        return _error_page("redirect_uri_mismatch", "redirect_uri must match configuration")
    state = form.get("state")
    response_type = form.get("response_type") or ""
    if response_type not in ("code", "token"):
        return _redirect(_callback(redirect_uri, {"error": "unsupported_response_type",
                                                  "error_description": "response type not supported",
                                                  "state": state}))  # fmt: skip
    scopes = _parse_scopes(form.get("scope"))
    if scopes is None:
        return _redirect(_callback(redirect_uri, {"error": "invalid_scope",
                                                  "error_description": "the requested scope is not allowed",
                                                  "state": state}, response_type == "token"))  # fmt: skip
    request_id = secrets.token_urlsafe(18)
    prompt = (form.get("prompt") or "").lower()
    with st.lock:
        for rid in [k for k, v in st.requests.items() if now - v.created_ms > AUTH_REQUEST_TTL_MS]:
            del st.requests[rid]
        st.requests[request_id] = AuthRequest(client_id, redirect_uri, response_type, scopes, state,
                                              form.get("code_challenge") or None, prompt, now)  # fmt: skip
        cookie_user = st.browser_sessions.get(_cookie(req, "sid") or "")
    logged_in = None
    if cookie_user and "login" not in prompt.split():
        logged_in = org.users[cookie_user].username if cookie_user in org.users else None
    body = _login_form("/services/oauth2/authorize", {"request_id": request_id}, APP_NAME, scopes,
                       logged_in_as=logged_in)  # fmt: skip
    return page("Log in to Salesforce" if logged_in is None else "Allow access?", body)


def _authorize_submit(req: Request, st: OAuthState, form: dict[str, str], now: int) -> Response:
    with st.lock:
        ar = st.requests.get(form["request_id"])
    if ar is None or now - ar.created_ms > AUTH_REQUEST_TTL_MS:
        return _error_page("invalid_request", "the authorization request has expired; start again")
    fragment = ar.response_type == "token"
    if form.get("action") != "Allow":
        with st.lock:
            st.requests.pop(form["request_id"], None)
        return _redirect(_callback(ar.redirect_uri, {"error": "access_denied",
                                                     "error_description": "end-user denied authorization",
                                                     "state": ar.state}, fragment))  # fmt: skip
    org = req.org
    headers: list[tuple[str, str]] = []
    user_id: str | None = None
    if "username" in form or "login" in ar.prompt.split():
        account = org.authenticate(form.get("username", ""), form.get("password", ""))
        if account is None:
            body = _login_form("/services/oauth2/authorize", {"request_id": form["request_id"]},
                               APP_NAME, ar.scopes, error=LOGIN_ERROR)  # fmt: skip
            return page("Log in to Salesforce", body)
        user_id = account.id
        sid = secrets.token_urlsafe(24)
        with st.lock:
            st.browser_sessions[sid] = user_id
        headers.append(("Set-Cookie", f"sid={sid}; Path=/; Secure; HttpOnly; SameSite=Lax"))
    else:
        with st.lock:
            user_id = st.browser_sessions.get(_cookie(req, "sid") or "")
        if user_id is None:
            body = _login_form("/services/oauth2/authorize", {"request_id": form["request_id"]},
                               APP_NAME, ar.scopes, error=LOGIN_ERROR)  # fmt: skip
            return page("Log in to Salesforce", body)
    with st.lock:
        st.requests.pop(form["request_id"], None)
    if fragment:
        session = org.sessions.issue(user_id, ar.client_id, ar.scopes, login_host=_login_base(req))
        params = {"access_token": session.token, "instance_url": req.app.base_url,
                  "id": identity_url(req, user_id), "issued_at": str(session.issued_ms),
                  "signature": "", "scope": " ".join(ar.scopes), "token_type": "Bearer",
                  "state": ar.state}  # fmt: skip
        return _redirect(_callback(ar.redirect_uri, params, fragment=True), headers)
    code = "aPrx" + secrets.token_urlsafe(60).replace("-", "+").replace("_", "/") + "=="
    with st.lock:
        st.codes[code] = AuthCode(ar.client_id, ar.redirect_uri, user_id, ar.scopes, ar.code_challenge, now)
    return _redirect(_callback(ar.redirect_uri, {"code": code, "state": ar.state}), headers)


# -- token --------------------------------------------------------------------------------------


def _s256(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")


@route("POST", r"/services/oauth2/token/?", auth="public")
def token(req: Request) -> Response:
    form = req.form()
    if form.get("response_type") == "device_code":
        return _device_start(req, form)
    grant = form.get("grant_type")
    client_id, secret = _client_credentials(req, form)
    if grant == "authorization_code":
        return _grant_code(req, form, client_id, secret)
    if grant == "refresh_token":
        bad = _check_client(req, client_id, secret)
        if bad is not None:
            return bad
        g = req.org.sessions.grant(form.get("refresh_token") or "")
        if g is None or g.client_id != client_id:
            return oauth_error("invalid_grant", "expired access/refresh token")
        session = req.org.sessions.issue(g.user_id, g.client_id, g.scopes, refresh_token=g.refresh_token,
                                         login_host=_login_base(req))  # fmt: skip
        return token_response(req, session)
    if grant == "password":
        bad = _check_client(req, client_id, secret, require_secret=True)
        if bad is not None:
            return bad
        account = req.org.authenticate(form.get("username", ""), form.get("password", ""))
        if account is None:
            return oauth_error("invalid_grant", "authentication failure")
        scopes = _parse_scopes(form.get("scope"))
        if scopes is None:
            return oauth_error("invalid_scope", "the requested scope is not allowed")
        return _issue(req, account.id, client_id or "", scopes, with_refresh=False)
    if grant == "device":
        return _device_poll(req, form, client_id)
    if not grant:
        return oauth_error("unsupported_grant_type", "grant type not supported")
    return oauth_error("unsupported_grant_type", "grant type not supported")


def _grant_code(req: Request, form: dict[str, str], client_id: str | None, secret: str | None) -> Response:
    bad = _check_client(req, client_id, secret)
    if bad is not None:
        return bad
    st = _state(req)
    now = req.org.clock.now_ms()
    code_value = form.get("code") or ""
    with st.lock:
        code = st.codes.get(code_value)
        if code is not None and code.used:
            # a replayed code revokes what it issued, as OAuth 2.0 recommends
            for t in code.issued_tokens:
                req.org.sessions.revoke(t)
        if code is None or code.used or now - code.created_ms > CODE_TTL_MS or code.client_id != client_id:
            return oauth_error("invalid_grant", "expired authorization code")
        if form.get("redirect_uri") != code.redirect_uri:
            return oauth_error("redirect_uri_mismatch", "redirect_uri must match configuration")
        if code.code_challenge:
            verifier = form.get("code_verifier")
            if not verifier:
                return oauth_error("invalid_grant", "invalid code verifier")
            if not hmac.compare_digest(_s256(verifier), code.code_challenge):
                return oauth_error("invalid_request", "invalid code verifier")
        code.used = True
    resp = _issue(req, code.user_id, code.client_id, code.scopes)
    with st.lock:
        data = json.loads(resp.body)
        code.issued_tokens.extend(t for t in (data.get("access_token"), data.get("refresh_token")) if t)
    return resp


# -- device flow ----------------------------------------------------------------------------------------

_USER_CODE_ALPHABET = "BCDFGHJKLMNPQRSTVWXZ23456789"


def _device_start(req: Request, form: dict[str, str]) -> Response:
    client_id, _ = _client_credentials(req, form)
    if not client_id or client_id != req.app.config.client_id:
        return oauth_error("invalid_client_id", "client identifier invalid")
    scopes = _parse_scopes(form.get("scope"))
    if scopes is None:
        return oauth_error("invalid_scope", "the requested scope is not allowed")
    st = _state(req)
    device_code = secrets.token_urlsafe(32)
    user_code = "".join(secrets.choice(_USER_CODE_ALPHABET) for _ in range(8))
    interval = _device_interval(req)
    with st.lock:
        st.devices[device_code] = DeviceGrant(client_id, scopes, user_code, req.org.clock.now_ms(), interval)
    return json_response({"device_code": device_code, "user_code": user_code,
                          "verification_uri": f"{_login_base(req)}/setup/connect",
                          "interval": int(interval) if interval == int(interval) else interval})  # fmt: skip


def _device_poll(req: Request, form: dict[str, str], client_id: str | None) -> Response:
    st = _state(req)
    now = req.org.clock.now_ms()
    with st.lock:
        dg = st.devices.get(form.get("code") or "")
        if dg is None or dg.client_id != client_id or dg.done:
            return oauth_error("invalid_grant", "invalid device code")
        if now - dg.created_ms > DEVICE_TTL_MS:
            return oauth_error("expired_token", "expired token")
        if dg.denied:
            dg.done = True
            return oauth_error("access_denied", "end-user denied authorization")
        too_fast = dg.last_poll_ms and now - dg.last_poll_ms < dg.interval * 1000
        dg.last_poll_ms = now
        if dg.user_id is None:
            if too_fast:
                return oauth_error("slow_down", "slow down")
            return oauth_error("authorization_pending", "authorization pending")
        dg.done = True
        user_id, scopes = dg.user_id, dg.scopes
    return _issue(req, user_id, client_id or "", scopes)


@route(("GET", "POST"), r"/setup/connect/?", auth="public")
def device_verify(req: Request) -> Response:
    form = req.form()
    st = _state(req)
    code_field = ('<label for="user_code">Code</label><input type="text" id="user_code" '
                  f'name="user_code" value="{html.escape(form.get("user_code", ""))}" required>')  # fmt: skip
    if req.method == "GET":
        return page("Connect a device", _login_form("/setup/connect", {}, APP_NAME, (),
                                                    extra_fields=code_field))  # fmt: skip
    entered = (form.get("user_code") or "").strip().upper().replace("-", "")
    now = req.org.clock.now_ms()
    with st.lock:
        dg = next((d for d in st.devices.values()
                   if d.user_code == entered and not d.done and now - d.created_ms <= DEVICE_TTL_MS), None)  # fmt: skip
    if dg is None:
        return page("Connect a device", _login_form("/setup/connect", {}, APP_NAME, (),
                                                    error="That code is invalid or has expired.",
                                                    extra_fields=code_field))  # fmt: skip
    if form.get("action") != "Allow":
        with st.lock:
            dg.denied = True
        return page("Access denied", "<p id=\"result\">You denied access. You can close this window.</p>")
    account = req.org.authenticate(form.get("username", ""), form.get("password", ""))
    if account is None:
        return page("Connect a device", _login_form("/setup/connect", {}, APP_NAME, dg.scopes,
                                                    error=LOGIN_ERROR, extra_fields=code_field))  # fmt: skip
    with st.lock:
        dg.user_id = account.id
    return page("Device connected", "<p id=\"result\">Your device is connected. You can close this window.</p>")


# -- revoke / introspect ----------------------------------------------------------------------------------


@route(("GET", "POST"), r"/services/oauth2/revoke/?", auth="public")
def revoke(req: Request) -> Response:
    tok = req.form().get("token") or ""
    if not tok or not req.org.sessions.revoke(tok):
        return oauth_error("unsupported_token_type", "this token type is not supported")
    return empty_response(200)


@route("POST", r"/services/oauth2/introspect/?", auth="public")
def introspect(req: Request) -> Response:
    form = req.form()
    client_id, secret = _client_credentials(req, form)
    bad = _check_client(req, client_id, secret)
    if bad is not None:
        return bad
    tok = form.get("token") or ""
    org = req.org
    session = org.sessions.get(tok)
    if session is not None:
        user = org.users.get(session.user_id)
        return json_response({"active": True, "scope": " ".join(session.scopes),
                              "client_id": session.client_id, "username": user.username if user else None,
                              "sub": identity_url(req, session.user_id), "token_type": "access_token",
                              "exp": (session.expires_ms or 0) // 1000, "iat": session.issued_ms // 1000,
                              "nbf": session.issued_ms // 1000})  # fmt: skip
    grant = org.sessions.grant(tok)
    if grant is not None:
        user = org.users.get(grant.user_id)
        return json_response({"active": True, "scope": " ".join(grant.scopes), "client_id": grant.client_id,
                              "username": user.username if user else None,
                              "sub": identity_url(req, grant.user_id), "token_type": "refresh_token",
                              "iat": grant.issued_ms // 1000, "nbf": grant.issued_ms // 1000})  # fmt: skip
    return json_response({"active": False})


# -- identity and userinfo ----------------------------------------------------------------------------


def _bearer_session(req: Request) -> Session | None:
    auth = req.headers.get("Authorization") or ""
    scheme, _, tok = auth.partition(" ")
    if scheme.lower() not in ("bearer", "oauth"):
        tok = req.arg("oauth_token") or ""
    return req.org.sessions.get(tok.strip()) if tok.strip() else None


def _urls(req: Request, version: str) -> dict[str, str]:
    base = req.app.base_url or req.base_url()
    org15 = req.org.org_id[:15]
    d = f"{base}/services/data/v{version}"
    return {
        "enterprise": f"{base}/services/Soap/c/{version}/{org15}",
        "metadata": f"{base}/services/Soap/m/{version}/{org15}",
        "partner": f"{base}/services/Soap/u/{version}/{org15}",
        "rest": f"{d}/", "sobjects": f"{d}/sobjects/", "search": f"{d}/search/",
        "query": f"{d}/query/", "recent": f"{d}/recent/",
        "tooling_soap": f"{base}/services/Soap/T/{version}/{org15}",
        "tooling_rest": f"{d}/tooling/", "profile": f"{base}/{req.user_id}",
        "feeds": f"{d}/chatter/feeds", "groups": f"{d}/chatter/groups",
        "users": f"{d}/chatter/users", "feed_items": f"{d}/chatter/feed-items",
        "custom_domain": base,
    }  # fmt: skip


def _identity(req: Request, session: Session) -> dict[str, Any]:
    org = req.org
    user = org.user_record(session.user_id)
    version = req.arg("version") or "{version}"
    if version == "latest":
        version = "67.0"
    req.session = session
    return {
        "id": identity_url(req, session.user_id),
        "asserted_user": True,
        "user_id": session.user_id,
        "organization_id": org.org_id,
        "username": user["Username"],
        "nick_name": user.get("CommunityNickname"),
        "display_name": user.get("Name"),
        "email": user.get("Email"),
        "email_verified": True,
        "first_name": user.get("FirstName"),
        "last_name": user.get("LastName"),
        "timezone": user.get("TimeZoneSidKey"),
        "photos": {"picture": f"{req.app.base_url}/profilephoto/005/F",
                   "thumbnail": f"{req.app.base_url}/profilephoto/005/T"},  # fmt: skip
        "addr_street": None, "addr_city": None, "addr_state": None, "addr_country": "US",
        "addr_zip": None, "mobile_phone": None, "mobile_phone_verified": False,
        "is_lightning_login_user": False,
        "status": {"created_date": None, "body": None},
        "urls": _urls(req, version),
        "active": bool(user.get("IsActive")),
        "user_type": "STANDARD",
        "language": user.get("LanguageLocaleKey"),
        "locale": user.get("LocaleSidKey"),
        "utcOffset": -28800000,
        "last_modified_date": vals.format_datetime(user["LastModifiedDate"]),
        "is_app_installed": True,
    }  # fmt: skip


@route("GET", r"/id/(?P<org_id>[0-9A-Za-z]{15,18})/(?P<user_id>[0-9A-Za-z]{15,18})/?", auth="public")
def identity(req: Request) -> Response:
    session = _bearer_session(req)
    if session is None:
        return text_response("Bad_OAuth_Token", 403)
    from lc_console.sandbox.salesforce import ids

    if ids.try_normalize(req.params["user_id"]) != session.user_id or \
            ids.try_normalize(req.params["org_id"]) != req.org.org_id:  # fmt: skip
        return text_response("Bad_Id", 403)
    return json_response(_identity(req, session))


@route(("GET", "POST"), r"/services/oauth2/userinfo/?", auth="public")
def userinfo(req: Request) -> Response:
    session = _bearer_session(req)
    if session is None:
        return text_response("Bad_OAuth_Token", 403)
    ident = _identity(req, session)
    return json_response({
        "sub": ident["id"], "user_id": ident["user_id"], "organization_id": ident["organization_id"],
        "preferred_username": ident["username"], "nickname": ident["nick_name"],
        "name": ident["display_name"], "email": ident["email"], "email_verified": True,
        "given_name": ident["first_name"], "family_name": ident["last_name"],
        "zoneinfo": ident["timezone"], "photos": ident["photos"],
        "profile": ident["urls"]["profile"], "picture": ident["photos"]["picture"],
        "address": {"country": "US"}, "is_salesforce_integration_user": False,
        "urls": ident["urls"], "active": ident["active"], "user_type": "STANDARD",
        "language": ident["language"], "locale": ident["locale"], "utcOffset": ident["utcOffset"],
        "updated_at": ident["last_modified_date"],
    })  # fmt: skip


ROUTES = [authorize, token, device_verify, revoke, introspect, identity, userinfo]
