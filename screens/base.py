"""What every top-level console screen shares: the profile, a header line, worker errors."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import ClassVar

from textual import events
from textual.screen import Screen
from textual.widgets import Footer
from textual.worker import Worker, WorkerState

log = logging.getLogger(__name__)


def tilde(path: Path | str) -> str:
    """A path as people write it: the home directory shown as ~."""
    text = str(path)
    home = str(Path.home())
    if home not in ("", "/") and (text == home or text.startswith(home + "/")):
        return "~" + text[len(home):]
    return text


class ConsoleScreen(Screen[None]):
    """A top-level screen of one profile. Subclasses set SCREEN_NAME (shown in the header and
    in help) and run blocking work with @work(thread=True, exit_on_error=False)."""

    SCREEN_NAME: ClassVar[str] = ""
    # Below this width the footer drops its padding so that every key still fits on 80x24
    # terminals. 0 keeps Textual's spacing; screens with many keys set it (Home uses 100).
    COMPACT_FOOTER_BELOW: ClassVar[int] = 0

    def __init__(self, profile: str) -> None:
        super().__init__()
        self.profile = profile
        self.sub_title = f"{self.SCREEN_NAME} · profile {profile}"

    def _fit_footer(self, width: int) -> None:
        for footer in self.query(Footer):
            footer.compact = width < self.COMPACT_FOOTER_BELOW

    def on_mount(self) -> None:
        self._fit_footer(self.app.size.width)

    def on_resize(self, event: events.Resize) -> None:
        self._fit_footer(event.size.width)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        # One place for a worker that crashed: say so instead of failing silently. Workers
        # that expect failures handle them before this (see DoctorScreen).
        if event.state is WorkerState.ERROR:
            error = event.worker.error
            log.error("worker %s failed", event.worker.name, exc_info=error)
            self.notify(f"{event.worker.description or event.worker.name} failed: {error}",
                        title="Unexpected error", severity="error", markup=False)
