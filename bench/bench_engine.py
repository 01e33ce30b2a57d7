"""Sync engine figures against both local sandboxes, with the real stripe and simple-salesforce
clients. Prints:

1. Salesforce API calls per Stripe event for a burst of ~1,000 events and for ~10,000
   (target <= 0.05).
2. Events per second with no emulated latency (aim 2,000/s on 2 cores): end to end (reading
   Stripe's event list included) and processing only (events already queued).
3. 10,000+ events with 50 ms emulated Salesforce latency (aim < 60 s).
4. The same events through a naive per-record loop with simple-salesforce (query, then create
   or update: one call per operation, as most DIY integrations do), and the ratios. The naive
   loop is measured on a sample (it is slow by design); its 10,000-event time is the sample's
   per-event time scaled, checked against a run of the sample with the latency on.

The sandboxes run in a child process (as `lc-console sandbox` would), so the engine does not
share its interpreter (GIL) with the emulators.

Usage: .venv/bin/python bench/bench_engine.py [--customers 1600] [--naive-sample 300]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import keyring
import keyring.backend

MONTH = 31 * 86400
PROFILE = "bench"


class _MemoryKeyring(keyring.backend.KeyringBackend):
    priority = 1  # type: ignore[assignment]

    def __init__(self) -> None:
        super().__init__()
        self.data: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.data.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.data[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        self.data.pop((service, username), None)


def _isolate(root: Path) -> None:
    for var in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME", "XDG_CACHE_HOME"):
        (root / var).mkdir(parents=True, exist_ok=True)
        os.environ[var] = str(root / var)
    keyring.set_keyring(_MemoryKeyring())


def _connect(org: dict[str, Any], stripe_info: dict[str, Any], profile: str = PROFILE) -> None:
    """What `connect salesforce` and `connect stripe` leave behind (settings + keyring)."""
    from lc_console import secrets, settings
    from lc_console.salesforce import tokens

    cfg = settings.load(profile)
    cfg.tls.ca_bundle = org["ca_file"]
    cfg.salesforce.environment = "custom"
    cfg.salesforce.login_url = cfg.salesforce.instance_url = org["url"]
    cfg.salesforce.client_id = org["client_id"]
    cfg.salesforce.org_id, cfg.salesforce.user_id = org["org_id"], org["user_id"]
    cfg.stripe.api_base = stripe_info["url"]
    cfg.sync.batch_window_seconds = 0.0
    settings.save(profile, cfg)
    secrets.put(profile, secrets.SecretKind.SALESFORCE_REFRESH_TOKEN, org["refresh_token"])
    secrets.put(profile, secrets.SecretKind.SALESFORCE_ACCESS_TOKEN, org["access_token"])
    secrets.put(profile, secrets.SecretKind.STRIPE_API_KEY, stripe_info["restricted"])
    tokens._managers.pop(profile, None)


class Sandboxes:
    """Both emulators in a child process; a line protocol steers them."""

    def __init__(self, customers: int, seed: int, cert_dir: Path) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--serve", str(customers), str(seed), str(cert_dir)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.stripe = self._read()

    def _read(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("the sandbox process stopped")
        data: dict[str, Any] = json.loads(line)
        return data

    def ask(self, *words: Any) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(" ".join(map(str, words)) + "\n")
        self.proc.stdin.flush()
        return self._read()

    def close(self) -> None:
        self.ask("quit")
        self.proc.wait(timeout=30)


def serve(customers: int, seed: int, cert_dir: str) -> None:
    """The child: a Stripe account for the whole bench, a fresh org on `new_org`."""
    import logging

    logging.disable(logging.WARNING)
    from lc_console.sandbox.salesforce import SalesforceSandbox
    from lc_console.sandbox.stripe import StripeSandbox

    st = StripeSandbox(scenario="demo", customers=customers, seed=seed).start()
    print(json.dumps({"url": st.url, "restricted": st.keys["restricted"],
                      "secret": st.keys["secret"], "now": st.now}), flush=True)
    sf: SalesforceSandbox | None = None
    for line in sys.stdin:
        cmd = line.split()
        reply: dict[str, Any] = {}
        if cmd[0] == "new_org":
            if sf is not None:
                sf.stop()
            sf = SalesforceSandbox(cert_dir=cert_dir).start()
            org = sf.org
            grant = org.sessions.new_grant(org.admin_id, sf.client_id, ("api", "refresh_token"))
            session = org.sessions.issue(org.admin_id, sf.client_id, ("api", "refresh_token"),
                                         refresh_token=grant.refresh_token)
            reply = {"url": sf.url, "ca_file": sf.ca_file, "client_id": sf.client_id,
                     "org_id": org.org_id, "user_id": org.admin_id,
                     "refresh_token": grant.refresh_token, "access_token": session.token}
        elif cmd[0] == "latency" and sf is not None:
            sf.set_latency(float(cmd[1]))
        elif cmd[0] == "usage" and sf is not None:
            reply = {"used": sf.usage()}
        elif cmd[0] == "records" and sf is not None:
            reply = {o: len(sf.records(o)) for o in ("Account", "Contact", "Opportunity",
                                                      "LostChurn_Recovery__c", "Task")}
        elif cmd[0] == "quit":
            print("{}", flush=True)
            break
        print(json.dumps(reply), flush=True)
    if sf is not None:
        sf.stop()
    st.stop()


def _install(profile: str = PROFILE) -> None:
    from lc_console.services import install

    result = install.install(install.target_for_profile(profile), poll_interval=0.05,
                             max_poll_interval=0.2)
    assert result.ok, result.lines()


def _state_dir(root: Path, name: str) -> Path:
    path = root / name
    path.mkdir(parents=True, exist_ok=True)
    return path


def _fresh_org(root: Path, boxes: Sandboxes, name: str, latency_ms: float) -> None:
    _isolate(_state_dir(root, f"{name}-{latency_ms:g}-{time.monotonic_ns()}"))
    _connect(boxes.ask("new_org"), boxes.stripe)
    _install()
    boxes.ask("latency", latency_ms)


def run_engine(root: Path, boxes: Sandboxes, *, latency_ms: float, since: int,
               stripe_concurrency: int = 8, warm: Any = None) -> dict[str, Any]:
    """A fresh org and state; the sync drains everything since `since`. `warm`: a Stripe
    fetcher whose contexts are already cached (measures the engine's own cost)."""
    from lc_console.services import sync as sync_service

    _fresh_org(root, boxes, "engine", latency_ms)
    session = sync_service.open_session(PROFILE)
    if warm is not None:
        session.parts.runner.fetcher = session.parts.fetcher = warm
    session.parts.fetcher.concurrency = stripe_concurrency
    try:
        before = boxes.ask("usage")["used"]
        t0 = time.perf_counter()
        start = session.engine.begin(since)  # reads the window: ingest
        t_ingest = time.perf_counter() - t0
        summary = session.engine.run_once()
        total = time.perf_counter() - t0
        calls = boxes.ask("usage")["used"] - before
        stripe_calls = session.parts.fetcher.calls + session.parts.source.requests
        fetcher = session.parts.fetcher
        fetcher.close()
    finally:
        session.close()
    return {"events": summary.events, "replayed": start.replayed, "calls": calls,
            "fetcher": fetcher,
            "seconds": total, "ingest_seconds": t_ingest, "process_seconds": total - t_ingest,
            "failed": summary.failed, "batches": summary.batches, "stripe_calls": stripe_calls,
            "records": sum(boxes.ask("records").values())}


# --- the naive loop -------------------------------------------------------------------------


def naive(root: Path, boxes: Sandboxes, events: list[dict[str, Any]], *, latency_ms: float
          ) -> dict[str, Any]:
    """Per event: fetch the Stripe context, query the Contact and Account candidates, derive;
    per record: resolve each lookup with a query, query the record by its key, then create or
    update it; create Tasks and platform events. One API call per operation."""
    from lc_console import settings
    from lc_console.salesforce import tokens
    from lc_console.stripe.client import make_client
    from lc_console.sync import derive, matching
    from lc_console.sync.model import ExternalKey, IdKey, RecordTypeRef, Ref, to_json
    from lc_console.sync.plan import order_of
    from lc_console.sync.stripe_context import CustomerNeeds, StripeFetcher

    _fresh_org(root, boxes, "naive", latency_ms)
    cfg = settings.load(PROFILE)
    sf = tokens.manager_for(PROFILE).salesforce()
    fetcher = StripeFetcher(lambda: make_client(boxes.stripe["restricted"],
                                                api_base=boxes.stripe["url"]),
                            concurrency=1)
    record_types = {rt["developerName"]: rt["recordTypeId"] for rt in
                    sf.Opportunity.describe()["recordTypeInfos"]}
    before = boxes.ask("usage")["used"]
    t0 = time.perf_counter()

    def q(soql: str) -> list[dict[str, Any]]:
        return [dict(r) for r in sf.query(soql)["records"]]

    def lit(v: str) -> str:
        return "'" + v.replace("\\", "\\\\").replace("'", "\\'") + "'"

    def find(sobject: str, key: Any) -> str | None:
        if isinstance(key, IdKey):
            return key.id
        rows = q(f"SELECT Id FROM {sobject} WHERE {key.field} = {lit(key.value)}")
        return rows[0]["Id"] if rows else None

    def value(v: Any) -> Any:
        if isinstance(v, Ref):
            return find(v.sobject, v.key)
        if isinstance(v, RecordTypeRef):
            return record_types.get(v.developer_name)
        return to_json(v)

    for ev in events:
        n = derive.needs(ev)
        if not n.customer_id:
            continue
        ctx = fetcher.context(CustomerNeeds(n.customer_id, n.history,
                                            bool(n.payment_intent_ids)))
        customer = dict(ctx.customer or {"id": n.customer_id})
        email = matching.normalise_email(customer.get("email")) or ""
        contacts = q("SELECT Id, Email, CreatedDate, AccountId, LostChurn_ID__c, FirstName, "
                     f"LastName FROM Contact WHERE Email = {lit(email)} OR "
                     f"LostChurn_ID__c = {lit(n.customer_id)}")
        domain = matching.email_domain(email) or "-"
        accounts = q("SELECT Id, Name, Website, CreatedDate, OwnerId, "
                     "LostChurn_Stripe_Customer_ID__c FROM Account WHERE "
                     f"LostChurn_Stripe_Customer_ID__c = {lit(n.customer_id)} OR "
                     f"Website LIKE {lit('%' + domain + '%')} OR Name = {lit(domain)}")
        d = derive.derive(ev, derive.Context(ctx, derive.SalesforceContext(
            tuple(contacts), tuple(accounts)), cfg.rules))
        for rec in sorted(d.records, key=lambda r: order_of(r.sobject)):
            body = {name: value(f.value) for name, f in rec.fields.items()}
            body = {k: v for k, v in body.items() if v is not None}
            existing = find(rec.sobject, rec.key)
            api = getattr(sf, rec.sobject)
            if existing:
                if isinstance(rec.key, ExternalKey):
                    body.pop(rec.key.field, None)
                api.update(existing, body)
            else:
                api.create(body)
        for ins in d.inserts:
            body = {k: value(v) for k, v in ins.fields.items()}
            getattr(sf, ins.sobject).create({k: v for k, v in body.items() if v is not None})
    seconds = time.perf_counter() - t0
    return {"events": len(events), "calls": boxes.ask("usage")["used"] - before,
            "seconds": seconds, "stripe_calls": fetcher.calls}


def _events(boxes: Sandboxes, since: int) -> list[dict[str, Any]]:
    import stripe

    client = stripe.StripeClient(boxes.stripe["secret"],
                                 base_addresses={"api": boxes.stripe["url"]})
    out: list[dict[str, Any]] = []
    after = None
    while True:
        params: dict[str, Any] = {"limit": 100}
        if after:
            params["starting_after"] = after
        page = client.raw_request("get", "/v1/events", **params).data
        out += [dict(e) for e in page["data"]]
        if not page["has_more"]:
            break
        after = page["data"][-1]["id"]
    from lc_console.sync.derive import HANDLED_OBJECTS

    return [e for e in reversed(out) if e["created"] >= since
            and e["data"]["object"].get("object") in HANDLED_OBJECTS]


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--serve":
        serve(int(sys.argv[2]), int(sys.argv[3]), sys.argv[4])
        return 0
    parser = argparse.ArgumentParser()
    parser.add_argument("--customers", type=int, default=1600)
    parser.add_argument("--burst-customers", type=int, default=150)
    parser.add_argument("--naive-sample", type=int, default=300)
    parser.add_argument("--naive-latency-sample", type=int, default=60)
    args = parser.parse_args()
    import logging

    logging.disable(logging.WARNING)
    print(f"lc-console sync engine bench ({os.cpu_count()} CPUs, Python {sys.version.split()[0]})")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        boxes = Sandboxes(args.burst_customers, 2, root / "certs")
        try:
            burst = run_engine(root, boxes, latency_ms=0, since=boxes.stripe["now"] - MONTH)
        finally:
            boxes.close()
        print(f"\n1,000-event burst ({burst['events']} events, {burst['batches']} batches): "
              f"{burst['calls']} Salesforce calls = {burst['calls'] / burst['events']:.4f} "
              f"per event (target <= 0.05); {burst['failed']} failed")

        boxes = Sandboxes(args.customers, 1, root / "certs")
        try:
            since = boxes.stripe["now"] - MONTH
            fast = run_engine(root, boxes, latency_ms=0, since=since)
            ev = fast["events"]
            print(f"\n{ev:,} events, no latency: {fast['seconds']:.1f} s end to end = "
                  f"{ev / fast['seconds']:,.0f} events/s (reading Stripe's event list: "
                  f"{fast['ingest_seconds']:.1f} s); processing only {fast['process_seconds']:.1f}"
                  f" s = {ev / fast['process_seconds']:,.0f} events/s (aim 2,000/s)")
            print(f"  Salesforce calls {fast['calls']} = {fast['calls'] / ev:.4f} per event; "
                  f"Stripe calls {fast['stripe_calls']:,}; {fast['records']:,} records; "
                  f"{fast['failed']} failed")
            calls0 = fast["fetcher"].calls
            warm = run_engine(root, boxes, latency_ms=0, since=since, warm=fast["fetcher"])
            print(f"  with every Stripe context already cached ({fast['fetcher'].calls - calls0}"
                  f" context calls): processing {warm['process_seconds']:.1f} s = "
                  f"{ev / warm['process_seconds']:,.0f} events/s (the engine's own cost: "
                  "derive, plan, Salesforce reads and writes, state)")
            slow = run_engine(root, boxes, latency_ms=50, since=since)
            print(f"\n{slow['events']:,} events, 50 ms Salesforce latency: {slow['seconds']:.1f} s "
                  f"(aim < 60 s); {slow['calls']} calls; {slow['failed']} failed")

            events = _events(boxes, since)
            flat = naive(root, boxes, events[:args.naive_sample], latency_ms=0)
            per_event_calls = flat["calls"] / flat["events"]
            model = flat["seconds"] / flat["events"] + per_event_calls * 0.050
            check = naive(root, boxes, events[:args.naive_latency_sample], latency_ms=50)
            measured = check["seconds"] / check["events"]
            naive_total = measured * slow["events"]
        finally:
            boxes.close()
        print(f"\nNaive per-record loop (simple-salesforce, query then create/update), "
              f"{flat['events']} events: {flat['calls']} calls = {per_event_calls:.2f} per "
              f"event; {flat['events'] / flat['seconds']:.0f} events/s with no latency")
        print(f"  with 50 ms latency: {measured:.3f} s per event measured on {check['events']} "
              f"events (model {model:.3f}); {slow['events']:,} events would take "
              f"~{naive_total / 60:.0f} min")
        print("\nRatios (naive / engine):")
        print(f"  API calls per event: {per_event_calls / (slow['calls'] / slow['events']):,.0f}x")
        print(f"  time for {slow['events']:,} events at 50 ms: {naive_total / slow['seconds']:,.0f}x"
              f" ({naive_total:,.0f} s vs {slow['seconds']:.1f} s)")
        print(f"  events/s with no latency: {ev / fast['seconds']:,.0f} vs "
              f"{flat['events'] / flat['seconds']:.0f} "
              f"({(ev / fast['seconds']) / (flat['events'] / flat['seconds']):.1f}x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
