"""Stripe list semantics over the ledger: newest first, cursors, `has_more`, filters.

`starting_after=X` returns the `limit` items just older than X; `ending_before=X` the `limit`
items just newer than X, still newest first, with `has_more` telling whether even newer ones
exist (stripe-python's auto_paging_iter relies on exactly this, reversing each page).
"""

from __future__ import annotations

import heapq
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from .ledger import Ledger
from .model import Event

Predicate = Callable[[Any], bool]


def page_objects(items: Sequence[Any], *, limit: int, after: Any = None, before: Any = None,
                 low: int | None = None, high: int | None = None,
                 keep: Predicate | None = None) -> tuple[list[Any], bool]:
    """A page of objects sorted oldest first by (created, n); returns (newest first, has_more)."""
    lo = bisect_left(items, low, key=_created) if low is not None else 0
    hi = bisect_right(items, high, key=_created) if high is not None else len(items)
    if after is not None:
        start = min(hi, bisect_left(items, after.n, key=_number))
        indices: Iterator[int] = iter(range(start - 1, lo - 1, -1))
    elif before is not None:
        start = max(lo, bisect_right(items, before.n, key=_number))
        indices = iter(range(start, hi))
    else:
        indices = iter(range(hi - 1, lo - 1, -1))
    found = []
    for i in indices:
        obj = items[i]
        if keep is None or keep(obj):
            found.append(obj)
            if len(found) > limit:
                break
    has_more = len(found) > limit
    found = found[:limit]
    if before is not None:
        found.reverse()
    return found, has_more


def _created(obj: Any) -> int:
    return obj.created


def _number(obj: Any) -> int:
    return obj.n


def page_events(ledger: Ledger, *, limit: int, after: Event | None = None,
                before: Event | None = None, low: int | None = None, high: int | None = None,
                types: set[str] | None = None) -> tuple[list[Event], bool]:
    """A page of the event log (positions oldest first), newest first."""
    floor = ledger.retention_floor()
    low = floor if low is None else max(low, floor)
    order, created, events = ledger.order, ledger.order_created, ledger.events
    size = len(order)
    lo, hi = 0, size
    if ledger.monotonic:
        lo = bisect_left(created, low)
        if high is not None:
            hi = bisect_right(created, high)
    if after is not None:
        positions = _positions_desc(ledger, min(hi, ledger.position_of(after)), lo, types)
    elif before is not None:
        positions = _positions_asc(ledger, max(lo, ledger.position_of(before) + 1), hi, types)
    else:
        positions = _positions_desc(ledger, hi, lo, types)
    found: list[Event] = []
    for pos in positions:
        n = order[pos]
        if n < 0:
            continue
        c = created[pos]
        if c < low or (high is not None and c > high):
            continue
        found.append(events[n])
        if len(found) > limit:
            break
    has_more = len(found) > limit
    found = found[:limit]
    if before is not None:
        found.reverse()
    return found, has_more


def _positions_desc(ledger: Ledger, start: int, lo: int, types: set[str] | None) -> Iterator[int]:
    """Positions below `start` (exclusive), descending, down to `lo`."""
    if types is None:
        return iter(range(start - 1, lo - 1, -1))
    streams = []
    for t in types:
        arr = ledger.type_positions.get(t)
        if not arr:
            continue
        streams.append(_walk(arr, bisect_left(arr, start) - 1, bisect_left(arr, lo) - 1, -1))
    return heapq.merge(*streams, reverse=True)


def _positions_asc(ledger: Ledger, start: int, hi: int, types: set[str] | None) -> Iterator[int]:
    if types is None:
        return iter(range(start, hi))
    streams = []
    for t in types:
        arr = ledger.type_positions.get(t)
        if not arr:
            continue
        streams.append(_walk(arr, bisect_left(arr, start), bisect_left(arr, hi), 1))
    return heapq.merge(*streams)


def _walk(arr: Any, start: int, stop: int, step: int) -> Iterator[int]:
    for k in range(start, stop, step):
        yield arr[k]
