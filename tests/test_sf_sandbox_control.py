"""Faults, latency, the inspection / control API (Python and HTTP), and --state persistence of
the Salesforce sandbox."""

from __future__ import annotations

import ssl
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import requests
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceGeneralError, SalesforceMalformedRequest

from lc_console.sandbox.salesforce import SalesforceSandbox


def sf_client(sb: Any) -> Salesforce:
    session = requests.Session()
    session.verify = sb.ca_file
    session.trust_env = False
    return Salesforce(instance_url=sb.url, session_id=sb.login(), version="62.0", session=session)


def admin_http(sb: Any, secret: str | None = None) -> httpx.Client:
    return httpx.Client(base_url=sb.url, verify=ssl.create_default_context(cafile=sb.ca_file),
                        headers={"X-Sandbox-Admin-Secret": secret or sb.admin_secret})  # fmt: skip


# -- faults ------------------------------------------------------------------------------------------


def test_injected_lock_error_on_single_write_and_collection(salesforce_sandbox) -> None:
    sf = sf_client(salesforce_sandbox)
    salesforce_sandbox.faults.inject("lock")
    with pytest.raises(SalesforceMalformedRequest) as exc:
        sf.Account.create({"Name": "A"})
    assert exc.value.content[0]["errorCode"] == "UNABLE_TO_LOCK_ROW"
    assert exc.value.content[0]["message"].startswith("unable to obtain exclusive access to this record")
    salesforce_sandbox.faults.inject("lock")
    out = sf.restful("composite/sobjects", method="POST", json={"records": [
        {"attributes": {"type": "Account"}, "Name": n} for n in ("a", "b")]})  # fmt: skip
    assert [r["errors"][0]["statusCode"] for r in out] == ["UNABLE_TO_LOCK_ROW"] * 2
    assert salesforce_sandbox.records("Account") == []
    assert sf.Account.create({"Name": "after"})["success"] is True


def test_injected_503_and_dropped_connection(salesforce_sandbox) -> None:
    sf = sf_client(salesforce_sandbox)
    salesforce_sandbox.faults.inject("unavailable")
    with pytest.raises(SalesforceGeneralError) as exc:
        sf.query("SELECT Id FROM Account")
    assert exc.value.status == 503 and exc.value.content[0]["errorCode"] == "SERVER_UNAVAILABLE"
    salesforce_sandbox.faults.inject("drop")
    with pytest.raises(requests.exceptions.ConnectionError):
        sf.query("SELECT Id FROM Account")
    assert sf.query("SELECT COUNT() FROM Account")["totalSize"] == 0
    faults = [r["fault"] for r in salesforce_sandbox.requests() if r["fault"]]
    assert faults == ["unavailable", "drop"]


def _statuses(seed: int) -> list[int]:
    with SalesforceSandbox(fault_rate=0.3, seed=seed) as sb:
        ctx = ssl.create_default_context(cafile=sb.ca_file)
        out = []
        with httpx.Client(base_url=sb.url, verify=ctx, headers={"Authorization": f"Bearer {sb.login()}"}) as c:
            for i in range(40):
                try:
                    out.append(c.post("/services/data/v62.0/sobjects/Account", json={"Name": f"A{i}"}).status_code)
                except httpx.TransportError:
                    out.append(0)
        return out


def test_fault_rate_is_seeded() -> None:
    a, b = _statuses(7), _statuses(7)
    assert a == b
    assert 201 in a and set(a) - {201} and set(a) <= {0, 201, 400, 503}


def test_latency(salesforce_sandbox) -> None:
    sf = sf_client(salesforce_sandbox)
    salesforce_sandbox.set_latency(150)
    started = time.perf_counter()
    sf.query("SELECT COUNT() FROM Account")
    assert time.perf_counter() - started >= 0.15


# -- inspection and control --------------------------------------------------------------------------


def test_python_inspection_api(salesforce_sandbox) -> None:
    sf = sf_client(salesforce_sandbox)
    sf.Account.create({"Name": "Acme"})
    sf.query("SELECT Id FROM Account")
    assert [r["Name"] for r in salesforce_sandbox.records("Account")] == ["Acme"]
    assert salesforce_sandbox.usage() == 2
    assert sum(m["count"] for m in salesforce_sandbox.usage_per_minute()) == 2
    log = salesforce_sandbox.requests()
    assert [(r["method"], r["status"], r["api_calls"]) for r in log[-2:]] == [("POST", 201, 1), ("GET", 200, 1)]
    assert log[-1]["user_id"] == salesforce_sandbox.admin.id


def test_admin_endpoint(salesforce_sandbox) -> None:
    sf = sf_client(salesforce_sandbox)
    sf.Contact.create({"LastName": "Seen"})
    with admin_http(salesforce_sandbox, secret="wrong") as c:
        assert c.get("/__sandbox__/records/Contact").status_code == 401
    with admin_http(salesforce_sandbox) as c:
        recs = c.get("/__sandbox__/records/Contact").json()
        assert recs["totalSize"] == 1 and recs["records"][0]["LastName"] == "Seen"
        assert c.post("/__sandbox__/usage", json={"used": 99}).json()["used"] == 99
        assert c.post("/__sandbox__/usage", json={"max": 100}).json()["max"] == 100
        assert c.get("/__sandbox__/events").json() == []
        assert c.post("/__sandbox__/faults", json={"inject": "unavailable"}).status_code == 200
        with pytest.raises(SalesforceGeneralError):
            sf.query("SELECT Id FROM Contact")
        assert c.post("/__sandbox__/faults", json={"rate": 2}).status_code == 400
        assert c.post("/__sandbox__/tokens/expire").json()["expired"] >= 1
        log = c.get("/__sandbox__/requests", params={"limit": 3}).json()
        assert len(log) == 3 and "path" in log[0]
        c.post("/__sandbox__/clock", json={"advance_seconds": 3600})
    assert salesforce_sandbox.org.clock.offset_seconds == 3600
    # admin calls are not API calls
    assert salesforce_sandbox.usage() == 99


def test_daily_limit_from_edition() -> None:
    with SalesforceSandbox(edition="essentials") as sb:
        assert sf_client(sb).limits()["DailyApiRequests"]["Max"] == 15000
    with SalesforceSandbox(edition="unlimited", daily_api_limit=1234) as sb:
        assert sf_client(sb).limits()["DailyApiRequests"]["Max"] == 1234


# -- persistence --------------------------------------------------------------------------------------


def test_state_file_keeps_records_usage_and_tokens(tmp_path: Path) -> None:
    state = tmp_path / "org.json"
    with SalesforceSandbox(state_file=state) as sb:
        sf = sf_client(sb)
        rid = sf.Account.create({"Name": "Persisted"})["id"]
        token = sb.login()
        admin = (sb.admin.username, sb.admin.password)
        used = sb.usage()
    assert state.exists()
    with SalesforceSandbox(state_file=state) as sb:
        assert (sb.admin.username, sb.admin.password) == admin
        assert sb.usage() == used
        ctx = ssl.create_default_context(cafile=sb.ca_file)
        with httpx.Client(base_url=sb.url, verify=ctx, headers={"Authorization": f"Bearer {token}"}) as c:
            assert c.get(f"/services/data/v62.0/sobjects/Account/{rid}").json()["Name"] == "Persisted"
            created = c.post("/services/data/v62.0/sobjects/Account", json={"Name": "New"}).json()["id"]
        assert created != rid


# -- TLS ----------------------------------------------------------------------------------------------


def test_https_only_with_a_local_ca_for_127_0_0_1_and_localhost(salesforce_sandbox) -> None:
    ctx = ssl.create_default_context(cafile=salesforce_sandbox.ca_file)
    port = salesforce_sandbox.port
    for host in ("127.0.0.1", "localhost"):
        with httpx.Client(verify=ctx) as c:
            assert c.get(f"https://{host}:{port}/services/data/").status_code == 200
    with httpx.Client() as c, pytest.raises(httpx.ConnectError):  # the public CAs do not trust it
        c.get(f"https://127.0.0.1:{port}/services/data/")
    with httpx.Client() as c, pytest.raises(httpx.TransportError):  # no plain HTTP
        c.get(f"http://127.0.0.1:{port}/services/data/")


def test_sandboxes_reuse_one_ca(tmp_path: Path) -> None:
    with SalesforceSandbox(cert_dir=tmp_path) as a, SalesforceSandbox(cert_dir=tmp_path) as b:
        assert a.ca_file == b.ca_file
        ctx = ssl.create_default_context(cafile=a.ca_file)
        with httpx.Client(verify=ctx) as c:
            assert c.get(f"{b.url}/services/data/").status_code == 200
