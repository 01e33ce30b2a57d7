"""Failures: the records Salesforce refused, with its answer; retry or discard them.

The table holds one page (PAGE_SIZE rows) read by keyset from the state database, so 100,000
failed records open and page as fast as 100 (bench/bench_console.py measures it). Reads,
retries and discards run in thread workers over services/failure_view.py and
services/failures.py; results come back as worker-state messages.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.reactive import reactive
from textual.screen import ModalScreen
from textual.widgets import Button, DataTable, Footer, Header, Input, Label, Static
from textual.worker import Worker, WorkerState

from lc_console.screens.base import ConsoleScreen
from lc_console.services import failure_view as view
from lc_console.services import failures as svc
from lc_console.store import ACTIVE_FAILURE_STATUSES, Failure, Store

# The message goes last: it is the column a narrow terminal cuts (the pane below shows it all).
COLUMNS = (("", 1), ("Object", 12), ("Key", 22), ("Code", 18), ("Att.", 4), ("Last seen", 11),
           ("Message", 70))


class DiscardReason(ModalScreen[str | None]):
    """Ask why records are discarded; a reason is required (it goes to the audit log)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel", tooltip="Keep the records", id="discard.cancel"),
    ]

    def __init__(self, what: str) -> None:
        super().__init__()
        self.what = what

    def compose(self) -> ComposeResult:
        with Vertical(id="discard-box") as box:
            box.border_title = "Discard"
            box.border_subtitle = "esc cancels"
            yield Static(f"Discard {self.what}? They will not be retried; the reason is kept "
                         "in the audit log.", id="discard-what", markup=False)
            yield Label("Reason:")
            yield Input(placeholder="e.g. duplicate contact merged by sales", id="discard-input")
            yield Static("", id="discard-error", markup=False)
            with Horizontal(id="discard-buttons"):
                yield Button("Discard", variant="error", id="discard-yes")
                yield Button("Cancel", id="discard-no")

    def on_mount(self) -> None:
        self.query_one("#discard-error").display = False
        self.query_one(Input).focus()

    def _submit(self) -> None:
        reason = self.query_one(Input).value.strip()
        if not reason:
            error = self.query_one("#discard-error", Static)
            error.update("A reason is required: say why these records need no retry.")
            error.display = True
            return
        self.dismiss(reason)

    @on(Input.Changed, "#discard-input")
    def _changed(self) -> None:
        self.query_one("#discard-error").display = False

    @on(Input.Submitted, "#discard-input")
    def _submitted(self) -> None:
        self._submit()

    @on(Button.Pressed, "#discard-yes")
    def _yes(self) -> None:
        self._submit()

    @on(Button.Pressed, "#discard-no")
    def _no(self) -> None:
        self.dismiss(None)

    def action_cancel(self) -> None:
        self.dismiss(None)


@dataclass(frozen=True)
class _Failed:
    message: str


@dataclass(frozen=True)
class _Discarded:
    count: int


class FailuresScreen(ConsoleScreen):
    SCREEN_NAME = "Failures"
    COMPACT_FOOTER_BELOW = 120
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("slash", "filter", "Filter", tooltip="Filter by code:, object:, status: or key",
                id="failures.filter"),
        Binding("space", "toggle_select", "Select", tooltip="Select or unselect this record",
                id="failures.select"),
        Binding("r", "retry", "Retry", tooltip="Write the selected records (or this one) "
                "to Salesforce again", id="failures.retry"),
        Binding("R", "retry_code", "Retry code", tooltip="Retry every open record with this "
                "record's error code", id="failures.retry_code"),
        Binding("x", "discard", "Discard…", tooltip="Stop retrying the selected records (or "
                "this one); asks for a reason", id="failures.discard"),
        Binding("n", "page(1)", "Next page", tooltip="Show the next page of records",
                id="failures.next"),
        Binding("p", "page(-1)", "Prev page", tooltip="Show the previous page of records",
                id="failures.prev", show=False),
        Binding("g", "reload", "Reload", tooltip="Read the failed records again",
                id="failures.reload", show=False),
    ]

    busy: reactive[bool] = reactive(False, bindings=True)

    def __init__(self, profile: str, *, store_factory: Callable[[], Store] | None = None,
                 runner_factory: Callable[[], svc.Runner] | None = None) -> None:
        super().__init__(profile)
        self.store_factory = store_factory or (lambda: Store.for_profile(profile))
        self.runner_factory = runner_factory or (lambda: svc.runner_for_profile(profile))
        self._store: Store | None = None
        self.filter = view.ParsedFilter()
        self.page: view.Page | None = None
        self.selected: set[int] = set()

    # --- layout -------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield Header(icon="≡")
        with Vertical(id="failures-body"):
            with Horizontal(id="failures-bar"):
                yield Input(placeholder="/ filter: code:CODE object:Contact status:all key…",
                            id="failures-filter", compact=True)
                yield Static("", id="failures-position", markup=False)
            yield Static("", id="failures-message", markup=False)
            table: DataTable[str] = DataTable(id="failures-table", cursor_type="row",
                                              zebra_stripes=True)
            yield table
            yield Static("", id="failures-summary", markup=False)
            with Horizontal(id="failures-detail"):
                with VerticalScroll(id="failures-payload-box", classes="card") as box:
                    box.border_title = "Payload"
                    yield Static("", id="failures-payload", markup=False)
                with VerticalScroll(id="failures-answer-box", classes="card") as box:
                    box.border_title = "Salesforce's answer"
                    yield Static("", id="failures-answer", markup=False)
        yield Footer()

    def on_mount(self) -> None:
        super().on_mount()
        table = self.query_one(DataTable)
        for title, width in COLUMNS:
            table.add_column(title, width=width, key=title or "mark")
        table.focus()
        self._show_detail()
        self._load(0)

    def on_unmount(self) -> None:
        if self._store is not None:
            self._store.close()

    def store(self) -> Store:
        # Opened by the first worker (never on the UI thread: the file may need migrating).
        if self._store is None:
            self._store = self.store_factory()
        return self._store

    # --- reading ------------------------------------------------------------------------

    def _load(self, number: int) -> None:
        starts = self.page.starts if self.page is not None else (None,)
        self._message("Reading failed records…", "-loading")
        self.read_page(self.filter, number, starts)

    @work(thread=True, exclusive=True, group="failures-read", exit_on_error=False,
          description="Reading failed records")
    def read_page(self, flt: view.ParsedFilter, number: int,
                  starts: tuple[int | None, ...]) -> view.Page | _Failed:
        try:
            return view.read_page(self.store(), flt, number=number, starts=starts)
        except Exception as exc:
            return _Failed(f"Cannot read the failed records: {exc}")

    def _show_page(self, page: view.Page) -> None:
        self.page = page
        table = self.query_one(DataTable)
        keep = table.cursor_row
        with self.app.batch_update():
            table.clear()
            for f in page.rows:
                table.add_row(*self._cells(f), key=str(f.id))
        if page.rows:
            table.move_cursor(row=min(keep, len(page.rows) - 1))
        self.query_one("#failures-position", Static).update(page.position())
        if page.total:
            self._message("", "")
        elif self.filter.text:
            self._message(f"No failed records match ({self.filter.describe()}).", "-empty")
        else:
            self._message("No failed records. What Salesforce refuses during a sync lands "
                          "here with its answer, for retry or discard.", "-empty")
        self._show_detail()

    def _cells(self, f: Failure) -> tuple[str, ...]:
        return ("●" if f.id in self.selected else "", view.short_object(f.object),
                view.one_line(f.key, 22), view.one_line(f.error_code, 18), str(f.attempts),
                view.when(f.last_seen, short=True), view.one_line(f.message, 70))

    def _message(self, text: str, state: str) -> None:
        message = self.query_one("#failures-message", Static)
        message.update(text)
        message.display = bool(text)
        body = self.query_one("#failures-body")
        for cls in ("-loading", "-empty", "-error"):
            body.set_class(cls == state, cls)

    def current(self) -> Failure | None:
        if self.page is None or not self.page.rows:
            return None
        row = self.query_one(DataTable).cursor_row
        return self.page.rows[row] if 0 <= row < len(self.page.rows) else None

    @on(DataTable.RowHighlighted)
    def _highlighted(self) -> None:
        self._show_detail()

    def _show_detail(self) -> None:
        f = self.current()
        summary = self.query_one("#failures-summary", Static)
        detail = self.query_one("#failures-detail")
        summary.display = detail.display = f is not None
        if f is None:
            return
        summary.update(view.detail_text(f))
        self.query_one("#failures-payload", Static).update(view.pretty(f.payload))
        self.query_one("#failures-answer", Static).update(view.pretty(f.salesforce_response))

    # --- actions ------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ("retry", "retry_code", "discard"):
            f = self.current()
            if self.busy or f is None:
                return None
            if action != "retry_code" and not self.selected and \
                    f.status not in ACTIVE_FAILURE_STATUSES:
                return None
        if action == "page" and self.page is None:
            return None
        if action == "page" and parameters and self.page is not None:
            step = int(str(parameters[0]))
            target = self.page.number + step
            return None if target < 0 or target >= self.page.pages else True
        if action == "toggle_select" and self.current() is None:
            return None
        return True

    def action_filter(self) -> None:
        self.query_one("#failures-filter", Input).focus()

    @on(Input.Submitted, "#failures-filter")
    def _filter_submitted(self, event: Input.Submitted) -> None:
        try:
            self.filter = view.parse_filter(event.value)
        except view.FilterError as exc:
            self.notify(str(exc), title="Filter", severity="error", markup=False)
            return
        self.selected.clear()
        self.page = None
        self.query_one(DataTable).focus()
        self._load(0)

    def key_escape(self) -> None:
        if self.query_one("#failures-filter", Input).has_focus:
            self.query_one(DataTable).focus()

    def action_page(self, step: int) -> None:
        if self.page is not None:
            self._load(max(0, self.page.number + int(step)))

    def action_reload(self) -> None:
        self._load(self.page.number if self.page else 0)

    def action_toggle_select(self) -> None:
        f = self.current()
        if f is None:
            return
        self.selected.symmetric_difference_update({f.id})
        table = self.query_one(DataTable)
        table.update_cell(str(f.id), "mark", "●" if f.id in self.selected else "")
        self.refresh_bindings()

    def _targets(self) -> list[int]:
        if self.selected:
            return sorted(self.selected, reverse=True)
        f = self.current()
        return [f.id] if f is not None else []

    def _what(self, ids: list[int]) -> str:
        if len(ids) == 1:
            f = self.current()
            if f is not None and f.id == ids[0]:
                return f"{f.object} {f.key}"
            return "1 record"
        return f"{len(ids):,} records"

    def action_retry(self) -> None:
        ids = self._targets()
        if ids:
            self.busy = True
            self.notify(f"Retrying {self._what(ids)}…", markup=False)
            self.run_retry(ids, None)

    def action_retry_code(self) -> None:
        f = self.current()
        if f is not None:
            self.busy = True
            self.notify(f"Retrying every open {f.error_code} record…", markup=False)
            self.run_retry([], f.error_code)

    def action_discard(self) -> None:
        ids = self._targets()
        if not ids:
            return

        def done(reason: str | None) -> None:
            if reason:
                self.busy = True
                self.run_discard(ids, reason)

        self.app.push_screen(DiscardReason(self._what(ids)), done)

    @work(thread=True, exclusive=True, group="failures-act", exit_on_error=False,
          description="Retrying failed records")
    def run_retry(self, ids: list[int], code: str | None) -> svc.RetryResult | _Failed:
        try:
            store = self.store()
            if code is not None:
                ids = svc.active_ids(store, error_code=code)
            return svc.retry(store, ids, self.runner_factory())
        except Exception as exc:
            from lc_console.services.install import error_message

            return _Failed(f"Retry stopped: {error_message(exc)}")

    @work(thread=True, exclusive=True, group="failures-act", exit_on_error=False,
          description="Discarding failed records")
    def run_discard(self, ids: list[int], reason: str) -> _Discarded | _Failed:
        try:
            return _Discarded(svc.discard(self.store(), ids, reason))
        except Exception as exc:
            return _Failed(f"Discard failed: {exc}")

    # --- results ------------------------------------------------------------------------

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker.group not in ("failures-read", "failures-act"):
            return
        if event.state is WorkerState.ERROR:
            self.busy = False
            super().on_worker_state_changed(event)
            return
        if event.state is not WorkerState.SUCCESS:
            return
        result = event.worker.result
        if event.worker.group == "failures-read":
            if isinstance(result, _Failed):
                self._message(result.message, "-error")
            elif isinstance(result, view.Page):
                self._show_page(result)
            return
        self.busy = False
        if isinstance(result, _Failed):
            self.notify(result.message, severity="error", markup=False)
        elif isinstance(result, svc.RetryResult):
            severity = "information" if not (result.failed or result.skipped) else "warning"
            self.notify(result.summary(), severity=severity, markup=False)
            self.selected.clear()
        elif isinstance(result, _Discarded):
            noun = "record" if result.count == 1 else "records"
            self.notify(f"Discarded {result.count:,} {noun}.", markup=False)
            self.selected.clear()
        self.action_reload()
