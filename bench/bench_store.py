"""State store figures: failures paging at 100k rows, audit search, outbox throughput, and a
reader's latency while the sync thread writes. Prints numbers; `make bench` runs it."""

from __future__ import annotations

import statistics
import tempfile
import threading
import time
from pathlib import Path

from lc_console.store import FailureFilter, OutboxItem, Store

N_FAILURES = 100_000
N_AUDIT = 200_000


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def timed(fn, repeat: int = 20) -> float:  # type: ignore[no-untyped-def]
    samples = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t)
    return statistics.median(samples)


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp, Store(Path(tmp) / "state.db") as store:
        t = time.perf_counter()
        with store.transaction():
            for i in range(N_FAILURES):
                store.record_failure(object="Contact" if i % 2 else "Account",
                                     key=f"user{i}@example.com", operation="upsert",
                                     payload={"Email": f"user{i}@example.com", "n": i},
                                     error_code="DUPLICATE_VALUE" if i % 10 == 0 else "E",
                                     message="m", fields=["Email"])
        print(f"record_failure x{N_FAILURES} in one transaction: {time.perf_counter() - t:.2f} s")

        flt = FailureFilter(status="open", object="Contact")
        first = store.list_failures(flt)
        print(f"first page of 100 (with total {first.total}): "
              f"{ms(timed(lambda: store.list_failures(flt)))}")
        deep = store.list_failures(flt, offset=first.total - 200).rows[0].id + 1
        print(f"keyset page deep in the table: "
              f"{ms(timed(lambda: store.list_failures(flt, before_id=deep)))}")
        print(f"offset page at row {first.total - 200}: "
              f"{ms(timed(lambda: store.list_failures(flt, offset=first.total - 200)))}")
        print(f"key prefix search: "
              f"{ms(timed(lambda: store.list_failures(FailureFilter(key_prefix='user4242'))))}")

        t = time.perf_counter()
        with store.transaction():
            for i in range(N_AUDIT):
                store.audit(object="Contact", action="upsert", outcome="updated",
                            stripe_event_id=f"evt_{i}", customer_id=f"cus_{i % 5000}",
                            external_key=f"user{i % 50000}@example.com",
                            salesforce_id=f"003{i:012d}AAA")
        print(f"audit x{N_AUDIT}: {time.perf_counter() - t:.2f} s")
        for term in ("USER4242@example.com", "evt_123456", "cus_42", "003000000123456AAA",
                     "003000000123456"):
            print(f"search_audit({term!r}): "
                  f"{ms(timed(lambda t=term: store.search_audit(t)))}")

        t = time.perf_counter()
        store.outbox_enqueue(OutboxItem("Contact", "Email", f"u{i}@x.com", "upsert", {"i": i},
                                        customer_id=f"cus_{i % 1000}") for i in range(20_000))
        enqueue = time.perf_counter() - t
        t = time.perf_counter()
        drained = 0
        while batch := store.outbox_claim(200):
            store.outbox_complete([b.id for b in batch if b.id is not None])
            drained += len(batch)
        print(f"outbox: enqueue 20000 in {enqueue:.2f} s; claim+complete in batches of 200: "
              f"{drained / (time.perf_counter() - t):.0f} rows/s")

        stop = threading.Event()

        def writer() -> None:
            n = 0
            while not stop.is_set():
                with store.transaction():
                    for _ in range(200):
                        store.audit(object="Contact", action="upsert", outcome="created")
                    store.increment_counters("Contact", created=200)
                n += 1

        thread = threading.Thread(target=writer)
        thread.start()
        time.sleep(0.2)
        latency = timed(lambda: (store.list_failures(flt), store.counters()), repeat=50)
        stop.set()
        thread.join()
        print(f"UI read (failures page + counters) while the writer commits: {ms(latency)}")


if __name__ == "__main__":
    main()
