"""The engine's own mechanics with small fakes (no network): ingest in one transaction,
duplicates and malformed events, subscribers that never block the loop, backoff, Stripe
errors while polling, retention, and per-customer retry bookkeeping."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest
import stripe

from lc_console.store import Store
from lc_console.stripe.source import RETENTION_SECONDS, Cursor
from lc_console.sync import progress as pg
from lc_console.sync.batch import Outcome
from lc_console.sync.engine import Engine, EngineConfig, EngineError, Subscription, backoff

NOW = 1_800_000_000


def event(n: int, customer: str = "cus_1", kind: str = "invoice",
          etype: str = "invoice.paid") -> dict[str, Any]:
    return {"id": f"evt_{n:04d}", "object": "event", "type": etype, "created": NOW + n,
            "api_version": "2026-10-28.endive",
            "data": {"object": {"id": f"in_{n}", "object": kind, "customer": customer}}}


class FakeSource:
    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.fail: Exception | None = None
        self.overlap_seconds = 300
        self.requests = 0

    def newest(self) -> Cursor | None:
        return Cursor(self.events[-1]["id"], self.events[-1]["created"]) if self.events else None

    def check_retention(self, cursor: Cursor) -> None:
        from lc_console.stripe.source import RetentionExpired

        if NOW - cursor.created > RETENTION_SECONDS:
            raise RetentionExpired(cursor, NOW)

    def fetch_after(self, cursor: Cursor, max_events: int = 5000) -> list[dict[str, Any]]:
        self.requests += 1
        if self.fail is not None:
            raise self.fail
        ids = [e["id"] for e in self.events]
        start = ids.index(cursor.event_id) + 1 if cursor.event_id in ids else 0
        return self.events[start:start + max_events]

    def fetch_window(self, since: int) -> list[dict[str, Any]]:
        return [e for e in self.events if e["created"] >= since]

    def sweep(self, cursor: Cursor) -> list[dict[str, Any]]:
        return self.fetch_window(cursor.created - self.overlap_seconds)


class FakeLink:
    calls = 0
    usage: tuple[int, int] | None = (10, 1000)

    def limits(self) -> tuple[int, int]:
        self.calls += 1
        assert self.usage is not None
        return self.usage

    def reset(self) -> None:
        pass


class FakeFetcher:
    calls = 0

    def close(self) -> None:
        pass


class FakeRunner:
    """Records what it is given; `transient` customers fail with a lock error."""

    def __init__(self) -> None:
        self.link = FakeLink()
        self.fetcher = FakeFetcher()
        self.batches: list[list[str]] = []
        self.transient: set[str] = set()

    def prepare(self, items: Any) -> Any:
        return list(items)

    def write(self, items: Any) -> Outcome:
        self.batches.append([it.event_id for it in items])
        out = Outcome()
        for it in items:
            cid = it.event["data"]["object"]["customer"]
            if cid in self.transient:
                out.retry_customers.add(cid)
                out.first_error = "Contact: UNABLE_TO_LOCK_ROW"
            else:
                out.count("Contact", "updated")
        return out


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(tmp_path / "state.db")


def _engine(store: Store, source: FakeSource | None = None, **config: Any) -> Engine:
    cfg = EngineConfig(poll_interval=0.0, batch_window=0.0, retry_base=10.0, **config)
    return Engine(store, source or FakeSource(), FakeRunner(), cfg,  # type: ignore[arg-type]
                  clock=lambda: float(NOW), rnd=lambda: 0.5)


def test_ingest_queues_journals_marks_and_moves_the_cursor_together(store: Store) -> None:
    engine = _engine(store)
    seen: list[Any] = []
    sub = engine.subscribe(seen.append)
    queued = engine.ingest([event(1), event(2), event(1)])
    sub.flush()
    assert queued == 2 and store.outbox_pending() == 2
    assert store.get_cursor().event_id == "evt_0001"  # type: ignore[union-attr]  # the last read
    assert set(store.journal_get(["evt_0001", "evt_0002"])) == {"evt_0001", "evt_0002"}
    assert engine.ingest([event(2)]) == 0  # a duplicate delivery is dropped
    sub.flush()
    ingested = [e for e in seen if isinstance(e, pg.EventsIngested)]
    assert (ingested[0].count, ingested[0].duplicates) == (2, 1)
    assert engine.ingest([event(2)], replay=True) == 1  # a replayed window goes through


def test_a_crash_inside_ingest_leaves_nothing_half_done(store: Store,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    engine = _engine(store)
    calls = {"n": 0}
    real = store.outbox_enqueue

    def boom(items: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("disk full")
        return real(items)

    monkeypatch.setattr(store, "outbox_enqueue", boom)
    with pytest.raises(RuntimeError):
        engine.ingest([event(1), event(2)])
    assert store.outbox_pending() == 0 and store.get_cursor() is None
    assert not store.is_processed("evt_0001")


def test_malformed_and_unknown_events_are_recorded_and_skipped(store: Store) -> None:
    engine = _engine(store)
    seen: list[Any] = []
    sub = engine.subscribe(seen.append)
    bad = {"id": "evt_bad", "type": "invoice.paid", "created": "yesterday", "data": {}}
    unknown = event(3, kind="payout", etype="payout.paid")
    assert engine.ingest([bad, unknown, event(4)]) == 1
    sub.flush()
    assert store.outbox_pending() == 1
    assert any(a.outcome == "skipped" and "malformed" in a.detail
               for a in store.recent_audit())
    assert store.counters()["event"].skipped == 1
    assert any(isinstance(e, pg.ErrorRaised) and "malformed" in e.message for e in seen)


def test_a_customer_with_a_transient_error_waits_and_others_go_on(store: Store) -> None:
    engine = _engine(store)
    runner: FakeRunner = engine.runner  # type: ignore[assignment]
    runner.transient = {"cus_1"}
    engine.ingest([event(1, "cus_1"), event(2, "cus_2"), event(3, "cus_1")])
    batch = engine.process_batch()
    assert batch is not None and batch.retrying == 2 and batch.error.startswith("Contact")
    items = {i.key_value: i for i in store.outbox_items()}
    assert set(items) == {"evt_0001", "evt_0003"}
    # Backoff: 1st retry after base (10 s) with jitter 0.5 -> 7.5 s.
    assert items["evt_0001"].next_attempt_at == pytest.approx(NOW + 7.5)
    assert items["evt_0001"].attempts == 1
    assert engine.process_batch() is None  # nothing due yet


def test_backoff_doubles_with_jitter_up_to_the_cap() -> None:
    lows = [backoff(n, 1.0, 300.0, lambda: 0.0) for n in range(10)]
    highs = [backoff(n, 1.0, 300.0, lambda: 1.0) for n in range(10)]
    assert lows[:4] == [0.5, 1.0, 2.0, 4.0] and highs[:4] == [1.0, 2.0, 4.0, 8.0]
    assert max(highs) == 300.0 and lows[-1] == 150.0


def test_a_slow_subscriber_never_blocks_the_engine_and_learns_what_it_missed() -> None:
    gate = threading.Event()
    got: list[Any] = []

    def slow(e: Any) -> None:
        gate.wait(5)
        got.append(e)

    sub = Subscription(slow, maxsize=3)
    t = time.perf_counter()
    for n in range(50):
        sub.offer(pg.StateChanged(f"s{n}"))
    assert time.perf_counter() - t < 0.5
    gate.set()
    sub.flush()
    sub.close()
    dropped = [e for e in got if isinstance(e, pg.EventsDropped)]
    assert dropped and sum(d.count for d in dropped) + len(got) - len(dropped) == 50
    assert got[-1].state == "s49"


def test_a_failing_subscriber_does_not_stop_delivery() -> None:
    got: list[Any] = []

    def flaky(e: Any) -> None:
        if e.state == "bad":
            raise ValueError("boom")
        got.append(e.state)

    sub = Subscription(flaky)
    for state in ("a", "bad", "b"):
        sub.offer(pg.StateChanged(state))
    sub.flush()
    sub.close()
    assert got == ["a", "b"]


def test_stripe_errors_while_polling_back_off_and_are_reported(store: Store) -> None:
    source = FakeSource()
    source.events = [event(1)]
    engine = _engine(store, source)
    engine.begin()
    seen: list[Any] = []
    sub = engine.subscribe(seen.append)
    source.fail = stripe.APIConnectionError("connection reset")
    assert engine._poll_step() == 0
    sub.flush()
    assert engine._next_poll > NOW and engine._failed_run == 1
    assert any(isinstance(e, pg.ErrorRaised) and e.kind == "stripe" for e in seen)


def test_a_cursor_beyond_stripes_30_days_stops_with_the_way_out(store: Store) -> None:
    store.set_cursor("evt_old", NOW - RETENTION_SECONDS - 10)
    engine = _engine(store)
    with pytest.raises(EngineError) as err:
        engine.begin()
    assert err.value.kind == "retention" and "--from-now" in err.value.fix
    assert "lc-console resync" in err.value.message


def test_first_start_reads_from_now_and_since_replays_a_window(store: Store) -> None:
    source = FakeSource()
    source.events = [event(n) for n in range(1, 6)]
    engine = _engine(store, source)
    info = engine.begin()
    assert (info.mode, info.cursor) == ("from_now", "evt_0005") and "backfill" in info.note
    assert store.outbox_pending() == 0
    again = _engine(store, source).begin(since=NOW + 3)
    assert (again.mode, again.replayed) == ("since", 3)


def test_throttled_at_the_threshold_and_resumed_when_usage_falls(store: Store) -> None:
    engine = _engine(store, throttle_percent=80, limits_interval=0.0)
    runner: FakeRunner = engine.runner  # type: ignore[assignment]
    runner.link.usage = (800, 1000)
    seen: list[Any] = []
    sub = engine.subscribe(seen.append)
    engine.ingest([event(1)])
    assert engine.step(drain=True) is None and engine.state == pg.THROTTLED
    assert store.outbox_pending() == 1
    runner.link.usage = (500, 1000)
    assert engine.step(drain=True) is not None and engine.state == pg.RUNNING
    sub.flush()
    changes = [e for e in seen if isinstance(e, pg.ThrottleChanged)]
    assert [c.throttled for c in changes] == [True, False]
    assert changes[0].resume_at is not None and changes[0].resume_at > NOW
