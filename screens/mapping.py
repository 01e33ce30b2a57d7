"""Field mapping and conflicts: source value -> Salesforce Object.Field, direction and policy;
the stage mapping, the free-mail domains and the thresholds. Edited in place, checked offline
at once and against the org's describe on `v` (thread worker), saved to settings on ctrl+s.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Grid, Horizontal, Vertical, VerticalScroll
from textual.content import Content
from textual.widgets import (
    DataTable,
    Footer,
    Header,
    Input,
    Label,
    Static,
    TabbedContent,
    TabPane,
    TextArea,
)
from textual.worker import Worker, WorkerState

from lc_console import settings
from lc_console.screens.base import ConsoleScreen
from lc_console.services import mapping as svc
from lc_console.settings import RECOVERY_STATUSES, SettingsError

THRESHOLDS = (
    ("throttle", "Throttle at % of the daily API limit", "throttle_percent"),
    ("clv-high", "CLV high tier from", "clv_high"),
    ("clv-mid", "CLV mid tier from", "clv_mid"),
    ("lifespan", "Customer lifespan (months)", "lifespan_months"),
)


@dataclass(frozen=True)
class _Described:
    describe: svc.Describe | None
    note: str


class MappingScreen(ConsoleScreen):
    SCREEN_NAME = "Field mapping"
    COMPACT_FOOTER_BELOW = 110
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "edit", "Edit target", tooltip="Change the Salesforce field of this "
                "value", id="mapping.edit", show=True),
        Binding("p", "policy", "Policy", tooltip="Cycle the conflict policy (lostchurn_wins, "
                "salesforce_wins, fill_if_empty where allowed)", id="mapping.policy"),
        Binding("v", "validate", "Check org", tooltip="Check every target against the org's "
                "describe (exists, right type)", id="mapping.validate"),
        Binding("ctrl+s", "save", "Save", tooltip="Validate and write the settings",
                id="mapping.save"),
        Binding("escape", "cancel_edit", "Cancel edit", show=False, id="mapping.cancel"),
        Binding("escape", "close", "Back", tooltip="Back to the setup wizard",
                id="mapping.close"),
    ]

    def __init__(self, profile: str, *,
                 describe_factory: Callable[[svc.Draft], svc.Describe] | None = None) -> None:
        super().__init__(profile)
        self.describe_factory = describe_factory or (
            lambda draft: svc.describe_for_profile(profile, draft))
        self.draft: svc.Draft | None = None
        self.describe: svc.Describe | None = None
        self.editing: str | None = None
        self.dirty = False

    # --- layout -------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield Header(icon="≡")
        with Vertical(id="mapping-body"):
            yield Static("", id="mapping-status", markup=False)
            with TabbedContent(id="mapping-tabs"):
                with TabPane("Fields", id="tab-fields"):
                    table: DataTable[Any] = DataTable(id="mapping-table", cursor_type="row",
                                                      zebra_stripes=True)
                    yield table
                    with Horizontal(id="mapping-edit-bar"):
                        yield Label("", id="mapping-edit-label")
                        yield Input(id="mapping-edit", compact=True)
                    yield Static("", id="mapping-detail", markup=False)
                with TabPane("Stages", id="tab-stages"):
                    with VerticalScroll():
                        yield Static("Opportunity stage for each recovery status (checked "
                                     "against the org's StageName picklist on v).",
                                     classes="mapping-help", markup=False)
                        with Grid(classes="mapping-form"):
                            for status in RECOVERY_STATUSES:
                                yield Label(status)
                                yield Input(id=f"stage-{status}", compact=True)
                with TabPane("Free mail", id="tab-freemail"):
                    yield Static("Domains that never become an Account (one per line).",
                                 classes="mapping-help", markup=False)
                    yield TextArea(id="mapping-freemail", soft_wrap=False)
                with TabPane("Thresholds", id="tab-thresholds"):
                    with VerticalScroll():
                        with Grid(classes="mapping-form"):
                            for key, label, _ in THRESHOLDS:
                                yield Label(label)
                                yield Input(id=f"threshold-{key}", compact=True)
            yield Static("", id="mapping-problems", markup=False)
        yield Footer()

    def on_mount(self) -> None:
        super().on_mount()
        table = self.query_one(DataTable)
        for title, width in (("Source", 20), ("Dir.", 4), ("Salesforce field", 32),
                             ("Policy", 15), ("Check", 40)):
            table.add_column(title, width=width, key=title)
        self.query_one("#mapping-edit-bar").display = False
        try:
            self.draft = svc.Draft.from_settings(settings.load(self.profile))
        except SettingsError as exc:
            self._status(f"Cannot edit the mapping: {exc}", "-error")
            return
        self._fill()
        self._recheck()
        self._status("Not checked against the org yet: press v (Check org). Offline checks "
                     "run as you edit.", "")
        table.focus()

    def _fill(self) -> None:
        draft = self.draft
        assert draft is not None
        table = self.query_one(DataTable)
        table.clear()
        for source, rule in draft.fields.items():
            table.add_row(source, "→", rule.target, rule.policy, "", key=source)
        for status in RECOVERY_STATUSES:
            self.query_one(f"#stage-{status}", Input).value = draft.stage_mapping.get(status, "")
        self.query_one(TextArea).text = "\n".join(draft.free_mail_domains)
        for key, _, attr in THRESHOLDS:
            value = getattr(draft, attr)
            text = f"{value:g}" if isinstance(value, float) else str(value)
            self.query_one(f"#threshold-{key}", Input).value = text

    def _status(self, text: str, state: str) -> None:
        self.query_one("#mapping-status", Static).update(text)
        body = self.query_one("#mapping-body")
        for cls in ("-error", "-ok", "-warn"):
            body.set_class(cls == state, cls)

    # --- checks -------------------------------------------------------------------------

    def _recheck(self) -> None:
        draft = self.draft
        if draft is None:
            return
        checks = svc.check_against(draft, self.describe)
        table = self.query_one(DataTable)
        bad = 0
        with self.app.batch_update():
            for source, check in checks.items():
                if check.ok is False:
                    bad += 1
                    cell = Content.styled(f"✗ {check.text}", "$lc-fail")
                elif check.ok:
                    cell = Content.styled("✓ ok", "$lc-ok")
                else:
                    cell = Content.styled("– offline", "$lc-muted")
                table.update_cell(source, "Check", cell)
        draft.checks = checks
        lines = []
        if bad:
            lines.append(f"✗ {bad} field{'s' if bad != 1 else ''} to fix before saving")
        lines += svc.stage_problems(draft, self.describe)
        self.query_one("#mapping-problems", Static).update(" · ".join(lines))
        self._show_detail()

    @on(DataTable.RowHighlighted)
    def _show_detail(self) -> None:
        draft = self.draft
        if draft is None:
            return
        source = self._current()
        if source is None:
            return
        rule = draft.fields[source]
        allowed = ", ".join(svc.allowed_policies(source))
        need = svc.value_type(source)
        check = draft.checks.get(source)
        self.query_one("#mapping-detail", Static).update(
            f"{source} ({need}) {svc.DIRECTION} {rule.target} · {rule.policy} · "
            f"allowed: {allowed}\nCheck: {check.text if check else 'not run'}")

    def _current(self) -> str | None:
        table = self.query_one(DataTable)
        if not table.row_count:
            return None
        return str(table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value)

    # --- editing ------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if self.draft is None and action in ("edit", "policy", "validate", "save"):
            return None
        if action in ("edit", "policy"):
            return self.query_one(TabbedContent).active == "tab-fields" and self.editing is None
        if action == "cancel_edit":
            return self.editing is not None
        if action == "close":
            # Only when opened over another screen (the wizard), never as a mode's base.
            return self.editing is None and len(self.app.screen_stack) > 1 and \
                self.app.screen is self
        return True

    @on(DataTable.RowSelected, "#mapping-table")
    def _row_selected(self) -> None:
        # The table takes enter itself (select the row); selecting a row edits it.
        if self.editing is None:
            self.action_edit()

    def action_edit(self) -> None:
        source = self._current()
        if source is None or self.draft is None:
            return
        self.editing = source
        bar = self.query_one("#mapping-edit-bar")
        bar.display = True
        self.query_one("#mapping-edit-label", Label).update(f"{source} → ")
        edit = self.query_one("#mapping-edit", Input)
        edit.value = self.draft.fields[source].target
        edit.focus()
        self.refresh_bindings()

    @on(Input.Submitted, "#mapping-edit")
    def _edited(self, event: Input.Submitted) -> None:
        if self.draft is None or self.editing is None:
            return
        source = self.editing
        self.draft.set_target(source, event.value)
        self.query_one(DataTable).update_cell(source, "Salesforce field",
                                              self.draft.fields[source].target)
        self._changed()
        self.action_cancel_edit()

    def action_cancel_edit(self) -> None:
        self.editing = None
        self.query_one("#mapping-edit-bar").display = False
        self.query_one(DataTable).focus()
        self.refresh_bindings()

    def action_close(self) -> None:
        self.dismiss()

    def action_policy(self) -> None:
        source = self._current()
        if source is None or self.draft is None:
            return
        policy = self.draft.next_policy(source)
        self.query_one(DataTable).update_cell(source, "Policy", policy)
        self._changed()

    def _changed(self) -> None:
        self.dirty = True
        self._recheck()
        self._status("Unsaved changes: ctrl+s saves (after the checks pass).", "-warn")

    @on(Input.Changed, ".mapping-form Input")
    @on(TextArea.Changed)
    def _form_changed(self) -> None:
        if self.draft is not None and self.is_mounted and self._read_forms(quiet=True):
            if self._form_differs():
                self.dirty = True
                self._status("Unsaved changes: ctrl+s saves (after the checks pass).", "-warn")

    def _form_differs(self) -> bool:
        try:
            saved = svc.Draft.from_settings(settings.load(self.profile))
        except SettingsError:
            return True
        d = self.draft
        assert d is not None
        return (d.stage_mapping, d.free_mail_domains, d.throttle_percent, d.clv_high,
                d.clv_mid, d.lifespan_months) != (
            saved.stage_mapping, saved.free_mail_domains, saved.throttle_percent,
            saved.clv_high, saved.clv_mid, saved.lifespan_months)

    def _read_forms(self, *, quiet: bool = False) -> bool:
        """Copy the Stages, Free mail and Thresholds tabs into the draft."""
        draft = self.draft
        assert draft is not None
        for status in RECOVERY_STATUSES:
            draft.stage_mapping[status] = self.query_one(f"#stage-{status}", Input).value.strip()
        domains = [d.strip().lower() for d in self.query_one(TextArea).text.splitlines()]
        draft.free_mail_domains = [d for d in domains if d]
        for key, label, attr in THRESHOLDS:
            text = self.query_one(f"#threshold-{key}", Input).value.strip()
            try:
                value: float | int = int(text) if attr in ("throttle_percent",
                                                           "lifespan_months") else float(text)
            except ValueError:
                if not quiet:
                    self.notify(f"{label}: {text!r} is not a number.", severity="error",
                                markup=False)
                return False
            setattr(draft, attr, value)
        return True

    # --- org check and save -------------------------------------------------------------

    def action_validate(self) -> None:
        if self.draft is None:
            return
        self._status("Reading the org's describe…", "")
        self.read_describe(self.draft)

    @work(thread=True, exclusive=True, group="mapping", exit_on_error=False,
          description="Checking the mapping against the org")
    def read_describe(self, draft: svc.Draft) -> _Described:
        try:
            return _Described(self.describe_factory(draft), "")
        except Exception as exc:
            from lc_console.services.install import error_message

            return _Described(None, error_message(exc))

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker.group != "mapping":
            return
        if event.state is WorkerState.ERROR:
            super().on_worker_state_changed(event)
            return
        if event.state is not WorkerState.SUCCESS:
            return
        result = event.worker.result
        if not isinstance(result, _Described):
            return
        if result.describe is None:
            self.describe = None
            self._recheck()
            self._status(f"Checked offline only: {result.note}", "-warn")
            return
        self.describe = result.describe
        self._recheck()
        assert self.draft is not None
        bad = sum(1 for c in self.draft.checks.values() if c.ok is False)
        stage = svc.stage_problems(self.draft, self.describe)
        if bad or stage:
            self._status(f"Checked against the org: {bad + len(stage)} to fix (✗ below).",
                         "-error")
        else:
            self._status("Checked against the org: every target exists with a fitting type.",
                         "-ok")

    def action_save(self) -> None:
        if self.draft is None or not self._read_forms():
            return
        flagged = [s for s, c in svc.check_against(self.draft, self.describe).items()
                   if c.ok is False]
        if flagged:
            check = self.draft.checks.get(flagged[0]) or svc.Check(False, "")
            self.notify(f"Not saved: {flagged[0]}: {check.text}. Fix the ✗ rows first.",
                        severity="error", markup=False)
            return
        problems = svc.list_problems(self.draft) + svc.stage_problems(self.draft, self.describe)
        if problems:
            self.notify(f"Not saved: {problems[0]}", severity="error", markup=False)
            return
        try:
            svc.save(self.profile, self.draft)
        except (SettingsError, ValueError, OSError) as exc:
            self.notify(f"Not saved: {exc}", severity="error", markup=False)
            return
        self.dirty = False
        self._status("Saved. The sync uses the new mapping from its next batch.", "-ok")
        self.notify("Field mapping saved.")
