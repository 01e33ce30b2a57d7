"""What a profile has set up, and what to do next: shared by the home screen and `lc-console status`.

Built from the settings file, the keyring (only whether secrets are stored, never their
values leave this module) and the local state database when one exists. Reading it never
creates a file.
"""

from __future__ import annotations

import os
import sqlite3
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path

from lc_console import paths, secrets, settings
from lc_console.secrets import KeyringUnavailable, SecretKind
from lc_console.store import ACTIVE_FAILURE_STATUSES, Store, StoreError


class SecretState(StrEnum):
    STORED = "stored in keyring"
    MISSING = "missing"
    UNAVAILABLE = "keyring unavailable"


class Connection(StrEnum):
    CONNECTED = "connected"
    NOT_CONNECTED = "not connected"
    # Settings name an org/account but the keyring lacks its secret (keyring reset, other
    # machine): the admin has to connect again.
    SECRET_MISSING = "secret missing"
    # Salesforce refused the saved refresh token (revoked or expired): reconnect.
    EXPIRED = "expired"
    # The keyring cannot be read, so whether the connection still works is unknown.
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class SalesforceStatus:
    connection: Connection
    tokens: SecretState
    environment: str  # "production" | "sandbox" | "custom" (from settings)
    login_url: str
    org_id: str = ""
    org_name: str = ""
    org_kind: str = ""  # "Production" | "Sandbox" once connected
    instance_url: str = ""
    username: str = ""


@dataclass(frozen=True)
class StripeStatus:
    connection: Connection
    key: SecretState
    mode: str  # "test" | "live" (from settings)
    account_id: str = ""
    account_name: str = ""
    key_kind: str = ""  # "restricted key" | "secret key" | "" (from the key's prefix only)


@dataclass(frozen=True)
class SyncStatus:
    """What the local state database says about the sync (none of it needs the network)."""

    has_run: bool = False
    last_sync: datetime | None = None  # last event read or record written, whichever is later
    pending_writes: int = 0
    open_failures: int = 0
    error: str = ""  # the state database cannot be read: what and how to fix it
    paused: str = ""  # why writes cannot go out now, e.g. the Salesforce login expired
    # From the sync engine's records (none of it needs the network):
    cursor_event: str = ""  # the last Stripe event read
    cursor_age_seconds: float | None = None  # how old that event is
    records_synced: dict[str, int] = field(default_factory=dict)  # object -> created+updated
    api_used: int | None = None  # Salesforce daily API usage at the last sample
    api_max: int | None = None
    engine_state: str = ""  # running | paused | throttled | expired | stopped (last known)
    engine_reason: str = ""
    throttle_threshold: int | None = None  # calls: writes pause at this usage
    resume_at: datetime | None = None  # when a throttled sync expects to write again

    @property
    def summary(self) -> str:
        if self.error:
            return "state database unusable"
        if not self.has_run:
            return "never run"
        parts = [f"paused: {self.paused}"] if self.paused else []
        parts.append(f"{self.pending_writes} writes queued" if self.pending_writes
                     else "nothing queued")
        if self.open_failures:
            parts.append(f"{self.open_failures} failed records")
        return ", ".join(parts)


@dataclass(frozen=True)
class NextStep:
    title: str
    detail: str = ""
    command: str = ""  # a CLI command that does it
    key: str = ""  # a key that does it in the console, when one exists


@dataclass(frozen=True)
class ProfileStatus:
    profile: str
    settings_file: Path
    salesforce: SalesforceStatus
    stripe: StripeStatus
    install: str
    sync: SyncStatus
    keyring_error: str = ""  # what is wrong with the keyring, with the fix
    warnings: list[str] = field(default_factory=list)
    next_steps: list[NextStep] = field(default_factory=list)


# --- pure parts ---------------------------------------------------------------------------


def stripe_key_kind(key: str) -> str:
    """'restricted key' / 'secret key' from the prefix alone; nothing else of the key is kept."""
    if key.startswith("rk_"):
        return "restricted key"
    if key.startswith("sk_"):
        return "secret key"
    return "unrecognised key"


def _connection(named: bool, secret: SecretState) -> Connection:
    if secret is SecretState.UNAVAILABLE:
        return Connection.UNKNOWN if named else Connection.NOT_CONNECTED
    if secret is SecretState.STORED:
        return Connection.CONNECTED if named else Connection.SECRET_MISSING
    return Connection.SECRET_MISSING if named else Connection.NOT_CONNECTED


def salesforce_status(cfg: settings.SalesforceSettings, tokens: SecretState) -> SalesforceStatus:
    named = bool(cfg.org_id)
    connection = _connection(named, tokens)
    if connection is Connection.CONNECTED and cfg.connection_expired:
        connection = Connection.EXPIRED
    return SalesforceStatus(
        connection=connection,
        tokens=tokens,
        environment=cfg.environment,
        login_url=cfg.login_url,
        org_id=cfg.org_id,
        org_name=cfg.org_name,
        org_kind=("Sandbox" if cfg.is_sandbox else "Production") if named else "",
        instance_url=cfg.instance_url,
        username=cfg.username,
    )


def stripe_status(cfg: settings.StripeSettings, key: SecretState, key_kind: str) -> StripeStatus:
    # A key without an account id still works (the account is looked up on connect), so the
    # key alone decides whether Stripe is connected.
    if key is SecretState.STORED:
        connection = Connection.CONNECTED
    elif key is SecretState.UNAVAILABLE:
        connection = Connection.UNKNOWN if cfg.account_id else Connection.NOT_CONNECTED
    else:
        connection = Connection.SECRET_MISSING if cfg.account_id else Connection.NOT_CONNECTED
    return StripeStatus(
        connection=connection,
        key=key,
        mode=cfg.mode,
        account_id=cfg.account_id,
        account_name=cfg.account_name,
        key_kind=key_kind,
    )


def install_state(sf: SalesforceStatus) -> str:
    if sf.connection is Connection.CONNECTED:
        return "not checked yet"
    if sf.org_id:
        return "unknown until Salesforce is reconnected"
    return "waiting for a Salesforce connection"


def warnings_for(sf: SalesforceStatus, stripe: StripeStatus) -> list[str]:
    out: list[str] = []
    if sf.connection is Connection.CONNECTED and stripe.connection is Connection.CONNECTED:
        if sf.org_kind == "Production" and stripe.mode == "test":
            out.append("A Production org with a Stripe test key: test data would reach "
                       "your production CRM.")
        if sf.org_kind == "Sandbox" and stripe.mode == "live":
            out.append("A Sandbox org with a live Stripe key: real customers' data would "
                       "go to a sandbox.")
    return out


def next_steps(status: ProfileStatus) -> list[NextStep]:
    """The few things to do next, most important first."""
    steps: list[NextStep] = []
    if status.keyring_error:
        steps.append(NextStep("Make the OS keyring available", status.keyring_error,
                              "lc-console doctor", key="d"))
        return steps
    if status.sync.error:
        steps.append(NextStep("Repair the state database", status.sync.error,
                              "lc-console doctor", key="d"))
    sf, stripe = status.salesforce, status.stripe
    if sf.connection is Connection.EXPIRED:
        steps.append(NextStep("Reconnect Salesforce",
                              "Salesforce refused the saved login (revoked or expired). The "
                              "sync is paused and keeps its queue until you reconnect.",
                              "lc-console connect salesforce", key="c"))
    elif sf.connection is Connection.SECRET_MISSING:
        steps.append(NextStep("Reconnect Salesforce",
                              "The settings name an org, or the keyring holds tokens, but not "
                              "both: sign in again.",
                              "lc-console connect salesforce", key="c"))
    elif sf.connection is not Connection.CONNECTED:
        steps.append(NextStep("Connect Salesforce",
                              "Sign in to the org with your connected app (OAuth).",
                              "lc-console connect salesforce", key="c"))
    if stripe.connection is Connection.SECRET_MISSING:
        steps.append(NextStep("Reconnect Stripe",
                              "The account is in the settings but its key is not in the keyring.",
                              "lc-console connect stripe", key="s"))
    elif stripe.connection is not Connection.CONNECTED:
        steps.append(NextStep("Connect Stripe",
                              "Enter a restricted API key (rk_) with read access.",
                              "lc-console connect stripe", key="s"))
    if steps:
        return steps
    # Whether the schema is installed is only known by asking the org (install --plan).
    steps.append(NextStep("Install the LostChurn objects and fields",
                          "The plan lists what is missing; nothing changes until you install.",
                          "lc-console install --plan"))
    if status.sync.open_failures:
        steps.append(NextStep(f"Review {status.sync.open_failures} failed records",
                              "Fix the cause in Salesforce, then retry them.",
                              "lc-console failures list"))
    if status.sync.has_run:
        steps.append(NextStep("Keep the sync running",
                              "It reads Stripe events and writes them to Salesforce.",
                              "lc-console sync"))
    else:
        steps.append(NextStep("Preview the sync, then start it",
                              "A dry run shows every field it would write; nothing is written.",
                              "lc-console sync --dry-run"))
    return steps


# --- gathering ----------------------------------------------------------------------------


def _secret_state(profile: str, kind: SecretKind) -> tuple[SecretState, str | None]:
    value = secrets.get(profile, kind)
    return (SecretState.STORED if value else SecretState.MISSING), value


def _when(timestamp: float | None) -> datetime | None:
    return datetime.fromtimestamp(timestamp, tz=UTC) if timestamp else None


def _sync_status(profile: str) -> SyncStatus:
    path = paths.state_db(profile)
    if not path.exists():  # opening a Store would create it
        return SyncStatus()
    try:
        with Store(path) as store, store.snapshot():
            cursor = store.get_cursor()
            last_write = store.recent_audit(limit=1)
            pending = store.outbox_pending()
            counts = store.failure_counts_by_status()
            counters = store.counters()
            usage = store.latest_usage()
            engine = store.get_meta("sync.engine") or {}
    except (StoreError, sqlite3.Error, OSError) as exc:
        return SyncStatus(error=f"{exc}")
    times = [t for t in (cursor.updated_at if cursor else None,
                         last_write[0].at if last_write else None) if t]
    return SyncStatus(
        has_run=bool(times),
        last_sync=_when(max(times)) if times else None,
        pending_writes=pending,
        open_failures=sum(counts[s] for s in ACTIVE_FAILURE_STATUSES),
        cursor_event=cursor.event_id if cursor else "",
        cursor_age_seconds=max(0.0, datetime.now(UTC).timestamp() - cursor.created)
        if cursor else None,
        records_synced={o: c.created + c.updated for o, c in counters.items()
                        if o != "event" and (c.created or c.updated)},
        api_used=usage.used if usage else None,
        api_max=usage.max if usage else None,
        engine_state=_engine_state(engine),
        engine_reason=str(engine.get("reason") or ""),
        throttle_threshold=engine.get("threshold") or None,
        resume_at=_when(engine.get("resume_at")),
    )


def _engine_state(engine: dict[str, object]) -> str:
    """The sync engine's last state; a state left by a process that is gone is "stopped"."""
    state = str(engine.get("state") or "")
    pid = engine.get("pid")
    if state and state != "stopped" and isinstance(pid, int):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return "stopped"
        except PermissionError:
            pass
    return state


def gather(profile: str, cfg: settings.Settings | None = None) -> ProfileStatus:
    """The profile's status. Raises settings.SettingsError when the settings file is broken.

    Blocking (keyring over D-Bus, SQLite): call it from a thread worker in the UI.
    """
    if cfg is None:
        cfg = settings.load(profile)
    keyring_error = ""
    key_kind = ""
    try:
        tokens, _ = _secret_state(profile, SecretKind.SALESFORCE_REFRESH_TOKEN)
        key, key_value = _secret_state(profile, SecretKind.STRIPE_API_KEY)
        key_kind = stripe_key_kind(key_value) if key_value else ""
    except KeyringUnavailable as exc:
        tokens = key = SecretState.UNAVAILABLE
        keyring_error = f"{exc.what} {secrets.HOW_TO_FIX}"
    sf = salesforce_status(cfg.salesforce, tokens)
    stripe = stripe_status(cfg.stripe, key, key_kind)
    sync = _sync_status(profile)
    if sync.has_run and sf.connection is Connection.EXPIRED:
        sync = replace(sync, paused="Salesforce login expired")
    status = ProfileStatus(
        profile=profile,
        settings_file=paths.config_file(profile),
        salesforce=sf,
        stripe=stripe,
        install=install_state(sf),
        sync=sync,
        keyring_error=keyring_error,
        warnings=warnings_for(sf, stripe),
    )
    status.next_steps.extend(next_steps(status))
    return status
