"""The sync, from a profile: the facade `lc-console sync`, the failures service and the TUI share.

    session = open_session(profile)      # SyncSetupError with a UserMessage when not ready
    session.engine.subscribe(...); session.engine.start() / run_once()
    session.close()

    preview = dry_run(profile, since=None, limit=1000)   # nothing written anywhere

One engine per profile: `open_session` takes an exclusive lock file next to the state
database, so two `lc-console sync` (or a sync and the console's monitor) never race.
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from lc_console import paths, secrets, settings
from lc_console.salesforce import tokens
from lc_console.services.connect import UserMessage, describe_error
from lc_console.store import Store
from lc_console.stripe.client import make_client
from lc_console.stripe.source import Cursor, EventSource
from lc_console.sync.batch import BatchRunner, WorkItem
from lc_console.sync.describe import DescribeCache
from lc_console.sync.engine import Engine, EngineConfig
from lc_console.sync.plan import RecordPlan, plain
from lc_console.sync.salesforce_link import SalesforceLink
from lc_console.sync.stripe_context import StripeFetcher

LOCK_NAME = "sync.lock"


class SyncSetupError(Exception):
    def __init__(self, message: UserMessage):
        super().__init__(message.text())
        self.message = message


@dataclass
class Components:
    profile: str
    settings: settings.Settings
    store: Store
    link: SalesforceLink
    fetcher: StripeFetcher
    source: EventSource
    runner: BatchRunner

    def close(self) -> None:
        self.fetcher.close()
        self.store.close()


def _stripe_key(profile: str) -> str:
    try:
        key = secrets.get(profile, secrets.SecretKind.STRIPE_API_KEY)
    except secrets.KeyringUnavailable as exc:
        raise SyncSetupError(describe_error(exc)) from None
    if not key:
        raise SyncSetupError(UserMessage("Stripe is not connected.",
                                         "No Stripe API key is stored for this profile.",
                                         "Run `lc-console connect stripe`."))
    return key


def components(profile: str, *, persist_describe: bool = True,
               stripe_concurrency: int = 4) -> Components:
    """The engine's parts for `profile`; raises SyncSetupError when a connection is missing."""
    try:
        cfg = settings.load(profile)
    except settings.SettingsError as exc:
        raise SyncSetupError(describe_error(exc)) from None
    manager = tokens.manager_for(profile)
    info = manager.info()
    if not info.instance_url:
        raise SyncSetupError(describe_error(tokens.NotConnected()))
    if info.expired:
        raise SyncSetupError(describe_error(tokens.ConnectionExpired()))
    key = _stripe_key(profile)

    def stripe_client() -> Any:
        return make_client(key, api_base=cfg.stripe.api_base, ca_bundle=cfg.tls.ca_bundle)

    def refresh(sf: Any) -> None:
        manager.apply_token(sf, manager.refresh(stale=sf.session_id))

    store = Store.for_profile(profile)
    link = SalesforceLink(manager.salesforce, refresh)
    fetcher = StripeFetcher(stripe_client, concurrency=stripe_concurrency)
    describes = DescribeCache(store, link.describe, time.time, persist=persist_describe)
    runner = BatchRunner(store, link, fetcher, describes, cfg.rules)
    return Components(profile, cfg, store, link, fetcher, EventSource(stripe_client()), runner)


# --- the engine -----------------------------------------------------------------------


@dataclass
class SyncSession:
    parts: Components
    engine: Engine
    _lock_fd: int | None = None

    @property
    def store(self) -> Store:
        return self.parts.store

    def close(self) -> None:
        if self.engine.running:
            self.engine.stop()
        self.parts.close()
        if self._lock_fd is not None:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
            os.close(self._lock_fd)
            self._lock_fd = None

    def __enter__(self) -> SyncSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _take_lock(profile: str) -> int:
    path = paths.data_dir(profile) / LOCK_NAME
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        holder = os.read(fd, 32).decode(errors="replace").strip() or "another process"
        os.close(fd)
        raise SyncSetupError(UserMessage(
            "The sync is already running for this profile.",
            f"Process {holder} holds {path}.",
            "Stop that sync first (Ctrl+C in its terminal, or quit the console), then start "
            "this one.")) from None
    os.ftruncate(fd, 0)
    os.write(fd, str(os.getpid()).encode())
    return fd


def engine_config(cfg: settings.Settings, **overrides: Any) -> EngineConfig:
    return EngineConfig.from_settings(cfg.sync, **overrides)


def open_session(profile: str, **overrides: Any) -> SyncSession:
    """The profile's engine, locked for this process. `overrides` set EngineConfig fields."""
    lock = _take_lock(profile)
    try:
        parts = components(profile)
    except BaseException:
        fcntl.flock(lock, fcntl.LOCK_UN)
        os.close(lock)
        raise
    manager = tokens.manager_for(profile)
    engine = Engine(parts.store, parts.source, parts.runner,
                    engine_config(parts.settings, **overrides),
                    reconnected=lambda: not manager.info().expired)
    return SyncSession(parts, engine, lock)


def reset_cursor(profile: str) -> str | None:
    """Start from now: the cursor moves to Stripe's newest event (the gap is a backfill's)."""
    parts = components(profile)
    try:
        newest = parts.source.newest()
        if newest is not None:
            parts.store.set_cursor(newest.event_id, newest.created)
        return newest.event_id if newest else None
    finally:
        parts.close()


# --- dry run --------------------------------------------------------------------------


@dataclass
class FieldPreview:
    field: str
    current: Any
    value: Any
    write: bool
    rule: str
    reason: str
    source: str


@dataclass
class RecordPreview:
    sobject: str
    key: str
    action: str  # create | update | skip | reject
    fields: list[FieldPreview] = field(default_factory=list)
    problem: str = ""


@dataclass
class Preview:
    events: int = 0
    records: list[RecordPreview] = field(default_factory=list)
    totals: dict[str, dict[str, int]] = field(default_factory=dict)
    read_calls: int = 0
    write_calls: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def api_calls(self) -> int:
        return self.read_calls + self.write_calls

    def to_dict(self) -> dict[str, Any]:
        return {
            "events": self.events,
            "totals": self.totals,
            "api_calls": {"reads": self.read_calls, "writes": self.write_calls,
                          "total": self.api_calls},
            "notes": self.notes,
            "records": [{"object": r.sobject, "key": r.key, "action": r.action,
                         "problem": r.problem,
                         "fields": [{"field": f.field, "current": plain(f.current),
                                     "value": plain(f.value), "write": f.write,
                                     "rule": f.rule, "reason": f.reason, "source": f.source}
                                    for f in r.fields]}
                        for r in self.records],
        }


def _pending_events(parts: Components, since: int | None, limit: int) -> tuple[list[Any], str]:
    items = [WorkItem(i.payload, None, 0) for i in parts.store.outbox_items(limit=limit)]
    seen = {i.event_id for i in items}
    room = limit - len(items)
    note = ""
    if room > 0:
        cursor = parts.store.get_cursor()
        if since is not None:
            fresh = list(parts.source.fetch_window(since))
        elif cursor is not None:
            fresh = parts.source.fetch_after(Cursor(cursor.event_id, cursor.created), room)
        else:
            fresh = []
            note = ("The sync has not started yet: it starts from now and touches nothing "
                    "until new events arrive. Add --since 7d to preview a window of history.")
        for event in fresh:
            if event.get("id") not in seen and len(items) < limit:
                items.append(WorkItem(event, None, 0))
                seen.add(event.get("id"))
    return items, note


def dry_run(profile: str, *, since: int | None = None, limit: int = 1000,
            batch_size: int | None = None,
            on_progress: Callable[[str], None] | None = None) -> Preview:
    """What the sync would do with the pending events, in batches as the real run would:
    per record the current Salesforce value of each field, the value it would write, and
    the rule that decided; totals per object and the API calls it would cost. Nothing is
    written to Salesforce or to the state database (read calls only)."""
    parts = components(profile, persist_describe=False)
    try:
        size = batch_size or parts.settings.sync.max_batch_size
        items, note = _pending_events(parts, since, limit)
        preview = Preview(events=len(items))
        if note:
            preview.notes.append(note)
        by_identity: dict[tuple[str, str], RecordPreview] = {}
        calls0 = parts.link.calls
        seed = None
        for start in range(0, len(items), size):
            chunk = items[start:start + size]
            if on_progress:
                on_progress(f"previewing events {start + 1}-{start + len(chunk)} of {len(items)}")
            prepared = parts.runner.prepare(chunk, seed)
            seed = prepared.planned
            preview.write_calls += prepared.write_calls()
            for p in prepared.plan.records:
                _merge(by_identity, p)
            for i in prepared.plan.inserts:
                key = (i.sobject, i.dedupe_key)
                action = "skip" if i.action in ("skip", "found") else i.action
                if key not in by_identity or action == "create":
                    by_identity[key] = RecordPreview(
                        i.sobject, i.dedupe_key, action,
                        [FieldPreview(n, None, v, True, "create", "created once (idempotent "
                                      "by its key)", "fixed:" + i.reason) for n, v in
                         sorted(i.payload.items())] if action == "create" else [],
                        f"{i.problem.code}: {i.problem.message}" if i.problem else "")
            for it, message in prepared.derive_errors:
                preview.notes.append(f"event {it.event_id} cannot be derived: {message}")
        preview.read_calls = parts.link.calls - calls0
        preview.records = sorted(by_identity.values(), key=lambda r: (_order(r.sobject), r.key))
        for r in preview.records:
            row = preview.totals.setdefault(r.sobject, {"create": 0, "update": 0, "skip": 0,
                                                        "reject": 0})
            row[r.action] += 1
        return preview
    finally:
        parts.close()


def _order(sobject: str) -> int:
    from lc_console.sync.plan import order_of

    return order_of(sobject)


def _merge(seen: dict[tuple[str, str], RecordPreview], p: RecordPlan) -> None:
    key = (p.sobject, str(p.key))
    fields = [FieldPreview(d.field, d.current, d.value, d.write, d.rule, d.reason, d.source)
              for d in p.decisions]
    problem = f"{p.problem.code}: {p.problem.message}" if p.problem else ""
    held = seen.get(key)
    action = p.action
    if held is not None and held.action == "create" and action == "update":
        action = "create"  # an earlier batch of the run would have created it
    seen[key] = RecordPreview(p.sobject, p.label, action, fields, problem)
