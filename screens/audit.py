"""Audit log: every write the console made for one record, found by email, Stripe id or
Salesforce id. Reads run in a thread worker over services/audit.py; `n` pages to older
writes by keyset."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.widgets import DataTable, Footer, Header, Input, Static
from textual.worker import Worker, WorkerState

from lc_console.screens.base import ConsoleScreen
from lc_console.services import audit as svc
from lc_console.store import AuditEntry, Store

WIDTHS = (19, 12, 24, 16, 9, 18, 20, 60)


@dataclass(frozen=True)
class _Found:
    term: str
    entries: list[AuditEntry]
    older: bool  # a page of older writes appended to the ones shown


@dataclass(frozen=True)
class _Failed:
    message: str


class AuditScreen(ConsoleScreen):
    SCREEN_NAME = "Audit log"
    COMPACT_FOOTER_BELOW = 100
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("slash", "search", "Search", tooltip="Search by email, Stripe id or "
                "Salesforce id", id="audit.search"),
        Binding("n", "older", "Older", tooltip="Load older writes for this search",
                id="audit.older"),
        Binding("g", "reload", "Reload", tooltip="Run the search again", id="audit.reload"),
    ]

    def __init__(self, profile: str, *, store_factory: Callable[[], Store] | None = None,
                 term: str = "") -> None:
        super().__init__(profile)
        self.store_factory = store_factory or (lambda: Store.for_profile(profile))
        self._store: Store | None = None
        self.term = term
        self.entries: list[AuditEntry] = []
        self.more = False

    def compose(self) -> ComposeResult:
        yield Header(icon="≡")
        with Vertical(id="audit-body", classes="-loading"):
            with Horizontal(id="audit-bar"):
                yield Input(self.term, placeholder="/ email, cus_…, evt_…, or a Salesforce id",
                            id="audit-search", compact=True)
            yield Static("Reading the audit log…", id="audit-headline", markup=False)
            table: DataTable[str] = DataTable(id="audit-table", cursor_type="row",
                                              zebra_stripes=True)
            yield table
            yield Static("", id="audit-detail", markup=False)
        yield Footer()

    def on_mount(self) -> None:
        super().on_mount()
        table = self.query_one(DataTable)
        for title, width in zip(svc.COLUMNS, WIDTHS, strict=True):
            table.add_column(title, width=width)
        self.query_one("#audit-search", Input).focus()
        self._search(self.term)

    def on_unmount(self) -> None:
        if self._store is not None:
            self._store.close()

    def store(self) -> Store:
        if self._store is None:
            self._store = self.store_factory()
        return self._store

    def _search(self, term: str, before_id: int | None = None) -> None:
        self.term = term
        self._state("-loading")
        if before_id is None:
            self.query_one("#audit-headline", Static).update("Reading the audit log…")
        self.read(term, before_id)

    @work(thread=True, exclusive=True, group="audit", exit_on_error=False,
          description="Reading the audit log")
    def read(self, term: str, before_id: int | None) -> _Found | _Failed:
        try:
            entries = svc.search(self.store(), term, before_id=before_id)
            return _Found(term, entries, before_id is not None)
        except Exception as exc:
            return _Failed(f"Cannot read the audit log: {exc}")

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker.group != "audit":
            return
        if event.state is WorkerState.ERROR:
            super().on_worker_state_changed(event)
            return
        if event.state is not WorkerState.SUCCESS:
            return
        result = event.worker.result
        if isinstance(result, _Failed):
            self._state("-error")
            self.query_one("#audit-headline", Static).update(result.message)
        elif isinstance(result, _Found):
            self._show(result)

    def _show(self, found: _Found) -> None:
        table = self.query_one(DataTable)
        if not found.older:
            self.entries = []
            table.clear()
        self.entries += found.entries
        self.more = len(found.entries) == svc.PAGE_SIZE
        with self.app.batch_update():
            for e in found.entries:
                table.add_row(*svc.row(e), key=str(e.id))
        self.query_one("#audit-headline", Static).update(
            svc.headline(found.term, self.entries, self.more))
        self._state("-found" if self.entries else "-empty")
        self._detail()
        self.refresh_bindings()

    def _state(self, state: str) -> None:
        body = self.query_one("#audit-body")
        for cls in ("-loading", "-found", "-empty", "-error"):
            body.set_class(cls == state, cls)

    @on(DataTable.RowHighlighted)
    def _detail(self) -> None:
        detail = self.query_one("#audit-detail", Static)
        row = self.query_one(DataTable).cursor_row
        if not self.entries or not 0 <= row < len(self.entries):
            detail.update("")
            return
        e = self.entries[row]
        lines = [f"{svc.when(e.at)} UTC · {e.object} · {e.action} · {e.outcome}"]
        ids = [f"record {e.external_key}" if e.external_key else "",
               f"Salesforce {e.salesforce_id}" if e.salesforce_id else "",
               f"Stripe event {e.stripe_event_id}" if e.stripe_event_id else "",
               f"customer {e.customer_id}" if e.customer_id else ""]
        lines.append(" · ".join(i for i in ids if i))
        if e.detail:
            lines.append(e.detail)
        detail.update("\n".join(lines))

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "older" and not self.more:
            return None
        return True

    def action_search(self) -> None:
        self.query_one("#audit-search", Input).focus()

    @on(Input.Submitted, "#audit-search")
    def _submitted(self, event: Input.Submitted) -> None:
        self._search(event.value)
        if self.query_one(DataTable).row_count:
            self.query_one(DataTable).focus()

    def action_older(self) -> None:
        if self.entries and self.more:
            self._search(self.term, before_id=self.entries[-1].id)

    def action_reload(self) -> None:
        self._search(self.term)

    def key_escape(self) -> None:
        if self.query_one("#audit-search", Input).has_focus:
            self.query_one(DataTable).focus()
