"""Durable local state of one profile: a SQLite database in WAL mode.

What lives here: the Stripe event cursor, processed event ids (idempotency), the event journal
(replay beyond Stripe's 30 days), the outbox of pending Salesforce writes, failed records, the
audit log, last-written values (skip-unchanged, conflict detection), API-usage samples,
per-object counters and a small key/value table. Never a secret.

Threads: a Store hands each thread its own connection (thread-local), so one Store object can
be shared by the sync thread (writer) and the UI thread (reader). WAL lets readers see the last
committed state while a write is in progress; writers wait up to BUSY_TIMEOUT_MS for each other.

Writes: every method that writes runs in one `BEGIN IMMEDIATE` transaction. Wrap several calls
in `with store.transaction():` to commit them together (for example: mark an event processed,
enqueue its writes and move the cursor). A crash before COMMIT leaves nothing half-written.
Readers that need several queries to agree use `with store.snapshot():`, which never takes
the write lock.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lc_console import paths

BUSY_TIMEOUT_MS = 10_000
FAILURE_STATUSES = ("open", "retrying", "resolved", "discarded")
ACTIVE_FAILURE_STATUSES = ("open", "retrying")
COUNTER_KINDS = ("created", "updated", "skipped", "failed")
# An outbox row claimed by a sync run that died is offered again after this lease.
DEFAULT_CLAIM_LEASE_SECONDS = 300.0


class StoreError(RuntimeError):
    """The state database cannot be used; the message names the file and the fix."""


# --- schema ---------------------------------------------------------------------------------


def _run_script(db: sqlite3.Connection, script: str) -> None:
    # Not executescript(): it COMMITs first, which would break the migration's transaction.
    statement = ""
    for line in script.splitlines(keepends=True):
        statement += line
        if sqlite3.complete_statement(statement):
            db.execute(statement)
            statement = ""
    if statement.strip():
        raise ValueError(f"incomplete SQL statement in migration: {statement.strip()[:60]}")


def _v1(db: sqlite3.Connection) -> None:
    _run_script(
        db,
        """
        CREATE TABLE stripe_cursor (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            event_id TEXT NOT NULL,
            created INTEGER NOT NULL,
            updated_at REAL NOT NULL
        );
        CREATE TABLE processed_events (
            event_id TEXT PRIMARY KEY,
            created INTEGER NOT NULL,
            processed_at REAL NOT NULL
        ) WITHOUT ROWID;
        CREATE INDEX processed_events_created ON processed_events(created);

        CREATE TABLE event_journal (
            event_id TEXT PRIMARY KEY,
            type TEXT NOT NULL,
            created INTEGER NOT NULL,
            api_version TEXT,
            customer_id TEXT,
            payload TEXT NOT NULL,
            received_at REAL NOT NULL
        );
        CREATE INDEX event_journal_created ON event_journal(created, event_id);
        CREATE INDEX event_journal_customer ON event_journal(customer_id, created);

        CREATE TABLE outbox (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            object TEXT NOT NULL,
            key_field TEXT NOT NULL,
            key_value TEXT NOT NULL,
            operation TEXT NOT NULL,
            payload TEXT NOT NULL,
            customer_id TEXT,
            source_event_id TEXT,
            enqueued_at REAL NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0,
            next_attempt_at REAL NOT NULL,
            claimed_at REAL,
            last_error TEXT
        );
        CREATE INDEX outbox_due ON outbox(next_attempt_at, id);
        CREATE INDEX outbox_customer ON outbox(customer_id, id);

        CREATE TABLE failures (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            object TEXT NOT NULL,
            key TEXT NOT NULL,
            operation TEXT NOT NULL,
            payload TEXT NOT NULL,
            error_code TEXT NOT NULL,
            message TEXT NOT NULL,
            fields TEXT NOT NULL DEFAULT '[]',
            attempts INTEGER NOT NULL DEFAULT 1,
            first_seen REAL NOT NULL,
            last_seen REAL NOT NULL,
            status TEXT NOT NULL DEFAULT 'open'
                CHECK (status IN ('open', 'retrying', 'resolved', 'discarded')),
            discard_reason TEXT,
            source_event_id TEXT,
            salesforce_response TEXT
        );
        -- One active (open/retrying) row per record and operation: a record that keeps
        -- failing bumps its attempts instead of filling the table.
        CREATE UNIQUE INDEX failures_active ON failures(object, key, operation)
            WHERE status IN ('open', 'retrying');
        CREATE INDEX failures_status ON failures(status, id);
        CREATE INDEX failures_object ON failures(object, status, id);
        CREATE INDEX failures_code ON failures(error_code, id);
        CREATE INDEX failures_key ON failures(key COLLATE NOCASE);

        CREATE TABLE audit_log (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            at REAL NOT NULL,
            stripe_event_id TEXT,
            customer_id TEXT,
            object TEXT NOT NULL,
            external_key TEXT,
            salesforce_id TEXT,
            action TEXT NOT NULL,
            outcome TEXT NOT NULL,
            detail TEXT NOT NULL DEFAULT ''
        );
        CREATE INDEX audit_at ON audit_log(at);
        CREATE INDEX audit_event ON audit_log(stripe_event_id);
        CREATE INDEX audit_customer ON audit_log(customer_id);
        CREATE INDEX audit_key ON audit_log(external_key COLLATE NOCASE);
        CREATE INDEX audit_sfid ON audit_log(salesforce_id);

        CREATE TABLE last_written (
            object TEXT NOT NULL,
            key TEXT NOT NULL,
            salesforce_id TEXT,
            values_json TEXT NOT NULL,
            updated_at REAL NOT NULL,
            PRIMARY KEY (object, key)
        ) WITHOUT ROWID;

        CREATE TABLE api_usage (
            at REAL NOT NULL,
            used INTEGER NOT NULL,
            max INTEGER NOT NULL
        );
        CREATE INDEX api_usage_at ON api_usage(at);

        CREATE TABLE counters (
            object TEXT PRIMARY KEY,
            created INTEGER NOT NULL DEFAULT 0,
            updated INTEGER NOT NULL DEFAULT 0,
            skipped INTEGER NOT NULL DEFAULT 0,
            failed INTEGER NOT NULL DEFAULT 0
        ) WITHOUT ROWID;

        CREATE TABLE meta (
            key TEXT PRIMARY KEY,
            value TEXT NOT NULL,
            updated_at REAL NOT NULL
        ) WITHOUT ROWID;
        """
    )


# Forward migrations: MIGRATIONS[n] takes the schema from version n to n + 1. Append only;
# never edit a migration that has shipped.
MIGRATIONS: list[Callable[[sqlite3.Connection], None]] = [_v1]
SCHEMA_VERSION = len(MIGRATIONS)


# --- rows -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Cursor:
    event_id: str
    created: int
    updated_at: float


@dataclass(frozen=True)
class JournalEvent:
    event_id: str
    type: str
    created: int
    api_version: str | None
    customer_id: str | None
    payload: dict[str, Any]
    received_at: float


@dataclass(frozen=True)
class OutboxItem:
    object: str
    key_field: str
    key_value: str
    operation: str  # "upsert", "insert", "update", "delete", "publish"
    payload: dict[str, Any]
    customer_id: str | None = None
    source_event_id: str | None = None
    id: int | None = None
    enqueued_at: float = 0.0
    attempts: int = 0
    next_attempt_at: float = 0.0
    last_error: str | None = None


@dataclass(frozen=True)
class Failure:
    id: int
    object: str
    key: str
    operation: str
    payload: dict[str, Any]
    error_code: str
    message: str
    fields: list[str]
    attempts: int
    first_seen: float
    last_seen: float
    status: str
    discard_reason: str | None
    source_event_id: str | None
    salesforce_response: Any


@dataclass(frozen=True)
class FailurePage:
    rows: list[Failure]
    total: int
    # Pass as `before_id` to get the next page (keyset paging: fast at any depth).
    next_before_id: int | None


@dataclass(frozen=True)
class AuditEntry:
    id: int
    at: float
    stripe_event_id: str | None
    customer_id: str | None
    object: str
    external_key: str | None
    salesforce_id: str | None
    action: str
    outcome: str
    detail: str


@dataclass(frozen=True)
class UsageSample:
    at: float
    used: int
    max: int


@dataclass
class Counters:
    created: int = 0
    updated: int = 0
    skipped: int = 0
    failed: int = 0


@dataclass(frozen=True)
class LastWritten:
    values: dict[str, Any]
    salesforce_id: str | None
    updated_at: float


@dataclass
class FailureFilter:
    status: str | Sequence[str] | None = None
    object: str | None = None
    error_code: str | None = None
    # Case-insensitive prefix of the record key (email, domain, invoice id).
    key_prefix: str | None = None
    source_event_id: str | None = None


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True, default=str)


def _loads(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def _failure(row: sqlite3.Row) -> Failure:
    return Failure(
        id=row["id"], object=row["object"], key=row["key"], operation=row["operation"],
        payload=_loads(row["payload"]), error_code=row["error_code"], message=row["message"],
        fields=_loads(row["fields"]), attempts=row["attempts"], first_seen=row["first_seen"],
        last_seen=row["last_seen"], status=row["status"], discard_reason=row["discard_reason"],
        source_event_id=row["source_event_id"],
        salesforce_response=_loads(row["salesforce_response"]),
    )


def _outbox(row: sqlite3.Row) -> OutboxItem:
    return OutboxItem(
        id=row["id"], object=row["object"], key_field=row["key_field"],
        key_value=row["key_value"], operation=row["operation"], payload=_loads(row["payload"]),
        customer_id=row["customer_id"], source_event_id=row["source_event_id"],
        enqueued_at=row["enqueued_at"], attempts=row["attempts"],
        next_attempt_at=row["next_attempt_at"], last_error=row["last_error"],
    )


def _audit(row: sqlite3.Row) -> AuditEntry:
    return AuditEntry(**{k: row[k] for k in row.keys()})


def _like_prefix(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped + "%"


# --- the store ------------------------------------------------------------------------------


class Store:
    """The state database of one profile. See the module docstring for threads and writes."""

    def __init__(self, path: Path | str, *, clock: Callable[[], float] = time.time):
        self.path = Path(path)
        self._clock = clock
        self._local = threading.local()
        self._lock = threading.Lock()
        # Every thread's connection, by thread id, so close() can close them all and the
        # connections of finished threads (Textual thread workers) do not pile up.
        self._connections: dict[int, sqlite3.Connection] = {}
        self._closed = False
        self._create_private_file()
        try:
            self._migrate(self._conn())
        except BaseException:
            self.close()
            raise

    @classmethod
    def for_profile(cls, profile: str) -> Store:
        return cls(paths.state_db(profile))

    # connections and transactions

    def _create_private_file(self) -> None:
        # The DB holds customer emails and payloads: owner-only. SQLite gives the -wal and
        # -shm files the mode of the database file, so creating it 0600 covers all three.
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            os.close(fd)
        except FileExistsError:
            pass
        except OSError as exc:
            raise StoreError(f"{self.path}: cannot create the state database ({exc.strerror}). "
                             f"Make {self.path.parent} writable by you.") from exc

    def _conn(self) -> sqlite3.Connection:
        if self._closed:
            raise StoreError(f"{self.path}: the store is closed")
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is not None:
            return conn
        try:
            # isolation_level=None: we issue BEGIN/COMMIT ourselves. check_same_thread stays
            # off only so that close() can close every thread's connection.
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False,
                                   timeout=BUSY_TIMEOUT_MS / 1000)
            conn.row_factory = sqlite3.Row
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if mode.lower() != "wal":
                raise StoreError(f"{self.path}: SQLite refused WAL mode (got {mode}); keep the "
                                 "state database on a local disk, not a network share.")
            # NORMAL is durable across application crashes in WAL mode; a power loss can lose
            # the last commits, which the sync re-derives from Stripe idempotently.
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute("PRAGMA foreign_keys = ON")
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"{self.path}: cannot open the state database ({exc}). If the file "
                             "is damaged, move it away; the next sync rebuilds the cursor from "
                             "Stripe.") from exc
        self._local.conn = conn
        self._local.depth = 0
        with self._lock:
            alive = {t.ident for t in threading.enumerate()}
            for ident in [i for i in self._connections if i not in alive]:
                self._connections.pop(ident).close()
            previous = self._connections.pop(threading.get_ident(), None)
            if previous is not None:  # a thread id reused after its thread ended
                previous.close()
            self._connections[threading.get_ident()] = conn
        return conn

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction; nested uses join the outer one."""
        conn = self._conn()
        if self._local.depth:
            self._local.depth += 1
            try:
                yield conn
            finally:
                self._local.depth -= 1
            return
        conn.execute("BEGIN IMMEDIATE")
        self._local.depth = 1
        try:
            yield conn
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        finally:
            self._local.depth = 0

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        """Several reads that see one consistent state (a read-only transaction: do not
        write inside it). It never blocks the writer: a WAL reader keeps the snapshot it
        started with."""
        conn = self._conn()
        if self._local.depth or conn.in_transaction:
            yield
            return
        conn.execute("BEGIN DEFERRED")
        try:
            yield
        finally:
            conn.execute("ROLLBACK")

    def _read(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        return self._conn().execute(sql, params).fetchall()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            for conn in self._connections.values():
                conn.close()
            self._connections.clear()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _migrate(self, conn: sqlite3.Connection) -> None:
        with self.transaction():
            conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
            row = conn.execute("SELECT version FROM schema_version").fetchone()
            current = row[0] if row else 0
            if current > SCHEMA_VERSION:
                raise StoreError(
                    f"{self.path}: written by a newer lc-console (schema {current}, this one "
                    f"knows {SCHEMA_VERSION}). Upgrade lc-console.")
            for migration in MIGRATIONS[current:]:
                migration(conn)
            if row is None:
                conn.execute("INSERT INTO schema_version VALUES (?)", (SCHEMA_VERSION,))
            else:
                conn.execute("UPDATE schema_version SET version = ?", (SCHEMA_VERSION,))

    def schema_version(self) -> int:
        return int(self._read("SELECT version FROM schema_version")[0][0])

    def integrity_ok(self) -> bool:
        return self._read("PRAGMA integrity_check")[0][0] == "ok"

    # Stripe event cursor

    def get_cursor(self) -> Cursor | None:
        rows = self._read("SELECT event_id, created, updated_at FROM stripe_cursor")
        return Cursor(*rows[0]) if rows else None

    def set_cursor(self, event_id: str, created: int) -> None:
        with self.transaction() as db:
            db.execute(
                "INSERT INTO stripe_cursor (id, event_id, created, updated_at) VALUES (1, ?, ?, ?)"
                " ON CONFLICT (id) DO UPDATE SET event_id = excluded.event_id,"
                " created = excluded.created, updated_at = excluded.updated_at",
                (event_id, created, self._clock()),
            )

    # processed event ids

    def is_processed(self, event_id: str) -> bool:
        return bool(self._read("SELECT 1 FROM processed_events WHERE event_id = ?", (event_id,)))

    def mark_processed(self, event_id: str, created: int) -> bool:
        """Record the event as handled; False when it already was (a duplicate delivery)."""
        with self.transaction() as db:
            cur = db.execute(
                "INSERT OR IGNORE INTO processed_events VALUES (?, ?, ?)",
                (event_id, created, self._clock()),
            )
            return cur.rowcount == 1

    def prune_processed(self, before_created: int) -> int:
        with self.transaction() as db:
            return db.execute("DELETE FROM processed_events WHERE created < ?",
                              (before_created,)).rowcount

    # event journal

    def journal_append(self, event_id: str, type: str, created: int, payload: dict[str, Any],
                       *, api_version: str | None = None, customer_id: str | None = None) -> bool:
        """Keep the raw event for replay; False when it was already journalled."""
        with self.transaction() as db:
            cur = db.execute(
                "INSERT OR IGNORE INTO event_journal VALUES (?, ?, ?, ?, ?, ?, ?)",
                (event_id, type, created, api_version, customer_id, _dumps(payload),
                 self._clock()),
            )
            return cur.rowcount == 1

    def journal_events(self, *, since_created: int = 0, until_created: int | None = None,
                       customer_id: str | None = None, limit: int = 1000,
                       after_event_id: str = "") -> list[JournalEvent]:
        """Journalled events in (created, event_id) order, for replay. Page with the last
        row's created as since_created and its event_id as after_event_id."""
        sql = ["SELECT * FROM event_journal WHERE (created > ? OR (created = ? AND event_id > ?))"]
        params: list[Any] = [since_created, since_created, after_event_id]
        if until_created is not None:
            sql.append("AND created <= ?")
            params.append(until_created)
        if customer_id is not None:
            sql.append("AND customer_id = ?")
            params.append(customer_id)
        sql.append("ORDER BY created, event_id LIMIT ?")
        params.append(limit)
        return [
            JournalEvent(r["event_id"], r["type"], r["created"], r["api_version"],
                         r["customer_id"], _loads(r["payload"]), r["received_at"])
            for r in self._read(" ".join(sql), params)
        ]

    def journal_get(self, event_ids: Sequence[str]) -> dict[str, JournalEvent]:
        """Journalled events by id (for a manual retry that re-derives its record)."""
        found: dict[str, JournalEvent] = {}
        ids = list(dict.fromkeys(event_ids))
        for start in range(0, len(ids), 500):
            chunk = ids[start:start + 500]
            for r in self._read(f"SELECT * FROM event_journal WHERE event_id IN "
                                f"({', '.join('?' * len(chunk))})", chunk):
                found[r["event_id"]] = JournalEvent(
                    r["event_id"], r["type"], r["created"], r["api_version"],
                    r["customer_id"], _loads(r["payload"]), r["received_at"])
        return found

    def prune_journal(self, before_created: int) -> int:
        """Retention: drop journalled events created before the cutoff (unix seconds)."""
        with self.transaction() as db:
            return db.execute("DELETE FROM event_journal WHERE created < ?",
                              (before_created,)).rowcount

    def prune_journal_days(self, retention_days: int) -> int:
        return self.prune_journal(int(self._clock() - retention_days * 86400))

    # outbox of pending Salesforce writes

    def outbox_enqueue(self, items: Iterable[OutboxItem]) -> list[int]:
        now = self._clock()
        ids: list[int] = []
        with self.transaction() as db:
            for it in items:
                cur = db.execute(
                    "INSERT INTO outbox (object, key_field, key_value, operation, payload,"
                    " customer_id, source_event_id, enqueued_at, next_attempt_at)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (it.object, it.key_field, it.key_value, it.operation, _dumps(it.payload),
                     it.customer_id, it.source_event_id, now, it.next_attempt_at or now),
                )
                ids.append(int(cur.lastrowid or 0))
        return ids

    def outbox_claim(self, limit: int, *,
                     lease_seconds: float = DEFAULT_CLAIM_LEASE_SECONDS) -> list[OutboxItem]:
        """Claim up to `limit` due rows, oldest first, keeping per-customer order: a row is
        held back while an earlier row of the same customer waits for a retry or is claimed.
        Claims older than the lease (a sync run that died) are offered again."""
        now = self._clock()
        stale = now - lease_seconds
        with self.transaction() as db:
            rows = db.execute(
                """
                SELECT * FROM outbox AS o
                WHERE o.next_attempt_at <= :now
                  AND (o.claimed_at IS NULL OR o.claimed_at < :stale)
                  AND NOT EXISTS (
                    SELECT 1 FROM outbox AS e
                    WHERE o.customer_id IS NOT NULL AND e.customer_id = o.customer_id
                      AND e.id < o.id
                      AND (e.next_attempt_at > :now
                           OR (e.claimed_at IS NOT NULL AND e.claimed_at >= :stale)))
                ORDER BY o.id LIMIT :limit
                """,
                {"now": now, "stale": stale, "limit": limit},
            ).fetchall()
            db.executemany("UPDATE outbox SET claimed_at = ? WHERE id = ?",
                           [(now, r["id"]) for r in rows])
        return [_outbox(r) for r in rows]

    def outbox_complete(self, ids: Iterable[int]) -> None:
        with self.transaction() as db:
            db.executemany("DELETE FROM outbox WHERE id = ?", [(i,) for i in ids])

    def outbox_retry_later(self, outbox_id: int, next_attempt_at: float, error: str) -> None:
        with self.transaction() as db:
            db.execute(
                "UPDATE outbox SET attempts = attempts + 1, next_attempt_at = ?,"
                " claimed_at = NULL, last_error = ? WHERE id = ?",
                (next_attempt_at, error, outbox_id),
            )

    def outbox_release(self, ids: Iterable[int]) -> None:
        """Give claimed rows back unchanged (e.g. the sync was stopped before sending)."""
        with self.transaction() as db:
            db.executemany("UPDATE outbox SET claimed_at = NULL WHERE id = ?",
                           [(i,) for i in ids])

    def outbox_fail(self, outbox_id: int, *, error_code: str, message: str,
                    fields: Sequence[str] = (), salesforce_response: Any = None) -> int | None:
        """Move a row that cannot be written to the failures table, atomically."""
        with self.transaction() as db:
            row = db.execute("SELECT * FROM outbox WHERE id = ?", (outbox_id,)).fetchone()
            if row is None:
                return None
            item = _outbox(row)
            failure_id = self.record_failure(
                object=item.object, key=item.key_value, operation=item.operation,
                payload=item.payload, error_code=error_code, message=message, fields=fields,
                source_event_id=item.source_event_id, salesforce_response=salesforce_response,
                attempts=item.attempts + 1,
            )
            db.execute("DELETE FROM outbox WHERE id = ?", (outbox_id,))
            return failure_id

    def outbox_pending(self) -> int:
        return int(self._read("SELECT count(*) FROM outbox")[0][0])

    def outbox_items(self, limit: int = 100) -> list[OutboxItem]:
        return [_outbox(r) for r in self._read("SELECT * FROM outbox ORDER BY id LIMIT ?",
                                                 (limit,))]

    # failed records

    def record_failure(self, *, object: str, key: str, operation: str, payload: dict[str, Any],
                       error_code: str, message: str, fields: Sequence[str] = (),
                       source_event_id: str | None = None, salesforce_response: Any = None,
                       attempts: int = 1) -> int:
        """Keep a record that could not be written. A record that already has an active
        (open/retrying) failure for the same operation gets it updated: newest payload and
        error, attempts added, status back to open."""
        now = self._clock()
        with self.transaction() as db:
            row = db.execute(
                """
                INSERT INTO failures (object, key, operation, payload, error_code, message,
                    fields, attempts, first_seen, last_seen, status, source_event_id,
                    salesforce_response)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'open', ?, ?)
                ON CONFLICT (object, key, operation) WHERE status IN ('open', 'retrying')
                DO UPDATE SET payload = excluded.payload, error_code = excluded.error_code,
                    message = excluded.message, fields = excluded.fields,
                    attempts = failures.attempts + excluded.attempts,
                    last_seen = excluded.last_seen, status = 'open',
                    source_event_id = excluded.source_event_id,
                    salesforce_response = excluded.salesforce_response
                RETURNING id
                """,
                (object, key, operation, _dumps(payload), error_code, message,
                 _dumps(list(fields)), attempts, now, now, source_event_id,
                 None if salesforce_response is None else _dumps(salesforce_response)),
            ).fetchone()
            return int(row[0])

    def get_failure(self, failure_id: int) -> Failure | None:
        rows = self._read("SELECT * FROM failures WHERE id = ?", (failure_id,))
        return _failure(rows[0]) if rows else None

    def _failure_where(self, flt: FailureFilter) -> tuple[str, list[Any]]:
        clauses: list[str] = []
        params: list[Any] = []
        if flt.status is not None:
            statuses = [flt.status] if isinstance(flt.status, str) else list(flt.status)
            bad = set(statuses) - set(FAILURE_STATUSES)
            if bad:
                raise ValueError(f"unknown failure status {sorted(bad)[0]!r}; use one of "
                                 + ", ".join(FAILURE_STATUSES))
            clauses.append(f"status IN ({', '.join('?' * len(statuses))})")
            params += statuses
        if flt.object is not None:
            clauses.append("object = ?")
            params.append(flt.object)
        if flt.error_code is not None:
            clauses.append("error_code = ?")
            params.append(flt.error_code)
        if flt.key_prefix:
            clauses.append("key LIKE ? ESCAPE '\\'")
            params.append(_like_prefix(flt.key_prefix))
        if flt.source_event_id is not None:
            clauses.append("source_event_id = ?")
            params.append(flt.source_event_id)
        return (" AND ".join(clauses) or "1"), params

    def list_failures(self, flt: FailureFilter | None = None, *, limit: int = 100,
                      before_id: int | None = None, offset: int = 0) -> FailurePage:
        """Newest first. Page with `before_id=page.next_before_id` (stays fast at 100k rows);
        `offset` is there for jumping to a page number."""
        where, params = self._failure_where(flt or FailureFilter())
        total = int(self._read(f"SELECT count(*) FROM failures WHERE {where}", params)[0][0])
        page_where, page_params = where, list(params)
        if before_id is not None:
            page_where += " AND id < ?"
            page_params.append(before_id)
        rows = self._read(
            f"SELECT * FROM failures WHERE {page_where} ORDER BY id DESC LIMIT ? OFFSET ?",
            [*page_params, limit, offset],
        )
        failures = [_failure(r) for r in rows]
        next_before = failures[-1].id if len(failures) == limit else None
        return FailurePage(failures, total, next_before)

    def count_failures(self, flt: FailureFilter | None = None) -> int:
        where, params = self._failure_where(flt or FailureFilter())
        return int(self._read(f"SELECT count(*) FROM failures WHERE {where}", params)[0][0])

    def active_failures_for(self, object: str, keys: Sequence[str]) -> dict[tuple[str, str], int]:
        """{(key, operation): failure id} of the open/retrying failures of these records."""
        found: dict[tuple[str, str], int] = {}
        keys = list(dict.fromkeys(keys))
        for start in range(0, len(keys), 500):
            chunk = keys[start:start + 500]
            rows = self._read(
                "SELECT id, key, operation FROM failures WHERE status IN ('open', 'retrying')"
                f" AND object = ? AND key IN ({', '.join('?' * len(chunk))})", [object, *chunk])
            for r in rows:
                found[(r[1], r[2])] = r[0]
        return found

    def failure_counts_by_status(self) -> dict[str, int]:
        counts = dict.fromkeys(FAILURE_STATUSES, 0)
        for row in self._read("SELECT status, count(*) FROM failures GROUP BY status"):
            counts[row[0]] = row[1]
        return counts

    def set_failure_status(self, ids: Iterable[int], status: str, *,
                           discard_reason: str | None = None) -> int:
        """Move failures to a new status; discarding needs a reason (kept for the audit)."""
        if status not in FAILURE_STATUSES:
            raise ValueError(f"unknown failure status {status!r}; use one of "
                             + ", ".join(FAILURE_STATUSES))
        if status == "discarded" and not (discard_reason and discard_reason.strip()):
            raise ValueError("discarding a failed record needs a reason")
        changed = 0
        with self.transaction() as db:
            for failure_id in ids:
                changed += db.execute(
                    "UPDATE failures SET status = ?, discard_reason = ? WHERE id = ?",
                    (status, discard_reason if status == "discarded" else None, failure_id),
                ).rowcount
        return changed

    # audit log

    def audit(self, *, object: str, action: str, outcome: str,
              stripe_event_id: str | None = None, customer_id: str | None = None,
              external_key: str | None = None, salesforce_id: str | None = None,
              detail: str = "") -> int:
        with self.transaction() as db:
            cur = db.execute(
                "INSERT INTO audit_log (at, stripe_event_id, customer_id, object, external_key,"
                " salesforce_id, action, outcome, detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (self._clock(), stripe_event_id, customer_id, object, external_key,
                 salesforce_id, action, outcome, detail),
            )
            return int(cur.lastrowid or 0)

    def search_audit(self, term: str, *, limit: int = 100,
                     before_id: int | None = None) -> list[AuditEntry]:
        """Entries matching an email / external key (any case), a Stripe event or customer id,
        or a Salesforce id (15- or 18-character form). Newest first."""
        term = term.strip()
        if not term:
            return self.recent_audit(limit=limit, before_id=before_id)
        clauses = ["external_key = ? COLLATE NOCASE", "stripe_event_id = ?", "customer_id = ?",
                   "salesforce_id = ?"]
        params: list[Any] = [term, term, term, term]
        if len(term) == 15 and term.isalnum():
            # An 18-character id starts with its 15-character form.
            clauses.append("(salesforce_id >= ? AND salesforce_id < ?)")
            params += [term, term + "~"]
        sql = f"SELECT * FROM audit_log WHERE ({' OR '.join(clauses)})"
        if before_id is not None:
            sql += " AND id < ?"
            params.append(before_id)
        sql += " ORDER BY id DESC LIMIT ?"
        params.append(limit)
        return [_audit(r) for r in self._read(sql, params)]

    def recent_audit(self, *, limit: int = 100, before_id: int | None = None) -> list[AuditEntry]:
        if before_id is None:
            rows = self._read("SELECT * FROM audit_log ORDER BY id DESC LIMIT ?", (limit,))
        else:
            rows = self._read("SELECT * FROM audit_log WHERE id < ? ORDER BY id DESC LIMIT ?",
                              (before_id, limit))
        return [_audit(r) for r in rows]

    # last-written values

    def get_last_written(self, object: str, key: str) -> LastWritten | None:
        rows = self._read(
            "SELECT values_json, salesforce_id, updated_at FROM last_written"
            " WHERE object = ? AND key = ?", (object, key))
        if not rows:
            return None
        return LastWritten(_loads(rows[0][0]), rows[0][1], rows[0][2])

    def get_last_written_many(self, object: str, keys: Sequence[str]) -> dict[str, LastWritten]:
        found: dict[str, LastWritten] = {}
        for start in range(0, len(keys), 500):  # stay under SQLite's variable limit
            chunk = list(keys[start:start + 500])
            rows = self._read(
                "SELECT key, values_json, salesforce_id, updated_at FROM last_written"
                f" WHERE object = ? AND key IN ({', '.join('?' * len(chunk))})",
                [object, *chunk])
            for r in rows:
                found[r[0]] = LastWritten(_loads(r[1]), r[2], r[3])
        return found

    def put_last_written(self, object: str, key: str, values: dict[str, Any],
                         salesforce_id: str | None = None) -> None:
        """Merge the fields just written into what was written before for this record."""
        with self.transaction() as db:
            row = db.execute(
                "SELECT values_json, salesforce_id FROM last_written WHERE object = ? AND key = ?",
                (object, key)).fetchone()
            merged = {**(_loads(row[0]) if row else {}), **values}
            sf_id = salesforce_id or (row[1] if row else None)
            db.execute(
                "INSERT OR REPLACE INTO last_written VALUES (?, ?, ?, ?, ?)",
                (object, key, sf_id, _dumps(merged), self._clock()))

    # API usage samples

    def add_usage_sample(self, used: int, max: int) -> None:
        with self.transaction() as db:
            db.execute("INSERT INTO api_usage VALUES (?, ?, ?)", (self._clock(), used, max))

    def usage_samples(self, since: float = 0.0, limit: int = 10_000) -> list[UsageSample]:
        rows = self._read("SELECT at, used, max FROM api_usage WHERE at >= ? ORDER BY at"
                          " LIMIT ?", (since, limit))
        return [UsageSample(*r) for r in rows]

    def latest_usage(self) -> UsageSample | None:
        rows = self._read("SELECT at, used, max FROM api_usage ORDER BY at DESC LIMIT 1")
        return UsageSample(*rows[0]) if rows else None

    def prune_usage(self, before: float) -> int:
        with self.transaction() as db:
            return db.execute("DELETE FROM api_usage WHERE at < ?", (before,)).rowcount

    # per-object counters

    def increment_counters(self, object: str, **deltas: int) -> None:
        """increment_counters("Contact", created=3, skipped=1)"""
        unknown = set(deltas) - set(COUNTER_KINDS)
        if unknown:
            raise ValueError(f"unknown counter {sorted(unknown)[0]!r}; use "
                             + ", ".join(COUNTER_KINDS))
        values = [int(deltas.get(k, 0)) for k in COUNTER_KINDS]
        with self.transaction() as db:
            db.execute(
                "INSERT INTO counters (object, created, updated, skipped, failed)"
                " VALUES (?, ?, ?, ?, ?) ON CONFLICT (object) DO UPDATE SET"
                " created = created + excluded.created, updated = updated + excluded.updated,"
                " skipped = skipped + excluded.skipped, failed = failed + excluded.failed",
                (object, *values))

    def counters(self) -> dict[str, Counters]:
        return {r[0]: Counters(r[1], r[2], r[3], r[4]) for r in
                self._read("SELECT object, created, updated, skipped, failed FROM counters"
                           " ORDER BY object")}

    def reset_counters(self) -> None:
        with self.transaction() as db:
            db.execute("DELETE FROM counters")

    # key/value meta (wizard progress, org describe cache, ...)

    def get_meta(self, key: str, default: Any = None) -> Any:
        rows = self._read("SELECT value FROM meta WHERE key = ?", (key,))
        return _loads(rows[0][0]) if rows else default

    def set_meta(self, key: str, value: Any) -> None:
        with self.transaction() as db:
            db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?, ?)",
                       (key, _dumps(value), self._clock()))

    def delete_meta(self, key: str) -> bool:
        with self.transaction() as db:
            return db.execute("DELETE FROM meta WHERE key = ?", (key,)).rowcount == 1
