"""Re-sync and reconcile: Re-sync All (a forecast first, then the run with a progress bar per
phase, cancellable and resumable) and Reconcile (drift per object and field, orphans, `F`
fixes through the same write path). Both run services/resync.py and services/reconcile.py in
a thread worker; progress comes back by messages."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.widgets import DataTable, Footer, Header, Label, ProgressBar, Static
from textual.worker import Worker, WorkerState

from lc_console.screens.base import ConsoleScreen

# The run's phases, in the order they run (services/resync.py).
PHASES = ("read", "derive", "upload", "process", "results")
GROUP = "resync-run"

# (profile, run name, cancel event, on_progress) -> a services.resync.Backfill
RunnerFactory = Callable[[str, str, threading.Event, Callable[[Any], None]], Any]


def _for_profile(profile: str, name: str, cancel: threading.Event,
                 on_progress: Callable[[Any], None]) -> Any:
    from lc_console.services import resync

    return resync.for_profile(profile, name=name, cancel=cancel, on_progress=on_progress)


@dataclass(frozen=True)
class _Job:
    kind: str  # forecast | resync | reconcile | fix
    force: bool = False


@dataclass(frozen=True)
class _Failed:
    message: str


class ResyncScreen(ConsoleScreen):
    SCREEN_NAME = "Re-sync and reconcile"
    COMPACT_FOOTER_BELOW = 100
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("b", "resync", "Re-sync All", tooltip="Re-sync All from Stripe: the forecast "
                "first (nothing written), then b again runs it", id="resync.resync"),
        Binding("r", "reconcile", "Reconcile", tooltip="Compare the org with what the sync "
                "rules derive from Stripe now (nothing written)", id="resync.reconcile"),
        Binding("F", "fix", "Fix drift", tooltip="Write the differences the reconcile found "
                "through the normal write path", id="resync.fix"),
        Binding("escape,c", "cancel", "Cancel", tooltip="Stop the running job; run it again "
                "to resume where it stopped", id="resync.cancel"),
    ]

    class Progress(Message):
        def __init__(self, progress: Any) -> None:
            super().__init__()
            self.progress = progress

    def __init__(self, profile: str, *, runner_factory: RunnerFactory | None = None) -> None:
        super().__init__(profile)
        self.runner_factory = runner_factory or _for_profile
        self.forecast: Any = None  # shown, awaiting the second `b`
        self.reported: set[str] = set()  # phases the running job has reported
        self.force_next = False  # the admin confirms an override after a refusal
        self.drift: dict[str, Any] | None = None
        self.running: _Job | None = None
        self.cancel = threading.Event()

    def compose(self) -> ComposeResult:
        yield Header(icon="≡")
        with VerticalScroll(id="resync-body"):
            with Vertical(id="resync-card", classes="card") as card:
                card.border_title = "Re-sync All"
                yield Static("Press b for the forecast: records per object, API calls, share "
                             "of today's budget and time, with nothing written.",
                             id="resync-text", markup=False)
                with Vertical(id="resync-phases"):
                    for phase in PHASES:
                        with Horizontal(id=f"resync-{phase}", classes="resync-phase"):
                            yield Label(phase, classes="resync-phase-name")
                            yield ProgressBar(id=f"resync-bar-{phase}", show_eta=False)
                            yield Static("waiting", id=f"resync-line-{phase}", markup=False,
                                         classes="resync-line")
                yield Static("", id="resync-status", markup=False)
            with Vertical(id="reconcile-card", classes="card") as card:
                card.border_title = "Reconcile"
                yield Static("Press r to compare the org with what the sync rules derive "
                             "from Stripe now; F then writes the differences.",
                             id="reconcile-text", markup=False)
                table: DataTable[str] = DataTable(id="drift-table", cursor_type="row",
                                                  zebra_stripes=True)
                yield table
                yield Static("", id="drift-items", markup=False)
        yield Footer()

    def on_mount(self) -> None:
        super().on_mount()
        table = self.query_one("#drift-table", DataTable)
        for title, width in (("Object", 24), ("Missing", 8), ("Different", 9),
                             ("Orphaned", 8), ("Fields", 30)):
            table.add_column(title, width=width)
        self.query_one("#resync-phases").display = False
        table.display = False
        self._status("")
        self._items("")

    def on_unmount(self) -> None:
        self.cancel.set()  # a job left running stops at its next checkpoint

    # --- actions --------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ("resync", "reconcile"):
            return None if self.running else True
        if action == "fix":
            return True if self.drift_total() and not self.running else None
        if action == "cancel":
            return True if self.running else None
        return True

    def drift_total(self) -> int:
        from lc_console.services import reconcile

        return sum(reconcile.total_drift(self.drift).values()) if self.drift else 0

    def action_resync(self) -> None:
        forecast, self.forecast = self.forecast, None
        force, self.force_next = self.force_next, False
        job = _Job("resync" if forecast is not None or force else "forecast", force=force)
        self._start(job)
        self.query_one("#resync-text", Static).update(
            "Forecast: reading Stripe and the org, nothing written…" if job.kind == "forecast"
            else "Re-sync All: reading Stripe and the org, then writing… (c cancels)")

    def action_reconcile(self) -> None:
        self._start(_Job("reconcile"))
        self.query_one("#reconcile-text", Static).update(
            "Reconcile: reading Stripe and the org, nothing written… (c cancels)")

    def action_fix(self) -> None:
        self._start(_Job("fix"))
        self.query_one("#reconcile-text", Static).update(
            "Fixing the drift: writing the differences… (c cancels)")

    def action_cancel(self) -> None:
        if self.running is not None:
            self.cancel.set()
            self._status("Cancelling at the next checkpoint…")

    def _start(self, job: _Job) -> None:
        self.running = job
        self.cancel = threading.Event()
        self.refresh_bindings()
        self.query_one("#resync-phases").display = True
        self.reported = set()
        for phase in PHASES:
            self.query_one(f"#resync-{phase}").display = True
            self.query_one(f"#resync-bar-{phase}", ProgressBar).update(total=None, progress=0)
            self.query_one(f"#resync-line-{phase}", Static).update("waiting")
        self._status("")
        self.run_job(job, self.cancel)

    def _status(self, text: str) -> None:
        status = self.query_one("#resync-status", Static)
        status.update(text)
        status.display = bool(text)  # no blank line under the card when idle

    def _items(self, text: str) -> None:
        items = self.query_one("#drift-items", Static)
        items.update(text)
        items.display = bool(text)

    # --- the worker -----------------------------------------------------------------------

    @work(thread=True, exclusive=True, group=GROUP, exit_on_error=False,
          description="Re-sync and reconcile")
    def run_job(self, job: _Job, cancel: threading.Event) -> Any:
        from lc_console.services import install as install_svc
        from lc_console.services import reconcile, resync

        name = "resync" if job.kind in ("forecast", "resync") else "reconcile"
        try:
            runner = self.runner_factory(self.profile, name, cancel,
                                         lambda p: self.post_message(self.Progress(p)))
            try:
                if name == "reconcile":
                    return reconcile.run(runner, fix=job.kind == "fix")
                return runner.run(resync.Options(dry_run=job.kind == "forecast",
                                                 force=job.force))
            finally:
                runner.store.close()
        except resync.Stop as exc:
            return _Failed(str(getattr(exc, "message", "") or exc))
        except Exception as exc:
            return _Failed(" ".join(install_svc.error_message(exc).split()))

    def on_resync_screen_progress(self, message: Progress) -> None:
        p = message.progress
        if p.phase not in PHASES:
            return
        self.query_one(f"#resync-bar-{p.phase}", ProgressBar).update(total=p.total,
                                                                     progress=p.done)
        self.reported.add(p.phase)
        line = p.line().strip()
        # The row is labelled with its phase already.
        self.query_one(f"#resync-line-{p.phase}", Static).update(line[len(p.phase):].strip())
        if not self.cancel.is_set():
            self._status(line)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker.group != GROUP:
            return
        if event.state is WorkerState.SUCCESS:
            self._done(event.worker.result)
        elif event.state is WorkerState.ERROR:
            self._done(_Failed(str(event.worker.error)))
        elif event.state is WorkerState.CANCELLED:
            self._done(_Failed("The job stopped with the screen."))

    # --- results --------------------------------------------------------------------------

    def _done(self, result: Any) -> None:
        job, self.running = self.running, None
        self.refresh_bindings()
        for phase in PHASES:  # a resumed run skips phases; collections have no Bulk phase
            if phase not in self.reported:
                self.query_one(f"#resync-{phase}").display = False
        if job is None:
            return
        title = {"forecast": "Forecast", "resync": "Re-sync All", "reconcile": "Reconcile",
                 "fix": "Fix"}[job.kind]
        target = "#resync-text" if job.kind in ("forecast", "resync") else "#reconcile-text"
        text = self.query_one(target, Static)
        if isinstance(result, _Failed):
            text.update(f"✗ {title} not run: {result.message}")
            self._status("")
            self.notify(f"{title} not run: {result.message}", severity="error", markup=False)
            return
        if result.status == "dry-run" and job.kind == "forecast":
            self._forecast_done(result)
        elif result.status == "dry-run":
            self._drift_done(result)
        elif result.status == "done":
            self._written(job, result)
        else:
            self._stopped(job, title, result)

    def _forecast_done(self, result: Any) -> None:
        self.forecast = result.forecast
        self.query_one("#resync-phases").display = False  # the real run shows them
        self._status("")
        lines = result.forecast.lines() if result.forecast is not None else []
        crosses = result.forecast is not None and result.forecast.crosses_threshold
        self.query_one("#resync-text", Static).update("\n".join([
            "Forecast (nothing written yet):", *lines,
            ("⚠ This would cross the throttle threshold: b asks for an override."
             if crosses else "Press b to run the re-sync, c to cancel it while it runs.")]))

    def _drift_done(self, result: Any) -> None:
        from lc_console.services import reconcile

        self.drift = result.drift or {"objects": {}, "items": []}
        totals = reconcile.total_drift(self.drift)
        table = self.query_one("#drift-table", DataTable)
        table.clear()
        lines = reconcile.drift_lines(self.drift)
        if not any(totals.values()):
            table.display = False
            self._items("")
            self.query_one("#reconcile-text", Static).update(f"✓ {lines[0]}")
            self.notify("Reconcile: no drift.", markup=False)
        else:
            for obj, s in self.drift["objects"].items():
                if not (s["missing"] or s["different"] or s["orphaned"]):
                    continue
                fields = ", ".join(f"{f} ({n:,})" for f, n in sorted(
                    s["fields"].items(), key=lambda kv: -kv[1]))
                table.add_row(obj, f"{s['missing']:,}", f"{s['different']:,}",
                              f"{s['orphaned']:,}", fields, key=obj)
            table.display = True
            items = lines[lines.index("") + 1:] if "" in lines else []
            self._items("\n".join(items))
            self.query_one("#reconcile-text", Static).update(
                f"Drift: {totals['missing']:,} missing, {totals['different']:,} different, "
                f"{totals['orphaned']:,} orphaned (reported, never deleted). Press F to fix.")
            self.notify(f"Reconcile: {sum(totals.values()):,} differences found.",
                        severity="warning", markup=False)
        self.query_one("#resync-phases").display = False
        self._status("")
        self.refresh_bindings()

    def _written(self, job: _Job, result: Any) -> None:
        from lc_console.services import resync

        written = sum(c.created + c.updated for c in result.counts.values())
        title = "Re-sync All done" if job.kind == "resync" else "Drift fixed"
        resumed = " (resumed where it stopped)" if result.resumed else ""
        lines = [f"✓ {title}{resumed}:", *resync.summary_lines(result)]
        if job.kind == "fix":
            self.drift = None
            self.query_one("#drift-table", DataTable).clear()
            self.query_one("#drift-table").display = False
            self._items("")
            lines.append("Press r to check again.")
        target = "#resync-text" if job.kind == "resync" else "#reconcile-text"
        self.query_one(target, Static).update("\n".join(lines))
        self._status(f"{title}: {written:,} records written.")
        self.notify(f"{title}: {written:,} records written.", markup=False)
        self.refresh_bindings()

    def _stopped(self, job: _Job, title: str, result: Any) -> None:
        target = "#resync-text" if job.kind in ("forecast", "resync") else "#reconcile-text"
        lines = [f"✗ {title} {result.status}: {result.message}"]
        if result.status == "refused" and result.forecast is not None:
            lines += result.forecast.lines()
            if job.kind == "resync":
                self.force_next = True
                lines.append("Press b again to override the threshold and run anyway, or "
                             "lower the scope from the CLI (lc-console resync --objects).")
        if job.kind == "resync" and result.status in ("cancelled", "error"):
            # The checkpoint holds the run: the next b resumes it rather than forecasting
            # again (a new forecast would start the re-sync over).
            self.forecast = result.forecast or True
            lines.append("Press b to resume where it stopped.")
        self.query_one(target, Static).update("\n".join(lines))
        self._status(f"{title} {result.status}.")
        self.notify(f"{title} {result.status}: {result.message}", severity="warning",
                    markup=False)
