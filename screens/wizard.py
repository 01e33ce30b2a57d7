"""Setup wizard: environment -> Salesforce sign-in -> Stripe key -> install -> field mapping.

Each step is a page; the list on the left shows what is done (saved in settings.ui.
wizard_completed, so quitting mid-way resumes at the first step not done) and any step can be
revisited. The sign-in steps reuse the connect screens; install runs here over
services/install.py in a thread worker; mapping opens the mapping screen.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any, ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.reactive import reactive
from textual.widgets import (
    ContentSwitcher,
    Footer,
    Header,
    Input,
    Label,
    ListItem,
    ListView,
    ProgressBar,
    RadioButton,
    RadioSet,
    Static,
)
from textual.worker import Worker, WorkerState

from lc_console import settings
from lc_console.screens.base import ConsoleScreen
from lc_console.services import install as install_svc
from lc_console.services import status as status_svc
from lc_console.services import wizard as svc
from lc_console.services.status import Connection, ProfileStatus

INTRO = {
    svc.ENVIRONMENT: "Where does your org sign in? Production and Developer orgs use "
                     "login.salesforce.com, sandboxes test.salesforce.com; orgs that require "
                     "My Domain sign in at their own URL.",
    svc.SALESFORCE: "Sign in with your connected app (OAuth with PKCE; the tokens go to the OS "
                    "keyring only). Press o to open the sign-in.",
    svc.STRIPE: "Enter a restricted Stripe key with read access; the console checks each "
                "permission it needs. Press o to enter it.",
    svc.INSTALL: "The console adds its objects and fields to the org (validated with a "
                 "check-only deploy first). Press o to install what the plan lists.",
    svc.MAPPING: "Choose where each value goes and who wins a conflict; check the targets "
                 "against the org. Press o to open the mapping.",
    svc.FIRST_SYNC: "First a dry run: what the sync would write, read from the org, with "
                    "nothing written. Press o for the preview, then o again to start the "
                    "live sync in the monitor. B backfills the existing Stripe history "
                    "(a forecast first, then B again to run it).",
}

# The backfill's phases, in the order they run (services/resync.py).
BACKFILL_PHASES = ("read", "derive", "upload", "process", "results")


def _dry_run(profile: str) -> Any:
    from lc_console.services.sync import dry_run

    return dry_run(profile)


@dataclass(frozen=True)
class _Checked:
    status: ProfileStatus | None
    progress: svc.Progress
    install_line: str = ""
    installed: bool = False
    error: str = ""


class WizardScreen(ConsoleScreen):
    SCREEN_NAME = "Setup"
    COMPACT_FOOTER_BELOW = 100
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("o", "do_step", "Do this step", tooltip="Save the environment, sign in, enter "
                "the key, install or open the mapping, depending on the step",
                id="wizard.do"),
        Binding("n", "next_step", "Next step", tooltip="Go to the next step",
                id="wizard.next"),
        Binding("b", "previous_step", "Back", tooltip="Go to the previous step",
                id="wizard.back"),
        Binding("B", "backfill", "Backfill history", tooltip="Backfill existing Stripe history: "
                "the forecast first, then B again writes it", id="wizard.backfill"),
        Binding("r", "recheck", "Recheck", tooltip="Check the connections and the install "
                "again", id="wizard.recheck", show=False),
    ]

    busy: reactive[bool] = reactive(False, bindings=True)

    class InstallProgress(Message):
        def __init__(self, text: str) -> None:
            super().__init__()
            self.text = text

    class BackfillProgress(Message):
        def __init__(self, progress: Any) -> None:
            super().__init__()
            self.progress = progress

    def __init__(self, profile: str, *,
                 target_factory: Callable[[], install_svc.Target] | None = None,
                 poll: tuple[float, float] = (1.0, 5.0),
                 dry_run: Callable[[str], Any] | None = None) -> None:
        super().__init__(profile)
        self.dry_run = dry_run or _dry_run
        self.backfill_forecast: Any = None
        self.backfilling = False
        self.preview: Any = None
        self.target_factory = target_factory or partial(install_svc.target_for_profile,
                                                        profile)
        self.poll = poll
        self.progress = svc.progress([])
        self.step = svc.STEP_IDS[0]
        self.status: ProfileStatus | None = None

    # --- layout -------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        try:
            self.progress = svc.progress(settings.load(self.profile).ui.wizard_completed)
        except settings.SettingsError:
            pass  # on_mount says what is wrong
        self.step = self.progress.current
        yield Header(icon="≡")
        with Horizontal(id="wizard-body"):
            with Vertical(id="wizard-nav", classes="card") as nav:
                nav.border_title = "Steps"
                yield ListView(*[ListItem(Label(self._nav_text(i, s, t), id=f"nav-{s}"),
                                          id=f"item-{s}")
                                 for i, (s, t) in enumerate(svc.STEPS)], id="wizard-list",
                               initial_index=svc.STEP_IDS.index(self.step))
            with VerticalScroll(id="wizard-page"):
                yield Static("", id="wizard-title", markup=False)
                yield Static("", id="wizard-intro", markup=False)
                with ContentSwitcher(initial=f"page-{svc.ENVIRONMENT}", id="wizard-pages"):
                    with Vertical(id=f"page-{svc.ENVIRONMENT}"):
                        with RadioSet(id="wizard-env"):
                            yield RadioButton("Production or Developer (login.salesforce.com)",
                                              id="env-production")
                            yield RadioButton("Sandbox (test.salesforce.com)", id="env-sandbox")
                            yield RadioButton("My Domain URL", id="env-custom")
                        yield Input(placeholder="https://acme.my.salesforce.com",
                                    id="wizard-domain", compact=True)
                    for step in svc.STEP_IDS[1:]:
                        yield Vertical(id=f"page-{step}")
                yield Static("", id="wizard-state", markup=False)
                with Vertical(id="wizard-backfill", classes="card") as box:
                    box.border_title = "Backfill existing Stripe history"
                    yield Static("Press B for the forecast: what a backfill would write, "
                                 "with nothing written.", id="backfill-text", markup=False)
                    for phase in BACKFILL_PHASES:
                        with Horizontal(id=f"backfill-{phase}",
                                        classes="backfill-phase") as row:
                            row.display = False  # shown when a backfill runs
                            yield Label(phase, classes="backfill-phase-name")
                            yield ProgressBar(id=f"backfill-bar-{phase}", show_eta=False)
                            yield Static("", id=f"backfill-line-{phase}", markup=False,
                                         classes="backfill-line")
        yield Footer()

    def _nav_text(self, index: int, step: str, title: str) -> str:
        mark = "✓" if step in self.progress.completed else ("›" if step == self.step else " ")
        return f"{mark} {index + 1}. {title}"

    def on_mount(self) -> None:
        super().on_mount()
        try:
            cfg = settings.load(self.profile)
        except settings.SettingsError as exc:
            self._state(f"Cannot read the settings: {exc}", "-fail")
            return
        env = cfg.salesforce.environment if cfg.salesforce.environment in svc.ENVIRONMENTS \
            else "production"
        self.query_one(f"#env-{env}", RadioButton).value = True
        domain = self.query_one("#wizard-domain", Input)
        domain.value = cfg.salesforce.login_url if env == "custom" else ""
        domain.display = env == "custom"
        self.progress = svc.progress(cfg.ui.wizard_completed)
        self._show(self.progress.current)
        self._state("Checking the connections…", "")
        self.recheck()

    # --- pages --------------------------------------------------------------------------

    def _show(self, step: str) -> None:
        self.step = step
        index = svc.STEP_IDS.index(step)
        self.query_one("#wizard-pages", ContentSwitcher).current = f"page-{step}"
        self.query_one("#wizard-title", Static).update(
            f"Step {index + 1} of {len(svc.STEPS)}: {dict(svc.STEPS)[step]}")
        self.query_one("#wizard-intro", Static).update(INTRO[step])
        self.query_one("#wizard-backfill").display = step == svc.FIRST_SYNC
        listing = self.query_one(ListView)
        if listing.index != index:
            listing.index = index
        self._refresh_nav()
        self._describe_step()
        self.refresh_bindings()

    def _refresh_nav(self) -> None:
        for i, (step, title) in enumerate(svc.STEPS):
            self.query_one(f"#nav-{step}", Label).update(self._nav_text(i, step, title))

    def _state(self, text: str, state: str) -> None:
        widget = self.query_one("#wizard-state", Static)
        widget.update(text)
        widget.set_classes(state)

    def _describe_step(self) -> None:
        """What is known about the current step, from the last check."""
        st = self.status
        done = self.step in self.progress.completed
        if self.step == svc.ENVIRONMENT:
            self._state("✓ Saved." if done else "Choose, then press o to save.",
                        "-ok" if done else "")
        elif st is None:
            return
        elif self.step == svc.SALESFORCE:
            sf = st.salesforce
            if sf.connection is Connection.CONNECTED:
                self._state(f"✓ Connected to {sf.org_name or sf.org_id} ({sf.org_kind}) as "
                            f"{sf.username}.", "-ok")
            else:
                if sf.connection is Connection.NOT_CONNECTED:
                    self._state("Not connected yet. Press o to sign in.", "")
                else:
                    self._state(f"Sign in again ({sf.connection.value}): press o.", "-fail")
        elif self.step == svc.STRIPE:
            sp = st.stripe
            if sp.connection is Connection.CONNECTED:
                self._state(f"✓ {sp.account_name or sp.account_id} ({sp.mode} mode, "
                            f"{sp.key_kind}).", "-ok")
            else:
                self._state("No Stripe key yet. Press o to enter one.", "")
        elif self.step == svc.INSTALL:
            line = getattr(self, "_install_line", "")
            self._state(("✓ " if done else "") + (line or "Press o to read the plan and "
                                                  "install."), "-ok" if done else "")
        elif self.step == svc.MAPPING:
            self._state("✓ Reviewed." if done else
                        "Press o to review the mapping (the defaults work).",
                        "-ok" if done else "")
        elif self.step == svc.FIRST_SYNC:
            if self.preview is not None:
                lines = svc.preview_lines(self.preview)
                self._state("\n".join(lines + ["Press o to start the live sync."]), "")
            elif done:
                self._state("✓ Started. The monitor (y) shows it running.", "-ok")
            else:
                self._state("Press o for the dry run.", "")

    @on(ListView.Highlighted, "#wizard-list")
    def _picked(self, event: ListView.Highlighted) -> None:
        if event.item is not None and event.item.id:
            step = event.item.id.removeprefix("item-")
            if step != self.step:
                self._show(step)

    @on(RadioSet.Changed, "#wizard-env")
    def _env_changed(self) -> None:
        custom = self.query_one("#env-custom", RadioButton).value
        self.query_one("#wizard-domain", Input).display = custom

    # --- actions ------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "do_step" and self.busy:
            return None
        if action == "backfill":
            if self.step != svc.FIRST_SYNC:
                return False
            return None if self.busy or self.backfilling else True
        if action == "next_step":
            return None if self.step == svc.STEP_IDS[-1] else True
        if action == "previous_step":
            return None if self.step == svc.STEP_IDS[0] else True
        return True

    def action_next_step(self) -> None:
        index = svc.STEP_IDS.index(self.step)
        if index + 1 < len(svc.STEP_IDS):
            self._show(svc.STEP_IDS[index + 1])

    def action_previous_step(self) -> None:
        index = svc.STEP_IDS.index(self.step)
        if index > 0:
            self._show(svc.STEP_IDS[index - 1])

    def _mark(self, step: str, done: bool = True) -> None:
        try:
            self.progress = svc.mark(self.profile, step, done)
        except (settings.SettingsError, OSError) as exc:
            self.notify(f"Progress not saved: {exc}", severity="error", markup=False)
        self._refresh_nav()

    def action_do_step(self) -> None:
        step = self.step
        if step == svc.ENVIRONMENT:
            env = next(e for e in svc.ENVIRONMENTS
                       if self.query_one(f"#env-{e}", RadioButton).value)
            try:
                svc.set_environment(self.profile, env,
                                    self.query_one("#wizard-domain", Input).value)
            except (ValueError, settings.SettingsError, OSError) as exc:
                self._state(str(exc), "-fail")
                self.notify(str(exc), severity="error", markup=False)
                return
            self._mark(step)
            self.notify(f"Environment saved: {env}.")
            self.action_next_step()
        elif step == svc.SALESFORCE:
            from lc_console.screens.connect_salesforce import ConnectSalesforceScreen

            self.app.push_screen(ConnectSalesforceScreen(self.profile), self._back)
        elif step == svc.STRIPE:
            from lc_console.screens.connect_stripe import ConnectStripeScreen

            self.app.push_screen(ConnectStripeScreen(self.profile), self._back)
        elif step == svc.INSTALL:
            self.busy = True
            self._state("Reading the plan, then installing…", "")
            self.run_install()
        elif step == svc.MAPPING:
            from lc_console.screens.mapping import MappingScreen

            self.app.push_screen(MappingScreen(self.profile), self._mapping_back)
        elif step == svc.FIRST_SYNC:
            if self.preview is None:
                self.busy = True
                self._state("Dry run: reading the pending events and the org…", "")
                self.run_dry_run()
            else:
                self._start_sync()

    def action_backfill(self) -> None:
        """First the forecast (a dry run of the backfill), then the run itself."""
        forecast, self.backfill_forecast = self.backfill_forecast, None
        self.backfilling = True
        self.refresh_bindings()
        for phase in BACKFILL_PHASES:
            self.query_one(f"#backfill-{phase}").display = forecast is not None
            self.query_one(f"#backfill-bar-{phase}", ProgressBar).update(total=None, progress=0)
            self.query_one(f"#backfill-line-{phase}", Static).update("waiting")
        self.query_one("#backfill-text", Static).update(
            "Backfilling: reading Stripe and the org, then writing…" if forecast is not None
            else "Forecast: reading Stripe and the org, nothing written…")
        self.run_backfill(dry_run=forecast is None)

    def on_wizard_screen_backfill_progress(self, message: BackfillProgress) -> None:
        p = message.progress
        if p.phase not in BACKFILL_PHASES:
            return
        bar = self.query_one(f"#backfill-bar-{p.phase}", ProgressBar)
        bar.update(total=p.total, progress=p.done)
        self.query_one(f"#backfill-line-{p.phase}", Static).update(p.line().strip())

    def _start_sync(self) -> None:
        """Open the monitor and start the engine there (it owns the running sync)."""
        from lc_console.screens.monitor import MonitorScreen

        self.preview = None
        self._mark(svc.FIRST_SYNC)
        self._describe_step()
        if "monitor" in getattr(self.app, "_modes", {}):
            self.app.switch_mode("monitor")
            screen = self.app.screen
        else:
            screen = MonitorScreen(self.profile)
            self.app.push_screen(screen)
        if isinstance(screen, MonitorScreen) and screen.check_action("start", ()):
            self.app.call_after_refresh(screen.action_start)

    def _back(self, _: Any = None) -> None:
        self.action_recheck()

    def _mapping_back(self, _: Any = None) -> None:
        from lc_console.services import mapping

        try:
            draft = mapping.Draft.from_settings(settings.load(self.profile))
        except settings.SettingsError as exc:
            self._state(f"Mapping not usable: {exc}", "-fail")
            return
        problems = mapping.offline_problems(draft)
        if problems:
            source, text = next(iter(problems.items()))
            self._state(f"Mapping has a problem: {source}: {text}", "-fail")
            return
        self._mark(svc.MAPPING)
        self._describe_step()

    def action_recheck(self) -> None:
        self._state("Checking the connections…", "")
        self.recheck()

    # --- workers ------------------------------------------------------------------------

    @work(thread=True, exclusive=True, group="wizard-check", exit_on_error=False,
          description="Checking the setup")
    def recheck(self) -> _Checked:
        try:
            status = status_svc.gather(self.profile)
        except Exception as exc:
            return _Checked(None, self.progress, error=str(exc))
        progress = svc.load(self.profile, status)
        if status.salesforce.connection is Connection.CONNECTED and \
                status.stripe.connection is Connection.CONNECTED and \
                svc.FIRST_SYNC not in progress.completed:
            try:
                svc.fix_start_point(self.profile)
            except Exception:  # noqa: S110 - the sync starts from now then; retried on recheck
                pass
        return _Checked(status, progress)

    @work(thread=True, exclusive=True, group="wizard-install", exit_on_error=False,
          description="Installing the LostChurn schema")
    def run_install(self) -> install_svc.InstallResult:
        try:
            target = self.target_factory()
        except Exception as exc:
            return install_svc.InstallResult(install_svc.Outcome.ERROR,
                                             install_svc.error_message(exc))
        return install_svc.install(
            target, on_progress=lambda p: self.post_message(self.InstallProgress(p.message)),
            poll_interval=self.poll[0], max_poll_interval=self.poll[1])

    @work(thread=True, exclusive=True, group="wizard-dry-run", exit_on_error=False,
          description="Dry run of the first sync")
    def run_dry_run(self) -> Any:
        try:
            return self.dry_run(self.profile)
        except Exception as exc:
            message = getattr(exc, "message", None)
            text = message.text() if hasattr(message, "text") else \
                install_svc.error_message(exc)
            return RuntimeError(" ".join(text.split()))

    @work(thread=True, exclusive=True, group="wizard-backfill", exit_on_error=False,
          description="Backfilling Stripe history")
    def run_backfill(self, dry_run: bool) -> Any:
        from lc_console.services import resync

        try:
            runner = resync.for_profile(
                self.profile, on_progress=lambda p: self.post_message(self.BackfillProgress(p)))
            try:
                return runner.run(resync.Options(dry_run=dry_run))
            finally:
                runner.store.close()
        except resync.Stop as exc:
            return RuntimeError(str(getattr(exc, "message", "") or exc))
        except Exception as exc:
            return RuntimeError(" ".join(install_svc.error_message(exc).split()))

    def _backfill_done(self, result: Any) -> None:
        from lc_console.services import resync

        self.backfilling = False
        self.refresh_bindings()
        text = self.query_one("#backfill-text", Static)
        if isinstance(result, RuntimeError):
            text.update(f"✗ Backfill not run: {result}")
            self.notify(f"Backfill not run: {result}", severity="error", markup=False)
            return
        forecast = result.forecast
        if result.status == "dry-run":
            self.backfill_forecast = forecast
            lines = forecast.lines() if forecast is not None else []
            text.update("\n".join(["Forecast (nothing written yet):", *lines,
                                   "Press B to run the backfill."]))
        elif result.status == "done":
            text.update("\n".join(["✓ Backfill done:", *resync.summary_lines(result)]))
            self.notify(f"Backfill done: {sum(c.created + c.updated for c in result.counts.values()):,} "
                        "records written.", markup=False)
        else:
            extra = forecast.lines() if forecast is not None and result.status == "refused" else []
            text.update("\n".join([f"✗ Backfill {result.status}: {result.message}", *extra]))
            self.notify(f"Backfill {result.status}: {result.message}", severity="warning",
                        markup=False)

    def on_wizard_screen_install_progress(self, message: InstallProgress) -> None:
        if self.step == svc.INSTALL:
            self._state(message.text, "")

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker.group == "wizard-backfill":
            if event.state is WorkerState.SUCCESS:
                self._backfill_done(event.worker.result)
            elif event.state is WorkerState.ERROR:
                self._backfill_done(RuntimeError(str(event.worker.error)))
            return
        if event.worker.group not in ("wizard-check", "wizard-install", "wizard-dry-run"):
            return
        if event.state is WorkerState.ERROR:
            self.busy = False
            super().on_worker_state_changed(event)
            return
        if event.state is not WorkerState.SUCCESS:
            return
        result = event.worker.result
        if event.worker.group == "wizard-dry-run":
            self.busy = False
            if isinstance(result, RuntimeError):
                self._state(f"✗ Dry run failed: {result}", "-fail")
            else:
                self.preview = result
                self._describe_step()
            return
        if isinstance(result, _Checked):
            if result.error:
                self._state(f"Cannot check the setup: {result.error}", "-fail")
                return
            self.status = result.status
            self.progress = result.progress
            st = result.status
            if st is not None:
                if st.salesforce.connection is Connection.CONNECTED and \
                        svc.SALESFORCE not in self.progress.completed:
                    self._mark(svc.SALESFORCE)
                if st.stripe.connection is Connection.CONNECTED and \
                        svc.STRIPE not in self.progress.completed:
                    self._mark(svc.STRIPE)
            self._refresh_nav()
            self._describe_step()
        elif isinstance(result, install_svc.InstallResult):
            self.busy = False
            self._install_line = " ".join(result.lines())
            if result.ok:
                self._mark(svc.INSTALL)
                self.notify("Install finished.")
            else:
                self._state("✗ " + self._install_line, "-fail")
                return
            self._describe_step()
