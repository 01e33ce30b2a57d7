"""Benchmark of the local Stripe sandbox: generation time and memory of the `large` scenario
(100,000 customers, 90 days), requests per second for listing events from it, and the cost of a
page of each object list the backfill (Re-sync All) reads.

Targets (issue 4): large scenario generated in under 60 s and held in under 1.5 GB.

    .venv/bin/python bench/bench_stripe_sandbox.py [--customers 100000] [--days 90]
                                                   [--seconds 5] [--threads 4]

The sandbox runs in its own process (as `lc-console sandbox stripe` does): its memory is its
own, and client and server do not share a GIL. Generation is reported as wall time and as CPU
time (wall time inflates when other work shares the machine).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

NOW = 1_790_000_000
# The requests of lc_console/stripe/lister.py (Re-sync All), with its fixed parameters.
BACKFILL_LISTS = [
    ("/v1/customers", {}),
    ("/v1/subscriptions", {"status": "all", "expand[0]": "data.discounts.source.coupon"}),
    ("/v1/invoices", {"expand[0]": "data.payments"}),
    ("/v1/charges", {}),
    ("/v1/payment_intents", {}),
]


def serve(customers: int, days: int) -> None:
    """Child process: generate the account, report, serve until stdin closes."""
    from lc_console.sandbox.stripe import StripeSandbox

    started, cpu0 = time.perf_counter(), time.process_time()
    sandbox = StripeSandbox("large", customers=customers, days=days, seed=1, now=NOW).build()
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu0
    ledger = sandbox.test.ledger
    counts = {k: len(ledger.objects(k)) for k in ("customer", "subscription", "invoice",
                                                     "charge", "payment_intent", "refund",
                                                     "event")}
    sandbox.start()
    print(json.dumps({"url": sandbox.url, "key": sandbox.keys["secret"], "wall": wall,
                      "cpu": cpu, "rss_mb": rss_mb(), "peak_mb": peak_mb(),
                      "counts": counts, "pid": os.getpid()}), flush=True)
    sys.stdin.read()
    sandbox.stop()


def rss_mb(pid: int | str = "self") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def load(url: str, key: str, threads: int, seconds: float, params_for) -> tuple[int, int]:
    """Requests and events served in `seconds` by `threads` keep-alive clients."""
    deadline = time.monotonic() + seconds
    counts = [0] * threads
    events = [0] * threads
    failures: list[str] = []

    def worker(n: int) -> None:
        rng = random.Random(n)
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"},
                          timeout=30) as client:
            while time.monotonic() < deadline:
                response = client.get("/v1/events", params=params_for(rng))
                if response.status_code != 200:
                    failures.append(response.text[:200])
                    return
                counts[n] += 1
                events[n] += len(response.json()["data"])

    pool = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    if failures:
        raise SystemExit(f"request failed: {failures[0]}")
    return sum(counts), sum(events)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--backfill-events", type=int, default=100_000,
                        help="events read once, newest first, for the first-read figure")
    parser.add_argument("--list-pages", type=int, default=50,
                        help="pages read from each object list the backfill reads")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.customers, args.days)
        return
    child = subprocess.Popen([sys.executable, __file__, "--serve", "--customers",
                              str(args.customers), "--days", str(args.days)],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None and child.stdin is not None
    info = json.loads(child.stdout.readline())
    try:
        print(f"large scenario: {args.customers:,} customers, {args.days} days of history")
        print("  objects: " + ", ".join(f"{v:,} {k}s" for k, v in info["counts"].items()))
        print(f"  generation: {info['wall']:.1f} s wall, {info['cpu']:.1f} s CPU "
              f"(target < 60 s)")
        print(f"  memory: {info['rss_mb']:.0f} MB resident after generation, "
              f"{info['peak_mb']:.0f} MB peak (target < 1536 MB)")
        url, key = info["url"], info["key"]
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}) as c:
            ids, params = [], {"limit": 100}
            while len(ids) < 5000:
                page = c.get("/v1/events", params=params).json()
                ids += [e["id"] for e in page["data"]]
                if not page["has_more"]:
                    break
                params = {"limit": 100, "starting_after": ids[-1]}
        scenarios = [
            ("newest page, limit=100", lambda rng: {"limit": 100}),
            ("backward from a cursor, limit=100",
             lambda rng: {"limit": 100, "starting_after": rng.choice(ids)}),
            ("forward from a cursor (ending_before), limit=100",
             lambda rng: {"limit": 100, "ending_before": rng.choice(ids)}),
            ("types[] filter, limit=100",
             lambda rng: {"limit": 100, "types[0]": "invoice.payment_failed",
                          "types[1]": "invoice.paid", "starting_after": rng.choice(ids)}),
            ("poll with nothing new, limit=100",
             lambda rng: {"limit": 100, "ending_before": ids[0]}),
        ]
        cpu0, started = cpu_seconds(info["pid"]), time.perf_counter()
        walked, pages, params = 0, 0, {"limit": 100}
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"},
                          timeout=60) as c:
            while True:  # every event rendered for the first time (a 30-day backfill)
                page = c.get("/v1/events", params=params).json()
                walked += len(page["data"])
                pages += 1
                if not page["has_more"] or walked >= args.backfill_events:
                    break
                params = {"limit": 100, "starting_after": page["data"][-1]["id"]}
        wall = time.perf_counter() - started
        cpu = cpu_seconds(info["pid"]) - cpu0
        print(f"backfill walk from the newest event (1 client, first reads): {walked:,} events "
              f"in {wall:.1f} s = {walked / wall:,.0f} events/s, "
              f"{cpu / pages * 1000:.1f} ms server CPU per page of 100")
        print("object lists as the backfill reads them (1 client, limit=100, "
              f"first {args.list_pages} pages each):")
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"},
                          timeout=60) as c:
            for path, fixed in BACKFILL_LISTS:
                cpu0, started = cpu_seconds(info["pid"]), time.perf_counter()
                pages, params = 0, {**fixed, "limit": 100}
                while pages < args.list_pages:
                    page = c.get(path, params=params).json()
                    pages += 1
                    if not page["has_more"]:
                        break
                    params = {**fixed, "limit": 100, "starting_after": page["data"][-1]["id"]}
                wall = time.perf_counter() - started
                cpu = cpu_seconds(info["pid"]) - cpu0
                print(f"  {path}: {pages / wall:,.1f} pages/s, "
                      f"{cpu / pages * 1000:.1f} ms server CPU per page")
        print(f"event listing ({args.threads} client threads, {args.seconds:.0f} s each, "
              "keep-alive HTTP, pages already rendered once):")
        for name, params_for in scenarios:
            cpu0 = cpu_seconds(info["pid"])
            requests, events = load(url, key, args.threads, args.seconds, params_for)
            cpu = cpu_seconds(info["pid"]) - cpu0
            per_request = cpu / requests * 1000 if requests else float("nan")
            print(f"  {name}: {requests / args.seconds:,.0f} requests/s, "
                  f"{events / args.seconds:,.0f} events/s, "
                  f"{per_request:.1f} ms server CPU per request")
        print(f"memory after serving: {rss_mb(info['pid']):.0f} MB resident (target < 1536 MB)")
    finally:
        child.stdin.close()
        child.wait(timeout=30)


if __name__ == "__main__":
    main()
