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
        from textual.widgets import Input

        app.screen.query_one("#failures-filter", Input).value = "code:DUPLICATE_VALUE object:Contact"
        app.screen.query_one("#failures-filter", Input).focus()
        t = time.perf_counter()
        await pilot.press("enter")
        await wait(pilot, "of 3,334")
        print(f"filter code+object (3,334 rows): {ms(time.perf_counter() - t)}")
        table = app.screen.query_one(DataTable)
        t = time.perf_counter()
        for _ in range(50):
            await pilot.press("down")
        print(f"50 cursor moves with the detail pane following: "
              f"{ms((time.perf_counter() - t) / 50)} each (row {table.cursor_row})")


async def monitor_under_load(seconds: float = 5.0, rate: int = 1000) -> None:
    """The monitor fed 1,000 Stripe events/s (10 ingests + 10 batches a second, as the engine
    reports them), measuring each frame's drawing and the latency of a key press."""
    import threading

    from lc_console.screens.monitor import MonitorScreen
    from lc_console.sync import progress as pg

    class Engine:
        def __init__(self) -> None:
            self.cb = None

        def subscribe(self, cb):  # type: ignore[no-untyped-def]
            self.cb = cb
            return self

        def close(self) -> None:
            self.cb = None

        def start(self) -> None:
            pass

        def pause(self) -> None:
            pass

        def resume(self) -> None:
            pass

    class Session:
        engine = Engine()

        def close(self) -> None:
            pass

    from lc_console.app import make_app

    draws: list[float] = []
    original = MonitorScreen._draw

    def timed_draw(self: MonitorScreen) -> None:
        t = time.perf_counter()
        original(self)
        draws.append(time.perf_counter() - t)

    MonitorScreen._draw = timed_draw  # type: ignore[method-assign]
    app = make_app("bench-monitor", mode="monitor")
    stop = threading.Event()

    def feed() -> None:
        n = 0
        per_tick = rate // 10
        while not stop.is_set():
            cb = Session.engine.cb
            if cb is not None:
                n += 1
                cb(pg.EventsIngested(count=per_tick, duplicates=0, queued=50, cursor=None))
                cb(pg.BatchWritten(number=n, events=per_tick, objects={
                    "Contact": pg.ObjectCounts(updated=per_tick // 2),
                    "Account": pg.ObjectCounts(updated=per_tick // 4)}, failed=0, retrying=0,
                    salesforce_calls=1, stripe_calls=1, seconds=0.05, queued=50))
            time.sleep(0.1)

    async with app.run_test(size=(120, 40)) as pilot:
        screen = app.screen
        assert isinstance(screen, MonitorScreen)
        screen.session_factory = lambda profile: Session()
        await pilot.press("s")
        await pilot.pause(0.3)

        async def keys(duration: float) -> list[float]:
            out = []
            end = time.perf_counter() + duration
            while time.perf_counter() < end:
                t = time.perf_counter()
                await pilot.press("slash")
                await pilot.press("escape")
                out.append((time.perf_counter() - t) / 2)
                await pilot.pause(0.05)
            return out

        idle = await keys(2.0)
        feeder = threading.Thread(target=feed, daemon=True)
        feeder.start()
        latencies = await keys(seconds)
        stop.set()
        events = screen.model.events_total
    MonitorScreen._draw = original  # type: ignore[method-assign]
    print(f"monitor at {rate:,} events/s for {seconds:.0f} s ({events:,} events): frame draw "
          f"median {ms(statistics.median(draws))}, max {ms(max(draws))} "
          f"({len(draws)} frames); key press latency median "
          f"{ms(statistics.median(latencies))}, max {ms(max(latencies))} (idle engine: "
          f"median {ms(statistics.median(idle))}; Pilot's press waits for a full repaint)")


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
        asyncio.run(monitor_under_load())
        cold_start()


if __name__ == "__main__":
    main()
