"""Install screen and the type-the-org-name modal, against the Salesforce sandbox.

The pictures are taken inside real flows (syrupy SVG snapshots from a Pilot session): the
plan of a partly installed org, the progress view while checkDeployStatus reports a deploy
half done (the sandbox's clock is held still so the counts are exact), the result, a
conflict, and the removal confirmation.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from install_helpers import admin_client, connect, deploy_specs, field_as
from pytest_textual_snapshot import SVGImageExtension
from textual.app import App
from textual.pilot import Pilot
from textual.widgets import Button, DataTable, Input, ProgressBar, Static

from lc_console import themes
from lc_console.salesforce.schema_manifest import FieldKind
from lc_console.sandbox.salesforce import metadata_api
from lc_console.screens.confirm_org_name import ConfirmOrgName
from lc_console.screens.install import InstallScreen
from lc_console.services import install as svc

SIZE = (100, 30)
pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True)
def steady(isolated_dirs: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(isolated_dirs.parent))
    monkeypatch.setattr(Input, "_toggle_cursor", lambda self: None)  # no blinking in pictures
    monkeypatch.setattr(InstallScreen, "POLL", (0.05, 0.1))


class Host(App[None]):
    """The console's themes and stylesheets around one install screen, without the app's
    global keys, so that these pictures change only when the install screen does."""

    TITLE = "lc-console"
    CSS_PATH = themes.stylesheets()

    def __init__(self, first: Callable[[Host], None] | None = None) -> None:
        super().__init__()
        for theme in themes.THEMES.values():
            self.register_theme(theme)
        self.theme = themes.DEFAULT_THEME
        self.first = first or (lambda app: app.push_screen(InstallScreen("default")))

    def get_theme_variable_defaults(self) -> dict[str, str]:
        return dict(themes.VARIABLE_DEFAULTS)

    def on_mount(self) -> None:
        self.first(self)


async def until(pilot: Pilot[None], done: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if done():
            await pilot.pause()
            return
        await pilot.pause(0.02)
    raise AssertionError("the screen did not settle")


def text_of(app: App[None], selector: str) -> str:
    return str(app.screen.query_one(selector, Static).render())


class StillClock:
    """Holds the sandbox org's clock still, so a deploy stays exactly where it is."""

    def __init__(self, sandbox: Any) -> None:
        self.clock = sandbox.org.clock
        self.now = time.time()

    def __enter__(self) -> StillClock:
        self.clock.time = lambda: self.now  # instance attribute shadows the method
        return self

    def advance(self, seconds: float) -> None:
        self.now += seconds

    def __exit__(self, *exc: object) -> None:
        self.clock.offset_seconds = self.now - time.time()
        del self.clock.time


@pytest.fixture
def partly_installed(salesforce_sandbox: Any) -> Iterator[Any]:
    """An org where an earlier install left Contact.LostChurn_ID__c too short."""
    sb = salesforce_sandbox
    connect(sb)
    deploy_specs(admin_client(sb), [field_as("Contact.LostChurn_ID__c", length=32, unique=False)])
    yield sb


async def test_plan_progress_and_result(partly_installed: Any, snapshot: Any) -> None:
    svg = snapshot.use_extension(SVGImageExtension)
    sb = partly_installed
    metadata_api.configure(sb.app, queue_seconds=0.0, run_seconds=10.0)
    app = Host()
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: "Press a to apply" in text_of(app, "#install-headline"))
        table = app.screen.query_one(DataTable)
        assert table.row_count == 36
        assert "Found: Text(32), External ID" in text_of(app, "#install-detail")
        assert svg(name="plan") == app.export_screenshot()

        with StillClock(sb) as clock:
            await pilot.press("a")
            await until(pilot, lambda: "Validating: InProgress" in text_of(app, "#install-progress-text"))
            clock.advance(5.0)  # half of the validation's 10 s
            await until(pilot, lambda: "17/35" in text_of(app, "#install-progress-text"))
            bar = app.screen.query_one(ProgressBar)
            assert (bar.progress, bar.total) == (17, 35)
            assert svg(name="progress") == app.export_screenshot()
            assert app.screen.check_action("apply", ()) is None  # dimmed while running
            metadata_api.configure(sb.app, run_seconds=0.3)  # the rest at test speed
            clock.advance(60.0)
        await until(pilot, lambda: "Install finished." in text_of(app, "#install-headline"))
        message = text_of(app, "#install-result-message")
        assert message.startswith("Installed: 34 created, 1 updated, LostChurn_Integration "
                                  "assigned to admin@lc-sandbox.example.com.")
        assert svg(name="result") == app.export_screenshot()

        await pilot.press("r")
        await until(pilot, lambda: "nothing to change" in text_of(app, "#install-headline"))


async def test_conflict_is_shown_with_what_to_decide(salesforce_sandbox: Any, snapshot: Any) -> None:
    svg = snapshot.use_extension(SVGImageExtension)
    sb = salesforce_sandbox
    connect(sb)
    deploy_specs(admin_client(sb), [field_as("Contact.LostChurn_MRR__c", kind=FieldKind.TEXT,
                                             length=20, precision=None, scale=None)])
    app = Host()
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: "Install stops until each conflict" in text_of(app, "#install-headline"))
        table = app.screen.query_one(DataTable)
        assert str(table.get_row_at(0)[2]) == "Contact.LostChurn_MRR__c"  # conflicts first
        await pilot.press("a")
        await until(pilot, lambda: text_of(app, "#install-headline") == "Install stopped.")
        assert "exists as Text(20); the console needs Currency(16,2)" in text_of(
            app, "#install-result-lines")
        assert svg(name="conflict") == app.export_screenshot()


async def test_remove_asks_for_the_org_name_then_deletes(salesforce_sandbox: Any, snapshot: Any) -> None:
    svg = snapshot.use_extension(SVGImageExtension)
    sb = salesforce_sandbox
    target = connect(sb)
    assert svc.install(target, poll_interval=0.05, max_poll_interval=0.1).ok
    sf = target.client()
    sf.LostChurn_Recovery__c.create({"Recovery_ID__c": "rec_1"})
    for i in range(2):
        sf.Contact.create({"LastName": f"C{i}", "LostChurn_MRR__c": 25})
    app = Host()
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: "nothing to change" in text_of(app, "#install-headline"))
        await pilot.press("x")
        await until(pilot, lambda: isinstance(app.screen, ConfirmOrgName))
        modal = app.screen
        assert isinstance(modal, ConfirmOrgName)
        await pilot.press(*"LostChurn Sandbox Or")
        assert modal.query_one("#confirm-yes", Button).disabled
        assert svg(name="confirm") == app.export_screenshot()

        await pilot.press("enter")  # wrong name: refused, nothing deleted
        assert "That is not the org name" in str(modal.query_one("#confirm-error", Static).render())
        await pilot.press("g")
        assert not modal.query_one("#confirm-yes", Button).disabled
        await pilot.press("enter")
        await until(pilot, lambda: text_of(app, "#install-headline") == "Removal finished.")
        assert text_of(app, "#install-result-message") == (
            "Removed 16 components: 1 LostChurn_Recovery__c record and 2 field values deleted.")
    with pytest.raises(KeyError):
        sb.records("LostChurn_Recovery__c")


async def test_escape_cancels_removal(salesforce_sandbox: Any) -> None:
    sb = salesforce_sandbox
    target = connect(sb)
    assert svc.install(target, poll_interval=0.05, max_poll_interval=0.1).ok
    app = Host()
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: "nothing to change" in text_of(app, "#install-headline"))
        await pilot.press("x")
        await until(pilot, lambda: isinstance(app.screen, ConfirmOrgName))
        await pilot.press("escape")
        await until(pilot, lambda: "Removal cancelled" in text_of(app, "#install-headline"))
    assert svc.plan(target).nothing_to_change


async def test_not_connected_says_how_to_connect() -> None:
    app = Host()
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: "not connected" in text_of(app, "#install-headline"))
        assert "lc-console connect salesforce" in text_of(app, "#install-headline")
        assert app.screen.query_one("#install-body").has_class("-error")


async def test_confirm_modal_alone() -> None:
    """The modal is reusable (the disconnect screen pushes it too)."""
    answers: list[bool | None] = []

    app = Host(lambda app: app.push_screen(
        ConfirmOrgName("Acme Corp", title="Remove", lines=["It goes."]), answers.append))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press(*"acme corp", "enter")  # case matters
        assert answers == []
        await pilot.click("#confirm-no")
        assert answers == [False]


async def test_console_opens_install_from_home_and_lists_its_actions(salesforce_sandbox: Any) -> None:
    from textual.app import SystemCommand

    from lc_console.app import make_app

    connect(salesforce_sandbox)
    app = make_app("default")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press("i")
        await until(pilot, lambda: isinstance(app.screen, InstallScreen))
        await until(pilot, lambda: "Press a to apply" in text_of(app, "#install-headline"))
        titles = [c.title for c in app.get_system_commands(app.screen)
                  if isinstance(c, SystemCommand)]
        assert {"Install: Apply", "Install: Refresh plan", "Install: Remove…"} <= set(titles)
