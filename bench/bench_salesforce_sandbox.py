"""Benchmark of the local Salesforce sandbox: requests per second for single upserts and for
200-record collection upserts over HTTPS (keep-alive), server CPU per request, and memory with
1,000,000 Contacts loaded (plus an indexed `Email IN (200 values)` query on them).

Targets (issue 3): >= 500 single upserts/s, >= 50 collection upserts/s on 2 cores,
< 1.5 GB for a million Contacts.

    .venv/bin/python bench/bench_salesforce_sandbox.py [--seconds 5] [--threads 4]
                                                      [--records 1000000] [--skip-memory]

The server runs in its own process (as `lc-console sandbox` does), so client and server do
not share a GIL.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx


def serve(cert_dir: str) -> None:
    """Child process: start a sandbox with the console's Contact external id installed."""
    from lc_console.sandbox.salesforce import SalesforceSandbox
    from lc_console.sandbox.salesforce import schema as sch

    with SalesforceSandbox(cert_dir=cert_dir) as sb:
        org = sb.org
        org.upsert_field("Contact", sch.FieldDef("LC_Id__c", "string", length=80, external_id=True,
                                                 unique=True, custom=True))  # fmt: skip
        org.upsert_permission_set(sch.PermissionSetDef("LC", "LC", field_permissions={
            "Contact.LC_Id__c": sch.FieldPermission(True, True)}))  # fmt: skip
        org.assign_permission_set(org.admin_id, "LC")
        print(json.dumps({"url": sb.url, "ca": sb.ca_file, "token": sb.login(), "pid": os.getpid()}), flush=True)
        sys.stdin.read()  # until the parent closes our stdin


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_load(url: str, ca: str, token: str, threads: int, seconds: float, make_request) -> int:
    ctx = ssl.create_default_context(cafile=ca)
    deadline = time.monotonic() + seconds
    counts = [0] * threads
    errors: list[str] = []

    def worker(n: int) -> None:
        # TCP_NODELAY as requests/urllib3 (simple-salesforce) set it; httpx does not by default
        transport = httpx.HTTPTransport(verify=ctx, socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)])
        with httpx.Client(base_url=url, transport=transport, headers={"Authorization": f"Bearer {token}"}) as c:
            i = 0
            while time.monotonic() < deadline:
                r = make_request(c, n, i)
                if r.status_code >= 300:
                    errors.append(f"{r.status_code} {r.text[:200]}")
                    return
                i += 1
            counts[n] = i

    ts = [threading.Thread(target=worker, args=(n,)) for n in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    if errors:
        raise SystemExit(f"request failed: {errors[0]}")
    return sum(counts)


def http_bench(seconds: float, threads: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        proc = subprocess.Popen([sys.executable, __file__, "--serve", tmp], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, text=True)  # fmt: skip
        assert proc.stdout is not None and proc.stdin is not None
        info = json.loads(proc.stdout.readline())
        url, ca, token, pid = info["url"], info["ca"], info["token"], info["pid"]
        try:
            def single(c: httpx.Client, n: int, i: int) -> httpx.Response:
                return c.patch(f"/services/data/v62.0/sobjects/Contact/LC_Id__c/S{n}-{i % 5000}",
                               json={"LastName": f"Single {i}", "Email": f"s{n}.{i % 5000}@example.com"})  # fmt: skip

            def collection(c: httpx.Client, n: int, i: int) -> httpx.Response:
                base = (i * 200) % 20000
                return c.patch("/services/data/v62.0/composite/sobjects/Contact/LC_Id__c", json={
                    "allOrNone": False, "records": [
                        {"attributes": {"type": "Contact"}, "LC_Id__c": f"C{n}-{base + k}",
                         "LastName": f"Coll {i}", "Email": f"c{n}.{base + k}@example.com"}
                        for k in range(200)]})  # fmt: skip

            run_load(url, ca, token, threads, 1.0, single)  # warm-up
            for name, fn in (("single upserts", single), ("200-record collection upserts", collection)):
                cpu0 = cpu_seconds(pid)
                t0 = time.monotonic()
                n = run_load(url, ca, token, threads, seconds, fn)
                elapsed = time.monotonic() - t0
                cpu = cpu_seconds(pid) - cpu0
                print(f"{name:32s} {n / elapsed:8.1f} req/s  ({n} in {elapsed:.1f} s, {threads} client "
                      f"threads, server CPU {1000 * cpu / max(n, 1):.2f} ms/req)")  # fmt: skip
        finally:
            proc.stdin.close()
            proc.wait(timeout=30)


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def memory_bench(records: int) -> None:
    from lc_console.sandbox.salesforce import schema as sch
    from lc_console.sandbox.salesforce import soql
    from lc_console.sandbox.salesforce.org import Org

    gc.collect()
    base = rss_mb()
    org = Org()
    org.upsert_field("Contact", sch.FieldDef("LC_Id__c", "string", length=80, external_id=True,
                                             unique=True, custom=True))  # fmt: skip
    org.upsert_permission_set(sch.PermissionSetDef("LC", "LC", field_permissions={
        "Contact.LC_Id__c": sch.FieldPermission(True, True)}))  # fmt: skip
    org.assign_permission_set(org.admin_id, "LC")
    acc = org.access(org.admin_id)
    accounts = [r.id for r in org.save_many("insert", "Account", [{"Name": f"Account {i}"} for i in range(1000)], acc)]
    t0 = time.monotonic()
    batch = 2000
    for start in range(0, records, batch):
        rows = [{"LastName": f"Last{i}", "FirstName": f"First{i % 5000}", "Email": f"user{i}@example{i % 97}.com",
                 "LC_Id__c": f"cus_{i:09d}", "AccountId": accounts[i % 1000], "Phone": "+1 415 555 0100"}
                for i in range(start, min(records, start + batch))]  # fmt: skip
        results = org.save_many("insert", "Contact", rows, acc)
        if not results[-1].success:
            raise SystemExit(f"load failed: {results[-1].errors}")
    load = time.monotonic() - t0
    gc.collect()
    used = rss_mb()
    print(f"loaded {records:,} Contacts in {load:.1f} s ({records / load:,.0f}/s)")
    print(f"memory: {used:,.0f} MB RSS total, {used - base:,.0f} MB for the org "
          f"({1024 * 1024 * (used - base) / records:,.0f} bytes/Contact)")  # fmt: skip
    emails = ", ".join(f"'user{i}@example{i % 97}.com'" for i in range(0, records, max(1, records // 200)))
    q = soql.parse(org, acc, f"SELECT Id, Email, Account.Name FROM Contact WHERE Email IN ({emails})")
    t0 = time.monotonic()
    with org.lock:
        ex = soql.Executor(org, q, False)
        out = [ex.render(rid, row, "62.0") for rid, row in ex.run()]
    print(f"SELECT ... WHERE Email IN (200 values): {len(out)} rows in {1000 * (time.monotonic() - t0):.1f} ms")
    q = soql.parse(org, acc, "SELECT COUNT() FROM Contact WHERE LastName LIKE 'Last99999%'")
    t0 = time.monotonic()
    with org.lock:
        n = len(soql.Executor(org, q, False).run())
    print(f"SELECT COUNT() ... WHERE LastName LIKE (full scan): {n} rows in {time.monotonic() - t0:.2f} s")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--serve", metavar="CERT_DIR", help=argparse.SUPPRESS)
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--threads", type=int, default=4)
    ap.add_argument("--records", type=int, default=1_000_000)
    ap.add_argument("--skip-memory", action="store_true")
    args = ap.parse_args()
    if args.serve:
        serve(args.serve)
        return
    print(f"Salesforce sandbox benchmark ({os.cpu_count()} CPUs)")
    http_bench(args.seconds, args.threads)
    if not args.skip_memory:
        memory_bench(args.records)


if __name__ == "__main__":
    main()
