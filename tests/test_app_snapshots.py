"""Snapshots of the console's screens (100x30 unless said otherwise).

Deterministic: fixed profile, per-test XDG dirs from conftest.py with HOME set to their parent
(so paths show as ~/xdg/...), the in-memory keyring, fixed doctor checks, no clock text.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import keyring
import keyring.backends.fail
import pytest
from textual.pilot import Pilot

from lc_console import paths, secrets, settings
from lc_console.app import make_app
from lc_console.screens.doctor import DoctorReport
from lc_console.screens.home import Dashboard
from lc_console.secrets import SecretKind
from lc_console.services import doctor
from lc_console.services.doctor import Check
from lc_console.store import OutboxItem, Store

PROFILE = "default"
SIZE = (100, 30)


@pytest.fixture(autouse=True)
def home_above_xdg(isolated_dirs: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(isolated_dirs.parent))


def connected_profile(theme: str = "lc-dark") -> None:
    cfg = settings.Settings()
    cfg.salesforce.org_id = "00D5g000004ABCDEAV"
    cfg.salesforce.org_name = "Acme Corp"
    cfg.salesforce.instance_url = "https://acme.my.salesforce.com"
    cfg.salesforce.username = "admin@acme.example"
    cfg.stripe.account_id = "acct_1Nv0FGQ9RKHgCVdK"
    cfg.stripe.account_name = "Acme Billing"
    cfg.stripe.mode = "live"
    cfg.ui.theme = theme
    settings.save(PROFILE, cfg)
    secrets.put(PROFILE, SecretKind.SALESFORCE_REFRESH_TOKEN, "5Aep861.refresh-token-for-tests")
    secrets.put(PROFILE, SecretKind.STRIPE_API_KEY, "rk_" "live_51Nv0FGQ9RKHgCVdKtestonly")


async def until(pilot: Pilot[None], done: Callable[[], bool], timeout: float = 10.0) -> None:
    for _ in range(int(timeout / 0.02)):
        if done():
            await pilot.pause()
            return
        await pilot.pause(0.02)
    raise AssertionError("the screen did not settle")


async def home_loaded(pilot: Pilot[None]) -> None:
    def done() -> bool:
        found = pilot.app.screen.query(Dashboard)
        return bool(found) and found.first().status is not None

    await until(pilot, done)


async def doctor_done(pilot: Pilot[None]) -> None:
    def done() -> bool:
        found = pilot.app.screen.query(DoctorReport)
        return bool(found) and found.first().results is not None

    await until(pilot, done)


@pytest.mark.parametrize("theme", ["lc-dark", "lc-light"])
def test_home_connected(snap_compare, theme: str) -> None:
    connected_profile(theme)
    assert snap_compare(make_app(PROFILE), terminal_size=SIZE, run_before=home_loaded)


@pytest.mark.parametrize("theme", ["lc-dark", "lc-light"])
def test_home_new_profile(snap_compare, theme: str) -> None:
    cfg = settings.Settings()
    cfg.ui.theme = theme
    settings.save(PROFILE, cfg)
    assert snap_compare(make_app(PROFILE), terminal_size=SIZE, run_before=home_loaded)


def sync_history() -> None:
    """A state database as a sync leaves it: cursor, writes, a queue and open failures."""
    at = 1_795_000_000.0  # 2026-11-18 11:06:40 UTC
    with Store(paths.state_db(PROFILE), clock=lambda: at) as store:
        store.set_cursor("evt_1QabcDEF", int(at) - 5)
        store.audit(object="Contact", action="upsert", outcome="created",
                    external_key="ada@acme.example", salesforce_id="003000000000001AAA")
        store.outbox_enqueue([
            OutboxItem(object="Contact", key_field="LostChurn_ID__c", key_value=f"cus_{n}",
                       operation="upsert", payload={"LastName": f"Customer {n}"})
            for n in range(3)
        ])
        for n in range(2):
            store.record_failure(object="Account", key=f"cus_f{n}", operation="upsert",
                                 payload={"Name": "x"}, error_code="FIELD_CUSTOM_VALIDATION_EXCEPTION",
                                 message="Billing country is required")


@pytest.fixture
def utc() -> Iterator[None]:
    """Times show in local time: make that UTC, and put the zone back afterwards."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TZ", "UTC")
        time.tzset()
        yield
    time.tzset()


def test_home_sync_history(snap_compare, utc: None) -> None:
    connected_profile()
    sync_history()
    assert snap_compare(make_app(PROFILE), terminal_size=SIZE, run_before=home_loaded)


def test_home_connection_expired(snap_compare, utc: None) -> None:
    connected_profile()
    sync_history()
    cfg = settings.load(PROFILE)
    cfg.salesforce.connection_expired = True
    settings.save(PROFILE, cfg)
    assert snap_compare(make_app(PROFILE), terminal_size=SIZE, run_before=home_loaded)


def test_home_new_profile_80x24(snap_compare) -> None:
    assert snap_compare(make_app(PROFILE), terminal_size=(80, 24), run_before=home_loaded)


def test_home_keyring_unavailable(snap_compare) -> None:
    keyring.set_keyring(keyring.backends.fail.Keyring())  # conftest restores the previous one
    assert snap_compare(make_app(PROFILE), terminal_size=SIZE, run_before=home_loaded)


def test_help_on_home(snap_compare) -> None:
    async def open_help(pilot: Pilot[None]) -> None:
        await home_loaded(pilot)
        await pilot.press("question_mark")

    assert snap_compare(make_app(PROFILE), terminal_size=SIZE, run_before=open_help)


FIXED_CHECKS = [
    Check("versions", True, "lc-console 0.1.0, Python 3.11.7, textual 8.2.8"),
    Check("settings", True, "~/.config/lc-console/default.toml (not created yet)"),
    Check("keyring", False, "No OS keyring backend is available.",
          "Install and unlock GNOME Keyring: apt install gnome-keyring"),
    Check("terminal", True, "TERM=xterm-256color COLORTERM=truecolor: truecolor.", level="info"),
    Check("tls", False, "tls.ca_bundle ~/ca.pem does not exist",
          "Point tls.ca_bundle at a PEM file: lc-console config set tls.ca_bundle /path/ca.pem"),
]


def test_doctor(snap_compare, monkeypatch: pytest.MonkeyPatch) -> None:
    fixed = [lambda profile, c=c: c for c in FIXED_CHECKS]
    monkeypatch.setattr(doctor, "CHECKS", fixed)
    assert snap_compare(make_app(PROFILE, mode="doctor"), terminal_size=SIZE,
                        run_before=doctor_done)


def test_settings_error(snap_compare) -> None:
    path = paths.config_file(PROFILE)
    path.parent.mkdir(parents=True)
    path.write_text("[sync]\nmax_batch_size = 500\n")
    assert snap_compare(make_app(PROFILE), terminal_size=SIZE)


def test_settings_error_bad_toml(snap_compare) -> None:
    path = paths.config_file(PROFILE)
    path.parent.mkdir(parents=True)
    path.write_text("[ui]\ntheme = lc-light\n")
    assert snap_compare(make_app(PROFILE), terminal_size=SIZE)
