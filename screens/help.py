"""Help (? / F1): the keys that work on the screen below, then the ones that work everywhere."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar

from textual.app import App, ComposeResult
from textual.binding import ActiveBinding, Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import Footer, Label, Static

HERE = "On this screen"
MOVING = "Scrolling, focus and copy"
EVERYWHERE = "Everywhere"
SECTIONS = (HERE, EVERYWHERE, MOVING)


@dataclass(frozen=True)
class HelpRow:
    section: str  # one of SECTIONS
    keys: str  # e.g. "? / f1"
    description: str
    tooltip: str


def _section(node: object, binding: Binding) -> str:
    if isinstance(node, App):
        return EVERYWHERE
    if isinstance(node, Screen) and not binding.action.startswith(("app.", "screen.")):
        return HERE  # the screen's own actions
    return MOVING  # the focused widget's keys and Textual's defaults for every screen


def help_rows(app: App[object], active: Mapping[str, ActiveBinding]) -> list[HelpRow]:
    """One row per action with a description; keys bound to the same action are joined.

    Disabled actions (check_action said no) are left out: help lists what works now.
    """
    grouped: dict[tuple[str, str], tuple[list[str], Binding, str]] = {}
    for node, binding, enabled, tooltip in active.values():
        if not enabled or not binding.description or binding.system:
            continue
        section = _section(node, binding)
        keys, _, _ = grouped.setdefault((section, binding.action), ([], binding, tooltip))
        display = app.get_key_display(binding)
        if display not in keys:
            keys.append(display)
    rows = [
        HelpRow(section, " / ".join(keys), binding.description[:1].upper() + binding.description[1:],
                tooltip or binding.tooltip)
        for (section, _), (keys, binding, tooltip) in grouped.items()
    ]
    return sorted(rows, key=lambda r: SECTIONS.index(r.section))  # stable: keeps binding order


class HelpScreen(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,question_mark,f1", "dismiss", "Close", key_display="esc",
                tooltip="Close help", id="help.close"),
    ]

    def __init__(self, screen_name: str, rows: list[HelpRow]) -> None:
        super().__init__()
        self.screen_name = screen_name
        self.rows = rows

    def compose(self) -> ComposeResult:
        with Vertical(id="help-box") as box:
            box.border_title = f"Keys · {self.screen_name}" if self.screen_name else "Keys"
            box.border_subtitle = "esc closes · ctrl+p finds any command"
            with VerticalScroll(id="help-body"):
                for section in SECTIONS:
                    rows = [r for r in self.rows if r.section == section]
                    if not rows:
                        continue
                    yield Label(section, classes="help-section")
                    for row in rows:
                        with Horizontal(classes="help-row"):
                            yield Label(row.keys, classes="help-key", markup=False)
                            yield Label(row.description, classes="help-desc", markup=False)
                            yield Static(row.tooltip, classes="help-tip", markup=False)
        yield Footer()
