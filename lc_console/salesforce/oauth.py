"""Pure pieces of Salesforce OAuth 2.0: PKCE, state, the authorize URL, login hosts.

Nothing here does I/O. The flow itself (callback server, token exchange, device flow) lives in
callback_server.py, tokens.py and device_flow.py.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from dataclasses import dataclass
from urllib.parse import urlencode, urlsplit

PRODUCTION_URL = "https://login.salesforce.com"
SANDBOX_URL = "https://test.salesforce.com"

AUTHORIZE_PATH = "/services/oauth2/authorize"
TOKEN_PATH = "/services/oauth2/token"
REVOKE_PATH = "/services/oauth2/revoke"
CALLBACK_PATH = "/OAuth/Callback"

# `api` covers REST, Bulk 2.0 and the Metadata API (deploying the custom objects and fields);
# `refresh_token` lets the console work unattended. The org and user ids come from the `id`
# URL of the token response and the username from a REST query, so neither `id` nor `openid`
# (nor the broad `full`) is needed. An admin can see exactly these two on the consent page.
SCOPES: tuple[str, ...] = ("api", "refresh_token")


def scope_string(scopes: tuple[str, ...] = SCOPES) -> str:
    return " ".join(scopes)


# --- PKCE (RFC 7636) and state --------------------------------------------------------------


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


@dataclass(frozen=True)
class Pkce:
    verifier: str
    challenge: str
    method: str = "S256"


def challenge_for(verifier: str) -> str:
    """S256: base64url(SHA-256(ascii(verifier))) without padding."""
    return _b64url(hashlib.sha256(verifier.encode("ascii")).digest())


def new_pkce() -> Pkce:
    # 64 random bytes -> 86 characters from the unreserved set, inside RFC 7636's 43..128.
    verifier = _b64url(secrets.token_bytes(64))
    return Pkce(verifier=verifier, challenge=challenge_for(verifier))


def new_state() -> str:
    """An unguessable value tying the browser's answer to this one attempt (CSRF)."""
    return secrets.token_urlsafe(32)


def redirect_uri(port: int) -> str:
    # `localhost`, as the Salesforce CLI uses: connected apps accept http:// callbacks only for
    # localhost. The callback server binds 127.0.0.1 and checks that [::1] is not taken.
    return f"http://localhost:{port}{CALLBACK_PATH}"


def authorize_url(
    login_url: str,
    client_id: str,
    redirect: str,
    state: str,
    pkce: Pkce,
    scopes: tuple[str, ...] = SCOPES,
) -> str:
    params = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": redirect,
        "scope": scope_string(scopes),
        "state": state,
        "code_challenge": pkce.challenge,
        "code_challenge_method": pkce.method,
        # Always show the login form, so the admin picks the org and user on purpose rather
        # than whatever session the browser happens to hold.
        "prompt": "login",
    }
    return f"{login_url.rstrip('/')}{AUTHORIZE_PATH}?{urlencode(params)}"


# --- environments -----------------------------------------------------------------------------


class LoginUrlError(ValueError):
    """A login URL the console cannot use; the message says which one to use instead."""

    def __init__(self, message: str, suggestion: str = ""):
        super().__init__(message)
        self.suggestion = suggestion


@dataclass(frozen=True)
class LoginTarget:
    environment: str  # "production" | "sandbox" | "custom" (settings.salesforce.environment)
    login_url: str

    @property
    def label(self) -> str:
        if self.environment == "production":
            return f"Production ({self.login_url})"
        if self.environment == "sandbox":
            return f"Sandbox ({self.login_url})"
        return f"My Domain ({self.login_url})"


# Hosts a user may paste from the browser's address bar that are not login hosts, and the
# suffix of the My Domain login host that serves the same org.
_NOT_LOGIN_SUFFIXES = (
    (".lightning.force.com", ".my.salesforce.com", "a Lightning Experience address"),
    (".my.salesforce-setup.com", ".my.salesforce.com", "a Setup address"),
    (".visualforce.com", "", "a Visualforce address"),
    (".vf.force.com", "", "a Visualforce address"),
    (".my.site.com", "", "an Experience Cloud site"),
    (".force.com", "", "a Salesforce Sites address"),
)


def _suggest_my_domain(host: str) -> str:
    """acme.lightning.force.com -> acme.my.salesforce.com; also sandbox/develop variants.

    A Visualforce host (acme--c.vf.force.com, acme--ns.sandbox.vf.force.com) carries the My
    Domain name before the first `--`.
    """
    for suffix, replacement, _what in _NOT_LOGIN_SUFFIXES:
        if host.endswith(suffix):
            if replacement:
                return "https://" + host[: -len(suffix)] + replacement
            first = host.split(".", 1)[0]
            if "--" in first:
                name = first.split("--", 1)[0]
                sandbox = ".sandbox" if ".sandbox." in host else ""
                return f"https://{name}{sandbox}.my.salesforce.com"
            return ""
    return ""


def resolve_login(env: str) -> LoginTarget:
    """`production`, `sandbox`, or a My Domain URL/host -> where the browser signs in.

    Raises LoginUrlError naming the problem and, where it can, the right URL.
    """
    text = env.strip()
    low = text.lower()
    if low in ("production", "prod", "login"):
        return LoginTarget("production", PRODUCTION_URL)
    if low in ("sandbox", "test"):
        return LoginTarget("sandbox", SANDBOX_URL)
    if not text:
        raise LoginUrlError("No environment given: use production, sandbox or your My Domain URL.")
    if "://" not in text:
        text = "https://" + text
    parts = urlsplit(text)
    host = (parts.hostname or "").lower()
    if not host:
        raise LoginUrlError(f"{env!r} is not a URL: use production, sandbox or "
                            "https://<your-domain>.my.salesforce.com.")
    if parts.scheme != "https":
        raise LoginUrlError(
            f"{env} does not use https. Salesforce signs in only over https: use "
            f"https://{parts.netloc}.",
            suggestion=f"https://{parts.netloc}",
        )
    if parts.username or parts.password:
        raise LoginUrlError(f"{host}: a login URL must not contain a user name or password.")
    try:
        port = parts.port
    except ValueError:
        raise LoginUrlError(f"{env}: the port is not a number.") from None
    for suffix, _replacement, what in _NOT_LOGIN_SUFFIXES:
        if host.endswith(suffix):
            suggestion = _suggest_my_domain(host)
            hint = (f"Use {suggestion}" if suggestion else
                    "Use your My Domain login URL (Setup > My Domain, "
                    "https://<name>.my.salesforce.com)")
            raise LoginUrlError(
                f"{host} is {what}, not a login URL. {hint} instead.", suggestion=suggestion
            )
    if host == "login.salesforce.com":
        return LoginTarget("production", PRODUCTION_URL)
    if host == "test.salesforce.com":
        return LoginTarget("sandbox", SANDBOX_URL)
    netloc = host if port in (None, 443) else f"{host}:{port}"
    # The path, query and fragment of a pasted address bar are dropped: only the host matters.
    return LoginTarget("custom", f"https://{netloc}")


def parse_identity_url(identity_url: str) -> tuple[str, str]:
    """(org id, user id) from the `id` URL of a token response: .../id/<org>/<user>."""
    parts = [p for p in urlsplit(identity_url).path.split("/") if p]
    if len(parts) < 3 or parts[-3] != "id":
        raise ValueError(f"not a Salesforce identity URL: {identity_url!r}")
    return parts[-2], parts[-1]
