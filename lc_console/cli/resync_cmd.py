"""`lc-console resync [--since DATE] [--objects ...] [--dry-run] [--force]` and
`lc-console reconcile [--fix] [--json]`: Re-sync All and drift repair from the command line."""

from __future__ import annotations

import signal
import sys
import threading
from typing import Any, TextIO

from lc_console.cli.common import add_command, fail, print_json

EXIT_OK = 0
EXIT_FAILED = 1  # refused, cancelled, some records failed, drift found (reconcile)
EXIT_NOT_READY = 2


def register(sub: Any) -> None:
    p = add_command(
        sub, "resync",
        "write every Stripe customer's current state to Salesforce (Re-sync All): a forecast "
        "first, Bulk API 2.0 above the bulk threshold; resumable",
        epilog="Exit status: 0 done (or dry run); 1 refused by the forecast, cancelled or some "
               "records failed (see `lc-console failures list`); 2 not connected or bad input.")
    p.add_argument("--since", metavar="DATE",
                   help="only customers with Stripe activity since DATE (2026-09-01) or a "
                        "duration (90d)")
    p.add_argument("--objects", nargs="+", metavar="OBJECT",
                   help="only these objects: accounts contacts opportunities recoveries")
    p.add_argument("--dry-run", action="store_true",
                   help="read and plan, print the forecast, write nothing")
    p.add_argument("--force", action="store_true",
                   help="run even when the forecast crosses the API throttle threshold")
    p.set_defaults(handler=_resync)
    r = add_command(
        sub, "reconcile",
        "compare the console's fields in Salesforce with what Stripe says now; --fix writes "
        "the differences",
        epilog="Exit status: 0 no drift (or fixed); 1 drift found, refused or failed; 2 not "
               "connected.")
    r.add_argument("--fix", action="store_true", help="write the differences")
    r.add_argument("--force", action="store_true",
                   help="with --fix: run even past the API throttle threshold")
    r.add_argument("--json", action="store_true", help="print JSON")
    r.set_defaults(handler=_reconcile)


class ProgressPrinter:
    """One line per phase; on a terminal the line is redrawn in place."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.tty = out.isatty()
        self.phase: str | None = None
        self.last = ""

    def __call__(self, progress: Any) -> None:
        line = progress.line()
        if self.tty:
            if self.phase is not None and progress.phase != self.phase:
                self.out.write("\n")
            self.out.write("\r" + line.ljust(len(self.last)))
            self.out.flush()
        elif progress.phase != self.phase or (progress.total and progress.done >= progress.total):
            if line != self.last:
                self.out.write(line + "\n")
        self.phase = progress.phase
        self.last = line

    def end(self) -> None:
        if self.tty and self.phase is not None:
            self.out.write("\n")
            self.out.flush()


def _cancel_on_signals(cancel: threading.Event) -> None:
    def handler(signum: int, frame: Any) -> None:
        if cancel.is_set():
            raise KeyboardInterrupt
        print("\nStopping at the next safe point (Ctrl-C again to quit now)...",
              file=sys.stderr)
        cancel.set()

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, handler)
        signal.signal(signal.SIGTERM, handler)


def _runner(args: Any, name: str, printer: ProgressPrinter | None, cancel: threading.Event,
            on_forecast: Any = None) -> Any:
    from lc_console.services import resync

    return resync.for_profile(args.profile, name=name, cancel=cancel, on_progress=printer,
                              on_forecast=on_forecast)


def _resync(args: Any) -> int:
    import time

    from lc_console.services import resync
    from lc_console.sync import backfill as bf

    try:
        since = bf.parse_since(args.since, time.time()) if args.since else None
        objects = bf.parse_objects(args.objects or [])
    except ValueError as exc:
        return fail(str(exc))
    cancel = threading.Event()
    _cancel_on_signals(cancel)
    printer = ProgressPrinter(sys.stdout)

    def show_forecast(forecast: Any) -> None:
        # Printed when it is made: after reading and planning, before anything is written.
        printer.end()
        printer.phase = None
        print("Forecast:")
        print("\n".join(forecast.lines()), flush=True)

    try:
        runner = _runner(args, "resync", printer, cancel, show_forecast)
    except resync.Stop as stop:
        return fail(stop.message)
    result = runner.run(resync.Options(since=since, objects=objects, dry_run=args.dry_run,
                                       force=args.force))
    printer.end()
    if result.resumed:
        print("Resumed the previous run from its checkpoint.")
    if result.status == "dry-run":
        print("Dry run: nothing was written.")
        return EXIT_OK
    if result.status == "refused":
        print(result.message, file=sys.stderr)
        return EXIT_FAILED
    if result.status != "done":
        print(result.message, file=sys.stderr)
        return EXIT_FAILED if result.status == "cancelled" else EXIT_NOT_READY
    print("Re-sync done:")
    print("\n".join(resync.summary_lines(result)))
    return EXIT_FAILED if result.failed else EXIT_OK


def _reconcile(args: Any) -> int:
    from lc_console.services import reconcile, resync

    cancel = threading.Event()
    _cancel_on_signals(cancel)
    printer = None if args.json else ProgressPrinter(sys.stdout)
    try:
        runner = _runner(args, "reconcile", printer, cancel)
    except resync.Stop as stop:
        return fail(stop.message)
    result = reconcile.run(runner, fix=args.fix, force=args.force)
    if printer is not None:
        printer.end()
    totals = reconcile.total_drift(result.drift)
    if args.json:
        print_json({"status": result.status, "message": result.message, "totals": totals,
                    "drift": result.drift or {"objects": {}, "items": []},
                    "fixed": bool(args.fix and result.status == "done"),
                    "counts": {o: vars(c) for o, c in result.counts.items()},
                    "salesforce_calls": result.salesforce_calls})
    else:
        print("\n".join(reconcile.drift_lines(result.drift)))
        if args.fix and result.status == "done":
            print("Fixed:")
            print("\n".join(resync.summary_lines(result)))
        elif result.status not in ("done", "dry-run"):
            print(result.message, file=sys.stderr)
    if result.status not in ("done", "dry-run"):
        return EXIT_FAILED if result.status in ("refused", "cancelled") else EXIT_NOT_READY
    if args.fix:
        return EXIT_FAILED if result.failed else EXIT_OK
    return EXIT_FAILED if any(totals.values()) else EXIT_OK
