"""`lc-console sync`: run the sync loop in the foreground, drain once, or preview (dry run).

    lc-console sync                       run until Ctrl+C / SIGTERM (the batch under way ends)
    lc-console sync --once                drain what is pending; exit 0 all written, 1 some
                                          records failed (or throttled: queue kept), 2 on a
                                          configuration or connection error
    lc-console sync --since 7d            first start (or replay) from a point within 30 days
    lc-console sync --from-now            move the cursor to now (after a backfill)
    lc-console sync --dry-run [--limit N] [--json]   what would be written; nothing is

One line per batch on stdout; problems on stderr.
"""

from __future__ import annotations

import argparse
import datetime as dt
import signal
import sys
import threading
from typing import TYPE_CHECKING, Any

from lc_console.cli.common import add_command, print_json
from lc_console.sync import progress as pg

# The services (simple-salesforce, stripe, keyring) load in the handlers, so that the other
# commands start fast.
if TYPE_CHECKING:
    from lc_console.services import sync as sync_service
    from lc_console.sync.engine import RunSummary

EXIT_OK, EXIT_FAILED, EXIT_CONFIG = 0, 1, 2
SHORT = {"LostChurn_Recovery__c": "Recovery", "LostChurn_Recovery_Event__e": "Event"}


def register(sub: Any) -> None:
    parser = add_command(sub, "sync", "run the sync: Stripe events to Salesforce records "
                         "(Ctrl+C finishes the current batch and stops)")
    parser.add_argument("--since", metavar="DATE|DURATION",
                        help="start from this point (2026-11-01, 2026-11-01T08:00, 7d, 12h) "
                             "within Stripe's 30 days, replaying that window")
    parser.add_argument("--from-now", action="store_true",
                        help="move the cursor to Stripe's newest event first (after a "
                             "backfill, or when the cursor is beyond Stripe's 30 days)")
    parser.add_argument("--once", action="store_true",
                        help="write what is pending, then exit (0 all written, 1 some "
                             "records failed, 2 configuration or connection error)")
    parser.add_argument("--dry-run", action="store_true",
                        help="show what would be written, field by field; write nothing")
    parser.add_argument("--limit", type=int, default=1000, metavar="N",
                        help="with --dry-run: preview at most N events (default 1000)")
    parser.add_argument("--json", action="store_true", help="with --dry-run: print JSON")
    parser.set_defaults(handler=_sync)


def _err(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _say(text: str) -> None:
    print(text, flush=True)


def _clock(at: float) -> str:
    return dt.datetime.fromtimestamp(at).strftime("%H:%M:%S")


def batch_line(b: pg.BatchWritten) -> str:
    parts = []
    for name, c in b.objects.items():
        bits = []
        if c.created:
            bits.append(f"+{c.created}")
        if c.updated:
            bits.append(f"~{c.updated}")
        if c.failed:
            bits.append(f"!{c.failed}")
        if bits:
            parts.append(f"{SHORT.get(name, name)} {' '.join(bits)}")
    what = ", ".join(parts) or "nothing to change"
    tail = [f"{b.salesforce_calls} SF calls", f"{b.seconds:.1f}s"]
    if b.failed:
        tail.append(f"{b.failed} failed")
    if b.retrying:
        tail.append(f"{b.retrying} events retry later ({b.error})")
    if b.queued:
        tail.append(f"{b.queued} queued")
    return f"{_clock(b.at)} batch {b.number}: {b.events} events -> {what} | {', '.join(tail)}"


def _printer(event: pg.ProgressEvent) -> None:
    if isinstance(event, pg.BatchWritten):
        _say(batch_line(event))
    elif isinstance(event, pg.ThrottleChanged):
        if event.throttled:
            when = (f"; writes resume when usage falls (estimate {_clock(event.resume_at)})"
                    if event.resume_at else "")
            _say(f"{_clock(event.at)} Throttled: API usage {event.used:,}/{event.max:,} reached "
                 f"the threshold ({event.threshold:,}); events keep being queued{when}.")
        else:
            _say(f"{_clock(event.at)} Usage {event.used:,}/{event.max:,} is under the threshold "
                 "again: writes resume.")
    elif isinstance(event, pg.ErrorRaised):
        _err(f"{_clock(event.at)} {event.message}" + (f" {event.fix}" if event.fix else ""))
    elif isinstance(event, pg.StateChanged) and event.state == pg.PAUSED:
        _say(f"{_clock(event.at)} Paused: {event.reason}")
    elif isinstance(event, pg.EventsDropped):
        _err(f"({event.count} progress lines skipped)")


def _sync(args: argparse.Namespace) -> int:
    from lc_console.services import sync as sync_service
    from lc_console.services.connect import describe_error
    from lc_console.stripe.source import parse_since

    since = None
    if args.since:
        try:
            since = parse_since(args.since)
        except ValueError as exc:
            _err(f"error: {exc}")
            return EXIT_CONFIG
    if args.dry_run:
        return _dry_run(args, since)
    try:
        if args.from_now:
            newest = sync_service.reset_cursor(args.profile)
            _say(f"Cursor moved to now ({newest or 'no events yet'}): earlier changes reach "
                 "Salesforce through a backfill.")
        session = sync_service.open_session(args.profile)
    except sync_service.SyncSetupError as exc:
        _err(exc.message.text())
        return EXIT_CONFIG
    except Exception as exc:
        _err(describe_error(exc).text())
        return EXIT_CONFIG
    with session:
        sub = session.engine.subscribe(_printer, maxsize=10_000)
        try:
            if args.once:
                return _once(session, since)
            return _forever(session, since)
        finally:
            sub.flush()
            sub.close()


def _start_line(info: Any) -> None:
    if info is None:
        return
    if info.mode == "since":
        _say(f"Replaying {info.replayed} events from the chosen time on.")
    elif info.mode == "from_now":
        _say("First start: reading from now. Earlier history reaches Salesforce through a "
             "backfill (`lc-console resync`).")


def _once(session: sync_service.SyncSession, since: int | None) -> int:
    from lc_console.sync.engine import EngineError

    engine = session.engine
    previous = _handle_signals(lambda: engine.stop(wait=False))
    try:
        try:
            _start_line(engine.begin(since))
        except EngineError as exc:
            _err(f"error: {exc.message}" + (f"\n{exc.fix}" if exc.fix else ""))
            return EXIT_CONFIG
        summary = engine.run_once()
    finally:
        _restore(previous)
    return _report(summary)


def _report(summary: RunSummary) -> int:
    from lc_console.services.connect import describe_error

    if summary.error is not None:
        _err(f"error: {summary.error.message}" + (f"\n{summary.error.fix}" if summary.error.fix
                                                   else ""))
        return EXIT_CONFIG
    written = ", ".join(f"{SHORT.get(n, n)} {c.written}" for n, c in summary.objects.items()
                        if c.written) or "nothing changed"
    _say(f"Done: {summary.events} events in {summary.batches} batches; written: {written}; "
         f"{summary.failed} failed; {summary.queued} queued.")
    if summary.expired:
        msg = describe_error(_expired())
        _err(msg.text())
        return EXIT_CONFIG
    if summary.throttled:
        _err(f"Throttled at the API usage threshold: {summary.queued} events stay queued and "
             "are written when usage falls (run `lc-console sync` again later).")
        return EXIT_FAILED
    if summary.failed:
        _err("Some records failed: `lc-console failures list` shows them; fix the cause, then "
             "`lc-console failures retry --all`.")
        return EXIT_FAILED
    return EXIT_OK


def _expired() -> Exception:
    from lc_console.salesforce.tokens import ConnectionExpired

    return ConnectionExpired()


def _forever(session: sync_service.SyncSession, since: int | None) -> int:
    from lc_console.sync.engine import EngineError

    engine = session.engine
    done = threading.Event()
    previous = _handle_signals(done.set)
    try:
        try:
            info = engine.start(since)
        except EngineError as exc:
            _err(f"error: {exc.message}" + (f"\n{exc.fix}" if exc.fix else ""))
            return EXIT_CONFIG
        _start_line(info)
        _say(f"Syncing (cursor {info.cursor or 'not set yet'}). Ctrl+C finishes the current "
             "batch and stops.")
        while not done.wait(0.5):
            if not engine.running:
                break
        stopped_by_error = not engine.running and not done.is_set()
        if engine.running:
            _say("Stopping after the current batch...")
        engine.stop()
        _say("Stopped.")
        return EXIT_CONFIG if stopped_by_error else EXIT_OK
    finally:
        _restore(previous)


def _handle_signals(on_signal: Any) -> dict[int, Any]:
    """SIGINT / SIGTERM finish the current batch instead of interrupting it."""
    def handler(signum: int, frame: Any) -> None:
        on_signal()

    previous = {}
    for sig in (signal.SIGINT, signal.SIGTERM):
        previous[sig] = signal.signal(sig, handler)
    return previous


def _restore(previous: dict[int, Any]) -> None:
    for sig, handler in previous.items():
        signal.signal(sig, handler)


# --- dry run --------------------------------------------------------------------------


def _fmt(value: Any) -> str:
    if value is None or value == "":
        return "(empty)"
    text = str(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _dry_run(args: argparse.Namespace, since: int | None) -> int:
    from lc_console.services import sync as sync_service
    from lc_console.services.connect import describe_error

    try:
        preview = sync_service.dry_run(args.profile, since=since, limit=max(1, args.limit))
    except sync_service.SyncSetupError as exc:
        _err(exc.message.text())
        return EXIT_CONFIG
    except Exception as exc:
        _err(describe_error(exc).text())
        return EXIT_CONFIG
    if args.json:
        print_json(preview.to_dict())
        return EXIT_OK
    _say(f"Dry run: {preview.events} Stripe events; nothing is written.")
    for note in preview.notes:
        _say(f"  note: {note}")
    for r in preview.records:
        if r.action == "skip":
            continue
        _say(f"{r.sobject} {r.key}: {r.action}" + (f" -- refused: {r.problem}" if r.problem
                                                    else ""))
        for f in r.fields:
            mark = "->" if f.write else "  "
            rule = f.rule + (f" ({f.source})" if f.source else "")
            if f.write:
                _say(f"    {f.field}: {_fmt(f.current)} {mark} {_fmt(f.value)}   [{rule}]")
            elif f.rule not in ("unchanged",):
                _say(f"    {f.field}: keeps {_fmt(f.current)}   [{rule}: {f.reason}]")
    skipped = sum(1 for r in preview.records if r.action == "skip")
    if skipped:
        _say(f"{skipped} records already hold every value (skip-unchanged).")
    _say("Totals:")
    for sobject, t in preview.totals.items():
        _say(f"  {sobject}: {t['create']} create, {t['update']} update, {t['skip']} skip"
             + (f", {t['reject']} refused" if t["reject"] else ""))
    _say(f"API calls the sync would cost: {preview.api_calls} ({preview.read_calls} reads, "
         f"{preview.write_calls} writes; this preview used {preview.read_calls}).")
    return EXIT_OK
