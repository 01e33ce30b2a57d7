"""The one token manager: stores, refreshes and hands out Salesforce sessions.

- Secrets (refresh and access token) live in the OS keyring (secrets.py); instance URL, org
  id, user id and username live in settings.
- Salesforce gives no expiry time (no expires_in): a call that gets 401 INVALID_SESSION_ID
  refreshes the access token once and is sent again. This happens below simple-salesforce, in
  a transport adapter mounted on the client's requests session, so REST, SObject, Bulk 2.0 and
  deploy calls all recover without knowing. SOAP faults (Metadata API) are covered by
  `call()`, which refreshes and runs the whole operation once more.
- When the refresh itself is refused (invalid_grant: revoked, expired, too many grants), the
  connection is marked expired in settings and ConnectionExpired is raised: the sync pauses on
  it and resumes after a reconnect.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx
import requests
from requests.adapters import HTTPAdapter
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceError, SalesforceExpiredSession

from lc_console import net, secrets, settings
from lc_console.salesforce import token_endpoint
from lc_console.salesforce.token_endpoint import OAuthError, TokenResponse

T = TypeVar("T")


class NotConnected(Exception):
    def __init__(self, detail: str = "") -> None:
        super().__init__(detail or "Salesforce is not connected")


class ConnectionExpired(Exception):
    """The refresh token no longer works: the admin must sign in again (Reconnect)."""

    def __init__(self, error: str = "invalid_grant", description: str = "") -> None:
        super().__init__(f"{error}: {description}" if description else error)
        self.error = error
        self.description = description


def is_invalid_session(status: int, body: bytes | str) -> bool:
    """401 with a JSON array whose first item has errorCode INVALID_SESSION_ID (REST), or a
    SOAP fault naming sf:INVALID_SESSION_ID (Metadata API, HTTP 500)."""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    if status == 401:
        try:
            data = json.loads(text)
        except ValueError:
            return False
        return (isinstance(data, list) and bool(data) and isinstance(data[0], dict)
                and data[0].get("errorCode") == "INVALID_SESSION_ID")
    return status == 500 and "INVALID_SESSION_ID" in text and "Fault" in text


@dataclass(frozen=True)
class ConnectionInfo:
    """What settings know about the connection (no secrets)."""

    environment: str
    login_url: str
    client_id: str
    instance_url: str
    org_id: str
    user_id: str
    username: str
    api_version: str
    expired: bool


class _RefreshingAdapter(HTTPAdapter):
    """Sends a request again, once, with a fresh token after 401 INVALID_SESSION_ID."""

    def __init__(self, manager: TokenManager) -> None:
        super().__init__()
        self.manager = manager
        self.client: Salesforce | None = None

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        response = super().send(request, **kwargs)
        auth = request.headers.get("Authorization", "")
        if (response.status_code != 401 or not auth.startswith("Bearer ")
                or not is_invalid_session(response.status_code, response.content)):
            return response
        fresh = self.manager.refresh(stale=auth.removeprefix("Bearer "))
        if self.client is not None:
            self.manager.apply_token(self.client, fresh)
        retry = request.copy()
        retry.headers["Authorization"] = f"Bearer {fresh}"
        response.close()
        return super().send(retry, **kwargs)


class TokenManager:
    """One per profile and process; thread-safe."""

    def __init__(self, profile: str, *,
                 http_client_factory: Callable[[], httpx.Client] | None = None) -> None:
        self.profile = profile
        self._lock = threading.Lock()
        self._http_client_factory = http_client_factory
        self._access: str | None = None

    # --- settings and keyring -----------------------------------------------------------

    def _settings(self) -> settings.Settings:
        return settings.load(self.profile)

    def _http(self) -> httpx.Client:
        if self._http_client_factory is not None:
            return self._http_client_factory()
        return net.http_client(self._settings().tls.ca_bundle)

    def info(self) -> ConnectionInfo:
        sf = self._settings().salesforce
        return ConnectionInfo(environment=sf.environment, login_url=sf.login_url,
                              client_id=sf.client_id, instance_url=sf.instance_url,
                              org_id=sf.org_id, user_id=sf.user_id, username=sf.username,
                              api_version=sf.api_version, expired=sf.connection_expired)

    def is_configured(self) -> bool:
        """Settings name an org (whether or not its tokens still work)."""
        return bool(self._settings().salesforce.instance_url)

    def store(self, tokens: TokenResponse, *, environment: str, login_url: str,
              client_id: str) -> None:
        """Save a fresh sign-in: tokens to the keyring, the rest to settings."""
        if not tokens.refresh_token:
            raise OAuthError(
                "no_refresh_token",
                "Salesforce issued no refresh token: add the `refresh_token` scope ("
                "'Perform requests at any time') to the connected app's Selected OAuth Scopes")
        with self._lock:
            secrets.put(self.profile, secrets.SecretKind.SALESFORCE_REFRESH_TOKEN,
                        tokens.refresh_token)
            secrets.put(self.profile, secrets.SecretKind.SALESFORCE_ACCESS_TOKEN,
                        tokens.access_token)
            self._access = tokens.access_token
            current = self._settings()
            sf = current.salesforce
            if sf.org_id != tokens.org_id or sf.user_id != tokens.user_id:
                # Another org or user: names learned for the old one no longer apply.
                sf.org_name = ""
                sf.username = ""
                sf.is_sandbox = False
            sf.environment = environment
            sf.login_url = login_url
            sf.client_id = client_id
            sf.instance_url = tokens.instance_url
            sf.org_id = tokens.org_id
            sf.user_id = tokens.user_id
            sf.connection_expired = False
            settings.save(self.profile, current)

    def remember_org(self, *, org_name: str, is_sandbox: bool, username: str) -> None:
        current = self._settings()
        current.salesforce.org_name = org_name
        current.salesforce.is_sandbox = is_sandbox
        current.salesforce.username = username
        settings.save(self.profile, current)

    def _mark_expired(self) -> None:
        current = self._settings()
        if not current.salesforce.connection_expired:
            current.salesforce.connection_expired = True
            settings.save(self.profile, current)

    # --- tokens -------------------------------------------------------------------------

    def access_token(self) -> str:
        with self._lock:
            self._check_usable()
            if self._access is None:
                self._access = secrets.get(self.profile, secrets.SecretKind.SALESFORCE_ACCESS_TOKEN)
            access = self._access
        return access if access else self.refresh(stale=None)

    def _check_usable(self) -> None:
        sf = self._settings().salesforce
        if not sf.instance_url:
            raise NotConnected()
        if sf.connection_expired:
            raise ConnectionExpired("invalid_grant", "marked expired by an earlier refresh")

    def refresh(self, stale: str | None) -> str:
        """A working access token. When `stale` is not the current token any more, another
        caller already refreshed: return the current one instead of refreshing again."""
        with self._lock:
            if stale is not None and self._access and self._access != stale:
                return self._access
            self._check_usable()
            refresh_token = secrets.get(self.profile, secrets.SecretKind.SALESFORCE_REFRESH_TOKEN)
            if not refresh_token:
                raise NotConnected("no Salesforce refresh token in the keyring")
            sf = self._settings().salesforce
            try:
                with self._http() as client:
                    fresh = token_endpoint.refresh(client, sf.login_url, client_id=sf.client_id,
                                                   refresh_token=refresh_token)
            except OAuthError as err:
                if err.refresh_token_dead:
                    self._mark_expired()
                    self._access = None
                    raise ConnectionExpired(err.error, err.description) from None
                raise
            secrets.put(self.profile, secrets.SecretKind.SALESFORCE_ACCESS_TOKEN,
                        fresh.access_token)
            self._access = fresh.access_token
            if fresh.instance_url and fresh.instance_url != sf.instance_url:
                current = self._settings()
                current.salesforce.instance_url = fresh.instance_url
                settings.save(self.profile, current)
            return fresh.access_token

    # --- simple-salesforce clients ------------------------------------------------------

    @staticmethod
    def apply_token(client: Salesforce, token: str) -> None:
        """simple-salesforce in session-id mode never refreshes by itself: point the client
        at the new token, rebuild its headers (deploy() also leaves Content-Type text/xml in
        them) and drop the cached Metadata API client that holds the old id."""
        client.session_id = token
        client._generate_headers()
        client._mdapi = None

    def salesforce(self) -> Salesforce:
        """A simple-salesforce client over our requests session (tls.ca_bundle applied).
        Not thread-safe: use one per thread."""
        current = self._settings()
        token = self.access_token()
        session = net.requests_session(current.tls.ca_bundle)
        adapter = _RefreshingAdapter(self)
        session.mount("https://", adapter)
        client = Salesforce(instance_url=current.salesforce.instance_url, session_id=token,
                            version=current.salesforce.api_version.lstrip("v"), session=session)
        adapter.client = client
        return client

    def call(self, fn: Callable[[Salesforce], T], client: Salesforce | None = None) -> T:
        """Run fn(client); on an expired session that the adapter could not fix (SOAP
        faults), refresh once and run it again."""
        client = client or self.salesforce()
        try:
            return fn(client)
        except SalesforceExpiredSession:
            pass
        except SalesforceError as exc:
            content = exc.content if isinstance(exc.content, str) else json.dumps(exc.content)
            if not is_invalid_session(exc.status, content):
                raise
        self.apply_token(client, self.refresh(stale=client.session_id))
        return fn(client)

    # --- disconnect ---------------------------------------------------------------------

    def revoke(self) -> bool:
        """Revoke the refresh token (and its access tokens) at Salesforce; False when there
        was nothing to revoke."""
        token = secrets.get(self.profile, secrets.SecretKind.SALESFORCE_REFRESH_TOKEN)
        if not token:
            return False
        sf = self._settings().salesforce
        with self._http() as client:
            token_endpoint.revoke(client, sf.login_url, token)
        return True

    def forget(self) -> None:
        """Delete the tokens from the keyring and the org from settings."""
        with self._lock:
            secrets.delete(self.profile, secrets.SecretKind.SALESFORCE_REFRESH_TOKEN)
            secrets.delete(self.profile, secrets.SecretKind.SALESFORCE_ACCESS_TOKEN)
            self._access = None
            current = self._settings()
            sf = current.salesforce
            sf.instance_url = sf.org_id = sf.org_name = sf.user_id = sf.username = ""
            sf.is_sandbox = False
            sf.connection_expired = False
            settings.save(self.profile, current)


_managers: dict[str, TokenManager] = {}
_managers_lock = threading.Lock()


def manager_for(profile: str) -> TokenManager:
    """The process-wide manager of a profile, so that every client shares one refresh."""
    with _managers_lock:
        if profile not in _managers:
            _managers[profile] = TokenManager(profile)
        return _managers[profile]
