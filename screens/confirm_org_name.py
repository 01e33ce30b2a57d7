"""Type the org's name to confirm something that cannot be undone (removal of the schema).

Reusable: the install screen's "Remove" and the disconnect screen push it with what will be
deleted; it dismisses True only when the typed text equals the org name exactly.
"""

from __future__ import annotations

from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Static


class ConfirmOrgName(ModalScreen[bool]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel", tooltip="Close without deleting anything",
                id="confirm.cancel"),
    ]

    def __init__(self, org_name: str, *, title: str, lines: list[str],
                 confirm_label: str = "Delete") -> None:
        super().__init__()
        self.org_name = org_name
        self.title_text = title
        self.lines = lines
        self.confirm_label = confirm_label

    def compose(self) -> ComposeResult:
        with Vertical(id="confirm-box") as box:
            box.border_title = self.title_text
            box.border_subtitle = "esc cancels"
            for line in self.lines:
                yield Static(line, classes="confirm-line", markup=False)
            yield Label(f"Type the org name, {self.org_name}, to confirm:", id="confirm-prompt",
                        markup=False)
            yield Input(placeholder=self.org_name, id="confirm-input", select_on_focus=False)
            yield Static("", id="confirm-error", markup=False)
            with Horizontal(id="confirm-buttons"):
                yield Button(self.confirm_label, variant="error", id="confirm-yes", disabled=True)
                yield Button("Cancel", id="confirm-no")

    def on_mount(self) -> None:
        self._error("")
        self.query_one(Input).focus()

    def matches(self, text: str) -> bool:
        return bool(self.org_name) and text.strip() == self.org_name

    @on(Input.Changed, "#confirm-input")
    def _changed(self, event: Input.Changed) -> None:
        self.query_one("#confirm-yes", Button).disabled = not self.matches(event.value)
        self._error("")

    @on(Input.Submitted, "#confirm-input")
    def _submitted(self, event: Input.Submitted) -> None:
        if self.matches(event.value):
            self.dismiss(True)
        else:
            self._error(f"That is not the org name. Type {self.org_name} exactly, or press esc.")

    def _error(self, text: str) -> None:
        error = self.query_one("#confirm-error", Static)
        error.update(text)
        error.display = bool(text)

    @on(Button.Pressed, "#confirm-yes")
    def _yes(self) -> None:
        if self.matches(self.query_one(Input).value):
            self.dismiss(True)

    @on(Button.Pressed, "#confirm-no")
    def _no(self) -> None:
        self.dismiss(False)

    def action_cancel(self) -> None:
        self.dismiss(False)
