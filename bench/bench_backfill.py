"""Benchmark of Re-sync All: the Stripe sandbox's `large` scenario (100,000 customers, 90 days)
backfilled into an empty Salesforce sandbox org through Bulk API 2.0.

Targets (issue 9): fewer than 60 Salesforce API calls in all; peak memory of the console
process under 300 MB (it streams: pages to the scratch database, customers in chunks, Bulk
CSV spooled to disk); wall time reported per phase.

    .venv/bin/python bench/bench_backfill.py [--customers 100000] [--days 90]

Measured on the 2-core dev box (2026-11-24, machine shared with other work):
  20,000 customers: 35,745 records, 31 Salesforce calls, 1,573 Stripe calls, 153 s, 150 MB
  50,000 customers: 89,427 records, 37 Salesforce calls, 3,919 Stripe calls, 465 s, 151 MB
  (read 250 s of it: the Stripe sandbox re-counted every discount for each coupon it
  expanded, so subscription pages slowed as the account grew: ~175 ms a page at 100,000.)
  100,000 customers, after that fix: 178,956 records, 40 Salesforce calls, 7,857 Stripe calls,
  1,032 s (read 518 s, derive 392 s; the console is now the bound: the sandbox spent ~11 ms of
  CPU per page), 166 MB.

Both sandboxes run in their own processes (as `lc-console sandbox` runs them), so the peak
memory printed is the console's own. The profile, keyring and settings are throw-away.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

NOW = 1_790_000_000
PROFILE = "default"


# --- children -------------------------------------------------------------------------------


def serve_stripe(customers: int, days: int) -> None:
    from lc_console.sandbox.stripe import StripeSandbox

    started = time.perf_counter()
    sandbox = StripeSandbox("large", customers=customers, days=days, seed=1, now=NOW)
    with sandbox:
        print(json.dumps({"url": sandbox.url, "key": sandbox.keys["restricted"],
                          "now": sandbox.now, "seconds": time.perf_counter() - started}),
              flush=True)
        sys.stdin.read()


def serve_salesforce() -> None:
    from lc_console.sandbox.salesforce import SalesforceSandbox, metadata_api

    with SalesforceSandbox(daily_api_limit=1_000_000) as sandbox:
        metadata_api.configure(sandbox.app, queue_seconds=0.05, run_seconds=0.4)
        org, user = sandbox.org, sandbox.admin
        grant = org.sessions.new_grant(user.id, sandbox.client_id, ("api", "refresh_token"))
        session = org.sessions.issue(user.id, sandbox.client_id, ("api", "refresh_token"),
                                     refresh_token=grant.refresh_token)
        print(json.dumps({"url": sandbox.url, "ca_file": sandbox.ca_file,
                          "client_id": sandbox.client_id, "org_id": org.org_id,
                          "user_id": user.id, "username": user.username,
                          "refresh_token": grant.refresh_token, "access_token": session.token}),
              flush=True)
        sys.stdin.read()
        counts = {o: len(sandbox.records(o)) for o in
                  ("Account", "Contact", "Opportunity", "LostChurn_Recovery__c")}
        print(json.dumps({"records": counts, "usage": sandbox.usage()}), flush=True)


def _child(*args: str) -> tuple[subprocess.Popen[str], dict[str, Any]]:
    proc = subprocess.Popen([sys.executable, __file__, *args], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line:
        raise SystemExit(f"child {args} did not start")
    return proc, json.loads(line)


# --- the console side ------------------------------------------------------------------------


def _memory_keyring() -> None:
    import keyring
    import keyring.backend

    class Memory(keyring.backend.KeyringBackend):
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

    keyring.set_keyring(Memory())


def _connect(sf: dict[str, Any], st: dict[str, Any]) -> None:
    from lc_console import secrets, settings

    current = settings.load(PROFILE)
    current.tls.ca_bundle = sf["ca_file"]
    s = current.salesforce
    s.environment, s.login_url, s.client_id = "custom", sf["url"], sf["client_id"]
    s.instance_url, s.org_id, s.user_id, s.username = (sf["url"], sf["org_id"], sf["user_id"],
                                                       sf["username"])
    current.stripe.api_base = st["url"]
    settings.save(PROFILE, current)
    secrets.put(PROFILE, secrets.SecretKind.SALESFORCE_REFRESH_TOKEN, sf["refresh_token"])
    secrets.put(PROFILE, secrets.SecretKind.SALESFORCE_ACCESS_TOKEN, sf["access_token"])
    secrets.put(PROFILE, secrets.SecretKind.STRIPE_API_KEY, st["key"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--serve-stripe", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--serve-salesforce", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_stripe:
        return serve_stripe(args.customers, args.days)
    if args.serve_salesforce:
        return serve_salesforce()

    root = Path(tempfile.mkdtemp(prefix="bench-backfill-"))
    for var in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME", "XDG_CACHE_HOME"):
        (root / var).mkdir()
        os.environ[var] = str(root / var)
    _memory_keyring()

    print(f"Generating the Stripe account ({args.customers:,} customers, {args.days} days)...",
          flush=True)
    st_proc, st = _child("--serve-stripe", "--customers", str(args.customers),
                         "--days", str(args.days))
    print(f"  ready in {st['seconds']:.1f}s", flush=True)
    sf_proc, sf = _child("--serve-salesforce")
    try:
        _connect(sf, st)
        from lc_console.services import install

        result = install.install(install.target_for_profile(PROFILE), poll_interval=0.05,
                                 max_poll_interval=0.2)
        assert result.ok, result.lines()

        from lc_console.services.resync import Options, Progress, for_profile

        phases: dict[str, list[float]] = {}
        last: dict[str, Progress] = {}
        t0 = time.perf_counter()

        def progress(p: Progress) -> None:
            now = time.perf_counter() - t0
            span = phases.setdefault(p.phase, [now, now])
            span[1] = now
            if p.phase != (last.get("p").phase if last.get("p") else None):
                print(f"  [{now:7.1f}s] {p.line()}", flush=True)
            last["p"] = p

        runner = for_profile(PROFILE, on_progress=progress, as_of=NOW)
        runner.bulk.poll_interval = 0.2
        if os.environ.get("BENCH_PROFILE"):
            import cProfile
            prof = cProfile.Profile()
            out = prof.runcall(runner.run, Options(force=True))
            prof.dump_stats(os.environ["BENCH_PROFILE"])
        else:
            out = runner.run(Options(force=True))
        wall = time.perf_counter() - t0
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        runner.store.close()
    finally:
        for proc in (st_proc, sf_proc):
            assert proc.stdin is not None
            proc.stdin.close()
        sf_after = json.loads(sf_proc.stdout.readline() or "{}") if sf_proc.stdout else {}
        for proc in (st_proc, sf_proc):
            proc.wait(timeout=120)

    print()
    print(f"status: {out.status} {out.message}")
    if out.forecast is not None:
        print("forecast:")
        print("\n".join(out.forecast.lines()))
    from lc_console.services.resync import summary_lines

    print("written:")
    print("\n".join(summary_lines(out)))
    print(f"org holds: {sf_after.get('records')}")
    print()
    print(f"customers                 {args.customers:>10,}")
    print(f"Salesforce API calls      {out.salesforce_calls:>10,}   (aim: < 60)")
    print(f"Stripe API calls          {out.stripe_calls:>10,}")
    print(f"wall time                 {wall:>10.1f} s")
    for phase, (a, b) in phases.items():
        print(f"  {phase:<23} {b - a:>10.1f} s")
    print(f"peak memory (console)     {peak_mb:>10.0f} MB  (aim: < 300 MB)")


if __name__ == "__main__":
    main()
