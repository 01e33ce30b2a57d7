"""Doctor: the environment checks of `lc-console doctor`, with the fix for each failure."""

from __future__ import annotations

from typing import ClassVar

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.reactive import reactive
from textual.widget import Widget
from textual.widgets import Footer, Header, Label, Static
from textual.worker import Worker, WorkerState

from lc_console.screens.base import ConsoleScreen
from lc_console.services.doctor import Check, run_checks


def mark(check: Check) -> tuple[str, str]:
    """The mark shown before a check, and its style class."""
    if check.level == "info":
        return "· info", "-info"
    return ("✓ ok", "-ok") if check.ok else ("✗ FAIL", "-fail")


def summary(results: list[Check]) -> str:
    info = sum(1 for r in results if r.level == "info")
    failed = sum(1 for r in results if not r.ok)
    checks = len(results) - info
    head = (f"{failed} of {checks} checks failed: see the fixes below" if failed
            else f"All {checks} checks passed")
    return f"{head} · {info} for information" if info else head


class DoctorReport(Widget):
    """Results of one run; None while the checks are running. `error` when the run crashed."""

    results: reactive[list[Check] | None] = reactive(None, recompose=True)
    error: reactive[str] = reactive("", recompose=True)

    def compose(self) -> ComposeResult:
        if self.error:
            yield Static(self.error, id="doctor-status", classes="-fail", markup=False)
            return
        if self.results is None:
            yield Static("Running checks…", id="doctor-status")
            return
        failed = any(not r.ok for r in self.results)
        yield Static(summary(self.results), id="doctor-status",
                     classes="-fail" if failed else "-ok", markup=False)
        for check in self.results:
            text, cls = mark(check)
            with Horizontal(classes=f"check {cls}"):
                yield Label(text, classes=f"check-mark {cls}")
                with Vertical(classes="check-body"):
                    yield Label(check.name, classes="check-name", markup=False)
                    yield Static(check.detail, classes="check-detail", markup=False)
                    if not check.ok and check.fix:
                        yield Static(f"Fix: {check.fix}", classes="check-fix", markup=False)


class DoctorScreen(ConsoleScreen):
    SCREEN_NAME = "Doctor"
    COMPACT_FOOTER_BELOW = 100
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("r", "rerun", "Run again", tooltip="Run every check again", id="doctor.rerun"),
    ]

    def compose(self) -> ComposeResult:
        yield Header(icon="≡")
        with VerticalScroll(id="doctor-body"):
            yield DoctorReport()
        yield Footer()

    def on_mount(self) -> None:
        self.action_rerun()

    def action_rerun(self) -> None:
        report = self.query_one(DoctorReport)
        report.error = ""
        report.results = None
        self.run_doctor()

    @work(thread=True, exclusive=True, group="doctor", exit_on_error=False,
          description="Running the doctor's checks")
    def run_doctor(self) -> list[Check]:
        return run_checks(self.profile)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker.group != "doctor":
            return
        report = self.query_one(DoctorReport)
        if event.state is WorkerState.SUCCESS:
            report.results = event.worker.result
        elif event.state is WorkerState.ERROR:
            # run_checks isolates each check, so this is a bug; show it where results go.
            report.error = f"The checks could not run: {event.worker.error}"
