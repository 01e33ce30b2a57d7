"""The generated account: determinism, realism, API versions over time, delivery controls,
state across restarts, the live scenario, and the command line."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest
import stripe

from lc_console.sandbox.stripe import (
    DEFAULT_API_VERSION,
    LEGACY_API_VERSION,
    SandboxError,
    StripeSandbox,
)

NOW = 1_790_000_000


def events_of(st: StripeSandbox) -> list[dict[str, Any]]:
    renderer = st.api.modes[False].renderer
    ledger = st.test.ledger
    return [renderer.event(ledger.events[n]) for n in ledger.order if n >= 0]


def listed(st: StripeSandbox, **params: Any) -> list[dict[str, Any]]:
    c = stripe.StripeClient(st.keys["secret"], base_addresses={"api": st.url})
    return [json.loads(json.dumps(e.to_dict(), default=str))
            for e in c.v1.events.list(params={"limit": 100, **params}).auto_paging_iter()]


def customers_of(st: StripeSandbox) -> list[dict[str, Any]]:
    renderer = st.api.modes[False].renderer
    return [renderer.render("customer", c, DEFAULT_API_VERSION) for c in st.test.ledger.customers]


def test_same_seed_same_account_other_seed_other_account() -> None:
    a = StripeSandbox("small", seed=5, now=NOW).build()
    b = StripeSandbox("small", seed=5, now=NOW).build()
    c = StripeSandbox("small", seed=6, now=NOW).build()
    assert events_of(a) == events_of(b)
    assert customers_of(a) == customers_of(b)
    assert a.keys == b.keys
    assert {x["email"] for x in customers_of(a)} != {x["email"] for x in customers_of(c)}
    assert events_of(a)[0]["id"] != events_of(c)[0]["id"]
    # Ids do not depend on the clock: the same account a day later.
    later = StripeSandbox("small", seed=5, now=NOW + 86400).build()
    assert [x["id"] for x in customers_of(later)] == [x["id"] for x in customers_of(a)]
    assert customers_of(later)[0]["created"] == customers_of(a)[0]["created"] + 86400
    assert a.run_story(customers_of(a)[3]["id"], "profile_update").events == \
        b.run_story(customers_of(b)[3]["id"], "profile_update").events


def test_customers_look_like_a_real_account() -> None:
    st = StripeSandbox("demo", seed=4, now=NOW).build()
    customers = customers_of(st)
    assert len(customers) == 500
    emails = [c["email"] for c in customers if c["email"]]
    domains = Counter(e.split("@")[1] for e in emails)
    free = {"gmail.com", "outlook.com", "yahoo.com", "icloud.com", "proton.me", "hotmail.com",
            "aol.com", "gmx.de"}
    assert sum(n for d, n in domains.items() if d in free) > 50
    assert any(n >= 3 for d, n in domains.items() if d not in free)  # colleagues share a domain
    lowered = Counter(e.lower() for e in emails)
    assert any(n > 1 for n in lowered.values())  # the same person signed up twice
    assert any(e != e.lower() for e in emails)  # ... sometimes typing it differently
    assert any(c["email"] is None for c in customers)
    assert any(c["name"] is None for c in customers)
    assert {c["currency"] for c in customers} >= {"usd", "eur"}
    renderer = st.api.modes[False].renderer
    subs = [renderer.render("subscription", s, DEFAULT_API_VERSION)
            for s in st.test.ledger.subscriptions]
    prices = {(i["price"]["recurring"]["interval"], i["price"]["recurring"]["interval_count"])
              for s in subs for i in s["items"]["data"]}
    assert {("month", 1), ("year", 1), ("month", 3)} <= prices
    assert any(i["quantity"] > 1 for s in subs for i in s["items"]["data"])  # per seat
    assert {s["status"] for s in subs} >= {"active", "trialing", "past_due", "canceled"}
    invoices = [renderer.render("invoice", i, LEGACY_API_VERSION,)
                for i in st.test.ledger.invoices]
    coupons = {inv["discount"]["coupon"]["id"] for inv in invoices if inv["discount"]}
    assert {"LAUNCH20", "SAVE10", "HALFOFF3"} <= coupons  # percent and amount off
    for inv in invoices:
        if inv["discount"]:
            assert inv["total"] == inv["subtotal"] - inv["total_discount_amounts"][0]["amount"]


def test_the_account_upgraded_its_api_version_mid_history() -> None:
    with StripeSandbox("small", seed=9, now=NOW) as st:
        events = listed(st)
        by_version: dict[str, list[int]] = {}
        for e in events:
            by_version.setdefault(e["api_version"], []).append(e["created"])
        assert max(by_version[LEGACY_API_VERSION]) <= min(by_version[DEFAULT_API_VERSION])
        old = next(e for e in events if e["type"] == "invoice.paid"
                   and e["api_version"] == LEGACY_API_VERSION)
        assert "subscription" in old["data"]["object"] and "parent" not in old["data"]["object"]
        st.set_api_version("2025-06-30.basil")
        new_ids = st.advance(days=3)
        c = stripe.StripeClient(st.keys["secret"], base_addresses={"api": st.url})
        assert {c.v1.events.retrieve(i).api_version for i in new_ids} == {"2025-06-30.basil"}
        response = httpx.get(st.url + "/v1/account",
                             headers={"Authorization": f"Bearer {st.keys['secret']}"})
        assert response.headers["Stripe-Version"] == "2025-06-30.basil"
        with pytest.raises(SandboxError):
            st.set_api_version("2025-06-30")


def test_redelivery_and_out_of_order_delivery() -> None:
    with StripeSandbox("small", seed=12, now=NOW) as st:
        c = stripe.StripeClient(st.keys["secret"], base_addresses={"api": st.url})
        page = c.v1.events.list(params={"limit": 20}).data
        cursor, twice = page[0].id, page[5]
        st.redeliver(twice.id)
        after = [e.id for e in c.v1.events.list(
            params={"ending_before": cursor}).auto_paging_iter()]
        assert after == [twice.id]
        assert c.v1.events.list(params={"limit": 1}).data[0].created == twice.created
        moved = [page[3].id, page[10].id]  # the older one now arrives last
        cursor = c.v1.events.list(params={"limit": 1}).data[0].id
        st.deliver_out_of_order(moved)
        newer = list(c.v1.events.list(params={"ending_before": cursor}).auto_paging_iter())
        assert [e.id for e in newer] == moved
        assert newer[0].created >= newer[1].created  # listed out of created order
        everything = [e.id for e in c.v1.events.list(params={"limit": 100}).auto_paging_iter()]
        assert everything.count(page[3].id) == 1 and everything.count(twice.id) == 2
        notice = st.emit("customer.updated", page[0].data.object.customer
                         if isinstance(page[0].data.object.customer, str) else
                         c.v1.customers.list(params={"limit": 1}).data[0].id)
        assert c.v1.events.retrieve(notice).type == "customer.updated"
        customer = c.v1.customers.list(params={"limit": 1}).data[0].id
        with pytest.raises(SandboxError, match="does not carry"):
            st.emit("invoice.paid", customer)
        invoice = c.v1.invoices.list(params={"customer": customer, "limit": 1}).data[0].id
        cursor = c.v1.events.list(params={"limit": 1}).data[0].id
        sent = st.emit_sequence([("invoice.payment_failed", invoice), ("invoice.paid", invoice),
                                 ("customer.updated", customer)])
        arrived = list(c.v1.events.list(params={"ending_before": cursor}).auto_paging_iter())
        assert [e.id for e in arrived] == sent
        assert [e.type for e in arrived] == ["invoice.payment_failed", "invoice.paid",
                                             "customer.updated"]
        assert arrived[0].data.object.id == invoice


def test_state_file_keeps_the_account_across_restarts(tmp_path: Path) -> None:
    state = tmp_path / "stripe.json"
    with StripeSandbox("small", seed=13, now=NOW, state=state) as st:
        customer = customers_of(st)[5]["id"]
        st.advance(days=1)
        st.run_story(customer, "dunning_recovered_first_retry", when="now")
        first = listed(st)
        keys = st.keys
    assert json.loads(state.read_text())["config"]["seed"] == 13
    with StripeSandbox("demo", seed=99, state=state) as again:
        assert again.resumed and again.config.scenario == "small" and again.keys == keys
        assert listed(again) == first
        assert again.now >= NOW + 86400
    state.write_text("{broken")
    with pytest.raises(SandboxError, match="Delete it to start a fresh account"):
        StripeSandbox("small", state=state).build()


def test_live_scenario_keeps_events_coming() -> None:
    with StripeSandbox("live", customers=40, days=30, seed=3,
                       events_per_minute=600) as st:
        c = stripe.StripeClient(st.keys["secret"], base_addresses={"api": st.url})
        cursor = c.v1.events.list(params={"limit": 1}).data[0].id
        started = time.time()
        deadline = started + 10
        fresh: list[Any] = []
        while time.time() < deadline and len(fresh) < 15:
            time.sleep(0.5)
            fresh = list(c.v1.events.list(params={"ending_before": cursor}).auto_paging_iter())
        assert len(fresh) >= 15
        assert all(abs(e.created - started) < 30 for e in fresh)
        assert st.now >= int(started)


def test_constructor_checks() -> None:
    with pytest.raises(SandboxError, match="unknown scenario"):
        StripeSandbox("huge")
    with pytest.raises(SandboxError, match="loopback"):
        StripeSandbox("small", host="0.0.0.0")
    with pytest.raises(SandboxError, match="fault rate"):
        StripeSandbox("small", fault_rate=1.5)
    with pytest.raises(SandboxError, match="invalid Stripe API version"):
        StripeSandbox("small", api_version="2025-13-01")


def _start_cli(*args: str) -> tuple[subprocess.Popen[str], dict[str, Any]]:
    proc = subprocess.Popen([sys.executable, "-m", "lc_console", "sandbox", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line:
        proc.wait(timeout=10)
        pytest.fail(f"no JSON line; stderr: {proc.stderr.read() if proc.stderr else ''}")
    return proc, json.loads(line)


def _stop(proc: subprocess.Popen[str]) -> int:
    proc.send_signal(signal.SIGTERM)
    return proc.wait(timeout=15)


def test_cli_prints_one_json_line_and_stops_on_sigterm(tmp_path: Path) -> None:
    proc, info = _start_cli("stripe", "--scenario", "small", "--seed", "4", "--json",
                            "--state", str(tmp_path / "s.json"))
    try:
        assert set(info) == {"stripe"}
        stripe_info = info["stripe"]
        assert stripe_info["url"].startswith("http://127.0.0.1:")
        assert set(stripe_info["keys"]) == {"secret", "restricted", "restricted_missing"}
        c = stripe.StripeClient(stripe_info["keys"]["restricted"],
                                base_addresses={"api": stripe_info["url"]})
        assert len(c.v1.customers.list(params={"limit": 5}).data) == 5
    finally:
        assert _stop(proc) == 0
    assert (tmp_path / "s.json").exists()


def test_cli_runs_both_sandboxes_together() -> None:
    proc, info = _start_cli("--json", "--stripe-scenario", "small")
    try:
        assert set(info) == {"salesforce", "stripe"}
        c = stripe.StripeClient(info["stripe"]["keys"]["secret"],
                                base_addresses={"api": info["stripe"]["url"]})
        assert c.v1.accounts.retrieve_current().object == "account"
        assert info["salesforce"]["url"].startswith("https://127.0.0.1:")
    finally:
        assert _stop(proc) == 0


def test_cli_rejects_bad_options() -> None:
    result = subprocess.run([sys.executable, "-m", "lc_console", "sandbox", "stripe",
                             "--fault-rate", "2"], capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "fault rate must be between 0 and 1" in result.stderr


def test_events_never_change_once_emitted() -> None:
    with StripeSandbox("small", seed=15, now=NOW) as st:
        before = {e["id"]: e for e in listed(st)}
        c = stripe.StripeClient(st.keys["secret"], base_addresses={"api": st.url})
        customer = next(ch.customer for ch in c.v1.charges.list(params={"limit": 100}).data
                        if ch.status == "succeeded" and not ch.refunded)
        st.run_story(customer, "profile_update")
        st.run_story(customer, "refund")
        st.advance(days=10)
        after = {e["id"]: e for e in listed(st)}
        still_there = [i for i in before if i in after]
        assert len(still_there) > len(before) / 2
        assert all(before[i] == after[i] for i in still_there)
