"""Fault injection: UNABLE_TO_LOCK_ROW, 503 SERVER_UNAVAILABLE and dropped connections.

A seeded random draw per API request at `rate` (0..1), plus forced faults a test queues with
`inject(kind, count)`. Kinds: "lock" (write requests only), "unavailable", "drop".
"""

from __future__ import annotations

import random
import threading
from collections import deque

KINDS = ("lock", "unavailable", "drop")


class Faults:
    def __init__(self, rate: float = 0.0, seed: int | None = None,
                 kinds: tuple[str, ...] = KINDS) -> None:  # fmt: skip
        self._lock = threading.Lock()
        self.configure(rate, seed, kinds)
        self._forced: deque[str] = deque()
        self.injected: dict[str, int] = dict.fromkeys(KINDS, 0)

    def configure(self, rate: float | None = None, seed: int | None = None,
                  kinds: tuple[str, ...] | None = None) -> None:  # fmt: skip
        with self._lock:
            if rate is not None:
                if not 0.0 <= rate <= 1.0:
                    raise ValueError("fault rate must be between 0 and 1")
                self.rate = rate
            if seed is not None or not hasattr(self, "_rng"):
                self._rng = random.Random(seed)
            if kinds is not None:
                bad = [k for k in kinds if k not in KINDS]
                if bad or not kinds:
                    raise ValueError(f"fault kinds must be among {', '.join(KINDS)}")
                self.kinds = tuple(kinds)

    def inject(self, kind: str, count: int = 1) -> None:
        """Force the next `count` API requests to fail with this kind."""
        if kind not in KINDS:
            raise ValueError(f"unknown fault kind {kind!r}: use one of {', '.join(KINDS)}")
        with self._lock:
            self._forced.extend([kind] * count)

    def clear(self) -> None:
        with self._lock:
            self._forced.clear()
            self.rate = 0.0

    def pick(self, write: bool) -> str | None:
        """The fault for this request, or None. "lock" only hits writes (a read draws
        "unavailable" instead)."""
        with self._lock:
            kind: str | None = None
            if self._forced:
                kind = self._forced.popleft()
            elif self.rate > 0 and self._rng.random() < self.rate:
                kind = self._rng.choice(self.kinds)
            if kind == "lock" and not write:
                kind = "unavailable" if "unavailable" in self.kinds else "drop"
            if kind is not None:
                self.injected[kind] += 1
            return kind

    def record_fails(self) -> bool:
        """Per-record draw for asynchronous work (Bulk API rows): True = UNABLE_TO_LOCK_ROW."""
        with self._lock:
            return self.rate > 0 and "lock" in self.kinds and self._rng.random() < self.rate
