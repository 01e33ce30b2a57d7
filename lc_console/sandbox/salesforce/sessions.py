"""Access tokens (sessions) and refresh tokens of one org.

An access token looks like Salesforce's: `<15-char org id>!<opaque>`. It is valid until
`ttl_seconds` after issue on the org clock (absolute, so a test that sets a few seconds sees a
deterministic expiry), until revoked, or until `expire_all()`. A refresh token is a grant:
revoking it revokes every access token issued from it.
"""

from __future__ import annotations

import secrets
import threading
from dataclasses import dataclass, field
from typing import Any

from lc_console.sandbox.salesforce.clock import Clock


@dataclass(slots=True)
class Session:
    token: str
    user_id: str
    client_id: str
    scopes: tuple[str, ...]
    issued_ms: int
    expires_ms: int | None
    refresh_token: str | None = None  # the grant this session came from
    login_host: str = ""  # host the user logged in at (for the identity URL)


@dataclass(slots=True)
class Grant:
    refresh_token: str
    user_id: str
    client_id: str
    scopes: tuple[str, ...]
    issued_ms: int
    access_tokens: set[str] = field(default_factory=set)


class SessionStore:
    def __init__(self, clock: Clock, org_id: str, ttl_seconds: float = 7200.0) -> None:
        self.clock = clock
        self.org_id = org_id
        self.ttl_seconds = ttl_seconds
        self._lock = threading.Lock()
        self._sessions: dict[str, Session] = {}
        self._grants: dict[str, Grant] = {}

    def issue(
        self,
        user_id: str,
        client_id: str,
        scopes: tuple[str, ...] = ("api",),
        refresh_token: str | None = None,
        login_host: str = "",
        ttl_seconds: float | None = None,
    ) -> Session:
        now = self.clock.now_ms()
        ttl = self.ttl_seconds if ttl_seconds is None else ttl_seconds
        token = f"{self.org_id[:15]}!{secrets.token_urlsafe(72)}"
        session = Session(token, user_id, client_id, scopes, now, now + int(ttl * 1000),
                          refresh_token, login_host)  # fmt: skip
        with self._lock:
            self._sessions[token] = session
            if refresh_token and refresh_token in self._grants:
                self._grants[refresh_token].access_tokens.add(token)
        return session

    def new_grant(self, user_id: str, client_id: str, scopes: tuple[str, ...]) -> Grant:
        grant = Grant(f"5Aep861{secrets.token_urlsafe(64)}", user_id, client_id, scopes,
                      self.clock.now_ms())  # fmt: skip
        with self._lock:
            self._grants[grant.refresh_token] = grant
        return grant

    def grant(self, refresh_token: str) -> Grant | None:
        with self._lock:
            return self._grants.get(refresh_token)

    def get(self, token: str) -> Session | None:
        """The live session for an access token, or None (unknown, expired or revoked)."""
        with self._lock:
            session = self._sessions.get(token)
            if session is None:
                return None
            if session.expires_ms is not None and self.clock.now_ms() >= session.expires_ms:
                del self._sessions[token]
                return None
            return session

    def revoke(self, token: str) -> bool:
        """Revoke an access or refresh token; a refresh token takes its access tokens along."""
        with self._lock:
            if token in self._sessions:
                del self._sessions[token]
                return True
            grant = self._grants.pop(token, None)
            if grant is None:
                return False
            for access in grant.access_tokens:
                self._sessions.pop(access, None)
            return True

    def revoke_user(self, user_id: str) -> int:
        with self._lock:
            gone = [t for t, s in self._sessions.items() if s.user_id == user_id]
            for t in gone:
                del self._sessions[t]
            grants = [t for t, g in self._grants.items() if g.user_id == user_id]
            for t in grants:
                del self._grants[t]
            return len(gone) + len(grants)

    def expire_all(self) -> int:
        """Expire every access token now (refresh tokens stay valid)."""
        with self._lock:
            n = len(self._sessions)
            self._sessions.clear()
            for grant in self._grants.values():
                grant.access_tokens.clear()
            return n

    def sessions(self) -> list[Session]:
        with self._lock:
            return list(self._sessions.values())

    # -- persistence ---------------------------------------------------------------------------
    def dump(self) -> dict[str, Any]:
        with self._lock:
            return {
                "grants": [
                    {"refresh_token": g.refresh_token, "user_id": g.user_id,
                     "client_id": g.client_id, "scopes": list(g.scopes), "issued_ms": g.issued_ms}
                    for g in self._grants.values()
                ],
                "sessions": [
                    {"token": s.token, "user_id": s.user_id, "client_id": s.client_id,
                     "scopes": list(s.scopes), "issued_ms": s.issued_ms,
                     "expires_ms": s.expires_ms, "refresh_token": s.refresh_token,
                     "login_host": s.login_host}
                    for s in self._sessions.values()
                ],
            }  # fmt: skip

    def load(self, data: dict[str, Any]) -> None:
        with self._lock:
            for g in data.get("grants", []):
                self._grants[g["refresh_token"]] = Grant(
                    g["refresh_token"], g["user_id"], g["client_id"], tuple(g["scopes"]),
                    g["issued_ms"],
                )  # fmt: skip
            for s in data.get("sessions", []):
                session = Session(s["token"], s["user_id"], s["client_id"], tuple(s["scopes"]),
                                  s["issued_ms"], s["expires_ms"], s.get("refresh_token"),
                                  s.get("login_host", ""))  # fmt: skip
                self._sessions[session.token] = session
                if session.refresh_token in self._grants:
                    self._grants[session.refresh_token].access_tokens.add(session.token)
