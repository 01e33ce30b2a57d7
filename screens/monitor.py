"""Live sync monitor: start / pause / resume the engine; events per minute; records synced per
object; queue depth; API usage against the daily limit with the throttle line; a filterable
live tail (bounded); the errors count, with a key to Failures.

The engine runs in its own thread; its progress events arrive on the subscription's delivery
thread and are forwarded as messages, folded into services/monitor.Monitor on the UI thread,
and drawn by a timer twice a second, so input never waits for the engine.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.reactive import reactive
from textual.widgets import Footer, Header, Input, Sparkline, Static
from textual.worker import Worker, WorkerState

from lc_console.screens.base import ConsoleScreen
from lc_console.services.monitor import Monitor
from lc_console.sync import progress as pg

STATE_TEXT = {
    pg.STOPPED: "■ stopped", pg.STARTING: "… starting", pg.RUNNING: "● running",
    pg.PAUSED: "‖ paused", pg.THROTTLED: "◐ throttled", pg.EXPIRED: "✗ login expired",
}
STATE_CLASS = {pg.RUNNING: "-ok", pg.PAUSED: "-warn", pg.THROTTLED: "-warn",
               pg.EXPIRED: "-fail", pg.STARTING: "", pg.STOPPED: ""}


def _why(exc: BaseException) -> str:
    """One line: the service's own message when it has one (SyncSetupError, EngineError)."""
    message = getattr(exc, "message", None)
    if hasattr(message, "text"):
        text = message.text()
    elif isinstance(message, str) and message:
        text = f"{message} {getattr(exc, 'fix', '')}".strip()
    else:
        from lc_console.services.install import error_message

        text = error_message(exc)
    return " ".join(text.split())


def _open_session(profile: str) -> Any:
    from lc_console.services.sync import open_session

    return open_session(profile)


class MonitorScreen(ConsoleScreen):
    SCREEN_NAME = "Sync monitor"
    COMPACT_FOOTER_BELOW = 100
    REFRESH_SECONDS: ClassVar[float] = 0.5
    AUTO_FOCUS = ""  # keys go to the screen; / focuses the tail filter
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("s", "start", "Start", tooltip="Start the live sync", id="monitor.start"),
        Binding("p", "pause", "Pause", tooltip="Pause writes (events keep being read)",
                id="monitor.pause"),
        Binding("u", "resume", "Resume", tooltip="Resume writes", id="monitor.resume"),
        Binding("slash", "filter", "Filter tail", tooltip="Show only tail lines containing "
                "a word (batch, error, Contact…)", id="monitor.filter"),
        Binding("e", "failures", "Failures", tooltip="Open the failed records",
                id="monitor.failures"),
    ]

    engine_state: reactive[str] = reactive(pg.STOPPED, bindings=True)

    class EngineEvent(Message):
        def __init__(self, event: pg.ProgressEvent) -> None:
            super().__init__()
            self.event = event

    def __init__(self, profile: str, *, session_factory: Callable[[str], Any] | None = None,
                 clock: Callable[[], float] | None = None) -> None:
        super().__init__(profile)
        self.session_factory = session_factory or _open_session
        self.model = Monitor(clock=clock) if clock else Monitor()
        self.session: Any = None
        self.subscription: Any = None
        self.tail_filter = ""
        self.error = ""

    def compose(self) -> ComposeResult:
        yield Header(icon="≡")
        with Vertical(id="monitor-body"):
            yield Static("", id="monitor-state", markup=False)
            with Horizontal(id="monitor-top"):
                with Vertical(classes="card", id="monitor-rate-box") as box:
                    box.border_title = "Events per minute"
                    yield Sparkline([], id="monitor-spark")
                    yield Static("", id="monitor-rate", markup=False)
                with Vertical(classes="card", id="monitor-usage-box") as box:
                    box.border_title = "Salesforce API usage"
                    yield Static("", id="monitor-usage-bar", markup=False)
                    yield Static("", id="monitor-usage", markup=False)
            with Horizontal(id="monitor-bottom"):
                with Vertical(classes="card", id="monitor-objects-box") as box:
                    box.border_title = "Records synced"
                    yield Static("", id="monitor-objects", markup=False)
                with Vertical(classes="card", id="monitor-tail-box") as box:
                    box.border_title = "Live tail"
                    yield Input(placeholder="/ filter the tail", id="monitor-filter",
                                compact=True)
                    yield Static("", id="monitor-tail", markup=False)
        yield Footer()

    def on_mount(self) -> None:
        super().on_mount()
        self._draw()
        # The usage bar is drawn to the widget's width, which is known only after layout.
        self.call_after_refresh(self._draw)
        self.set_interval(self.REFRESH_SECONDS, self._draw)

    def on_unmount(self) -> None:
        session, self.session = self.session, None
        if self.subscription is not None:
            self.subscription.close()
        if session is not None:
            # Stopping finishes the current batch: never on the UI thread.
            threading.Thread(target=session.close, name="lc-monitor-stop", daemon=True).start()

    # --- engine control -----------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        state = self.engine_state
        if action == "start":
            return None if self.session is not None else True
        if action == "pause":
            return True if self.session is not None and state in (pg.RUNNING, pg.THROTTLED) \
                else None
        if action == "resume":
            return True if self.session is not None and state in (pg.PAUSED, pg.EXPIRED) \
                else None
        return True

    def action_start(self) -> None:
        self.error = ""
        self.engine_state = pg.STARTING
        self.model.apply(pg.StateChanged(pg.STARTING, at=self.model.clock()))
        self._draw()
        self.start_engine()

    @work(thread=True, exclusive=True, group="monitor-start", exit_on_error=False,
          description="Starting the sync")
    def start_engine(self) -> Any:
        try:
            session = self.session_factory(self.profile)
        except Exception as exc:
            return RuntimeError(_why(exc))
        subscription = session.engine.subscribe(
            lambda event: self.post_message(self.EngineEvent(event)))
        try:
            session.engine.start()
        except Exception as exc:
            subscription.close()
            session.close()
            return RuntimeError(_why(exc))
        return session, subscription

    def action_pause(self) -> None:
        if self.session is not None:
            self.control("pause")

    def action_resume(self) -> None:
        if self.session is not None:
            self.control("resume")

    @work(thread=True, group="monitor-control", exit_on_error=False,
          description="Pausing or resuming the sync")
    def control(self, what: str) -> None:
        session = self.session
        if session is not None:
            getattr(session.engine, what)()

    def action_filter(self) -> None:
        self.query_one("#monitor-filter", Input).focus()

    @on(Input.Changed, "#monitor-filter")
    def _filter(self, event: Input.Changed) -> None:
        self.tail_filter = event.value
        self._draw()

    def key_escape(self) -> None:
        if self.query_one("#monitor-filter", Input).has_focus:
            self.set_focus(None)

    def action_failures(self) -> None:
        if "failures" in getattr(self.app, "_modes", {}):
            self.app.switch_mode("failures")
        else:
            from lc_console.screens.failures import FailuresScreen

            self.app.push_screen(FailuresScreen(self.profile))

    # --- events and drawing -------------------------------------------------------------

    def on_monitor_screen_engine_event(self, message: EngineEvent) -> None:
        self.model.apply(message.event)
        if isinstance(message.event, pg.StateChanged):
            self.engine_state = message.event.state
        # Drawing waits for the timer: a burst of events costs one frame.

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if not event.worker.group.startswith("monitor-"):
            return
        if event.state is WorkerState.ERROR:
            super().on_worker_state_changed(event)
            return
        if event.state is not WorkerState.SUCCESS or event.worker.group != "monitor-start":
            return
        result = event.worker.result
        if isinstance(result, RuntimeError):
            self.error = str(result)
            self.engine_state = pg.STOPPED
            self.model.apply(pg.StateChanged(pg.STOPPED, "not started", at=self.model.clock()))
            self.notify(f"Sync not started: {result}", severity="error", markup=False)
        else:
            self.session, self.subscription = result
            self.notify("Sync started.")
        self.refresh_bindings()
        self._draw()

    def _draw(self) -> None:
        if not self.is_attached:
            return
        m = self.model
        state = self.query_one("#monitor-state", Static)
        parts = [STATE_TEXT.get(m.state, m.state)]
        if m.reason and m.state != pg.RUNNING:
            parts[0] += f" ({m.reason})"
        parts += [f"{m.events_total:,} events", f"{m.batches:,} batches",
                  f"queue {m.queued:,}",
                  f"errors {m.failed + m.errors:,}" + (" (e: Failures)" if m.failed else "")]
        if m.dropped:
            parts.append(f"{m.dropped:,} updates skipped")
        if self.session is None and m.state == pg.STOPPED:
            parts = [f"■ not started: {self.error}" if self.error else
                     "■ stopped · press s to start the live sync"]
        state.update(" · ".join(parts))
        state.set_classes(STATE_CLASS.get(m.state, "") if not self.error else "-fail")
        self.query_one("#monitor-spark", Sparkline).data = m.sparkline()
        self.query_one("#monitor-rate", Static).update(
            f"{m.per_minute():,} in the last minute")
        bar = self.query_one("#monitor-usage-bar", Static)
        bar.update(m.usage_bar(max(bar.size.width, 10)))
        self.query_one("#monitor-usage", Static).update(m.usage_text())
        rows = [f"{name.removeprefix('LostChurn_'):<14}{c.created:>7,} new{c.updated:>8,} upd"
                f"{c.failed:>5,} ✗" for name, c in sorted(m.per_object.items())]
        self.query_one("#monitor-objects", Static).update(
            "\n".join(rows) or "Nothing written yet.")
        tail = self.query_one("#monitor-tail", Static)
        height = max(tail.size.height, 1)
        lines = m.lines(self.tail_filter)[-height:]
        tail.update("\n".join(t.render() for t in lines) or (
            "No lines match the filter." if self.tail_filter else "Batches appear here."))
