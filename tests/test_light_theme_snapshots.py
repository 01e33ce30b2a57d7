"""The main screens in the light theme (lc-light) at 100x30, set up as in each screen's own
test (the dark pictures live there).

Issue 10: "Themes in themes/: dark and light, readable on 16-colour terminals too". Each
picture was converted to PNG and looked at before it was accepted.

On a 16-colour terminal rich downgrades every colour when it writes the frame, but
App.export_screenshot renders through its own truecolor Console whatever TEXTUAL_COLOR_SYSTEM
says; so the 16-colour pictures add a line filter (App.get_line_filters) that downgrades each
colour the same way (rich's Color.downgrade), and the SVG shows the 16-colour palette.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from console_helpers import SIZE, Host, text_of, until
from install_helpers import admin_client, connect, deploy_specs, field_as
from pytest_textual_snapshot import SVGImageExtension
from rich.color import ColorSystem
from rich.segment import Segment
from rich.style import Style
from test_audit import fill as fill_audit
from test_connect_screens import FakeService, fill_and_connect, step
from test_disconnect import ORG, POLL
from test_disconnect import installed as disconnect_ready
from test_failures_screen import fill as fill_failures
from test_monitor import FakeSession
from textual.color import Color
from textual.filter import LineFilter
from textual.widgets import Input

from lc_console import themes
from lc_console.screens.audit import AuditScreen
from lc_console.screens.connect_salesforce import ConnectSalesforceScreen
from lc_console.screens.disconnect import DisconnectScreen
from lc_console.screens.failures import FailuresScreen
from lc_console.screens.install import InstallScreen
from lc_console.screens.mapping import MappingScreen
from lc_console.screens.monitor import MonitorScreen
from lc_console.screens.wizard import WizardScreen

PROFILE = "default"
T0 = 1_763_950_000.0
LIGHT = themes.LIGHT


async def settled(pilot: Any, app: Any) -> str:
    """The screenshot once the footer shows its keys (on a busy machine it can lag the
    screen's own content by a frame)."""
    await until(pilot, lambda: bool(app.screen.query("FooterKey")))
    return str(app.export_screenshot())


class SixteenColours(LineFilter):
    """Each colour as a 16-colour terminal shows it."""

    def apply(self, segments: list[Segment], background: Color) -> list[Segment]:
        return [Segment(text, _downgraded(style), control) for text, style, control in segments]


def _downgraded(style: Style | None) -> Style | None:
    if style is None:
        return None
    color = style.color.downgrade(ColorSystem.STANDARD) if style.color else None
    bgcolor = style.bgcolor.downgrade(ColorSystem.STANDARD) if style.bgcolor else None
    return style + Style(color=color, bgcolor=bgcolor)


class SixteenColourHost(Host):
    def get_line_filters(self) -> list[LineFilter]:
        return [*super().get_line_filters(), SixteenColours()]


@pytest.fixture(autouse=True)
def steady(isolated_dirs: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(isolated_dirs.parent))
    monkeypatch.setattr(Input, "_toggle_cursor", lambda self: None)
    monkeypatch.setattr(InstallScreen, "POLL", (0.05, 0.1))
    monkeypatch.setattr(ConnectSalesforceScreen, "clock", staticmethod(lambda: 1000.0))


async def test_failures_light(snapshot: Any) -> None:
    svg = snapshot.use_extension(SVGImageExtension)
    fill_failures(230)
    app = Host(lambda: FailuresScreen(PROFILE), theme=LIGHT)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: "of 230" in text_of(app, "#failures-position"))
        assert svg(name="populated") == await settled(pilot, app)


async def test_audit_light(snapshot: Any) -> None:
    svg = snapshot.use_extension(SVGImageExtension)
    fill_audit()
    app = Host(lambda: AuditScreen(PROFILE), theme=LIGHT)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: "latest 4 writes" in text_of(app, "#audit-headline"))
        await pilot.press(*"ann@ACME.example", "enter")
        await until(pilot, lambda: "2 writes for ann@ACME.example" in
                    text_of(app, "#audit-headline"))
        assert svg(name="email") == await settled(pilot, app)


async def test_mapping_light(snapshot: Any) -> None:
    svg = snapshot.use_extension(SVGImageExtension)
    app = Host(lambda: MappingScreen(PROFILE, describe_factory=lambda d: (_ for _ in ()).throw(
        RuntimeError("no org is connected for this profile"))), theme=LIGHT)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: "Not checked against the org" in
                    text_of(app, "#mapping-status"))
        assert svg(name="offline") == await settled(pilot, app)


async def test_wizard_light(snapshot: Any) -> None:
    svg = snapshot.use_extension(SVGImageExtension)
    app = Host(lambda: WizardScreen(PROFILE), theme=LIGHT)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: "Choose, then press o" in text_of(app, "#wizard-state"))
        assert svg(name="environment") == await settled(pilot, app)


async def test_monitor_light(snapshot: Any) -> None:
    svg = snapshot.use_extension(SVGImageExtension)
    session = FakeSession()
    app = Host(lambda: MonitorScreen(PROFILE, session_factory=lambda p: session,
                                     clock=lambda: T0 + 59), theme=LIGHT)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: "press s to start" in text_of(app, "#monitor-state"))
        # The first draw (on mount) sizes the usage bar before layout (10 cells); the next
        # 0.5 s tick draws it at its width. Picture the settled screen, not the race.
        await until(pilot, lambda: len(text_of(app, "#monitor-usage-bar")) > 10)
        assert svg(name="stopped") == await settled(pilot, app)


async def test_connect_salesforce_light(snapshot: Any) -> None:
    svg = snapshot.use_extension(SVGImageExtension)
    service = FakeService()
    app = Host(lambda: ConnectSalesforceScreen(PROFILE, service=service), theme=LIGHT)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await fill_and_connect(pilot)
        await until(pilot, lambda: bool(service.logins))
        service.logins[0].release.set()
        await until(pilot, lambda: step(pilot) == "step-connected")
        assert svg(name="connected") == await settled(pilot, app)


@pytest.mark.slow
async def test_install_plan_light(salesforce_sandbox: Any, snapshot: Any) -> None:
    svg = snapshot.use_extension(SVGImageExtension)
    connect(salesforce_sandbox)
    deploy_specs(admin_client(salesforce_sandbox),
                 [field_as("Contact.LostChurn_ID__c", length=32, unique=False)])
    app = Host(lambda: InstallScreen(PROFILE), theme=LIGHT)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: "Press a to apply" in text_of(app, "#install-headline"))
        assert svg(name="plan") == await settled(pilot, app)


@pytest.mark.slow
async def test_disconnect_light(salesforce_sandbox: Any, memory_keyring: Any,
                                snapshot: Any) -> None:
    svg = snapshot.use_extension(SVGImageExtension)
    disconnect_ready(salesforce_sandbox)
    app = Host(lambda: DisconnectScreen(PROFILE, poll=POLL), theme=LIGHT)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: ORG in text_of(app, "#disconnect-who"))
        await pilot.press("x")
        await until(pilot, lambda: "Removal deletes" in text_of(app, "#disconnect-preview"))
        assert svg(name="preview") == await settled(pilot, app)


@pytest.mark.parametrize("theme", [themes.DARK, themes.LIGHT])
async def test_failures_on_16_colours(theme: str, snapshot: Any) -> None:
    svg = snapshot.use_extension(SVGImageExtension)
    fill_failures(230)
    app = SixteenColourHost(lambda: FailuresScreen(PROFILE), theme=theme)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: "of 230" in text_of(app, "#failures-position"))
        assert svg(name="populated") == await settled(pilot, app)
