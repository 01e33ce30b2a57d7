"""Setup wizard progress: which steps are done, which one to show, and what each step finds.

Progress lives in settings.ui.wizard_completed so that quitting mid-way resumes at the first
step not done. A step marked done is checked again against reality when the wizard opens (a
revoked Salesforce token puts the Salesforce step back to do), so the wizard never claims a
connection that no longer works.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from lc_console import settings
from lc_console.services.status import Connection, ProfileStatus

ENVIRONMENT, SALESFORCE, STRIPE, INSTALL, MAPPING, FIRST_SYNC = (
    "environment", "salesforce", "stripe", "install", "mapping", "first_sync")
STEPS: tuple[tuple[str, str], ...] = (
    (ENVIRONMENT, "Environment"),
    (SALESFORCE, "Salesforce sign-in"),
    (STRIPE, "Stripe key"),
    (INSTALL, "Install the schema"),
    (MAPPING, "Mapping and conflicts"),
    (FIRST_SYNC, "First sync"),
)
STEP_IDS = tuple(s for s, _ in STEPS)
ENVIRONMENTS = ("production", "sandbox", "custom")


@dataclass(frozen=True)
class Progress:
    completed: tuple[str, ...]
    current: str

    @property
    def finished(self) -> bool:
        return all(s in self.completed for s in STEP_IDS)


def reconcile(completed: list[str], status: ProfileStatus | None) -> list[str]:
    """Steps marked done, minus those the profile's status contradicts."""
    done = [s for s in STEP_IDS if s in completed]
    if status is not None:
        if status.salesforce.connection is not Connection.CONNECTED:
            done = [s for s in done if s not in (SALESFORCE, INSTALL, FIRST_SYNC)]
        if status.stripe.connection is not Connection.CONNECTED:
            done = [s for s in done if s != STRIPE]
    return done


def progress(completed: list[str]) -> Progress:
    done = tuple(s for s in STEP_IDS if s in completed)
    current = next((s for s in STEP_IDS if s not in done), STEP_IDS[-1])
    return Progress(done, current)


def load(profile: str, status: ProfileStatus | None = None) -> Progress:
    cfg = settings.load(profile)
    done = reconcile(cfg.ui.wizard_completed, status)
    if done != [s for s in STEP_IDS if s in cfg.ui.wizard_completed]:
        cfg.ui.wizard_completed = done
        settings.save(profile, cfg)
    return progress(done)


def mark(profile: str, step: str, done: bool = True) -> Progress:
    if step not in STEP_IDS:
        raise ValueError(f"unknown wizard step {step!r}")
    cfg = settings.load(profile)
    marked = [s for s in cfg.ui.wizard_completed if s != step]
    if done:
        marked.append(step)
    cfg.ui.wizard_completed = [s for s in STEP_IDS if s in marked]
    settings.save(profile, cfg)
    return progress(cfg.ui.wizard_completed)


def set_environment(profile: str, environment: str, login_url: str = "") -> None:
    """Save the org's environment (production, sandbox, or a My Domain URL)."""
    if environment not in ENVIRONMENTS:
        raise ValueError(f"environment must be one of {', '.join(ENVIRONMENTS)}")
    cfg = settings.load(profile)
    sf = cfg.salesforce
    if environment == "custom":
        url = login_url.strip().rstrip("/")
        if not url.startswith("https://") or " " in url or url == "https://":
            raise ValueError("Enter your My Domain URL, e.g. https://acme.my.salesforce.com")
        sf.login_url = url
    else:
        sf.login_url = settings.ENVIRONMENT_URLS[environment]
    sf.environment = environment
    settings.save(profile, cfg)


def preview_lines(preview: Any) -> list[str]:
    """The dry run in a few lines: records per object and action, API calls, notes."""
    if not preview.events:
        head = "No pending events: the sync starts from now and writes as events arrive."
    else:
        head = (f"{preview.events:,} pending events would cost about {preview.api_calls:,} "
                "API calls.")
    lines = [head]
    for sobject, row in sorted(preview.totals.items()):
        parts = [f"{n:,} {action}" for action, n in row.items() if n]
        lines.append(f"  {sobject}: {', '.join(parts) or 'nothing'}")
    lines += preview.notes[:3]
    return lines


def fix_start_point(profile: str) -> bool:
    """Once both connections work during setup, the first sync's starting point is now: what
    happens in Stripe during the rest of the setup is then pending (the first-sync dry run
    previews it and the sync writes it) instead of being skipped by a start "from now".
    Returns True when it was set here; a profile that already has a cursor is left alone."""
    from lc_console.services import sync
    from lc_console.store import Store

    with Store.for_profile(profile) as store:
        if store.get_cursor() is not None:
            return False
    return sync.reset_cursor(profile) is not None
