"""The console's stylesheet: Textual's, parsing each source once per set of theme variables.

Textual 8 re-parses every stylesheet from scratch on each `App.refresh_css` (it builds a new
Stylesheet, so its parse cache is lost) and calls it several times while an app starts and on
every first visit to a mode: the parsing was about a third of the console's cold start. Here a
refresh with unchanged variables re-uses the rules already parsed; new sources (a screen's
widgets) are parsed once, and a theme change (new variables) still re-parses everything.
"""

from __future__ import annotations

from textual.css.stylesheet import Stylesheet


class ParsedOnceStylesheet(Stylesheet):
    def __init__(self, *, variables: dict[str, str] | None = None) -> None:
        super().__init__(variables=variables)
        self._applied: dict[str, str] | None = None

    def set_variables(self, variables: dict[str, str]) -> None:
        # The parent drops every parsed rule here, even when nothing changed.
        if variables == self._applied:
            return
        self._applied = dict(variables)
        super().set_variables(variables)

    def reparse(self) -> None:
        # parse() keeps what it has parsed for these variables (set_variables clears it when
        # they change) and leaves the current rules in place when a source has errors.
        self.parse()
