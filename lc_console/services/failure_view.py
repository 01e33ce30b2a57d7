"""Reading failed records for the Failures screen and `lc-console failures`: a filter typed as
text, pages by keyset (fast at any depth of a 100,000-row table), one-line cells.

Writes (retry, discard) live in services/failures.py; this module only reads.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from typing import Any

from lc_console.store import (
    ACTIVE_FAILURE_STATUSES,
    FAILURE_STATUSES,
    Failure,
    FailureFilter,
    Store,
)

PAGE_SIZE = 100

FILTER_HELP = ("code:CODE  object:OBJECT  status:open|retrying|resolved|discarded|all  "
               "and any other text = start of the record key")


class FilterError(ValueError):
    """A filter the store cannot run; the message names the bad part and the fix."""


@dataclass(frozen=True)
class ParsedFilter:
    text: str = ""
    error_code: str | None = None
    object: str | None = None
    statuses: tuple[str, ...] = ACTIVE_FAILURE_STATUSES
    key_prefix: str | None = None

    def to_store(self) -> FailureFilter:
        return FailureFilter(status=list(self.statuses), object=self.object,
                             error_code=self.error_code, key_prefix=self.key_prefix)

    def describe(self) -> str:
        parts = []
        if self.error_code:
            parts.append(f"code {self.error_code}")
        if self.object:
            parts.append(f"object {self.object}")
        if self.key_prefix:
            parts.append(f"key {self.key_prefix}…")
        statuses = "all statuses" if set(self.statuses) == set(FAILURE_STATUSES) else "/".join(
            self.statuses)
        parts.append(statuses)
        return ", ".join(parts)


def parse_filter(text: str) -> ParsedFilter:
    """`code:DUPLICATE_VALUE object:Contact ann@` -> a filter. Words without a prefix are the
    start of the record key (email, domain, invoice id)."""
    code = obj = None
    statuses: tuple[str, ...] = ACTIVE_FAILURE_STATUSES
    rest: list[str] = []
    for word in text.split():
        name, sep, value = word.partition(":")
        name = name.lower()
        if sep and name in ("code", "object", "status", "obj"):
            if not value:
                example = {"code": "DUPLICATE_VALUE", "status": "open"}.get(name, "Contact")
                raise FilterError(f"{name}: needs a value, e.g. {name}:{example}")
            if name == "code":
                code = value.upper()
            elif name in ("object", "obj"):
                obj = value
            else:
                wanted = tuple(v.lower() for v in value.split(",") if v)
                if wanted == ("all",):
                    statuses = FAILURE_STATUSES
                else:
                    bad = [w for w in wanted if w not in FAILURE_STATUSES]
                    if bad:
                        raise FilterError(f"status:{bad[0]} is not a status; use one of "
                                          + ", ".join(FAILURE_STATUSES) + " or all")
                    statuses = wanted
        else:
            rest.append(word)
    return ParsedFilter(text=text.strip(), error_code=code, object=obj, statuses=statuses,
                        key_prefix=" ".join(rest) or None)


@dataclass(frozen=True)
class Page:
    rows: list[Failure]
    total: int
    number: int  # 0-based
    next_before_id: int | None
    # The before_id of every page so far, so that "previous page" is a keyset read too.
    starts: tuple[int | None, ...] = field(default=(None,))

    @property
    def first_row(self) -> int:
        return self.number * PAGE_SIZE + 1 if self.rows else 0

    @property
    def last_row(self) -> int:
        return self.number * PAGE_SIZE + len(self.rows)

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // PAGE_SIZE))

    def position(self) -> str:
        if not self.total:
            return "no rows"
        return (f"rows {self.first_row:,}–{self.last_row:,} of {self.total:,} · "
                f"page {self.number + 1:,}/{self.pages:,}")


def read_page(store: Store, flt: ParsedFilter, *, number: int = 0,
              starts: tuple[int | None, ...] = (None,), page_size: int = PAGE_SIZE) -> Page:
    """Page `number` (0-based); `starts[n]` holds the keyset start of page n when known."""
    before = starts[number] if number < len(starts) else None
    with store.snapshot():
        if number < len(starts):
            got = store.list_failures(flt.to_store(), limit=page_size, before_id=before)
        else:  # a page never visited (jump to the last page): offset once, keyset after
            got = store.list_failures(flt.to_store(), limit=page_size, offset=number * page_size)
    known = list(starts[: number + 1])
    while len(known) <= number:
        known.append(None)
    if got.next_before_id is not None:
        known = known[: number + 1] + [got.next_before_id]
    return Page(got.rows, got.total, number, got.next_before_id, tuple(known))


def when(timestamp: float, *, short: bool = False) -> str:
    """Absolute UTC time: stable in snapshots and the same in every time zone."""
    moment = dt.datetime.fromtimestamp(timestamp, dt.UTC)
    return moment.strftime("%m-%d %H:%M" if short else "%Y-%m-%d %H:%M")


def short_object(name: str) -> str:
    """LostChurn_Recovery__c -> Recovery__c: the prefix is on every object of ours."""
    return name.removeprefix("LostChurn_")


def one_line(text: str, width: int = 80) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def pretty(value: Any) -> str:
    if value is None:
        return "(none)"
    return json.dumps(value, indent=2, sort_keys=True, default=str)


def detail_text(f: Failure) -> str:
    fields = f" · fields {', '.join(f.fields)}" if f.fields else ""
    lines = [
        f"{f.object} {f.key} · {f.operation} · {f.status} · attempts {f.attempts}{fields}",
        f"{f.error_code}: {f.message}",
        f"First seen {when(f.first_seen)} UTC · last seen {when(f.last_seen)} UTC",
    ]
    if f.source_event_id:
        lines.append(f"Stripe event {f.source_event_id}")
    if f.discard_reason:
        lines.append(f"Discarded: {f.discard_reason}")
    return "\n".join(lines)
