"""The two themes: complete for the stylesheets, readable in truecolor and on 16 colours."""

from __future__ import annotations

import itertools
import re

import pytest
from rich._palettes import STANDARD_PALETTE
from rich.color import Color, ColorSystem
from textual.theme import Theme

from lc_console import themes

# Colours used for text in the stylesheets, and the backgrounds they are drawn on.
TEXT = ("foreground", "lc-ok", "lc-fail", "lc-warn", "lc-muted", "lc-key",
        "footer-key-foreground")
GROUNDS = ("background", "surface")
STATES = ("lc-ok", "lc-fail", "lc-warn")


def variables(theme: Theme) -> dict[str, str]:
    return {**theme.to_color_system().generate(), **theme.variables}


def contrast(a: tuple[int, int, int], b: tuple[int, int, int]) -> float:
    """WCAG 2 contrast ratio."""
    def luminance(rgb: tuple[int, int, int]) -> float:
        def channel(c: int) -> float:
            x = c / 255
            return x / 12.92 if x <= 0.03928 else ((x + 0.055) / 1.055) ** 2.4
        r, g, b_ = (channel(c) for c in rgb)
        return 0.2126 * r + 0.7152 * g + 0.0722 * b_

    hi, lo = sorted((luminance(a), luminance(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def rgb(value: str) -> tuple[int, int, int]:
    t = Color.parse(value).get_truecolor()
    return (t.red, t.green, t.blue)


def ansi16(value: str) -> int:
    """The entry of the 16-colour palette a terminal without more colours shows."""
    number = Color.parse(value).downgrade(ColorSystem.STANDARD).number
    assert number is not None
    return number


def test_stylesheets_are_package_data_base_first() -> None:
    sheets = themes.stylesheets()
    assert sheets[0].name == "base.tcss"
    assert {"home.tcss", "doctor.tcss", "help.tcss", "settings_error.tcss"} <= {
        p.name for p in sheets}
    assert all(p.is_file() for p in sheets)


def test_every_custom_variable_in_the_stylesheets_is_defined_everywhere() -> None:
    used = set()
    for sheet in themes.stylesheets():
        used |= set(re.findall(r"\$(lc-[a-z-]+)", sheet.read_text()))
    assert used, "the stylesheets use the themes' variables"
    for theme in themes.THEMES.values():
        assert used <= set(theme.variables), theme.name
    assert used <= set(themes.VARIABLE_DEFAULTS)


@pytest.mark.parametrize("name", sorted(themes.THEMES))
def test_text_is_readable_in_truecolor(name: str) -> None:
    v = variables(themes.THEMES[name])
    for text, ground in itertools.product(TEXT, GROUNDS):
        ratio = contrast(rgb(v[text]), rgb(v[ground]))
        assert ratio >= 4.5, f"{name}: {text} on {ground} has contrast {ratio:.2f}"


@pytest.mark.parametrize("name", sorted(themes.THEMES))
def test_text_stays_readable_on_16_colour_terminals(name: str) -> None:
    v = variables(themes.THEMES[name])
    for text, ground in itertools.product(TEXT, GROUNDS):
        fg, bg = ansi16(v[text]), ansi16(v[ground])
        ratio = contrast(STANDARD_PALETTE[fg], STANDARD_PALETTE[bg])
        assert fg != bg and ratio >= 3.0, (
            f"{name}: {text} on {ground} becomes colour {fg} on {bg} (contrast {ratio:.2f})")
    # ok / failed / warning keep three different colours, and card borders stay visible.
    assert len({ansi16(v[s]) for s in STATES}) == len(STATES)
    assert ansi16(v["lc-card-border"]) != ansi16(v["background"])


def test_toggle_goes_between_the_two_themes() -> None:
    assert themes.other_theme(themes.DARK) == themes.LIGHT
    assert themes.other_theme(themes.LIGHT) == themes.DARK
    assert themes.DEFAULT_THEME == themes.DARK
    assert themes.THEMES[themes.DARK].dark and not themes.THEMES[themes.LIGHT].dark
