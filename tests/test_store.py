"""The state database: schema, every table's API, threads, and crash safety."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from lc_console import paths
from lc_console.store import (
    MIGRATIONS,
    SCHEMA_VERSION,
    FailureFilter,
    OutboxItem,
    Store,
    StoreError,
)


class FakeClock:
    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def store(tmp_path: Path, clock: FakeClock):
    with Store(tmp_path / "state.db", clock=clock) as s:
        yield s


def _item(key: str, customer: str | None = "cus_1", **payload: object) -> OutboxItem:
    return OutboxItem("Contact", "Email", key, "upsert", dict(payload) or {"Email": key},
                      customer_id=customer, source_event_id="evt_1")


# --- file, schema, pragmas ---------------------------------------------------------------------


def test_profile_db_lives_under_the_data_dir_private_and_in_wal_mode(isolated_dirs: Path) -> None:
    with Store.for_profile("acme") as s:
        assert s.path == paths.state_db("acme")
        assert str(s.path).startswith(str(isolated_dirs / "data"))
        s.set_meta("k", 1)
        assert s.path.stat().st_mode & 0o777 == 0o600
        assert Path(f"{s.path}-wal").stat().st_mode & 0o777 == 0o600
    raw = sqlite3.connect(paths.state_db("acme"))
    assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    raw.close()


def test_schema_version_is_recorded_and_reopening_does_not_migrate_again(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    with Store(path) as s:
        assert s.schema_version() == SCHEMA_VERSION == len(MIGRATIONS)
        s.set_meta("kept", "yes")
    with Store(path) as s:
        assert s.schema_version() == SCHEMA_VERSION
        assert s.get_meta("kept") == "yes"
        assert s.integrity_ok()


def test_forward_migration_runs_only_the_new_steps(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "state.db"
    Store(path).close()
    ran: list[int] = []

    def v2(db: sqlite3.Connection) -> None:
        ran.append(2)
        db.execute("ALTER TABLE meta ADD COLUMN note TEXT")

    monkeypatch.setattr("lc_console.store.MIGRATIONS", [*MIGRATIONS, v2])
    monkeypatch.setattr("lc_console.store.SCHEMA_VERSION", len(MIGRATIONS) + 1)
    with Store(path) as s:
        assert s.schema_version() == len(MIGRATIONS) + 1
        cols = [r[1] for r in s._read("PRAGMA table_info(meta)")]
        assert "note" in cols
    assert ran == [2]


def test_failed_migration_leaves_the_old_schema_intact(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "state.db"
    Store(path).close()

    def broken(db: sqlite3.Connection) -> None:
        db.execute("CREATE TABLE half_done (x)")
        raise RuntimeError("boom")

    monkeypatch.setattr("lc_console.store.MIGRATIONS", [*MIGRATIONS, broken])
    monkeypatch.setattr("lc_console.store.SCHEMA_VERSION", len(MIGRATIONS) + 1)
    with pytest.raises(RuntimeError):
        Store(path)
    raw = sqlite3.connect(path)
    assert raw.execute("SELECT version FROM schema_version").fetchone()[0] == len(MIGRATIONS)
    assert not raw.execute("SELECT 1 FROM sqlite_master WHERE name = 'half_done'").fetchall()
    raw.close()


def test_a_newer_schema_is_refused_with_a_clear_message(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    Store(path).close()
    raw = sqlite3.connect(path)
    raw.execute("UPDATE schema_version SET version = 99")
    raw.commit()
    raw.close()
    with pytest.raises(StoreError, match=r"newer lc-console.*Upgrade"):
        Store(path)


def test_a_damaged_file_gives_an_error_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StoreError) as err:
        Store(path)
    assert str(path) in str(err.value)
    assert "move it away" in str(err.value)


# --- tables ------------------------------------------------------------------------------------


def test_cursor_get_set(store: Store, clock: FakeClock) -> None:
    assert store.get_cursor() is None
    store.set_cursor("evt_1", 100)
    clock.now += 5
    store.set_cursor("evt_2", 200)
    cur = store.get_cursor()
    assert cur is not None
    assert (cur.event_id, cur.created, cur.updated_at) == ("evt_2", 200, clock.now)


def test_processed_ids_are_idempotent_and_prunable(store: Store) -> None:
    assert store.mark_processed("evt_1", 100) is True
    assert store.mark_processed("evt_1", 100) is False
    assert store.is_processed("evt_1") and not store.is_processed("evt_2")
    store.mark_processed("evt_2", 300)
    assert store.prune_processed(before_created=200) == 1
    assert not store.is_processed("evt_1") and store.is_processed("evt_2")


def test_journal_keeps_payloads_for_replay_and_prunes_by_age(store: Store,
                                                            clock: FakeClock) -> None:
    day = 86400
    for i in range(5):
        created = int(clock.now) - (4 - i) * 40 * day  # 160, 120, 80, 40, 0 days old
        store.journal_append(f"evt_{i}", "invoice.payment_failed", created,
                             {"id": f"evt_{i}", "n": i}, api_version="2024-06-20",
                             customer_id="cus_A" if i % 2 else "cus_B")
    assert store.journal_append("evt_0", "x", 0, {}) is False  # duplicates are ignored
    events = store.journal_events()
    assert [e.event_id for e in events] == [f"evt_{i}" for i in range(5)]
    assert events[1].payload == {"id": "evt_1", "n": 1}
    assert events[1].api_version == "2024-06-20"
    assert [e.event_id for e in store.journal_events(customer_id="cus_A")] == ["evt_1", "evt_3"]
    page = store.journal_events(limit=2)
    rest = store.journal_events(since_created=page[-1].created, after_event_id=page[-1].event_id)
    assert [e.event_id for e in page + rest] == [f"evt_{i}" for i in range(5)]
    assert store.prune_journal_days(90) == 2
    assert [e.event_id for e in store.journal_events()] == ["evt_2", "evt_3", "evt_4"]


def test_outbox_claim_complete_and_retry(store: Store, clock: FakeClock) -> None:
    ids = store.outbox_enqueue([_item("a@x.com", "cus_1"), _item("b@x.com", "cus_2")])
    claimed = store.outbox_claim(10)
    assert [c.id for c in claimed] == ids
    assert claimed[0].payload == {"Email": "a@x.com"} and claimed[0].source_event_id == "evt_1"
    assert store.outbox_claim(10) == []  # claimed rows are not handed out twice
    store.outbox_complete([ids[0]])
    store.outbox_retry_later(ids[1], clock.now + 60, "UNABLE_TO_LOCK_ROW")
    assert store.outbox_claim(10) == []  # not due yet
    clock.now += 61
    again = store.outbox_claim(10)
    assert [(c.id, c.attempts, c.last_error) for c in again] == [(ids[1], 1, "UNABLE_TO_LOCK_ROW")]
    assert store.outbox_pending() == 1


def test_outbox_keeps_per_customer_order(store: Store, clock: FakeClock) -> None:
    a1, b1, a2, n1 = store.outbox_enqueue(
        [_item("a1", "cus_A"), _item("b1", "cus_B"), _item("a2", "cus_A"), _item("n1", None)])
    first = store.outbox_claim(10)
    assert [c.id for c in first] == [a1, b1, a2, n1]  # in order within a batch is fine
    store.outbox_complete([b1, n1])
    store.outbox_retry_later(a1, clock.now + 30, "timeout")
    store.outbox_release([a2])
    # a2 must wait while the earlier a1 waits for its retry: Salesforce must see them in order.
    assert store.outbox_claim(10) == []
    b2 = store.outbox_enqueue([_item("b2", "cus_B")])[0]
    assert [c.id for c in store.outbox_claim(10)] == [b2]  # other customers are not held up
    clock.now += 31
    assert [c.id for c in store.outbox_claim(10)] == [a1, a2]


def test_outbox_claims_of_a_dead_run_expire(store: Store, clock: FakeClock) -> None:
    (row,) = store.outbox_enqueue([_item("a@x.com")])
    store.outbox_claim(10)
    clock.now += 30
    assert store.outbox_claim(10, lease_seconds=60) == []
    clock.now += 31
    assert [c.id for c in store.outbox_claim(10, lease_seconds=60)] == [row]


def test_outbox_row_that_cannot_be_written_moves_to_failures(store: Store) -> None:
    (row,) = store.outbox_enqueue([_item("a@x.com", Email="a@x.com", LastName="")])
    store.outbox_claim(1)
    failure_id = store.outbox_fail(row, error_code="REQUIRED_FIELD_MISSING",
                                   message="Required fields are missing: [LastName]",
                                   fields=["LastName"],
                                   salesforce_response=[{"errorCode": "REQUIRED_FIELD_MISSING"}])
    assert store.outbox_pending() == 0
    assert failure_id is not None
    failure = store.get_failure(failure_id)
    assert failure is not None
    assert failure.payload == {"Email": "a@x.com", "LastName": ""}
    assert (failure.object, failure.key, failure.operation) == ("Contact", "a@x.com", "upsert")
    assert failure.fields == ["LastName"] and failure.status == "open"
    assert failure.source_event_id == "evt_1"
    assert failure.salesforce_response == [{"errorCode": "REQUIRED_FIELD_MISSING"}]


def test_repeated_failure_of_one_record_updates_its_active_row(store: Store,
                                                                clock: FakeClock) -> None:
    kw = dict(object="Contact", key="a@x.com", operation="upsert")
    first = store.record_failure(**kw, payload={"v": 1}, error_code="E1", message="m1")
    store.set_failure_status([first], "retrying")
    clock.now += 10
    again = store.record_failure(**kw, payload={"v": 2}, error_code="E2", message="m2")
    assert again == first
    f = store.get_failure(first)
    assert f is not None
    assert (f.payload, f.error_code, f.attempts, f.status) == ({"v": 2}, "E2", 2, "open")
    assert f.last_seen - f.first_seen == 10
    store.set_failure_status([first], "resolved")
    third = store.record_failure(**kw, payload={"v": 3}, error_code="E3", message="m3")
    assert third != first  # a resolved failure is history; a new one opens
    assert store.failure_counts_by_status() == {"open": 1, "retrying": 0, "resolved": 1,
                                                "discarded": 0}


def test_discard_needs_a_reason_and_unknown_status_is_refused(store: Store) -> None:
    fid = store.record_failure(object="Contact", key="k", operation="upsert", payload={},
                               error_code="E", message="m")
    with pytest.raises(ValueError, match="reason"):
        store.set_failure_status([fid], "discarded")
    with pytest.raises(ValueError, match="open, retrying, resolved, discarded"):
        store.set_failure_status([fid], "gone")
    assert store.set_failure_status([fid], "discarded", discard_reason="test customer") == 1
    f = store.get_failure(fid)
    assert f is not None and (f.status, f.discard_reason) == ("discarded", "test customer")


def test_failures_filter_and_page_through_100k_rows(store: Store) -> None:
    n = 100_000
    db = store._conn()
    with store.transaction():
        db.executemany(
            "INSERT INTO failures (object, key, operation, payload, error_code, message,"
            " first_seen, last_seen, status) VALUES (?, ?, 'upsert', '{}', ?, 'm', 0, 0, ?)",
            [("Contact" if i % 2 else "Account", f"user{i}@x.com",
              "DUPLICATE_VALUE" if i % 10 == 0 else "FIELD_INTEGRITY_EXCEPTION",
              "open" if i % 3 else "resolved") for i in range(n)],
        )
    flt = FailureFilter(status="open", object="Contact")
    expected_total = sum(1 for i in range(n) if i % 2 and i % 3)
    page = store.list_failures(flt, limit=100)
    seen = [f.id for f in page.rows]
    while page.next_before_id is not None and len(seen) < 1000:
        page = store.list_failures(flt, limit=100, before_id=page.next_before_id)
        seen += [f.id for f in page.rows]
    assert page.total == expected_total
    assert len(seen) == 1000 and seen == sorted(seen, reverse=True) and len(set(seen)) == 1000
    assert all(f.status == "open" and f.object == "Contact" for f in page.rows)
    deep = store.list_failures(flt, limit=100, offset=expected_total - 50)
    assert len(deep.rows) == 50 and deep.next_before_id is None
    assert store.count_failures(FailureFilter(error_code="DUPLICATE_VALUE")) == n // 10
    assert [f.key for f in store.list_failures(FailureFilter(key_prefix="USER1234")).rows] == [
        "user12349@x.com", "user12348@x.com", "user12347@x.com", "user12346@x.com",
        "user12345@x.com", "user12344@x.com", "user12343@x.com", "user12342@x.com",
        "user12341@x.com", "user12340@x.com", "user1234@x.com"]
    assert store.count_failures(FailureFilter(key_prefix="user_")) == 0  # _ is literal
    # Speed at this size: bench/bench_store.py.


def test_audit_search_by_email_stripe_and_salesforce_ids(store: Store) -> None:
    store.audit(object="Contact", action="upsert", outcome="created", stripe_event_id="evt_1",
                customer_id="cus_1", external_key="Ann@Example.com",
                salesforce_id="003Hs00001AbCdEIAV", detail="new contact")
    store.audit(object="Account", action="upsert", outcome="updated", stripe_event_id="evt_2",
                customer_id="cus_1", external_key="example.com", salesforce_id="001Hs00000XyZ12IAB")
    store.audit(object="Contact", action="upsert", outcome="skipped", stripe_event_id="evt_3",
                customer_id="cus_2", external_key="bob@other.org")

    def ids(term: str) -> list[str | None]:
        return [e.stripe_event_id for e in store.search_audit(term)]

    assert ids("ann@example.com") == ["evt_1"]
    assert ids("evt_2") == ["evt_2"]
    assert ids("cus_1") == ["evt_2", "evt_1"]
    assert ids("003Hs00001AbCdEIAV") == ["evt_1"]
    assert ids("003Hs00001AbCdE") == ["evt_1"]  # 15-character form
    assert ids("003hs00001abcde") == []  # Salesforce ids are case-sensitive
    assert ids("nobody@x.com") == []
    entry = store.search_audit("bob@other.org")[0]
    assert (entry.object, entry.action, entry.outcome, entry.salesforce_id) == (
        "Contact", "upsert", "skipped", None)
    assert [e.stripe_event_id for e in store.recent_audit(limit=2)] == ["evt_3", "evt_2"]


def test_last_written_merges_fields(store: Store) -> None:
    assert store.get_last_written("Contact", "a@x.com") is None
    store.put_last_written("Contact", "a@x.com", {"LostChurn_MRR__c": 10.0, "FirstName": "Ann"},
                           salesforce_id="003A")
    store.put_last_written("Contact", "a@x.com", {"LostChurn_MRR__c": 12.5})
    got = store.get_last_written("Contact", "a@x.com")
    assert got is not None
    assert got.values == {"LostChurn_MRR__c": 12.5, "FirstName": "Ann"}
    assert got.salesforce_id == "003A"
    many = store.get_last_written_many("Contact", [f"k{i}" for i in range(1200)] + ["a@x.com"])
    assert list(many) == ["a@x.com"]


def test_usage_counters_and_meta(store: Store, clock: FakeClock) -> None:
    store.add_usage_sample(100, 15000)
    clock.now += 60
    store.add_usage_sample(180, 15000)
    assert [(s.used, s.max) for s in store.usage_samples()] == [(100, 15000), (180, 15000)]
    latest = store.latest_usage()
    assert latest is not None and latest.used == 180
    assert store.prune_usage(before=clock.now) == 1

    store.increment_counters("Contact", created=3, skipped=1)
    store.increment_counters("Contact", updated=2, failed=1)
    store.increment_counters("Account", created=1)
    counters = store.counters()
    assert (counters["Contact"].created, counters["Contact"].updated,
            counters["Contact"].skipped, counters["Contact"].failed) == (3, 2, 1, 1)
    assert counters["Account"].created == 1
    with pytest.raises(ValueError, match="unknown counter"):
        store.increment_counters("Contact", deleted=1)
    store.reset_counters()
    assert store.counters() == {}

    assert store.get_meta("wizard", default={}) == {}
    store.set_meta("wizard", {"done": ["salesforce"]})
    assert store.get_meta("wizard") == {"done": ["salesforce"]}
    assert store.delete_meta("wizard") and not store.delete_meta("wizard")


def test_transaction_groups_writes_and_rolls_back_on_error(store: Store) -> None:
    with pytest.raises(RuntimeError):
        with store.transaction():
            store.mark_processed("evt_9", 1)
            store.outbox_enqueue([_item("a@x.com")])
            store.set_cursor("evt_9", 1)
            raise RuntimeError("crash between steps")
    assert not store.is_processed("evt_9")
    assert store.outbox_pending() == 0 and store.get_cursor() is None
    with store.transaction():
        store.mark_processed("evt_9", 1)
        store.set_cursor("evt_9", 1)
    assert store.is_processed("evt_9") and store.get_cursor() is not None


# --- threads -----------------------------------------------------------------------------------


def test_ui_thread_reads_while_sync_thread_writes(store: Store) -> None:
    """One Store shared by a writer and a reader thread: each gets its own connection, the
    reader never sees a half-written batch and nobody gets 'database is locked'."""
    batches, per_batch = 200, 5
    errors: list[BaseException] = []
    done = threading.Event()
    observed: list[int] = []

    def writer() -> None:
        try:
            for b in range(batches):
                with store.transaction():
                    for i in range(per_batch):
                        store.audit(object="Contact", action="upsert", outcome="created",
                                    external_key=f"{b}-{i}@x.com")
                    store.increment_counters("Contact", created=per_batch)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            done.set()

    def reader() -> None:
        try:
            while not done.is_set():
                with store.snapshot():  # both tables as of one commit
                    n = len(store.recent_audit(limit=100_000))
                    c = store.counters().get("Contact")
                assert n == (c.created if c else 0)
                assert n % per_batch == 0
                observed.append(n)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer), threading.Thread(target=reader)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors, errors
    assert store.counters()["Contact"].created == batches * per_batch
    assert observed


def test_connections_of_finished_threads_are_closed(store: Store) -> None:
    for _ in range(20):
        t = threading.Thread(target=store.counters)
        t.start()
        t.join()
    store.counters()
    assert len(store._connections) <= 2


# --- crash safety ------------------------------------------------------------------------------

_CHILD = textwrap.dedent(
    """
    import os, sys
    from lc_console.store import OutboxItem, Store

    path, mode = sys.argv[1], sys.argv[2]
    store = Store(path)
    with store.transaction():
        store.set_cursor("evt_committed", 1)
        store.mark_processed("evt_committed", 1)
    big = "x" * 2000
    if mode == "exit":
        with store.transaction():
            store.set_cursor("evt_half", 2)
            store.mark_processed("evt_half", 2)
            for i in range(3000):  # ~6 MB: more than the page cache, so pages hit the WAL
                store.outbox_enqueue([OutboxItem("Contact", "Email", f"{i}@x.com", "upsert",
                                                 {"pad": big}, customer_id="cus_1")])
                store.record_failure(object="Contact", key=f"{i}@x.com", operation="upsert",
                                     payload={"pad": big}, error_code="E", message="m")
            print("mid-transaction", flush=True)
            os._exit(3)
    else:  # "loop": commit batches until killed
        b = 0
        while True:
            with store.transaction():
                for i in range(50):
                    store.audit(object="Contact", action="upsert", outcome="created",
                                external_key=f"batch-{b}", detail=big)
                store.increment_counters("Contact", created=50)
            b += 1
            if b == 5:
                print("running", flush=True)
    """
)


def _run_child(path: Path, mode: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-c", _CHILD, str(path), mode],
                            stdout=subprocess.PIPE, text=True, cwd="/tmp")


def _assert_clean(path: Path) -> Store:
    assert Path(f"{path}-wal").exists()  # the crash left a WAL for recovery to deal with
    store = Store(path)
    assert store.integrity_ok()
    assert store._read("PRAGMA foreign_key_check") == []
    return store


def test_writer_killed_with_os_exit_mid_transaction_leaves_nothing_half_written(
        tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    child = _run_child(path, "exit")
    out, _ = child.communicate(timeout=120)
    assert child.returncode == 3 and "mid-transaction" in out
    assert Path(f"{path}-wal").stat().st_size > 1_000_000  # uncommitted pages reached the disk
    with _assert_clean(path) as store:
        cursor = store.get_cursor()
        assert cursor is not None and cursor.event_id == "evt_committed"
        assert store.is_processed("evt_committed") and not store.is_processed("evt_half")
        assert store.outbox_pending() == 0
        assert store.count_failures() == 0
        store.set_cursor("evt_after", 3)  # and it is writable again
        assert store.get_cursor().event_id == "evt_after"  # type: ignore[union-attr]


def test_writer_killed_with_sigkill_keeps_whole_batches_only(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    child = _run_child(path, "loop")
    assert child.stdout is not None
    assert child.stdout.readline().strip() == "running"
    time.sleep(0.2)
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=30)
    with _assert_clean(path) as store:
        rows = store._read("SELECT external_key, count(*) FROM audit_log GROUP BY external_key")
        assert len(rows) >= 5
        assert {r[1] for r in rows} == {50}
        assert store.counters()["Contact"].created == 50 * len(rows)


def test_store_never_holds_secrets_by_design(store: Store) -> None:
    """The schema has no column for a token or key; a guard against adding one casually."""
    cols = " ".join(r[0] for r in store._read(
        "SELECT sql FROM sqlite_master WHERE type = 'table'")).lower()
    for word in ("token", "secret", "password", "api_key"):
        assert word not in cols
