"""What the engine tells its subscribers (the TUI's monitor, `lc-console sync`), as it happens.

Every event is a frozen dataclass with `at` (unix time). Subscribers receive them on their
own delivery thread (see `engine.Subscription`), never on the engine's.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

# Engine states.
STARTING = "starting"
RUNNING = "running"
PAUSED = "paused"
THROTTLED = "throttled"
EXPIRED = "expired"  # the Salesforce login must be renewed (Reconnect); the queue is kept
STOPPED = "stopped"
STATES = (STARTING, RUNNING, PAUSED, THROTTLED, EXPIRED, STOPPED)


def _now() -> float:
    return time.time()


@dataclass(frozen=True)
class ObjectCounts:
    created: int = 0
    updated: int = 0
    skipped: int = 0
    failed: int = 0

    @property
    def written(self) -> int:
        return self.created + self.updated


@dataclass(frozen=True)
class EventsIngested:
    """Stripe events read and queued (journal + outbox) in one poll."""

    count: int
    duplicates: int
    queued: int  # outbox rows waiting after this poll
    cursor: str | None
    at: float = field(default_factory=_now)


@dataclass(frozen=True)
class BatchWritten:
    """One batch: events processed, per-object outcome, cost."""

    number: int
    events: int
    objects: dict[str, ObjectCounts]
    failed: int  # records that went to the failures table in this batch
    retrying: int  # events scheduled for another attempt (transient errors)
    salesforce_calls: int
    stripe_calls: int
    seconds: float
    queued: int  # outbox rows still waiting
    error: str = ""  # the first transient error, when some records will be retried
    at: float = field(default_factory=_now)

    @property
    def written(self) -> int:
        return sum(c.written for c in self.objects.values())


@dataclass(frozen=True)
class UsageUpdated:
    used: int
    max: int
    threshold: int  # calls: writes pause at this usage
    at: float = field(default_factory=_now)

    @property
    def percent(self) -> float:
        return 100.0 * self.used / self.max if self.max else 0.0


@dataclass(frozen=True)
class ThrottleChanged:
    throttled: bool
    used: int
    max: int
    threshold: int
    resume_at: float | None  # estimate of when usage falls under the threshold
    at: float = field(default_factory=_now)


@dataclass(frozen=True)
class StateChanged:
    state: str
    reason: str = ""
    at: float = field(default_factory=_now)


@dataclass(frozen=True)
class ErrorRaised:
    """Something the admin should know; the engine carries on unless `fatal`."""

    kind: str  # stripe | salesforce | event | config | retention | connection
    message: str
    fix: str = ""
    fatal: bool = False
    at: float = field(default_factory=_now)


@dataclass(frozen=True)
class EventsDropped:
    """A subscriber fell this many events behind and lost them (bounded queue)."""

    count: int
    at: float = field(default_factory=_now)


ProgressEvent = (EventsIngested | BatchWritten | UsageUpdated | ThrottleChanged | StateChanged
                 | ErrorRaised | EventsDropped)
