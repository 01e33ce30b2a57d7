"""Console figures: the Failures screen over 100,000 failed records (open to first page,
next page, a filter, keys held down while a page loads), and cold start to the first frame.
Prints numbers; `make bench` runs it."""

from __future__ import annotations

import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

N_FAILURES = 100_000


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def fill(db: Path) -> float:
    from lc_console.store import Store

    t = time.perf_counter()
    with Store(db) as store, store.transaction():
        for i in range(N_FAILURES):
            store.record_failure(object=("Contact", "Account", "LostChurn_Recovery__c")[i % 3],
                                 key=f"user{i}@example.com", operation="upsert",
                                 payload={"Email": f"user{i}@example.com", "n": i},
                                 error_code="DUPLICATE_VALUE" if i % 10 == 0 else "STRING_TOO_LONG",
                                 message="duplicate value found: Email duplicates value on "
                                 "record with id: 0035g00000AbCdEAAZ", fields=["Email"],
                                 salesforce_response={"success": False})
    return time.perf_counter() - t


async def failures_screen(profile: str) -> None:
    from textual.widgets import DataTable, Static

    from lc_console.app import make_app

    t0 = time.perf_counter()
    app = make_app(profile, mode="failures")

    def position() -> str:
        return str(app.screen.query_one("#failures-position", Static).render())

    async def wait(pilot, text: str) -> float:  # type: ignore[no-untyped-def]
        t = time.perf_counter()
        while text not in position():
            await pilot.pause(0.001)
        return time.perf_counter() - t

    async with app.run_test(size=(120, 40)) as pilot:
        await wait(pilot, "page 1/")
        print(f"open Failures ({N_FAILURES:,} rows) to first page: {ms(time.perf_counter() - t0)}")
        samples = []
        for n in range(2, 22):
            t = time.perf_counter()
            await pilot.press("n")
            await wait(pilot, f"page {n}/")
            samples.append(time.perf_counter() - t)
        print(f"next page (key to rows shown), median of 20: {ms(statistics.median(samples))}, "
              f"max {ms(max(samples))}")
        back = []
        for n in range(20, 10, -1):
            t = time.perf_counter()
            await pilot.press("p")
            await wait(pilot, f"page {n}/")
            back.append(time.perf_counter() - t)
        print(f"previous page, median of 10: {ms(statistics.median(back))}")
        t = time.perf_counter()
        await pilot.press("slash", *"code:DUPLICATE_VALUE object:Contact", "enter")
        await wait(pilot, "of 3,334")
        print(f"filter code+object (3,334 rows): {ms(time.perf_counter() - t)}")
        table = app.screen.query_one(DataTable)
        t = time.perf_counter()
        for _ in range(50):
            await pilot.press("down")
        print(f"50 cursor moves with the detail pane following: "
              f"{ms((time.perf_counter() - t) / 50)} each (row {table.cursor_row})")


def cold_start() -> None:
    code = ("import time; t=time.perf_counter();"
            "from lc_console.app import make_app; app=make_app('bench');"
            "import asyncio\n"
            "async def main():\n"
            "    async with app.run_test(size=(100,30)) as pilot:\n"
            "        await pilot.pause()\n"
            "        print(f'{(time.perf_counter()-t)*1000:.0f}')\n"
            "asyncio.run(main())")
    runs = [float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                 check=True, env=os.environ).stdout.strip().splitlines()[-1])
            for _ in range(3)]
    print(f"cold start to first frame (new interpreter, imports included), median of 3: "
          f"{statistics.median(runs):.0f} ms")


def main() -> None:
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    with tempfile.TemporaryDirectory() as tmp:
        for var in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME", "XDG_CACHE_HOME"):
            os.environ[var] = str(Path(tmp) / var)
        from lc_console import paths

        profile = "bench"
        print(f"fill {N_FAILURES:,} failures: {fill(paths.state_db(profile)):.1f} s")
        asyncio.run(failures_screen(profile))
        cold_start()


if __name__ == "__main__":
    main()
