"""Install: the plan (present / missing / different / conflict), the deploy following
checkDeployStatus, and the result with Salesforce's message for each failed component.

All org work runs in thread workers over services/install.py; progress arrives as messages.
Removal asks for the org name (ConfirmOrgName) after showing what it deletes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.content import Content
from textual.message import Message
from textual.reactive import reactive
from textual.widgets import DataTable, Footer, Header, ProgressBar, Static
from textual.worker import Worker, WorkerState

from lc_console.salesforce.schema_diff import Kind, Plan, PlanItem, Status
from lc_console.screens.base import ConsoleScreen
from lc_console.screens.confirm_org_name import ConfirmOrgName
from lc_console.services import install as svc
from lc_console.services.install import Phase

# How a status reads in the table; the colour is a theme variable (themes/__init__.py).
STATUS_CELL = {
    Status.PRESENT: ("✓ present", "$lc-ok"),
    Status.MISSING: ("+ missing", "$lc-key"),
    Status.DIFFERENT: ("~ different", "$lc-warn"),
    Status.CONFLICT: ("✗ conflict", "$lc-fail"),
}

INSTALL_PHASES = (Phase.PLAN, Phase.VALIDATE, Phase.DEPLOY, Phase.ASSIGN, Phase.VERIFY)
REMOVE_PHASES = (Phase.PLAN, Phase.ASSIGN, Phase.REMOVE)
PHASE_TITLES = {
    Phase.PLAN: "Plan (read the org)",
    Phase.VALIDATE: "Validate (checkOnly deploy)",
    Phase.DEPLOY: "Deploy",
    Phase.ASSIGN: "Assign the permission set",
    Phase.VERIFY: "Verify field access",
    Phase.REMOVE: "Destructive deploy",
}
REMOVE_TITLES = {Phase.ASSIGN: "Remove permission set assignments"}


# Short kind names for the table (the detail pane below it names the kind in full).
SHORT_KIND = {
    Kind.OBJECT: "Object", Kind.EVENT: "Event", Kind.FIELD: "Field",
    Kind.BUSINESS_PROCESS: "Process", Kind.RECORD_TYPE: "Record type",
    Kind.PERMISSION_SET: "Perm. set", Kind.ASSIGNMENT: "Assignment",
}


def status_cell(status: Status) -> Content:
    text, var = STATUS_CELL[status]
    return Content.styled(text, var)


def plan_headline(plan: Plan, org: str, user: str) -> str:
    where = " · ".join(p for p in (org, user) if p)
    head = f"{where}: {plan.summary()}" if where else plan.summary()
    if plan.conflicts:
        return head + " Install stops until each conflict is decided (details below)."
    if not plan.can_customize and not plan.selection.is_empty():
        return head + " The connected user lacks Customize Application: install will stop."
    if plan.nothing_to_change:
        return head
    return head + " Press a to apply."


def item_detail(item: PlanItem) -> str:
    lines = [f"{item.kind.value} {item.name}: {item.status.value}",
             f"Needs: {item.expected}"]
    if item.found:
        lines.append(f"Found: {item.found}")
    if item.detail:
        lines.append(item.detail)
    return "\n".join(lines)


class PhaseList(Static):
    """One line per phase: done, running, failed or still to come."""

    def show(self, phases: tuple[Phase, ...], current: Phase | None, failed: Phase | None,
             done: set[Phase], titles: dict[Phase, str], finished: bool = False) -> None:
        parts = []
        for phase in phases:
            title = titles.get(phase, PHASE_TITLES[phase])
            if phase == failed:
                parts.append(Content.styled(f"✗ {title}", "$lc-fail"))
            elif phase in done:
                parts.append(Content.styled(f"✓ {title}", "$lc-ok"))
            elif phase == current and not finished:
                parts.append(Content.styled(f"… {title}", "bold"))
            elif finished and failed is None:
                parts.append(Content.styled(f"– {title} (not needed)", "$lc-muted"))
            else:
                parts.append(Content.styled(f"· {title}", "$lc-muted"))
        self.update(Content("\n").join(parts))


@dataclass(frozen=True)
class _Failed:
    message: str


class InstallScreen(ConsoleScreen):
    SCREEN_NAME = "Install"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("a", "apply", "Apply", tooltip="Install or repair what the plan lists "
                "(validated with checkOnly first)", id="install.apply"),
        Binding("r", "refresh", "Refresh plan", tooltip="Read the org's schema again",
                id="install.refresh"),
        Binding("x", "remove", "Remove…", tooltip="Delete every LostChurn component and its "
                "data (shows what, asks for the org name)", id="install.remove"),
    ]

    busy: reactive[bool] = reactive(False, bindings=True)
    # checkDeployStatus polling: every second at first, slowing to every 5 s.
    POLL: ClassVar[tuple[float, float]] = (1.0, 5.0)

    class ProgressUpdate(Message):
        def __init__(self, progress: svc.Progress) -> None:
            super().__init__()
            self.progress = progress

    def __init__(self, profile: str,
                 target_factory: Callable[[], svc.Target] | None = None) -> None:
        super().__init__(profile)
        self.target_factory = target_factory or partial(svc.target_for_profile, profile)
        self.plan: Plan | None = None
        self.items: list[PlanItem] = []
        self._phases: tuple[Phase, ...] = INSTALL_PHASES
        self._titles: dict[Phase, str] = {}
        self._done: set[Phase] = set()
        self._current: Phase | None = None

    # --- layout -------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield Header(icon="≡")
        with Vertical(id="install-body", classes="-loading"):
            yield Static("Reading the org's schema…", id="install-headline", markup=False)
            table: DataTable[object] = DataTable(id="install-plan", cursor_type="row",
                                                 zebra_stripes=True)
            yield table
            yield Static("", id="install-detail", markup=False)
            with VerticalScroll(id="install-result", classes="card") as result:
                result.border_title = "Result"
                yield Static("", id="install-result-message", markup=False)
                yield Static("", id="install-result-lines", markup=False)
            with Horizontal(id="install-run"):
                with Vertical(id="install-steps", classes="card") as steps:
                    steps.border_title = "Steps"
                    yield PhaseList(id="install-phases")
                with Vertical(id="install-progress-box", classes="card") as box:
                    box.border_title = "Progress"
                    yield Static("", id="install-progress-text", markup=False)
                    yield ProgressBar(id="install-progress", show_eta=False)
        yield Footer()

    def on_mount(self) -> None:
        self.action_refresh()

    def _set_mode(self, mode: str) -> None:
        """-loading | -plan | -running | -result | -error: which panels show (install.tcss)."""
        body = self.query_one("#install-body")
        for cls in ("-loading", "-plan", "-running", "-result", "-error"):
            body.set_class(cls == mode, cls)

    # --- actions ------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ("apply", "refresh", "remove") and self.busy:
            return None  # dimmed while the org is being changed
        if action == "apply" and self.plan is None:
            return None
        return True

    def action_refresh(self) -> None:
        self.busy = True
        self._set_mode("-loading")
        self.query_one("#install-headline", Static).update("Reading the org's schema…")
        self.load_plan()

    def action_apply(self) -> None:
        self.busy = True
        self._start_run(INSTALL_PHASES, {})
        self.run_install()

    def action_remove(self) -> None:
        self.busy = True
        self.query_one("#install-headline", Static).update(
            "Counting what removal would delete…")
        self.load_remove_preview()

    # --- workers ------------------------------------------------------------------------

    @work(thread=True, exclusive=True, group="install", exit_on_error=False,
          description="Reading the install plan")
    def load_plan(self) -> tuple[svc.Target, Plan] | _Failed:
        try:
            target = self.target_factory()
            return target, svc.plan(target)
        except Exception as exc:
            return _Failed(svc.error_message(exc))

    @work(thread=True, exclusive=True, group="install", exit_on_error=False,
          description="Installing the LostChurn schema")
    def run_install(self) -> svc.InstallResult:
        try:
            target = self.target_factory()
        except Exception as exc:
            return svc.InstallResult(svc.Outcome.ERROR, svc.error_message(exc))
        return svc.install(target, on_progress=self._post_progress, poll_interval=self.POLL[0],
                           max_poll_interval=self.POLL[1])

    @work(thread=True, exclusive=True, group="install", exit_on_error=False,
          description="Counting what removal deletes")
    def load_remove_preview(self) -> tuple[svc.Target, svc.RemovePreview] | _Failed:
        try:
            target = self.target_factory()
            return target, svc.remove_preview(target)
        except Exception as exc:
            return _Failed(svc.error_message(exc))

    @work(thread=True, exclusive=True, group="install", exit_on_error=False,
          description="Removing the LostChurn schema")
    def run_remove(self, target: svc.Target) -> svc.RemoveResult:
        return svc.remove(target, on_progress=self._post_progress, poll_interval=self.POLL[0],
                          max_poll_interval=self.POLL[1])

    def _post_progress(self, progress: svc.Progress) -> None:
        self.post_message(self.ProgressUpdate(progress))  # thread-safe

    # --- results ------------------------------------------------------------------------

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker.group != "install":
            return
        if event.state is WorkerState.ERROR:
            self.busy = False
            super().on_worker_state_changed(event)
            self._show_error(f"{event.worker.description} failed: {event.worker.error}")
            return
        if event.state is not WorkerState.SUCCESS:
            return
        result = event.worker.result
        if isinstance(result, _Failed):
            self.busy = False
            self._show_error(result.message)
        elif isinstance(result, svc.InstallResult):
            self.busy = False
            self._show_install_result(result)
        elif isinstance(result, svc.RemoveResult):
            self.busy = False
            self._show_remove_result(result)
        elif isinstance(result, tuple) and isinstance(result[1], Plan):
            self.busy = False
            self._show_plan(result[1], result[0])
        elif isinstance(result, tuple) and isinstance(result[1], svc.RemovePreview):
            self._confirm_remove(*result)

    def _show_error(self, message: str) -> None:
        self._set_mode("-error")
        self.query_one("#install-headline", Static).update(message)
        self.notify(message.splitlines()[0], severity="error", markup=False)

    def _fill_table(self, plan: Plan) -> None:
        self.plan = plan
        order = {Status.CONFLICT: 0, Status.DIFFERENT: 1, Status.MISSING: 2, Status.PRESENT: 3}
        self.items = sorted(plan.items, key=lambda i: order[i.status])  # stable: manifest order
        table = self.query_one("#install-plan", DataTable)
        table.clear(columns=True)
        # Widths from the content: the table may be hidden while it fills, and then never
        # measures its rows.
        table.add_column("Status", key="status", width=11)
        table.add_column("Kind", key="kind", width=11)
        # Capped so that Needs stays in view at 100 columns; the detail pane has it all.
        table.add_column("Component", key="name",
                         width=min(46, max(9, *(len(i.name) for i in self.items))))
        table.add_column("Needs", key="needs",
                         width=max(5, *(len(i.expected) for i in self.items)))
        for n, item in enumerate(self.items):
            table.add_row(status_cell(item.status), Content(SHORT_KIND[item.kind]),
                          Content(item.name), Content(item.expected), key=str(n))
        if self.items:
            table.move_cursor(row=0)
            self._show_detail(0)

    def _show_plan(self, plan: Plan, target: svc.Target) -> None:
        self._fill_table(plan)
        self.query_one("#install-headline", Static).update(
            plan_headline(plan, target.org_name, target.username))
        self._set_mode("-plan")
        self.refresh_bindings()

    @on(DataTable.RowHighlighted, "#install-plan")
    def _row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._show_detail(event.cursor_row)

    def _show_detail(self, row: int) -> None:
        if 0 <= row < len(self.items):
            self.query_one("#install-detail", Static).update(item_detail(self.items[row]))

    # --- progress -----------------------------------------------------------------------

    def _start_run(self, phases: tuple[Phase, ...], titles: dict[Phase, str]) -> None:
        self._phases, self._titles = phases, titles
        self._done, self._current = set(), None
        self._set_mode("-running")
        self.query_one("#install-progress-text", Static).update("Starting…")
        self.query_one("#install-progress", ProgressBar).update(total=None, progress=0)
        self._render_phases(None)

    def _render_phases(self, failed: Phase | None) -> None:
        self.query_one(PhaseList).show(self._phases, self._current, failed, self._done,
                                       self._titles)

    @on(ProgressUpdate)
    def _progress(self, message: ProgressUpdate) -> None:
        p = message.progress
        if self._current is not None and p.phase != self._current:
            self._done.add(self._current)
        self._current = p.phase
        self._render_phases(None)
        self.query_one("#install-progress-text", Static).update(p.message)
        bar = self.query_one("#install-progress", ProgressBar)
        if p.status is not None and p.status.total:
            bar.update(total=p.status.total, progress=p.status.deployed + p.status.errors)
        elif p.status is not None and p.status.finished:
            bar.update(total=1, progress=1)
        else:
            bar.update(total=None)
        if p.plan is not None:  # the plan being applied, computed just before any change
            self._fill_table(p.plan)
            self.query_one("#install-headline", Static).update(f"Applying: {p.plan.summary()}")

    def _finish(self, ok: bool, lines: list[str], failed_phase: Phase | None) -> None:
        if ok and self._current is not None:
            self._done.add(self._current)
        failed = None if ok else failed_phase or self._current
        self.query_one(PhaseList).show(self._phases, self._current, failed, self._done,
                                       self._titles, finished=True)
        self._set_mode("-result")
        result = self.query_one("#install-result")
        result.set_class(ok, "-ok")
        result.set_class(not ok, "-fail")
        self.query_one("#install-result-message", Static).update(lines[0])
        self.query_one("#install-result-lines", Static).update("\n".join(lines[1:]))
        self.notify(lines[0], severity="information" if ok else "error", markup=False,
                    title="Install" if self._phases is INSTALL_PHASES else "Remove")
        self.refresh_bindings()

    def _show_install_result(self, result: svc.InstallResult) -> None:
        failed = {svc.Outcome.VALIDATION_FAILED: Phase.VALIDATE, svc.Outcome.DEPLOY_FAILED: Phase.DEPLOY,
                  svc.Outcome.VERIFY_FAILED: Phase.VERIFY, svc.Outcome.CONFLICT: Phase.PLAN,
                  svc.Outcome.NO_PERMISSION: Phase.PLAN}.get(result.outcome)
        self.query_one("#install-headline", Static).update(
            "Install finished." if result.ok else "Install stopped.")
        lines = result.lines()
        if result.ok:
            lines.append("Press r to read the plan again.")
        self._finish(result.ok, lines, failed)

    # --- remove -------------------------------------------------------------------------

    def _confirm_remove(self, target: svc.Target, preview: svc.RemovePreview) -> None:
        if preview.nothing_installed:
            self.busy = False
            self.notify(preview.summary(), markup=False)
            self.query_one("#install-headline", Static).update(preview.summary())
            return
        if not target.org_name:
            self.busy = False
            self._show_error("The org's name is not known, so removal cannot be confirmed "
                             "here. Reconnect Salesforce (it records the name), or use "
                             "`lc-console install --remove --yes`.")
            return

        def answered(confirmed: bool | None) -> None:
            if confirmed:
                self._start_run(REMOVE_PHASES, REMOVE_TITLES)
                self.run_remove(target)
            else:
                self.busy = False
                self.query_one("#install-headline", Static).update(
                    "Removal cancelled: nothing was deleted.")
                self.notify("Removal cancelled: nothing was deleted.", markup=False)

        self.app.push_screen(ConfirmOrgName(
            target.org_name, title="Remove the LostChurn schema", lines=preview.lines()),
            answered)

    def _show_remove_result(self, result: svc.RemoveResult) -> None:
        self.query_one("#install-headline", Static).update(
            "Removal finished." if result.ok else "Removal stopped.")
        self.plan = None
        self._finish(result.ok, result.lines() + (["Press r to read the plan again."]
                                                  if result.ok else []), Phase.REMOVE)
