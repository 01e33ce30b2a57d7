"""The sync loop: Stripe events in, Salesforce records out, in ONE thread. Knows no Textual.

    engine = Engine(store, source, runner, EngineConfig(...), reconnected=...)
    engine.subscribe(callback)        # progress events, delivered on a subscriber thread
    engine.start(since=None)          # run in a background thread
    engine.pause() / engine.resume()  # writes only; fetching and queueing go on
    engine.stop()                     # finish the current batch, then return
    engine.run_once(since=None)       # foreground: drain what is pending, return a summary

The loop:
- polls Stripe every `poll_interval` forward from the stored cursor (backing off to
  `idle_max_interval` when nothing comes, and exponentially on 429 / 5xx / network errors);
- ingests: journal + outbox + processed id + cursor in ONE transaction, so the cursor only
  moves once the events are safely queued (a crash loses nothing and repeats nothing);
- collects a batch for `batch_window` seconds or `batch_size` events, then runs it
  (`batch.BatchRunner`): per customer in order (the outbox holds back a customer's later
  events while an earlier one waits for a retry);
- transient errors: the customer's events go back to the outbox with exponential backoff and
  jitter (`retry_base` doubling to `retry_cap`, `max_attempts`), then to failures;
- throttling: usage comes from every Salesforce answer (Sforce-Limit-Info) and from /limits
  every `limits_interval` when idle; at the threshold writes pause (state "throttled"; at
  most one batch passes it), fetching and queueing go on, and writes resume when usage falls;
- an expired login (refresh refused) pauses writes in state "expired", keeps the queue and
  resumes once `reconnected()` says a new login is stored;
- a malformed event is recorded in the audit log and skipped; nothing stops the loop but
  a fatal configuration problem (Stripe key refused, cursor beyond Stripe's retention).
"""

from __future__ import annotations

import logging
import os
import random
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import stripe

from lc_console.salesforce import tokens
from lc_console.salesforce.writer import SessionExpired, WriteError
from lc_console.store import OutboxItem, Store
from lc_console.stripe.source import Cursor, EventSource, RetentionExpired
from lc_console.sync import derive
from lc_console.sync import progress as pg
from lc_console.sync import stripe_shapes as ss
from lc_console.sync.batch import SYNC_OBJECTS, BatchRunner, Outcome, WorkItem
from lc_console.sync.progress import ProgressEvent

log = logging.getLogger(__name__)

STATE_META = "sync.engine"
STARTED_META = "sync.started_at"
PROCESSED_KEEP_SECONDS = 31 * 86400  # Stripe cannot deliver an event older than 30 days
USAGE_KEEP_SECONDS = 2 * 86400


class EngineError(Exception):
    """A problem the loop cannot get past by itself; the message says what to do."""

    def __init__(self, kind: str, message: str, fix: str = ""):
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.fix = fix


@dataclass
class EngineConfig:
    poll_interval: float = 2.0
    idle_max_interval: float = 8.0
    error_max_interval: float = 60.0
    batch_window: float = 2.0
    batch_size: int = 200
    throttle_percent: int = 80
    retry_base: float = 1.0
    retry_cap: float = 300.0
    max_attempts: int = 8
    limits_interval: float = 300.0
    sweep_interval: float = 600.0
    prune_interval: float = 3600.0
    reconnect_interval: float = 5.0
    journal_retention_days: int = 90
    max_events_per_poll: int = 1000

    @classmethod
    def from_settings(cls, sync: Any, **overrides: Any) -> EngineConfig:
        base = cls(poll_interval=sync.poll_interval_seconds,
                   idle_max_interval=max(sync.poll_interval_seconds * 4, 1.0),
                   batch_window=sync.batch_window_seconds, batch_size=sync.max_batch_size,
                   throttle_percent=sync.throttle_threshold_percent,
                   journal_retention_days=sync.journal_retention_days)
        return replace(base, **overrides)


@dataclass
class StartInfo:
    mode: str  # resume | from_now | since
    cursor: str | None
    replayed: int = 0
    note: str = ""


@dataclass
class RunSummary:
    """What `run_once` did."""

    events: int = 0
    batches: int = 0
    objects: dict[str, pg.ObjectCounts] = field(default_factory=dict)
    failed: int = 0
    queued: int = 0
    throttled: bool = False
    expired: bool = False
    error: EngineError | None = None
    start: StartInfo | None = None

    @property
    def written(self) -> int:
        return sum(c.written for c in self.objects.values())


class Subscription:
    """A subscriber's bounded queue and delivery thread: a slow subscriber loses its oldest
    events (told by `EventsDropped`), never slows the engine."""

    def __init__(self, callback: Callable[[ProgressEvent], None], maxsize: int = 1024,
                 on_close: Callable[[Subscription], None] | None = None) -> None:
        self.callback = callback
        self.maxsize = maxsize
        self.dropped = 0
        self._queue: deque[ProgressEvent] = deque()
        self._cond = threading.Condition()
        self._closed = False
        self._on_close = on_close
        self._thread = threading.Thread(target=self._deliver, name="lc-sync-subscriber",
                                        daemon=True)
        self._thread.start()

    def offer(self, event: ProgressEvent) -> None:
        with self._cond:
            if len(self._queue) >= self.maxsize:
                self._queue.popleft()
                self.dropped += 1
            self._queue.append(event)
            self._cond.notify()

    def _deliver(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._closed:
                    self._cond.wait()
                if not self._queue and self._closed:
                    return
                event = self._queue.popleft()
                dropped, self.dropped = self.dropped, 0
            try:
                if dropped:
                    self.callback(pg.EventsDropped(dropped))
                self.callback(event)
            except Exception:
                log.exception("a sync subscriber failed")

    def flush(self, timeout: float = 5.0) -> None:
        """Wait until every queued event was delivered (tests, CLI exit)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._cond:
                if not self._queue:
                    break
            time.sleep(0.01)

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify()
        if self._on_close is not None:
            self._on_close(self)
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout=5)


def backoff(attempts: int, base: float, cap: float, rnd: Callable[[], float]) -> float:
    """Exponential with jitter: between half and all of min(cap, base * 2^attempts)."""
    delay = min(cap, base * (2 ** attempts))
    return delay / 2 + rnd() * delay / 2


class Engine:
    def __init__(self, store: Store, source: EventSource, runner: BatchRunner,
                 config: EngineConfig | None = None, *,
                 reconnected: Callable[[], bool] | None = None,
                 clock: Callable[[], float] = time.time,
                 rnd: Callable[[], float] = random.random) -> None:
        self.store = store
        self.source = source
        self.runner = runner
        self.config = config or EngineConfig()
        self.clock = clock
        self.rnd = rnd
        self._reconnected = reconnected
        self._subscribers: list[Subscription] = []
        self._sub_lock = threading.Lock()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._paused = False
        self.state = pg.STOPPED
        self.reason = ""
        self.batches = 0
        self.usage: tuple[int, int] | None = None
        self.throttled = False
        self.resume_at: float | None = None
        self.last_batch: pg.BatchWritten | None = None
        self._next_poll = 0.0
        self._poll_delay = self.config.poll_interval
        self._next_limits = 0.0
        self._next_sweep = 0.0
        self._next_prune = 0.0
        self._next_reconnect = 0.0
        self._last_sf_call = clock()
        self._first_pending_at: float | None = None
        self._failed_run = 0

    # --- subscribers --------------------------------------------------------------------

    def subscribe(self, callback: Callable[[ProgressEvent], None],
                  maxsize: int = 1024) -> Subscription:
        sub = Subscription(callback, maxsize, on_close=self._unsubscribe)
        with self._sub_lock:
            self._subscribers.append(sub)
        return sub

    def _unsubscribe(self, sub: Subscription) -> None:
        with self._sub_lock:
            if sub in self._subscribers:
                self._subscribers.remove(sub)

    def _emit(self, event: ProgressEvent) -> None:
        with self._sub_lock:
            subs = list(self._subscribers)
        for sub in subs:
            sub.offer(event)

    def _set_state(self, state: str, reason: str = "") -> None:
        if state == self.state and reason == self.reason:
            return
        self.state, self.reason = state, reason
        self._emit(pg.StateChanged(state, reason))
        self._save_state()

    def _save_state(self) -> None:
        try:
            self.store.set_meta(STATE_META, {
                "state": self.state, "reason": self.reason, "at": self.clock(),
                "pid": os.getpid(),
                "usage": list(self.usage) if self.usage else None,
                "threshold": self._threshold(), "throttled": self.throttled,
                "resume_at": self.resume_at})
        except Exception:  # the state line is informative; never stop on it
            log.exception("could not save the engine state")

    # --- control (any thread) -------------------------------------------------------------

    def start(self, since: int | None = None) -> StartInfo:
        """Set the starting point (raises EngineError), then run in a background thread."""
        if self._thread is not None and self._thread.is_alive():
            raise RuntimeError("the sync engine is already running")
        self._stopping.clear()
        self._set_state(pg.STARTING)
        try:
            info = self.begin(since)
        except EngineError as exc:
            self._set_state(pg.STOPPED, exc.message)
            raise
        self._thread = threading.Thread(target=self._run_thread, name="lc-sync-engine",
                                        daemon=True)
        self._thread.start()
        return info

    def stop(self, wait: bool = True, timeout: float | None = None) -> None:
        """Finish the current batch, then stop."""
        self._stopping.set()
        self._wake.set()
        if wait and self._thread is not None and threading.current_thread() is not self._thread:
            self._thread.join(timeout)

    def pause(self) -> None:
        self._paused = True
        self._wake.set()
        if self.state in (pg.RUNNING, pg.THROTTLED):
            self._set_state(pg.PAUSED, "paused by the admin")

    def resume(self) -> None:
        """Resume writes (also: check the connection again at once after a reconnect)."""
        self._paused = False
        self._next_reconnect = 0.0
        self._next_limits = 0.0 if self.throttled else self._next_limits
        self._wake.set()

    def wake(self) -> None:
        self._wake.set()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def join(self, timeout: float | None = None) -> None:
        if self._thread is not None:
            self._thread.join(timeout)

    # --- starting point -------------------------------------------------------------------

    def begin(self, since: int | None = None) -> StartInfo:
        """Where to read from: the stored cursor; or replay a window (`since`); or, on the
        very first start, from now (earlier history is a backfill's job)."""
        self.runner.link.reset()
        cursor = self.store.get_cursor()
        try:
            if since is not None:
                events = list(self.source.fetch_window(since))
                ingested = self.ingest(events, replay=True, advance=True)
                newest = self.store.get_cursor()
                if newest is None:
                    self._remember_start(since)
                return StartInfo("since", newest.event_id if newest else None, ingested,
                                 f"replaying {len(events)} events since the chosen time")
            if cursor is not None:
                self.source.check_retention(Cursor(cursor.event_id, cursor.created))
                return StartInfo("resume", cursor.event_id)
            newest_event = self.source.newest()
            if newest_event is not None:
                self.store.set_cursor(newest_event.event_id, newest_event.created)
            else:
                self._remember_start(int(self.clock()))
            return StartInfo("from_now", newest_event.event_id if newest_event else None,
                             note="starting from now: changes made before now reach "
                                  "Salesforce through a backfill (Re-sync All)")
        except RetentionExpired as exc:
            raise EngineError("retention", str(exc),
                              "Run a backfill (`lc-console resync`), then start the sync "
                              "again with `lc-console sync --from-now`.") from None
        except stripe.AuthenticationError as exc:
            raise EngineError("config", f"Stripe refused the API key: {exc.user_message or exc}",
                              "Connect Stripe again with a valid key "
                              "(`lc-console connect stripe`).") from None
        except stripe.PermissionError as exc:
            raise EngineError("config", f"The Stripe key may not read events: "
                              f"{exc.user_message or exc}",
                              "Give the restricted key read access to Events "
                              "(`lc-console connect stripe` lists what is needed).") from None
        except stripe.StripeError as exc:
            raise EngineError("stripe", f"Stripe could not be reached: {exc.user_message or exc}",
                              "Check the network and try again.") from None

    def _remember_start(self, at: int) -> None:
        if self.store.get_meta(STARTED_META) is None:
            self.store.set_meta(STARTED_META, at)

    # --- ingest ---------------------------------------------------------------------------

    def ingest(self, events: Sequence[dict[str, Any]], *, replay: bool = False,
               advance: bool = True) -> int:
        """Journal, queue and mark the events, and move the cursor, in one transaction.
        Returns the number queued. Duplicates are dropped (unless replaying a window)."""
        queued = duplicates = malformed = 0
        newest: dict[str, Any] | None = None
        with self.store.transaction():
            for event in events:
                event_id, created = event.get("id"), event.get("created")
                if (not isinstance(event_id, str) or not event_id
                        or not isinstance(created, int) or not event.get("type")):
                    malformed += 1
                    self.store.audit(object="event", action="ingest", outcome="skipped",
                                     stripe_event_id=str(event_id or "") or None,
                                     detail=f"malformed event skipped: {str(event)[:300]}")
                    continue
                newest = event
                first = self.store.mark_processed(event_id, created)
                obj = (event.get("data") or {}).get("object")
                kind = obj.get("object") if isinstance(obj, dict) else None
                try:  # cheap: no projection of the whole event here
                    customer = ss.customer_id_of(obj) if kind else None
                except Exception:
                    customer = None
                self.store.journal_append(event_id, str(event["type"]), created, event,
                                          api_version=event.get("api_version"),
                                          customer_id=customer)
                if not first and not replay:
                    duplicates += 1
                    continue
                if kind not in derive.HANDLED_OBJECTS:
                    self.store.increment_counters("event", skipped=1)
                    continue
                self.store.outbox_enqueue([OutboxItem(
                    object="event", key_field="id", key_value=event_id, operation="derive",
                    payload=event, customer_id=customer, source_event_id=event_id)])
                queued += 1
            if advance and newest is not None:
                self.store.set_cursor(newest["id"], int(newest["created"]))
        if events:
            cursor = self.store.get_cursor()
            self._emit(pg.EventsIngested(queued, duplicates, self.store.outbox_pending(),
                                         cursor.event_id if cursor else None))
        if malformed:
            self._emit(pg.ErrorRaised("event", f"{malformed} malformed event(s) skipped; "
                                      "they are in the audit log"))
        if queued and self._first_pending_at is None:
            self._first_pending_at = self.clock()
        return queued

    def poll(self) -> int:
        """Read new Stripe events once (possibly several pages) and ingest them."""
        cursor = self.store.get_cursor()
        if cursor is None:
            since = self.store.get_meta(STARTED_META)
            if since is None:
                newest = self.source.newest()
                if newest is not None:
                    self.store.set_cursor(newest.event_id, newest.created)
                return 0
            events = list(self.source.fetch_window(int(since) - self.source.overlap_seconds))
            return self.ingest(events, advance=True)
        events = self.source.fetch_after(Cursor(cursor.event_id, cursor.created),
                                         self.config.max_events_per_poll)
        return self.ingest(events)

    # --- throttling ---------------------------------------------------------------------

    def _threshold(self) -> int:
        if not self.usage:
            return 0
        return int(self.usage[1] * self.config.throttle_percent / 100)

    def _note_usage(self, usage: tuple[int, int] | None) -> None:
        if not usage or usage == self.usage:
            return
        self.usage = usage
        self._emit(pg.UsageUpdated(usage[0], usage[1], self._threshold()))

    def _estimate_resume(self) -> float | None:
        """Salesforce counts the last 24 hours: assume the calls roll off evenly."""
        if not self.usage or not self.usage[0]:
            return None
        used, _ = self.usage
        excess = used - self._threshold() + 1
        return self.clock() + 86400.0 * max(excess, 0) / used

    def _check_throttle(self) -> bool:
        """True when writes may go out now."""
        threshold = self._threshold()
        if self.usage is None or not threshold:
            return True
        over = self.usage[0] >= threshold
        if over != self.throttled:
            self.throttled = over
            self.resume_at = self._estimate_resume() if over else None
            self._emit(pg.ThrottleChanged(over, self.usage[0], self.usage[1], threshold,
                                          self.resume_at))
            if over:
                self._next_limits = self.clock() + self.config.limits_interval
                self._set_state(pg.THROTTLED, f"API usage {self.usage[0]:,}/{self.usage[1]:,} "
                                f"reached the {self.config.throttle_percent}% threshold")
            else:
                self._set_state(pg.RUNNING)
        return not over

    def _refresh_limits(self) -> None:
        try:
            self._note_usage(self.runner.link.limits())
            self._last_sf_call = self.clock()
            if self.usage:
                self.store.add_usage_sample(*self.usage)
        except (tokens.ConnectionExpired, tokens.NotConnected, SessionExpired) as exc:
            self._expired(exc)
        except WriteError as exc:
            if exc.code == "REQUEST_LIMIT_EXCEEDED" and self.usage:
                self._note_usage((self.usage[1], self.usage[1]))
            else:
                self._emit(pg.ErrorRaised("salesforce", f"Could not read API limits: {exc}"))

    # --- batches --------------------------------------------------------------------------

    def _due_rows(self) -> int:
        return self.store.outbox_pending()

    def process_batch(self) -> pg.BatchWritten | None:
        rows = self.store.outbox_claim(self.config.batch_size, lease_seconds=0)
        if not rows:
            return None
        started = self.clock()
        t0 = time.monotonic()
        items = [WorkItem(r.payload, r.id, r.attempts) for r in rows]
        link = self.runner.link
        calls0, stripe0 = link.calls, self.runner.fetcher.calls
        try:
            prepared = self.runner.prepare(items)
            outcome = self.runner.write(prepared)
        except (tokens.ConnectionExpired, tokens.NotConnected, SessionExpired) as exc:
            self.store.outbox_release([r.id for r in rows if r.id is not None])
            self._expired(exc)
            return None
        except WriteError as exc:
            if exc.code == "REQUEST_LIMIT_EXCEEDED":
                self.store.outbox_release([r.id for r in rows if r.id is not None])
                if self.usage:
                    self._note_usage((self.usage[1], self.usage[1]))
                self._check_throttle()
                return None
            if exc.code in ("INVALID_FIELD", "INVALID_TYPE"):
                self.runner.describes.invalidate(SYNC_OBJECTS)
            return self._whole_batch_failed(rows, "salesforce", f"Salesforce: {exc}", started,
                                            t0, calls0, stripe0)
        except stripe.StripeError as exc:
            return self._whole_batch_failed(rows, "stripe",
                                            f"Stripe: {exc.user_message or exc}", started, t0,
                                            calls0, stripe0)
        except Exception as exc:
            log.exception("a sync batch failed")
            return self._whole_batch_failed(rows, "salesforce", f"{type(exc).__name__}: {exc}",
                                            started, t0, calls0, stripe0)
        self._last_sf_call = self.clock()
        self._note_usage(link.usage)
        retry_rows, done_ids = [], []
        for r in rows:
            if (r.customer_id and r.customer_id in outcome.retry_customers) or (
                    not r.customer_id and r.key_value in outcome.retry_events):
                retry_rows.append(r)
            elif r.id is not None:
                done_ids.append(r.id)
        if outcome.limit_exceeded:
            # The daily limit, not the records: no attempt is spent; they wait for the
            # throttle to lift.
            self.store.outbox_release([r.id for r in retry_rows if r.id is not None])
            if self.usage:
                self._note_usage((self.usage[1], self.usage[1]))
        else:
            self._retry_later(retry_rows, outcome.first_error)
        self.store.outbox_complete(done_ids)
        return self._batch_done(rows, outcome, retry_rows, t0, calls0, stripe0)

    def _retry_later(self, rows: Sequence[OutboxItem], error: str) -> None:
        now = self.clock()
        for r in rows:
            if r.id is not None:
                delay = backoff(r.attempts, self.config.retry_base, self.config.retry_cap,
                                self.rnd)
                self.store.outbox_retry_later(r.id, now + delay, error or "transient error")

    def _whole_batch_failed(self, rows: Sequence[OutboxItem], kind: str, message: str,
                            started: float, t0: float, calls0: int,
                            stripe0: int) -> pg.BatchWritten:
        """Nothing of the batch could be done (a read failed): every event tries again
        later; those at their last attempt go to failures."""
        again, given_up = [], []
        for r in rows:
            (given_up if r.attempts + 1 >= self.config.max_attempts else again).append(r)
        self._retry_later(again, message)
        for r in given_up:
            if r.id is not None:
                self.store.outbox_fail(r.id, error_code="SYNC_ERROR", message=message)
        self._emit(pg.ErrorRaised(kind, message))
        outcome = Outcome(first_error=message)
        if given_up:
            outcome.count("event", "failed", len(given_up))
        return self._batch_done(rows, outcome, again, t0, calls0, stripe0,
                                extra_failed=len(given_up))

    def _batch_done(self, rows: Sequence[OutboxItem], outcome: Outcome,
                    retry_rows: Sequence[OutboxItem], t0: float, calls0: int,
                    stripe0: int, extra_failed: int = 0) -> pg.BatchWritten:
        self.batches += 1
        event = pg.BatchWritten(
            number=self.batches, events=len(rows), objects=outcome.object_counts(),
            failed=len(outcome.failures) + extra_failed,
            retrying=len(retry_rows), salesforce_calls=self.runner.link.calls - calls0,
            stripe_calls=self.runner.fetcher.calls - stripe0,
            seconds=time.monotonic() - t0, queued=self.store.outbox_pending(),
            error=outcome.first_error)
        self.last_batch = event
        self._emit(event)
        return event

    def _expired(self, exc: BaseException) -> None:
        if isinstance(exc, tokens.NotConnected):
            reason = f"Salesforce is not connected ({exc})"
        else:
            reason = "the Salesforce login expired and could not be renewed"
        self._next_reconnect = self.clock() + self.config.reconnect_interval
        if self.state != pg.EXPIRED:
            self._emit(pg.ErrorRaised(
                "connection", f"Writes are paused: {reason}. Events keep being queued.",
                "Reconnect with `lc-console connect salesforce` (R in the console); the "
                "sync resumes by itself."))
        self._set_state(pg.EXPIRED, reason)

    def _try_reconnect(self) -> bool:
        if self.clock() < self._next_reconnect:
            return False
        self._next_reconnect = self.clock() + self.config.reconnect_interval
        if self._reconnected is not None and not self._reconnected():
            return False
        self.runner.link.reset()
        self._set_state(pg.PAUSED if self._paused else pg.RUNNING)
        return True

    # --- the loop -----------------------------------------------------------------------

    def _housekeeping(self) -> None:
        now = self.clock()
        if now >= self._next_prune:
            self._next_prune = now + self.config.prune_interval
            self.store.prune_journal_days(self.config.journal_retention_days)
            self.store.prune_processed(int(now - PROCESSED_KEEP_SECONDS))
            self.store.prune_usage(now - USAGE_KEEP_SECONDS)
        if now >= self._next_sweep and self.store.get_cursor() is not None:
            if self._next_sweep:
                cursor = self.store.get_cursor()
                assert cursor is not None
                try:
                    self.ingest(self.source.sweep(Cursor(cursor.event_id, cursor.created)),
                                advance=False)
                except stripe.StripeError as exc:
                    self._emit(pg.ErrorRaised("stripe", f"Overlap sweep failed: {exc}"))
            self._next_sweep = now + self.config.sweep_interval

    def _poll_step(self) -> int:
        """Poll if due; returns events queued (0 when not due or nothing new)."""
        if self.clock() < self._next_poll:
            return 0
        try:
            got = self.poll()
        except RetentionExpired as exc:
            raise EngineError("retention", str(exc),
                              "Run a backfill (`lc-console resync`), then start the sync "
                              "again with `lc-console sync --from-now`.") from None
        except (stripe.AuthenticationError, stripe.PermissionError) as exc:
            raise EngineError("config", f"Stripe refused the key: {exc.user_message or exc}",
                              "Connect Stripe again (`lc-console connect stripe`).") from None
        except stripe.StripeError as exc:
            self._failed_run += 1
            self._poll_delay = min(self.config.error_max_interval,
                                   max(self.config.poll_interval, 1.0) * 2 ** self._failed_run)
            self._next_poll = self.clock() + self._poll_delay * (0.5 + self.rnd() / 2)
            self._emit(pg.ErrorRaised("stripe", f"Reading Stripe events failed "
                                      f"({exc.user_message or exc}); retrying in "
                                      f"{self._poll_delay:.0f} s"))
            return 0
        self._failed_run = 0
        if got:
            self._poll_delay = self.config.poll_interval
        else:
            self._poll_delay = min(self.config.idle_max_interval, self._poll_delay * 1.5)
        self._next_poll = self.clock() + self._poll_delay
        return got

    def _writes_allowed(self) -> bool:
        if self.state == pg.EXPIRED and not self._try_reconnect():
            return False
        if self._paused:
            return False
        if self.throttled and self.clock() >= self._next_limits:
            self._next_limits = self.clock() + self.config.limits_interval
            self._refresh_limits()
        return self._check_throttle()

    def _batch_due(self, drain: bool) -> bool:
        pending = self.store.outbox_pending()
        if not pending:
            self._first_pending_at = None
            return False
        if drain or pending >= self.config.batch_size:
            return True
        if self._first_pending_at is None:
            self._first_pending_at = self.clock()
        return self.clock() - self._first_pending_at >= self.config.batch_window

    def step(self, drain: bool = False) -> pg.BatchWritten | None:
        """One turn of the loop: housekeeping, poll if due, one batch if due and allowed."""
        self._housekeeping()
        self._poll_step()
        if not self._writes_allowed():
            return None
        if self.state in (pg.STARTING, pg.STOPPED, pg.PAUSED):
            self._set_state(pg.RUNNING)
        if self.usage is None or (self.clock() - self._last_sf_call >= self.config.limits_interval
                                  and not self.store.outbox_pending()):
            self._last_sf_call = self.clock()
            self._refresh_limits()
            if self.state == pg.EXPIRED or not self._check_throttle():
                return None
        if not self._batch_due(drain):
            return None
        batch = self.process_batch()
        if batch is not None and not self.store.outbox_pending():
            self._first_pending_at = None
        else:
            self._first_pending_at = self.clock() if self.store.outbox_pending() else None
        return batch

    def _next_wake(self) -> float:
        """Seconds until something is due."""
        now = self.clock()
        times = [self._next_poll]
        if self.store.outbox_pending():
            if self._first_pending_at is not None:
                times.append(self._first_pending_at + self.config.batch_window)
            due = [i.next_attempt_at for i in self.store.outbox_items(limit=500)]
            if due:
                times.append(min(due))
        if self.throttled:
            times.append(self._next_limits)
        if self.state == pg.EXPIRED:
            times.append(self._next_reconnect)
        return max(0.0, min(times) - now)

    def _run_thread(self) -> None:
        try:
            self.loop()
        except EngineError as exc:
            self._emit(pg.ErrorRaised(exc.kind, exc.message, exc.fix, fatal=True))
            self._set_state(pg.STOPPED, exc.message)
        except Exception as exc:
            log.exception("the sync engine stopped")
            self._emit(pg.ErrorRaised("internal", f"{type(exc).__name__}: {exc}", fatal=True))
            self._set_state(pg.STOPPED, str(exc))

    def loop(self) -> None:
        """Run until stop(). Raises EngineError on a fatal configuration problem."""
        self._set_state(pg.PAUSED if self._paused else pg.RUNNING)
        try:
            while not self._stopping.is_set():
                batch = self.step()
                if batch is not None and self.store.outbox_pending():
                    continue
                self._wake.wait(min(self._next_wake(), 1.0))
                self._wake.clear()
        finally:
            self.runner.fetcher.close()
            self._set_state(pg.STOPPED, "stopped")

    def run_once(self, since: int | None = None, timeout: float | None = None) -> RunSummary:
        """Read what Stripe has, write everything pending, return. Waits for retries of
        transient errors (their backoff); stops early when throttled, expired or paused."""
        summary = RunSummary()
        deadline = None if timeout is None else time.monotonic() + timeout
        objects: dict[str, pg.ObjectCounts] = {}
        try:
            summary.start = self.begin(since)
            self._set_state(pg.RUNNING)
            while not self._stopping.is_set():
                self._next_poll = 0.0
                if self._poll_step() >= self.config.max_events_per_poll:
                    continue  # more events waiting in Stripe: read them first
                if self.usage is None:
                    self._refresh_limits()
                if not self._writes_allowed():
                    break
                batch = self.process_batch()
                if batch is not None:
                    summary.batches += 1
                    summary.events += batch.events
                    summary.failed += batch.failed
                    for name, c in batch.objects.items():
                        held = objects.get(name, pg.ObjectCounts())
                        objects[name] = pg.ObjectCounts(
                            held.created + c.created, held.updated + c.updated,
                            held.skipped + c.skipped, held.failed + c.failed)
                    continue
                if self.state == pg.EXPIRED or self.throttled:
                    break
                if not self.store.outbox_pending():
                    break
                wait = self._next_wake()
                if deadline is not None and time.monotonic() + wait > deadline:
                    break
                self._stopping.wait(min(wait, 5.0))
        except EngineError as exc:
            summary.error = exc
            self._emit(pg.ErrorRaised(exc.kind, exc.message, exc.fix, fatal=True))
        finally:
            self.runner.fetcher.close()
            summary.throttled = self.throttled
            summary.expired = self.state == pg.EXPIRED
            summary.objects = objects
            summary.queued = self.store.outbox_pending()
            if summary.expired:
                reason = self.reason
            elif summary.error:
                reason = summary.error.message
            else:
                reason = "drained"
            self._set_state(pg.STOPPED, reason)
        return summary
