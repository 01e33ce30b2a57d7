"""SalesforceSandbox: start / stop the emulator and inspect or steer it from Python.

    with SalesforceSandbox(token_ttl_seconds=5) as sf_sandbox:
        sf_sandbox.url            # https://127.0.0.1:PORT (the instance URL)
        sf_sandbox.ca_file        # PEM of the local CA to trust
        sf_sandbox.client_id      # connected app consumer key
        sf_sandbox.admin / .user  # UserAccount (username, password, id)
        sf_sandbox.login(sf_sandbox.admin)  -> access token (no OAuth dance, for tests)
        sf_sandbox.records("Contact"), .published_events(), .usage_per_minute(),
        sf_sandbox.requests(), .set_usage(n), .advance_clock(s), .expire_tokens(),
        sf_sandbox.revoke(token_or_user_id), .faults.inject("lock")
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

from lc_console.sandbox.salesforce.faults import Faults
from lc_console.sandbox.salesforce.org import Org, UserAccount
from lc_console.sandbox.salesforce.server import (
    App,
    AppConfig,
    HttpsServer,
    default_cert_dir,
)
from lc_console.sandbox.salesforce.tls import ensure_certificates

log = logging.getLogger("lc_console.sandbox.salesforce")


class SalesforceSandbox:
    def __init__(
        self,
        port: int = 0,
        edition: str = "enterprise",
        daily_api_limit: int | None = None,
        state_file: str | Path | None = None,
        latency_ms: float = 0.0,
        fault_rate: float = 0.0,
        seed: int | None = None,
        token_ttl_seconds: float = 7200.0,
        cert_dir: str | Path | None = None,
        admin_password: str | None = None,
        user_password: str | None = None,
        is_sandbox: bool = False,  # Organization.IsSandbox: a sandbox org, not production
        client_secret: str | None = None,
        save_interval: float = 10.0,
    ) -> None:
        self.state_file = Path(state_file) if state_file else None
        if self.state_file is not None and self.state_file.exists():
            self.org = Org.load(self.state_file, daily_api_limit=daily_api_limit,
                                token_ttl_seconds=token_ttl_seconds if token_ttl_seconds != 7200.0 else None)  # fmt: skip
        else:
            self.org = Org(edition=edition, daily_api_limit=daily_api_limit,
                           token_ttl_seconds=token_ttl_seconds, admin_password=admin_password,
                           user_password=user_password, is_sandbox=is_sandbox)  # fmt: skip
        self.faults = Faults(fault_rate, seed)
        self.config = AppConfig(latency_ms=latency_ms, client_secret=client_secret)
        self.app = App(self.org, self.config, self.faults)
        self.tls = ensure_certificates(cert_dir or default_cert_dir())
        self._port = port
        self._server: HttpsServer | None = None
        self._thread: threading.Thread | None = None
        self._saver: threading.Thread | None = None
        self._save_interval = save_interval

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> SalesforceSandbox:
        self._server = HttpsServer(self.app, self._port, self.tls)
        self.app.base_url = f"https://127.0.0.1:{self._server.port}"
        self.app.stopping.clear()
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.1},
                                        name="salesforce-sandbox", daemon=True)  # fmt: skip
        self._thread.start()
        if self.state_file is not None:
            self._saver = threading.Thread(target=self._autosave, name="salesforce-sandbox-save",
                                           daemon=True)  # fmt: skip
            self._saver.start()
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        self.app.stopping.set()
        self._server.shutdown()
        self._server.close_connections()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        for ext in self.app.extensions.values():
            close = getattr(ext, "close", None)
            if callable(close):
                close()
        if self._saver is not None:
            self._saver.join(timeout=5)
        self.save()
        self._server = None

    def __enter__(self) -> SalesforceSandbox:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def save(self) -> None:
        if self.state_file is not None:
            self.org.save(self.state_file)

    def _autosave(self) -> None:
        while not self.app.stopping.wait(self._save_interval):
            if self.org.dirty:
                try:
                    self.save()
                except OSError as exc:
                    log.error("could not save sandbox state to %s: %s", self.state_file, exc)

    # -- connection facts ----------------------------------------------------------------------
    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the sandbox is not running")
        return self._server.port

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def ca_file(self) -> str:
        return str(self.tls.ca_file)

    @property
    def client_id(self) -> str:
        return self.config.client_id

    @property
    def admin_secret(self) -> str:
        return self.config.admin_secret

    @property
    def admin(self) -> UserAccount:
        return self.org.admin()

    @property
    def user(self) -> UserAccount:
        return self.org.standard_user()

    def users_info(self) -> list[dict[str, Any]]:
        return [{"username": u.username, "password": u.password,
                 "customize_application": self.org.has_permission(u.id, "CustomizeApplication")}
                for u in (self.admin, self.user)]  # fmt: skip

    def info(self) -> dict[str, Any]:
        """What `lc-console sandbox salesforce --json` prints under "salesforce"."""
        return {"url": self.url, "client_id": self.client_id, "ca_file": self.ca_file,
                "users": self.users_info(), "admin_secret": self.admin_secret,
                "callback_urls": self.config.callback_urls()}  # fmt: skip

    # -- test helpers ----------------------------------------------------------------------------
    def login(self, user: UserAccount | str | None = None, scopes: tuple[str, ...] = ("api", "refresh_token")) -> str:
        """Issue an access token for a user directly (what a finished OAuth flow yields)."""
        if user is None:
            uid = self.org.admin_id
        elif isinstance(user, str):
            uid = user
        else:
            uid = user.id
        return self.org.sessions.issue(uid, self.client_id, scopes).token

    # -- inspection and control ------------------------------------------------------------------
    def records(self, sobject: str, include_deleted: bool = False) -> list[dict[str, Any]]:
        return self.org.records(sobject, include_deleted)

    def published_events(self, sobject: str | None = None) -> list[dict[str, Any]]:
        return self.org.published_events(sobject)

    def usage(self) -> int:
        return self.org.usage.used()

    def usage_per_minute(self) -> list[dict[str, Any]]:
        return self.org.usage.per_minute()

    def requests(self) -> list[dict[str, Any]]:
        return [r.as_dict() for r in list(self.org.requests)]

    def set_usage(self, used: int) -> None:
        self.org.usage.set_used(used)

    def set_daily_limit(self, limit: int) -> None:
        self.org.usage.max_requests = limit

    def advance_clock(self, seconds: float) -> None:
        self.org.clock.advance(seconds)

    def expire_tokens(self) -> int:
        return self.org.sessions.expire_all()

    def revoke(self, token_or_user_id: str) -> int:
        if token_or_user_id in self.org.users:
            return self.org.sessions.revoke_user(token_or_user_id)
        return int(self.org.sessions.revoke(token_or_user_id))

    def set_latency(self, ms: float) -> None:
        self.config.latency_ms = ms

    def add_validation_rule(self, sobject: str, name: str, when: Any, message: str,
                            field: str | None = None) -> None:  # fmt: skip
        """Test control: saves of `sobject` where when(record_dict) is true fail with
        FIELD_CUSTOM_VALIDATION_EXCEPTION and `message`, as an org's validation rule does."""
        self.org.set_validation_rule(sobject, name, when, message, field)

    def remove_validation_rule(self, sobject: str, name: str) -> bool:
        return self.org.remove_validation_rule(sobject, name)
