"""Salesforce's /services/oauth2/token and /revoke endpoints over httpx.

Facts (reference salesforce.md 1.4-1.8): form-encoded POST; success is JSON with access_token,
instance_url, id (identity URL), issued_at in epoch milliseconds, no expires_in; refresh
responses carry no new refresh_token; errors are JSON {"error", "error_description"}.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx

from lc_console.salesforce.oauth import REVOKE_PATH, TOKEN_PATH, parse_identity_url


class OAuthError(Exception):
    """The token endpoint said no. `error` is Salesforce's code (invalid_grant, ...)."""

    def __init__(self, error: str, description: str = "", status: int = 400):
        super().__init__(f"{error}: {description}" if description else error)
        self.error = error
        self.description = description
        self.status = status

    @property
    def refresh_token_dead(self) -> bool:
        """The refresh token is revoked or expired: only a new sign-in helps."""
        return self.error == "invalid_grant"


class SalesforceUnreachable(Exception):
    """No HTTP answer (DNS, TLS, connection refused, timeout)."""

    def __init__(self, url: str, reason: str):
        super().__init__(f"could not reach {url}: {reason}")
        self.url = url
        self.reason = reason


@dataclass(frozen=True)
class TokenResponse:
    access_token: str
    instance_url: str
    identity_url: str
    org_id: str
    user_id: str
    refresh_token: str = ""
    scope: str = ""
    issued_at_ms: int = 0

    def __repr__(self) -> str:  # never show tokens in logs or tracebacks
        return (f"TokenResponse(instance_url={self.instance_url!r}, org_id={self.org_id!r}, "
                f"user_id={self.user_id!r}, scope={self.scope!r})")


def _describe_transport_error(exc: httpx.HTTPError) -> str:
    text = str(exc) or type(exc).__name__
    if "CERTIFICATE_VERIFY_FAILED" in text:
        return ("the TLS certificate is not trusted (set tls.ca_bundle to your company's or "
                "the sandbox's CA file)")
    if isinstance(exc, httpx.TimeoutException):
        return "timed out"
    if isinstance(exc, httpx.ConnectError):
        return f"connection failed ({text})"
    return text


def parse_token_response(data: dict[str, Any]) -> TokenResponse:
    try:
        access = str(data["access_token"])
        instance = str(data["instance_url"]).rstrip("/")
        identity = str(data["id"])
    except KeyError as exc:
        raise OAuthError("invalid_response", f"the token response has no {exc.args[0]}") from None
    if urlsplit(instance).scheme != "https":
        raise OAuthError("invalid_response", f"instance_url {instance!r} is not https")
    try:
        org_id, user_id = parse_identity_url(identity)
    except ValueError as exc:
        raise OAuthError("invalid_response", str(exc)) from None
    try:
        issued = int(data.get("issued_at") or 0)
    except (TypeError, ValueError):
        issued = 0
    return TokenResponse(access_token=access, instance_url=instance, identity_url=identity,
                         org_id=org_id, user_id=user_id,
                         refresh_token=str(data.get("refresh_token") or ""),
                         scope=str(data.get("scope") or ""), issued_at_ms=issued)


def post_token(client: httpx.Client, login_url: str, form: dict[str, str]) -> dict[str, Any]:
    """POST the form; the JSON body on 200, OAuthError on an OAuth error body."""
    url = login_url.rstrip("/") + TOKEN_PATH
    try:
        resp = client.post(url, data=form, headers={"Accept": "application/json"})
    except httpx.HTTPError as exc:
        raise SalesforceUnreachable(login_url, _describe_transport_error(exc)) from None
    try:
        body = resp.json()
    except ValueError:
        body = None
    if resp.status_code == 200 and isinstance(body, dict) and "error" not in body:
        return body
    if isinstance(body, dict) and body.get("error"):
        raise OAuthError(str(body["error"]), str(body.get("error_description") or ""),
                         resp.status_code)
    raise OAuthError("http_error", f"HTTP {resp.status_code} from {url}", resp.status_code)


def exchange_code(client: httpx.Client, login_url: str, *, client_id: str, code: str,
                  redirect_uri: str, code_verifier: str) -> TokenResponse:
    body = post_token(client, login_url, {
        "grant_type": "authorization_code",
        "code": code,
        "client_id": client_id,
        "redirect_uri": redirect_uri,
        "code_verifier": code_verifier,
    })
    return parse_token_response(body)


def refresh(client: httpx.Client, login_url: str, *, client_id: str,
            refresh_token: str) -> TokenResponse:
    body = post_token(client, login_url, {
        "grant_type": "refresh_token",
        "refresh_token": refresh_token,
        "client_id": client_id,
    })
    return parse_token_response(body)


def revoke(client: httpx.Client, base_url: str, token: str) -> None:
    """Revoke a refresh token (and its access tokens) or an access token."""
    url = base_url.rstrip("/") + REVOKE_PATH
    try:
        resp = client.post(url, data={"token": token})
    except httpx.HTTPError as exc:
        raise SalesforceUnreachable(base_url, _describe_transport_error(exc)) from None
    if resp.status_code != 200:
        try:
            body = resp.json()
        except ValueError:
            body = {}
        error = str(body.get("error") or "http_error") if isinstance(body, dict) else "http_error"
        desc = str(body.get("error_description") or "") if isinstance(body, dict) else ""
        raise OAuthError(error, desc or f"HTTP {resp.status_code}", resp.status_code)
