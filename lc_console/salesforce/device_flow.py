"""OAuth 2.0 device flow, Salesforce flavour, for machines without a browser (SSH).

Salesforce runs it on the token endpoint (as the Salesforce CLI does, sfdx-core
deviceOauthService): `response_type=device_code` + client_id + scope returns device_code,
user_code, verification_uri and interval; the console then polls with `grant_type=device` and
`code=<device_code>`. While the user has not approved, the answer is 400 authorization_pending;
`slow_down` asks for a longer interval (RFC 8628 3.5: +5 seconds); Deny gives access_denied;
an expired code gives expired_token (or invalid_grant mentioning expiry).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx

from lc_console.salesforce.callback_server import (
    AuthorizationDenied,
    AuthorizationFailed,
    CallbackCancelled,
    CallbackError,
)
from lc_console.salesforce.oauth import SCOPES, scope_string
from lc_console.salesforce.token_endpoint import (
    OAuthError,
    TokenResponse,
    parse_token_response,
    post_token,
)

# Salesforce does not say how long a device code lives; RFC 8628 servers send expires_in.
DEFAULT_LIFETIME = 600.0
SLOW_DOWN_STEP = 5.0


class DeviceCodeExpired(CallbackError):
    def __init__(self) -> None:
        super().__init__("the device code expired before it was approved")


@dataclass(frozen=True)
class DeviceCode:
    device_code: str
    user_code: str
    verification_uri: str
    interval: float
    expires_in: float

    def __repr__(self) -> str:
        return f"DeviceCode(user_code={self.user_code!r}, verification_uri={self.verification_uri!r})"


def start(client: httpx.Client, login_url: str, client_id: str,
          scopes: tuple[str, ...] = SCOPES) -> DeviceCode:
    body = post_token(client, login_url, {
        "response_type": "device_code",
        "client_id": client_id,
        "scope": scope_string(scopes),
    })
    try:
        return DeviceCode(
            device_code=str(body["device_code"]),
            user_code=str(body["user_code"]),
            verification_uri=str(body["verification_uri"]),
            interval=max(1.0, float(body.get("interval") or 5)),
            expires_in=float(body.get("expires_in") or DEFAULT_LIFETIME),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise OAuthError("invalid_response", f"device code response lacks {exc}") from None


def _expired(err: OAuthError) -> bool:
    return err.error == "expired_token" or (
        err.error == "invalid_grant" and "expire" in err.description.lower())


def poll(client: httpx.Client, login_url: str, client_id: str, code: DeviceCode, *,
         cancel: threading.Event | None = None,
         sleep: Callable[[float], None] | None = None,
         clock: Callable[[], float] = time.monotonic,
         on_wait: Callable[[float], None] | None = None) -> TokenResponse:
    """Poll at the interval Salesforce gave until approved, denied, expired or cancelled."""
    cancel = cancel or threading.Event()

    def _sleep(seconds: float) -> None:
        if sleep is not None:
            sleep(seconds)
        elif cancel.wait(seconds):
            raise CallbackCancelled()

    interval = code.interval
    deadline = clock() + code.expires_in
    while True:
        if cancel.is_set():
            raise CallbackCancelled()
        if clock() >= deadline:
            raise DeviceCodeExpired()
        if on_wait:
            on_wait(interval)
        _sleep(interval)
        if cancel.is_set():
            raise CallbackCancelled()
        try:
            body = post_token(client, login_url, {
                "grant_type": "device",
                "client_id": client_id,
                "code": code.device_code,
            })
        except OAuthError as err:
            if err.error == "authorization_pending":
                continue
            if err.error == "slow_down":
                interval += SLOW_DOWN_STEP
                continue
            if err.error in ("access_denied", "access-denied"):
                raise AuthorizationDenied(err.description) from None
            if _expired(err):
                raise DeviceCodeExpired() from None
            raise AuthorizationFailed(err.error, err.description) from None
        return parse_token_response(body)
