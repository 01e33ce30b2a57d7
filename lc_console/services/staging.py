"""The scratch database of a backfill or reconcile run: what was read, and what will be sent.

A run reads far more than fits in memory (100,000 customers with their invoices), so every
page read from Stripe or Salesforce goes to this SQLite file (next to the state database,
owner-only like it), and the derive phase walks customers in id order, a chunk at a time.
The staged writes are kept here too, each with its status, so a crash or a cancel resumes
where it stopped. The run's checkpoint itself lives in the store's meta table.

Tables:
- stripe_obj: Stripe objects (allow-listed copies) by kind and id, with their customer;
- org_row: Salesforce records of the console's objects as read at the start, indexed by
  the values matching needs (external key, email, website host, name); rows planned by the
  run itself (new Accounts / Contacts) are added as candidates, with id `planned:<key>`;
- staged: one write per Salesforce record (payload in REST form), pending -> sent -> done |
  failed | skipped.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS stripe_obj (
    kind TEXT NOT NULL, id TEXT NOT NULL, customer_id TEXT, created INTEGER,
    json TEXT NOT NULL, PRIMARY KEY (kind, id)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS stripe_obj_customer ON stripe_obj(customer_id, kind);
CREATE INDEX IF NOT EXISTS stripe_obj_created ON stripe_obj(kind, created, id);
CREATE TABLE IF NOT EXISTS org_row (
    object TEXT NOT NULL, id TEXT NOT NULL, key TEXT, email TEXT, host TEXT, name TEXT,
    json TEXT NOT NULL, PRIMARY KEY (object, id)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS org_row_key ON org_row(object, key);
CREATE INDEX IF NOT EXISTS org_row_email ON org_row(object, email);
CREATE INDEX IF NOT EXISTS org_row_host ON org_row(object, host);
CREATE INDEX IF NOT EXISTS org_row_name ON org_row(object, name);
CREATE TABLE IF NOT EXISTS staged (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, object TEXT NOT NULL, operation TEXT NOT NULL,
    key_field TEXT NOT NULL, key_value TEXT NOT NULL, customer_id TEXT, label TEXT,
    action TEXT NOT NULL, payload TEXT NOT NULL, written TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending', job_id TEXT, attempts INTEGER NOT NULL DEFAULT 0,
    UNIQUE (object, key_value));
CREATE INDEX IF NOT EXISTS staged_status ON staged(object, status, seq);
"""


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), default=str)


class Staging:
    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        if not path.exists():
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
        self.db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode = WAL")
        self.db.execute("PRAGMA synchronous = NORMAL")
        for statement in SCHEMA.split(";"):
            if statement.strip():
                self.db.execute(statement)

    def close(self) -> None:
        self.db.close()

    def reset(self) -> None:
        with self.tx():
            for table in ("stripe_obj", "org_row", "staged"):
                self.db.execute(f"DELETE FROM {table}")

    def drop(self) -> None:
        self.close()
        for suffix in ("", "-wal", "-shm"):
            Path(str(self.path) + suffix).unlink(missing_ok=True)

    class _Tx:
        def __init__(self, db: sqlite3.Connection) -> None:
            self.db = db

        def __enter__(self) -> sqlite3.Connection:
            self.db.execute("BEGIN IMMEDIATE")
            return self.db

        def __exit__(self, exc_type: object, *rest: object) -> None:
            self.db.execute("ROLLBACK" if exc_type else "COMMIT")

    def tx(self) -> Staging._Tx:
        return Staging._Tx(self.db)

    # Stripe objects

    def put_stripe(self, kind: str, rows: Iterable[tuple[str, str | None, int, Any]]) -> None:
        with self.tx() as db:
            db.executemany("INSERT OR REPLACE INTO stripe_obj VALUES (?, ?, ?, ?, ?)",
                           [(kind, i, c, created, _dumps(o)) for i, c, created, o in rows])

    def customers_after(self, after: tuple[int, str], limit: int) -> list[tuple[int, str]]:
        """(created, id) of the next customers, oldest first: the oldest customer of a domain
        owns its Account, as when the live sync has run since the account's first day."""
        rows = self.db.execute(
            "SELECT created, id FROM stripe_obj WHERE kind = 'customers'"
            " AND (created > ? OR (created = ? AND id > ?)) ORDER BY created, id LIMIT ?",
            (after[0], after[0], after[1], limit)).fetchall()
        return [(int(r[0]), r[1]) for r in rows]

    def count(self, kind: str) -> int:
        return int(self.db.execute("SELECT count(*) FROM stripe_obj WHERE kind = ?",
                                   (kind,)).fetchone()[0])

    def objects_of(self, customer_ids: Sequence[str]) -> dict[str, dict[str, list[Any]]]:
        out: dict[str, dict[str, list[Any]]] = {c: {} for c in customer_ids}
        for start in range(0, len(customer_ids), 500):
            chunk = list(customer_ids[start:start + 500])
            marks = ", ".join("?" * len(chunk))
            for kind, cid, text in self.db.execute(
                    f"SELECT kind, customer_id, json FROM stripe_obj WHERE customer_id IN ({marks})"
                    " ORDER BY kind, created, id", chunk):
                out[cid].setdefault(kind, []).append(json.loads(text))
        return out

    def has_stripe(self, kind: str, object_id: str) -> bool:
        return self.db.execute("SELECT 1 FROM stripe_obj WHERE kind = ? AND id = ?",
                               (kind, object_id)).fetchone() is not None

    # Salesforce rows

    def put_org(self, rows: Iterable[tuple[str, str, str | None, str | None, str | None,
                                           str | None, Any]]) -> None:
        with self.tx() as db:
            db.executemany("INSERT OR REPLACE INTO org_row VALUES (?, ?, ?, ?, ?, ?, ?)",
                           [(*r[:6], _dumps(r[6])) for r in rows])

    def org_find(self, obj: str, *, keys: Sequence[str] = (), ids: Sequence[str] = (),
                 emails: Sequence[str] = (), hosts: Sequence[str] = (),
                 names: Sequence[str] = ()) -> list[dict[str, Any]]:
        # One indexed query per column (an OR across columns would scan the table: with
        # 100,000 planned rows that is quadratic).
        found: dict[str, dict[str, Any]] = {}
        for column, values in (("key", keys), ("id", ids), ("email", emails), ("host", hosts),
                               ("name", names)):
            values = [v for v in values if v]
            if not values:
                continue
            # Without statistics SQLite prefers the primary key's (object) prefix, a scan of
            # every row of the object: name the index.
            hint = "" if column == "id" else f" INDEXED BY org_row_{column}"
            sql = (f"SELECT id, json FROM org_row{hint} WHERE object = ? AND {column} IN"
                   f" ({', '.join('?' * len(values))})")
            for row_id, text in self.db.execute(sql, [obj, *values]):
                if row_id not in found:
                    found[row_id] = json.loads(text)
        return list(found.values())

    def org_rows(self, obj: str) -> Iterator[dict[str, Any]]:
        for (text,) in self.db.execute(
                "SELECT json FROM org_row WHERE object = ? AND id NOT LIKE 'planned:%'"
                " ORDER BY id", (obj,)):
            yield json.loads(text)

    # staged writes

    def stage(self, rows: Iterable[dict[str, Any]]) -> None:
        with self.tx() as db:
            db.executemany(
                "INSERT INTO staged (object, operation, key_field, key_value, customer_id,"
                " label, action, payload, written) VALUES (:object, :operation, :key_field,"
                " :key_value, :customer_id, :label, :action, :payload, :written)"
                " ON CONFLICT (object, key_value) DO UPDATE SET payload = excluded.payload,"
                " written = excluded.written, action = excluded.action, status = 'pending'",
                [{**r, "payload": _dumps(r["payload"]), "written": _dumps(r["written"])}
                 for r in rows])

    def pending_counts(self, objects: Sequence[str]) -> dict[str, int]:
        out = dict.fromkeys(objects, 0)
        for obj, n in self.db.execute(
                "SELECT object, count(*) FROM staged WHERE status IN ('pending', 'sent')"
                " GROUP BY object"):
            if obj in out:
                out[obj] = n
        return out

    def pending_bytes(self, objects: Sequence[str]) -> dict[str, int]:
        out = dict.fromkeys(objects, 0)
        for obj, n in self.db.execute(
                "SELECT object, sum(length(payload)) FROM staged WHERE status IN ('pending',"
                " 'sent') GROUP BY object"):
            if obj in out:
                out[obj] = int(n or 0)
        return out

    def pending(self, obj: str, operation: str, limit: int, after_seq: int = 0
                ) -> list[dict[str, Any]]:
        rows = self.db.execute(
            "SELECT * FROM staged WHERE object = ? AND operation = ? AND status = 'pending'"
            " AND seq > ? ORDER BY seq LIMIT ?", (obj, operation, after_seq, limit))
        names = [d[0] for d in rows.description]
        out = []
        for r in rows.fetchall():
            row = dict(zip(names, r, strict=True))
            row["payload"] = json.loads(row["payload"])
            row["written"] = json.loads(row["written"])
            out.append(row)
        return out

    def iter_job(self, job_id: str, status: str | None = None) -> Iterator[dict[str, Any]]:
        """The rows of a Bulk job, streamed in seq order (a cursor of its own)."""
        sql = "SELECT * FROM staged WHERE job_id = ?"
        params: list[Any] = [job_id]
        if status is not None:
            sql += " AND status = ?"
            params.append(status)
        cur = self.db.cursor()
        cur.execute(sql + " ORDER BY seq", params)
        names = [d[0] for d in cur.description]
        while True:
            batch = cur.fetchmany(2000)
            if not batch:
                return
            for r in batch:
                row = dict(zip(names, r, strict=True))
                row["payload"] = json.loads(row["payload"])
                row["written"] = json.loads(row["written"])
                yield row

    def rows_of_job(self, job_id: str) -> list[dict[str, Any]]:
        rows = self.db.execute("SELECT * FROM staged WHERE job_id = ? ORDER BY seq", (job_id,))
        names = [d[0] for d in rows.description]
        out = []
        for r in rows.fetchall():
            row = dict(zip(names, r, strict=True))
            row["payload"] = json.loads(row["payload"])
            row["written"] = json.loads(row["written"])
            out.append(row)
        return out

    def mark(self, seqs: Iterable[int], status: str, job_id: str | None = None,
             attempt: bool = False) -> None:
        with self.tx() as db:
            db.executemany(
                "UPDATE staged SET status = ?, job_id = coalesce(?, job_id),"
                f" attempts = attempts + {1 if attempt else 0} WHERE seq = ?",
                [(status, job_id, s) for s in seqs])

    def release_sent(self) -> int:
        """Rows sent by collections when the run died: send them again (upserts are safe)."""
        with self.tx() as db:
            return db.execute("UPDATE staged SET status = 'pending' WHERE status = 'sent'"
                              " AND job_id IS NULL").rowcount

    def status_counts(self) -> dict[str, dict[str, int]]:
        out: dict[str, dict[str, int]] = {}
        for obj, status, n in self.db.execute(
                "SELECT object, status, count(*) FROM staged GROUP BY object, status"):
            out.setdefault(obj, {})[status] = n
        return out

    def staged_rows(self, obj: str) -> Iterator[dict[str, Any]]:
        rows = self.db.execute("SELECT * FROM staged WHERE object = ? ORDER BY seq", (obj,))
        names = [d[0] for d in rows.description]
        for r in rows:
            row = dict(zip(names, r, strict=True))
            row["payload"] = json.loads(row["payload"])
            row["written"] = json.loads(row["written"])
            yield row
