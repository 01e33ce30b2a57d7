"""Disconnect / cleanup: keep or remove the LostChurn metadata (with what removal deletes),
revoke the Salesforce tokens, delete the keyring secrets and optionally the local state, then
a summary of what was done. Removal asks for the org name (ConfirmOrgName); the work runs in
a thread worker over services/disconnect.py and reports each step as a message."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.reactive import reactive
from textual.screen import ModalScreen
from textual.widgets import Button, Checkbox, Footer, Header, RadioButton, RadioSet, Static
from textual.worker import Worker, WorkerState

from lc_console import settings
from lc_console.screens.base import ConsoleScreen
from lc_console.screens.confirm_org_name import ConfirmOrgName
from lc_console.services import disconnect as svc
from lc_console.services import install


class ConfirmDisconnect(ModalScreen[bool]):
    """Yes / no for a disconnect that keeps the metadata (nothing in the org is deleted)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "dismiss(False)", "Cancel", id="disconnect.confirm_cancel"),
    ]

    def __init__(self, lines: list[str]) -> None:
        super().__init__()
        self.lines = lines

    def compose(self) -> ComposeResult:
        with Vertical(id="disconnect-confirm-box") as box:
            box.border_title = "Disconnect"
            box.border_subtitle = "esc cancels"
            for line in self.lines:
                yield Static(line, classes="confirm-line", markup=False)
            with Horizontal(id="disconnect-confirm-buttons"):
                yield Button("Disconnect", variant="warning", id="disconnect-yes")
                yield Button("Cancel", id="disconnect-no")

    def on_mount(self) -> None:
        self.query_one("#disconnect-no", Button).focus()

    @on(Button.Pressed, "#disconnect-yes")
    def _yes(self) -> None:
        self.dismiss(True)

    @on(Button.Pressed, "#disconnect-no")
    def _no(self) -> None:
        self.dismiss(False)


@dataclass(frozen=True)
class _Preview:
    preview: install.RemovePreview | None
    error: str = ""


class DisconnectScreen(ConsoleScreen):
    SCREEN_NAME = "Disconnect"
    COMPACT_FOOTER_BELOW = 100
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("k", "choose('keep')", "Keep metadata", tooltip="Leave the LostChurn objects, "
                "fields and data in the org", id="disconnect.keep"),
        Binding("x", "choose('remove')", "Remove metadata", tooltip="Delete the LostChurn "
                "objects and fields with their data (shows how many records)",
                id="disconnect.remove"),
        Binding("s", "toggle_state", "Local state", tooltip="Also delete the local state "
                "(cursor, failures, audit log)", id="disconnect.state"),
        Binding("D", "disconnect", "Disconnect…", tooltip="Revoke the tokens and delete the "
                "secrets (asks first)", id="disconnect.run"),
    ]

    busy: reactive[bool] = reactive(False, bindings=True)

    class StepDone(Message):
        def __init__(self, step: svc.Step) -> None:
            super().__init__()
            self.step = step

    def __init__(self, profile: str, *,
                 target_factory: Callable[[], install.Target] | None = None,
                 poll: tuple[float, float] = (1.0, 5.0)) -> None:
        super().__init__(profile)
        self.target_factory = target_factory
        self.poll = poll
        self.preview: install.RemovePreview | None = None
        self.finished = False

    def compose(self) -> ComposeResult:
        yield Header(icon="≡")
        with VerticalScroll(id="disconnect-body"):
            yield Static("", id="disconnect-who", markup=False)
            with Vertical(classes="card", id="disconnect-choices") as card:
                card.border_title = "What to do"
                with RadioSet(id="disconnect-metadata"):
                    yield RadioButton("Keep the LostChurn metadata (objects, fields and their "
                                      "data stay in the org)", value=True, id="choice-keep")
                    yield RadioButton("Remove the LostChurn metadata and its data",
                                      id="choice-remove")
                yield Checkbox("Also delete the local state (cursor, journal, failures, audit "
                               "log)", id="disconnect-state")
                yield Static("Always: revoke the Salesforce tokens at Salesforce and delete "
                             "this profile's secrets from the keyring.", classes="hint",
                             markup=False)
            yield Static("", id="disconnect-preview", markup=False)
            with Vertical(classes="card", id="disconnect-summary") as summary:
                summary.border_title = "Summary"
                yield Static("", id="disconnect-steps", markup=False)
        yield Footer()

    def on_mount(self) -> None:
        super().on_mount()
        org = svc.org_name(self.profile)
        try:
            user = settings.load(self.profile).salesforce.username
        except settings.SettingsError:
            user = ""
        who = f"Org {org}" + (f" · {user}" if user else "") if org else \
            "No Salesforce org is connected; disconnecting deletes the secrets that are left."
        self.query_one("#disconnect-who", Static).update(who)
        self.query_one("#disconnect-preview").display = False
        self.query_one("#disconnect-summary").display = False

    def _removing(self) -> bool:
        return self.query_one("#choice-remove", RadioButton).value

    # --- choices ------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ("choose", "toggle_state", "disconnect") and (self.busy or self.finished):
            return None
        return True

    def action_choose(self, which: str) -> None:
        self.query_one(f"#choice-{which}", RadioButton).value = True

    def action_toggle_state(self) -> None:
        box = self.query_one("#disconnect-state", Checkbox)
        box.value = not box.value

    @on(RadioSet.Changed, "#disconnect-metadata")
    def _metadata_changed(self) -> None:
        preview = self.query_one("#disconnect-preview", Static)
        if not self._removing():
            preview.display = False
            return
        preview.display = True
        preview.set_classes("")
        if self.preview is None:
            preview.update("Counting what removal deletes…")
            self.busy = True
            self.load_preview()
        else:
            self._show_preview(self.preview)

    @work(thread=True, exclusive=True, group="disconnect-preview", exit_on_error=False,
          description="Counting what removal deletes")
    def load_preview(self) -> _Preview:
        try:
            target = self.target_factory() if self.target_factory else None
            return _Preview(svc.preview(self.profile, target))
        except Exception as exc:
            return _Preview(None, install.error_message(exc))

    def _show_preview(self, preview: install.RemovePreview) -> None:
        widget = self.query_one("#disconnect-preview", Static)
        widget.update("\n".join(preview.lines()))
        widget.set_classes("-warn")

    # --- run ------------------------------------------------------------------------------

    def action_disconnect(self) -> None:
        org = svc.org_name(self.profile)
        state = self.query_one("#disconnect-state", Checkbox).value
        after = ("The local state is deleted too." if state else "The local state is kept.")
        if self._removing():
            if self.preview is None:
                self.notify("Wait for the count of what removal deletes (or keep the metadata).",
                            severity="warning")
                return
            lines = self.preview.lines() + [
                "Then the tokens are revoked and the secrets deleted. " + after]

            def removed(ok: bool | None) -> None:
                if ok:
                    self._run(remove=True, keep_state=not state)

            self.app.push_screen(ConfirmOrgName(org, title="Remove and disconnect",
                                                lines=lines, confirm_label="Remove"), removed)
            return

        def kept(ok: bool | None) -> None:
            if ok:
                self._run(remove=False, keep_state=not state)

        who = org or "this profile"
        self.app.push_screen(ConfirmDisconnect([
            f"Disconnect {who}? The Salesforce tokens are revoked and this profile's secrets "
            "deleted; the LostChurn metadata stays in the org. " + after]), kept)

    def _run(self, *, remove: bool, keep_state: bool) -> None:
        self.busy = True
        summary = self.query_one("#disconnect-summary")
        summary.display = True
        summary.set_class(False, "-fail")
        self.query_one("#disconnect-steps", Static).update("Working…")
        self._lines: list[str] = []
        self.run_disconnect(remove, keep_state)

    @work(thread=True, exclusive=True, group="disconnect", exit_on_error=False,
          description="Disconnecting")
    def run_disconnect(self, remove: bool, keep_state: bool) -> svc.DisconnectResult:
        return svc.disconnect(self.profile, remove_metadata=remove, keep_state=keep_state,
                              target_factory=self.target_factory,
                              on_step=lambda step: self.post_message(self.StepDone(step)),
                              poll=self.poll)

    def on_disconnect_screen_step_done(self, message: StepDone) -> None:
        step = message.step
        self._lines.append(f"{'✓' if step.ok else '✗'} {step.name}: {step.detail}")
        self.query_one("#disconnect-steps", Static).update("\n".join(self._lines))

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker.group not in ("disconnect", "disconnect-preview"):
            return
        if event.state is WorkerState.ERROR:
            self.busy = False
            super().on_worker_state_changed(event)
            return
        if event.state is not WorkerState.SUCCESS:
            return
        self.busy = False
        result = event.worker.result
        if isinstance(result, _Preview):
            widget = self.query_one("#disconnect-preview", Static)
            if result.preview is None:
                widget.update(f"Cannot count what removal deletes: {result.error}")
                widget.set_classes("-fail")
            else:
                self.preview = result.preview
                if self._removing():
                    self._show_preview(result.preview)
        elif isinstance(result, svc.DisconnectResult):
            self.query_one("#disconnect-steps", Static).update("\n".join(result.lines()))
            summary = self.query_one("#disconnect-summary")
            summary.set_class(not result.ok, "-fail")
            if result.ok:
                self.finished = True
                # Done: the summary is what matters now, on any terminal size.
                self.query_one("#disconnect-choices").display = False
                self.query_one("#disconnect-preview").display = False
                self.notify("Disconnected.")
            else:
                self.notify("Disconnect did not finish: see the summary.", severity="error")
            self.refresh_bindings()
