"""The console's two themes and its stylesheets (installed as lc_console.themes).

Colours are picked so that each one still lands on a distinct, readable colour of the
16-colour ANSI palette when a terminal cannot show more (rich downgrades to the nearest
entry): text stays bright-white/black, success green, errors red, warnings yellow.
tests/test_app_themes.py checks that property.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from textual.theme import Theme

DARK = "lc-dark"
LIGHT = "lc-light"
DEFAULT_THEME = DARK

# Custom variables used by the .tcss files. Every theme sets all of them; the App also
# returns the dark values from get_theme_variable_defaults() so that a stylesheet parsed
# before a theme is selected never meets an undefined variable.
_DARK_VARIABLES = {
    "lc-ok": "#3FB950",
    "lc-fail": "#F85149",
    "lc-warn": "#E3B341",
    "lc-muted": "#8B949E",
    "lc-key": "#79C0FF",
    "lc-card-border": "#3D4753",
    "footer-key-foreground": "#79C0FF",
}

_LIGHT_VARIABLES = {
    "lc-ok": "#0B7A2A",
    "lc-fail": "#CF222E",
    "lc-warn": "#9A6700",
    "lc-muted": "#57606A",
    "lc-key": "#0550AE",
    "lc-card-border": "#8C959F",
    "footer-key-foreground": "#0550AE",
}

LC_DARK = Theme(
    name=DARK,
    dark=True,
    primary="#58A6FF",
    secondary="#79C0FF",
    accent="#E3B341",
    warning="#E3B341",
    error="#F85149",
    success="#3FB950",
    foreground="#E6EDF3",
    background="#0D1117",
    surface="#161B22",
    panel="#1C2330",
    variables=_DARK_VARIABLES,
)

LC_LIGHT = Theme(
    name=LIGHT,
    dark=False,
    primary="#0550AE",
    secondary="#1B7C83",
    accent="#9A6700",
    warning="#9A6700",
    error="#CF222E",
    success="#0B7A2A",
    foreground="#1F2328",
    background="#FFFFFF",
    surface="#F6F8FA",
    panel="#EAEEF2",
    variables=_LIGHT_VARIABLES,
)

THEMES: dict[str, Theme] = {LC_DARK.name: LC_DARK, LC_LIGHT.name: LC_LIGHT}

# Values for get_theme_variable_defaults(): the custom variables of the default theme.
VARIABLE_DEFAULTS: dict[str, str] = dict(_DARK_VARIABLES)


def other_theme(name: str) -> str:
    """The theme a toggle switches to."""
    return LIGHT if name == DARK else DARK


def stylesheets() -> list[Path]:
    """The .tcss files of the console: base.tcss first, then one per screen, by name."""
    root = Path(str(files(__name__)))
    sheets = sorted(root.glob("*.tcss"))
    return sorted(sheets, key=lambda p: (p.name != "base.tcss", p.name))
