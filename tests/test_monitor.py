"""Live sync monitor: the model folds engine events (pure), and the screen starts, pauses and
resumes an engine, shows rates, usage with the throttle line, per-object counts, a filtered
tail, and says why a start failed. A scripted engine stands in for the real one (the engine's
own tests drive it against the sandboxes)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from console_helpers import SIZE, SMALL, Host, text_of, until
from pytest_textual_snapshot import SVGImageExtension
from textual.widgets import Input

from lc_console.screens.monitor import MonitorScreen
from lc_console.services.monitor import TAIL_SIZE, Monitor
from lc_console.sync import progress as pg

PROFILE = "default"
T0 = 1_763_950_000.0


@pytest.fixture(autouse=True)
def steady(isolated_dirs: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(isolated_dirs.parent))
    monkeypatch.setattr(Input, "_toggle_cursor", lambda self: None)


class Sub:
    def __init__(self, engine: FakeEngine) -> None:
        self.engine = engine

    def close(self) -> None:
        self.engine.callbacks.clear()


class FakeEngine:
    def __init__(self) -> None:
        self.callbacks: list[Callable[[Any], None]] = []
        self.calls: list[str] = []

    def subscribe(self, callback: Callable[[Any], None]) -> Sub:
        self.callbacks.append(callback)
        return Sub(self)

    def emit(self, event: Any) -> None:
        for cb in list(self.callbacks):
            cb(event)

    def start(self) -> None:
        self.calls.append("start")
        self.emit(pg.StateChanged(pg.RUNNING, at=T0))

    def pause(self) -> None:
        self.calls.append("pause")
        self.emit(pg.StateChanged(pg.PAUSED, "paused by the admin", at=T0 + 50))

    def resume(self) -> None:
        self.calls.append("resume")
        self.emit(pg.StateChanged(pg.RUNNING, at=T0 + 55))


class FakeSession:
    def __init__(self) -> None:
        self.engine = FakeEngine()
        self.closed = False

    def close(self) -> None:
        self.closed = True


def batch(n: int, at: float, *, failed: int = 0) -> pg.BatchWritten:
    return pg.BatchWritten(number=n, events=40, objects={
        "Contact": pg.ObjectCounts(created=10, updated=20), "Account": pg.ObjectCounts(updated=5),
        "LostChurn_Recovery__c": pg.ObjectCounts(created=3, failed=failed)},
        failed=failed, retrying=0, salesforce_calls=2, stripe_calls=1, seconds=0.8, queued=12,
        at=at)


def feed(engine: FakeEngine) -> None:
    for i in range(12):
        engine.emit(pg.EventsIngested(count=40 + i, duplicates=1, queued=30, cursor=None,
                                      at=T0 + i * 5))
        engine.emit(batch(i + 1, T0 + i * 5 + 1, failed=1 if i == 7 else 0))
    engine.emit(pg.UsageUpdated(used=41_000, max=100_000, threshold=80_000, at=T0 + 58))
    engine.emit(pg.ErrorRaised("stripe", "rate limited (429)", "retrying in 2 s", at=T0 + 59))


def test_model_folds_events() -> None:
    m = Monitor(clock=lambda: T0 + 59)
    engine = FakeEngine()
    engine.subscribe(m.apply)
    feed(engine)
    assert m.events_total == sum(40 + i for i in range(12))
    assert m.per_object["Contact"] == pg.ObjectCounts(created=120, updated=240)
    assert (m.queued, m.failed, m.errors, m.batches) == (12, 1, 1, 12)
    assert m.per_minute() == m.events_total
    assert m.sparkline()[-6:] == [81, 85, 89, 93, 97, 101]
    assert m.usage_bar(10) == "████░░░░│░"
    assert "throttle at 80,000 (80%)" in m.usage_text()
    assert [t.kind for t in m.lines("error")] == ["error"]
    for i in range(TAIL_SIZE + 10):
        m.apply(pg.ErrorRaised("event", f"e{i}", at=T0))
    assert len(m.tail) == TAIL_SIZE  # bounded


async def test_start_feed_pause_resume_filter(snapshot: Any) -> None:
    svg = snapshot.use_extension(SVGImageExtension)
    session = FakeSession()
    app = Host(lambda: MonitorScreen(PROFILE, session_factory=lambda p: session,
                                     clock=lambda: T0 + 59))
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: "press s to start" in text_of(app, "#monitor-state"))
        assert svg(name="stopped") == app.export_screenshot()
        await pilot.press("s")
        await until(pilot, lambda: text_of(app, "#monitor-state").startswith("● running"))
        feed(session.engine)
        await until(pilot, lambda: "errors 2" in text_of(app, "#monitor-state"))
        await pilot.pause(0.6)  # one timer tick draws everything
        assert "Contact" in text_of(app, "#monitor-objects")
        assert "41,000 / 100,000" in text_of(app, "#monitor-usage")
        assert svg(name="running") == app.export_screenshot()
        await pilot.press("p")
        await until(pilot, lambda: "paused" in text_of(app, "#monitor-state"))
        assert app.screen.check_action("pause", ()) is None
        await pilot.press("u")
        await until(pilot, lambda: text_of(app, "#monitor-state").startswith("● running"))
        assert session.engine.calls == ["start", "pause", "resume"]
        await pilot.press("slash", *"error")
        await pilot.pause(0.6)
        assert text_of(app, "#monitor-tail").splitlines() == [
            "02:07:39  error    stripe: rate limited (429) (retrying in 2 s)"]
    assert session.closed


async def test_start_failure_is_explained(snapshot: Any) -> None:
    svg = snapshot.use_extension(SVGImageExtension)

    def refuse(profile: str) -> Any:
        from lc_console.services.connect import UserMessage
        from lc_console.services.sync import SyncSetupError

        raise SyncSetupError(UserMessage(
            "The sync is already running for this profile.", "Process 4242 holds the lock.",
            "Stop that sync first, then start this one."))

    app = Host(lambda: MonitorScreen(PROFILE, session_factory=refuse, clock=lambda: T0))
    async with app.run_test(size=SMALL) as pilot:
        await pilot.press("s")
        await until(pilot, lambda: "already running" in text_of(app, "#monitor-state"))
        assert text_of(app, "#monitor-state") == (
            "■ not started: The sync is already running for this profile. Process 4242 holds "
            "the lock. What to do: Stop that sync first, then start this one.")
        assert app.screen.check_action("start", ()) is True  # can try again
        assert svg(name="error") == app.export_screenshot()
