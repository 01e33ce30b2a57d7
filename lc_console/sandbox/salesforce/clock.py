"""The org clock (wall clock plus an offset tests can advance) and API usage accounting."""

from __future__ import annotations

import threading
import time
from collections import deque
from datetime import UTC, datetime
from typing import Any

# Daily API request limit (DailyApiRequests Max) by edition.
EDITION_LIMITS: dict[str, int] = {
    "essentials": 15_000,
    "professional": 75_000,
    "enterprise": 150_000,
    "unlimited": 300_000,
}
EDITION_NAMES: dict[str, str] = {
    "essentials": "Essentials Edition",
    "professional": "Professional Edition",
    "enterprise": "Enterprise Edition",
    "unlimited": "Unlimited Edition",
}
WINDOW_MINUTES = 24 * 60  # rolling 24-hour window


class Clock:
    def __init__(self, offset_seconds: float = 0.0) -> None:
        self.offset_seconds = offset_seconds

    def time(self) -> float:
        return time.time() + self.offset_seconds

    def now_ms(self) -> int:
        return int(self.time() * 1000)

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.time(), tz=UTC)

    def advance(self, seconds: float) -> None:
        self.offset_seconds += seconds


class ApiUsage:
    """API requests counted per minute over a rolling 24 hours, against a daily maximum."""

    def __init__(self, clock: Clock, max_requests: int) -> None:
        self.clock = clock
        self.max_requests = max_requests
        self._lock = threading.Lock()
        self._minutes: deque[list[int]] = deque()  # [minute, count], oldest first
        self._total = 0

    def _minute(self) -> int:
        return int(self.clock.time() // 60)

    def _prune(self, minute: int) -> None:
        cutoff = minute - WINDOW_MINUTES
        while self._minutes and self._minutes[0][0] <= cutoff:
            self._total -= self._minutes.popleft()[1]

    def used(self) -> int:
        with self._lock:
            self._prune(self._minute())
            return self._total

    def try_count(self, n: int = 1) -> bool:
        """Count n calls unless the limit is already reached (then count nothing)."""
        with self._lock:
            minute = self._minute()
            self._prune(minute)
            if self._total >= self.max_requests:
                return False
            self._add(minute, n)
            return True

    def count(self, n: int = 1) -> None:
        """Count n calls unconditionally."""
        with self._lock:
            minute = self._minute()
            self._prune(minute)
            self._add(minute, n)

    def _add(self, minute: int, n: int) -> None:
        if self._minutes and self._minutes[-1][0] == minute:
            self._minutes[-1][1] += n
        else:
            self._minutes.append([minute, n])
        self._total += n

    def set_used(self, n: int) -> None:
        """Make the current usage exactly n (as if n calls happened this minute)."""
        with self._lock:
            self._minutes.clear()
            self._total = 0
            if n:
                self._add(self._minute(), n)

    def remaining(self) -> int:
        return max(0, self.max_requests - self.used())

    def header(self) -> str:
        return f"api-usage={self.used()}/{self.max_requests}"

    def per_minute(self) -> list[dict[str, Any]]:
        """[{"minute": "2025-01-01T10:04:00Z", "count": 12}, ...] over the window, oldest first."""
        with self._lock:
            self._prune(self._minute())
            return [
                {"minute": datetime.fromtimestamp(m * 60, tz=UTC).strftime("%Y-%m-%dT%H:%M:00Z"),
                 "count": c}
                for m, c in self._minutes
            ]  # fmt: skip

    def dump(self) -> dict[str, Any]:
        with self._lock:
            return {"max": self.max_requests, "minutes": [list(x) for x in self._minutes]}

    def load(self, data: dict[str, Any]) -> None:
        with self._lock:
            self._minutes = deque([int(m), int(c)] for m, c in data.get("minutes", []))
            self._total = sum(c for _, c in self._minutes)
