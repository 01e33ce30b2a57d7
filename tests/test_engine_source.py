"""The Stripe event source against the Stripe sandbox with the real stripe client: forward
paging from a cursor across page boundaries, windows, the missing-cursor fallback,
retention and --since parsing."""

from __future__ import annotations

from typing import Any

import pytest

from lc_console.stripe.client import make_client
from lc_console.stripe.source import (
    RETENTION_SECONDS,
    Cursor,
    EventSource,
    RetentionExpired,
    parse_since,
)


def _all_events(source: EventSource) -> list[dict[str, Any]]:
    """Every event, oldest first, read the plain way (newest first, starting_after)."""
    out: list[dict[str, Any]] = []
    after = None
    while True:
        params: dict[str, Any] = {"limit": 100}
        if after:
            params["starting_after"] = after
        page = source._list(params)
        out.extend(page.data)
        if not page.has_more:
            break
        after = page.data[-1]["id"]
    return list(reversed(out))


@pytest.fixture
def source(stripe_sandbox: Any) -> EventSource:
    client = make_client(stripe_sandbox.keys["restricted"], api_base=stripe_sandbox.url,
                         max_network_retries=0)
    return EventSource(client, page_size=30, clock=lambda: stripe_sandbox.now)


def test_fetch_after_reads_forward_across_pages_without_gap_or_duplicate(
        source: EventSource) -> None:
    everything = _all_events(source)
    source.page_size = 7
    assert len(everything) > 50
    start = everything[10]
    got = source.fetch_after(Cursor(start["id"], start["created"]))
    assert [e["id"] for e in got] == [e["id"] for e in everything[11:]]
    # Each page was asked with ending_before = the newest id of the page before.
    assert source.requests > len(everything[11:]) // 7


def test_fetch_after_the_newest_event_is_empty_and_newest_is_the_cursor(
        source: EventSource) -> None:
    newest = source.newest()
    assert newest is not None
    assert source.fetch_after(newest) == []


def test_fetch_after_stops_near_max_events_and_continues_from_there(source: EventSource) -> None:
    everything = _all_events(source)
    first = everything[0]
    part = source.fetch_after(Cursor(first["id"], first["created"]), max_events=20)
    assert 20 <= len(part) < 20 + 30
    rest = source.fetch_after(Cursor(part[-1]["id"], part[-1]["created"]))
    assert [e["id"] for e in part + rest] == [e["id"] for e in everything[1:]]


def test_new_events_appear_after_the_cursor(stripe_sandbox: Any, source: EventSource) -> None:
    newest = source.newest()
    assert newest is not None
    emitted = stripe_sandbox.advance(days=3)
    assert emitted
    got = source.fetch_after(newest)
    assert [e["id"] for e in got] == emitted


def test_a_redelivered_event_is_listed_again(stripe_sandbox: Any, source: EventSource) -> None:
    everything = _all_events(source)
    newest = source.newest()
    assert newest is not None
    stripe_sandbox.redeliver(everything[5]["id"])
    again = source.fetch_after(newest)
    assert [e["id"] for e in again] == [everything[5]["id"]]


def test_fetch_window_is_oldest_first_and_inclusive(source: EventSource) -> None:
    everything = _all_events(source)
    since = everything[len(everything) // 2]["created"]
    window = list(source.fetch_window(since))
    expected = {e["id"] for e in everything if e["created"] >= since}
    assert {e["id"] for e in window} == expected
    assert [e["created"] for e in window] == sorted(e["created"] for e in window)


def test_a_cursor_stripe_no_longer_knows_falls_back_to_a_time_window(
        source: EventSource) -> None:
    everything = _all_events(source)
    middle = everything[len(everything) // 2]
    got = source.fetch_after(Cursor("evt_1DoesNotExist0000000000", middle["created"]))
    ids = {e["id"] for e in got}
    # Everything from the overlap before the cursor's time on, so nothing is lost.
    assert {e["id"] for e in everything if e["created"] >= middle["created"]} <= ids


def test_a_cursor_beyond_30_days_is_reported_with_the_way_out(source: EventSource) -> None:
    old = Cursor("evt_old", int(source.clock()) - RETENTION_SECONDS - 3600)
    with pytest.raises(RetentionExpired) as err:
        source.fetch_after(old)
    text = str(err.value)
    assert "30-day" in text and "lc-console resync" in text and "evt_old" in text


def test_parse_since_accepts_dates_datetimes_and_durations() -> None:
    now = 1_800_000_000.0
    assert parse_since("7d", now) == int(now - 7 * 86400)
    assert parse_since("12h", now) == int(now - 12 * 3600)
    assert parse_since(" 30m ", now) == int(now - 1800)
    assert parse_since("2027-01-10", now) == 1_799_539_200
    assert parse_since("2027-01-10T08:00", now) == 1_799_539_200 + 8 * 3600


@pytest.mark.parametrize(("text", "needle"), [
    ("31d", "more than 30 days ago"),
    ("2020-01-01", "resync"),
    ("yesterday", "is not a date"),
    ("2099-01-01", "in the future"),
])
def test_parse_since_refuses_with_the_fix(text: str, needle: str) -> None:
    with pytest.raises(ValueError) as err:
        parse_since(text, 1_800_000_000.0)
    assert needle in str(err.value)
