"""The live monitor's model: engine progress events folded into what the screen shows
(state, events per minute, records per object, queue, API usage, errors, a bounded tail).

Textual-free and clock-injected, so it is tested as plain data; the screen applies events as
they arrive (messages) and renders on a timer.
"""

from __future__ import annotations

import datetime as dt
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from lc_console.sync import progress as pg

TAIL_SIZE = 500  # lines kept for the live tail (older ones drop off)
SPARK_SECONDS = 10  # one sparkline bar per 10 s
SPARK_BARS = 60  # ten minutes


@dataclass(frozen=True)
class TailLine:
    at: float
    kind: str  # batch | events | usage | throttle | state | error
    text: str

    def render(self) -> str:
        clock = dt.datetime.fromtimestamp(self.at, dt.UTC).strftime("%H:%M:%S")
        return f"{clock}  {self.kind:<8} {self.text}"


@dataclass
class Monitor:
    clock: Callable[[], float] = time.time
    state: str = pg.STOPPED
    reason: str = ""
    per_object: dict[str, pg.ObjectCounts] = field(default_factory=dict)
    queued: int = 0
    usage: tuple[int, int, int] | None = None  # used, max, threshold
    throttled: bool = False
    failed: int = 0
    errors: int = 0
    events_total: int = 0
    batches: int = 0
    dropped: int = 0
    tail: deque[TailLine] = field(default_factory=lambda: deque(maxlen=TAIL_SIZE))
    _buckets: dict[int, int] = field(default_factory=dict)

    def apply(self, event: pg.ProgressEvent) -> None:
        if isinstance(event, pg.EventsIngested):
            self.events_total += event.count
            self.queued = event.queued
            bucket = int(event.at // SPARK_SECONDS)
            self._buckets[bucket] = self._buckets.get(bucket, 0) + event.count
            if event.count:
                self._line(event.at, "events", f"{event.count:,} read, {event.duplicates:,} "
                           f"duplicate, {event.queued:,} queued")
        elif isinstance(event, pg.BatchWritten):
            self.batches += 1
            self.queued = event.queued
            self.failed += event.failed
            for name, counts in event.objects.items():
                old = self.per_object.get(name, pg.ObjectCounts())
                self.per_object[name] = pg.ObjectCounts(
                    old.created + counts.created, old.updated + counts.updated,
                    old.skipped + counts.skipped, old.failed + counts.failed)
            parts = ", ".join(f"{n} {c.written:,}" for n, c in sorted(event.objects.items())
                              if c.written)
            text = (f"#{event.number} {event.events:,} events → {parts or 'nothing to write'}"
                    f" · {event.salesforce_calls} API calls · {event.seconds:.1f} s")
            if event.failed:
                text += f" · {event.failed} failed"
            if event.error:
                text += f" · retrying: {event.error}"
            self._line(event.at, "batch", text)
        elif isinstance(event, pg.UsageUpdated):
            self.usage = (event.used, event.max, event.threshold)
        elif isinstance(event, pg.ThrottleChanged):
            self.throttled = event.throttled
            self.usage = (event.used, event.max, event.threshold)
            self._line(event.at, "throttle", "writes paused near the daily API limit"
                       if event.throttled else "writes resumed")
        elif isinstance(event, pg.StateChanged):
            self.state, self.reason = event.state, event.reason
            self._line(event.at, "state", event.state + (f": {event.reason}"
                                                         if event.reason else ""))
        elif isinstance(event, pg.ErrorRaised):
            self.errors += 1
            self._line(event.at, "error", f"{event.kind}: {event.message}"
                       + (f" ({event.fix})" if event.fix else ""))
        elif isinstance(event, pg.EventsDropped):
            self.dropped += event.count

    def _line(self, at: float, kind: str, text: str) -> None:
        self.tail.append(TailLine(at, kind, text))

    def sparkline(self) -> list[int]:
        now = int(self.clock() // SPARK_SECONDS)
        return [self._buckets.get(b, 0) for b in range(now - SPARK_BARS + 1, now + 1)]

    def per_minute(self) -> int:
        """Events read in the last minute."""
        now = int(self.clock() // SPARK_SECONDS)
        return sum(self._buckets.get(b, 0) for b in range(now - 60 // SPARK_SECONDS + 1,
                                                          now + 1))

    def usage_text(self) -> str:
        if self.usage is None:
            return "API usage: not read yet"
        used, limit, threshold = self.usage
        pct = 100.0 * used / limit if limit else 0.0
        line = 100.0 * threshold / limit if limit else 0.0
        text = (f"API usage {used:,} / {limit:,} today ({pct:.1f}%) · throttle at "
                f"{threshold:,} ({line:.0f}%)")
        return text + (" · THROTTLED" if self.throttled else "")

    def usage_bar(self, width: int) -> str:
        """`width` cells: used (█), free (░), the throttle line (│)."""
        if self.usage is None or not self.usage[1] or width < 3:
            return "░" * max(width, 0)
        used, limit, threshold = self.usage
        filled = min(width, round(width * used / limit))
        cells = ["█" if i < filled else "░" for i in range(width)]
        mark = min(width - 1, round(width * threshold / limit))
        cells[mark] = "│"
        return "".join(cells)

    def lines(self, flt: str = "") -> list[TailLine]:
        needle = flt.strip().lower()
        if not needle:
            return list(self.tail)
        return [t for t in self.tail if needle in t.kind or needle in t.text.lower()]
