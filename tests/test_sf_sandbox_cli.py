"""`lc-console sandbox salesforce` as a user runs it: JSON first line, HTTPS with the printed
CA, the printed logins work, SIGTERM stops it, --state survives a restart."""

from __future__ import annotations

import json
import os
import signal
import ssl
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest


def start(*args: str) -> tuple[subprocess.Popen[str], dict[str, Any]]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "lc_console", "sandbox", *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=os.environ.copy(),
    )  # fmt: skip
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line:
        proc.kill()
        pytest.fail(f"sandbox did not start: {proc.stderr.read() if proc.stderr else ''}")
    return proc, json.loads(line)


def stop(proc: subprocess.Popen[str]) -> int:
    proc.send_signal(signal.SIGTERM)
    return proc.wait(timeout=15)


def password_login(info: dict[str, Any], user: dict[str, Any]) -> dict[str, Any]:
    ctx = ssl.create_default_context(cafile=info["ca_file"])
    with httpx.Client(base_url=info["url"], verify=ctx) as c:
        r = c.post("/services/oauth2/token", data={
            "grant_type": "password", "client_id": info["client_id"], "client_secret": "x",
            "username": user["username"], "password": user["password"]})  # fmt: skip
    assert r.status_code == 200, r.text
    return r.json()


@pytest.mark.slow
def test_sandbox_salesforce_json_and_sigterm(tmp_path: Path) -> None:
    proc, out = start("salesforce", "--port", "0", "--json", "--edition", "professional")
    try:
        info = out["salesforce"]
        assert info["url"].startswith("https://127.0.0.1:")
        assert Path(info["ca_file"]).is_file() and info["client_id"]
        users = {u["customize_application"]: u for u in info["users"]}
        assert set(users) == {True, False}
        tok = password_login(info, users[True])
        ctx = ssl.create_default_context(cafile=info["ca_file"])
        with httpx.Client(base_url=info["url"], verify=ctx,
                          headers={"Authorization": f"Bearer {tok['access_token']}"}) as c:  # fmt: skip
            limits = c.get("/services/data/v62.0/limits/")
        assert limits.json()["DailyApiRequests"]["Max"] == 75000
        assert limits.headers["Sforce-Limit-Info"] == "api-usage=1/75000"
    finally:
        code = stop(proc)
    assert code == 0


@pytest.mark.slow
def test_sandbox_state_survives_restart(tmp_path: Path) -> None:
    state = tmp_path / "sf.json"
    proc, out = start("salesforce", "--json", "--state", str(state))
    try:
        info = out["salesforce"]
        admin = next(u for u in info["users"] if u["customize_application"])
        tok = password_login(info, admin)
        ctx = ssl.create_default_context(cafile=info["ca_file"])
        with httpx.Client(base_url=info["url"], verify=ctx,
                          headers={"Authorization": f"Bearer {tok['access_token']}"}) as c:  # fmt: skip
            rid = c.post("/services/data/v62.0/sobjects/Account", json={"Name": "Kept"}).json()["id"]
    finally:
        assert stop(proc) == 0
    proc, out = start("--json", "--salesforce-state", str(state))  # no SERVICE: every sandbox
    try:
        info = out["salesforce"]
        assert next(u for u in info["users"] if u["customize_application"]) == admin
        tok = password_login(info, admin)
        ctx = ssl.create_default_context(cafile=info["ca_file"])
        with httpx.Client(base_url=info["url"], verify=ctx,
                          headers={"Authorization": f"Bearer {tok['access_token']}"}) as c:  # fmt: skip
            assert c.get(f"/services/data/v62.0/sobjects/Account/{rid}").json()["Name"] == "Kept"
    finally:
        assert stop(proc) == 0


def test_bad_options_are_named() -> None:
    r = subprocess.run([sys.executable, "-m", "lc_console", "sandbox", "salesforce", "--fault-rate", "1.5"],
                       capture_output=True, text=True, timeout=60)  # fmt: skip
    assert r.returncode == 2
    assert "--fault-rate must be between 0 and 1" in r.stderr
