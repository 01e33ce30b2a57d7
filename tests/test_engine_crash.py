"""Crash safety: `lc-console sync` subprocesses killed with SIGKILL at random moments over the
`small` scenario's few hundred events, restarted each time, leave the org exactly as a clean
run does: nothing lost, nothing duplicated. Also: SIGTERM finishes the current batch.

The subprocesses read their secrets from the real Secret Service (run under
tests/with-keyring.sh, as `make test` does), like an admin's terminal."""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from engine_helpers import (  # noqa: F401
    connect_stripe,
    fast_settings,
    installed_org,
    snapshot,
    snapshot_diff,
)
from install_helpers import connect

from lc_console import secrets
from lc_console.sandbox.salesforce import SalesforceSandbox
from lc_console.sandbox.stripe import StripeSandbox
from lc_console.services import sync as sync_service

pytestmark = [pytest.mark.slow, pytest.mark.secret_service]
SINCE = "30d"


def _org(installed: dict[str, Path], tmp: Path, name: str) -> SalesforceSandbox:
    state = tmp / f"{name}.json"
    shutil.copy(installed["state"], state)
    return SalesforceSandbox(state_file=state, cert_dir=installed["certs"], save_interval=3600)


def _cli(profile: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "lc_console", "--profile", profile, "sync",
                             *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=dict(os.environ))


def _forget(profile: str) -> None:
    for kind in secrets.SecretKind:
        secrets.delete(profile, kind)


def _events(sandbox: SalesforceSandbox) -> list[tuple[Any, Any]]:
    return sorted((e["payload"].get("Recovery_ID__c"), e["payload"].get("Event_Type__c"))
                  for e in sandbox.published_events())


def test_sigkill_at_random_moments_loses_and_duplicates_nothing(
        secret_service: Any, installed_org: Any, tmp_path: Path) -> None:  # noqa: F811
    rng = random.Random(11)
    clean_sf, crash_sf = _org(installed_org, tmp_path, "clean"), _org(installed_org, tmp_path,
                                                                      "crash")
    with clean_sf, crash_sf, StripeSandbox(scenario="small", seed=1) as st:
        try:
            for profile, sf in (("clean", clean_sf), ("crash", crash_sf)):
                connect(sf, profile=profile)
                connect_stripe(st, profile=profile)
                fast_settings(profile, max_batch_size=25)
            since = st.now - 31 * 86400
            with sync_service.open_session("clean") as session:
                reference = session.engine.run_once(since)
            assert reference.failed == 0 and reference.events > 300
            # The crashing run: the org answers slowly, so kills land mid-batch too.
            crash_sf.set_latency(15)
            kills, mid_run = 0, 0
            for _round in range(7):
                proc = _cli("crash", "--since", SINCE)
                time.sleep(rng.uniform(0.8, 3.0))
                if proc.poll() is None:
                    proc.send_signal(signal.SIGKILL)
                    kills += 1
                out, _ = proc.communicate(timeout=30)
                mid_run += " batch " in out  # killed after writing at least one batch
            crash_sf.set_latency(0)
            assert kills >= 5 and mid_run >= 2
            final = _cli("crash", "--once")
            out, err = final.communicate(timeout=120)
            assert final.returncode == 0, err
            assert snapshot_diff(snapshot(clean_sf), snapshot(crash_sf)) == []
            # Platform events cannot be read back: one published just before a kill may be
            # published again (at least once); every expected one is there.
            assert set(_events(crash_sf)) == set(_events(clean_sf))
            assert len(_events(crash_sf)) - len(_events(clean_sf)) <= kills
        finally:
            _forget("clean")
            _forget("crash")


def test_sigterm_finishes_the_current_batch_and_exits_0(
        secret_service: Any, installed_org: Any, tmp_path: Path) -> None:  # noqa: F811
    with _org(installed_org, tmp_path, "term") as sf, StripeSandbox(scenario="small",
                                                                   seed=1) as st:
        try:
            connect(sf, profile="term")
            connect_stripe(st, profile="term")
            fast_settings("term", max_batch_size=20)
            sf.set_latency(20)
            proc = _cli("term", "--since", SINCE)
            deadline = time.monotonic() + 60
            lines = []
            assert proc.stdout is not None
            while time.monotonic() < deadline:
                line = proc.stdout.readline()
                lines.append(line)
                if " batch 1:" in line:
                    break
            proc.send_signal(signal.SIGTERM)
            out, err = proc.communicate(timeout=60)
            assert proc.returncode == 0, err
            assert "Stopped." in out
            from lc_console.store import Store

            with Store.for_profile("term") as store:
                # Claimed rows were completed or given back; the rest is still queued.
                assert store.outbox_pending() > 0
                assert store.recent_audit(limit=1)
        finally:
            _forget("term")
