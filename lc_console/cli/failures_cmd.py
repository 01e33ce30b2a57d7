"""`lc-console failures list|show|retry|discard`: records Salesforce did not take.

    lc-console failures list [--code CODE] [--object OBJ] [--status S] [--limit N] [--json]
    lc-console failures show ID [--json]
    lc-console failures retry ID... | --all [--code CODE] [--json]
    lc-console failures discard ID... --reason TEXT [--json]

A retry re-derives the record from the current Stripe state (services/failures.py), so fix
the cause first. Exit 1 when a retried record fails again, 2 when the command cannot run.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from typing import Any

from lc_console.cli.common import add_command, print_json
from lc_console.store import (
    ACTIVE_FAILURE_STATUSES,
    FAILURE_STATUSES,
    Failure,
    FailureFilter,
    Store,
)


def register(sub: Any) -> None:
    parser = add_command(sub, "failures", "records Salesforce did not take: list, show, retry, "
                         "discard")
    inner = parser.add_subparsers(dest="failures_action", metavar="ACTION", required=True)

    ls = add_command(inner, "list", "list failed records (open ones by default), newest first")
    ls.add_argument("--code", help="only this error code (e.g. FIELD_CUSTOM_VALIDATION_EXCEPTION)")
    ls.add_argument("--object", help="only this object (e.g. Contact)")
    ls.add_argument("--status", default="active",
                    help="active (open and retrying, the default), all, or one of "
                         + ", ".join(FAILURE_STATUSES))
    ls.add_argument("--limit", type=int, default=100, metavar="N", help="at most N rows")
    ls.add_argument("--json", action="store_true", help="print JSON")
    ls.set_defaults(handler=_list)

    show = add_command(inner, "show", "one failed record: payload, error, Salesforce's answer")
    show.add_argument("id", type=int)
    show.add_argument("--json", action="store_true", help="print JSON")
    show.set_defaults(handler=_show)

    retry = add_command(inner, "retry", "retry failed records: re-derived from the current "
                        "Stripe state and written again")
    retry.add_argument("ids", type=int, nargs="*", metavar="ID")
    retry.add_argument("--all", action="store_true", help="every open failure (see --code)")
    retry.add_argument("--code", help="with --all: only failures with this error code")
    retry.add_argument("--json", action="store_true", help="print JSON")
    retry.set_defaults(handler=_retry)

    discard = add_command(inner, "discard", "give up on failed records, saying why (audited)")
    discard.add_argument("ids", type=int, nargs="+", metavar="ID")
    discard.add_argument("--reason", required=True, help="why (kept in the audit log)")
    discard.add_argument("--json", action="store_true", help="print JSON")
    discard.set_defaults(handler=_discard)


def _err(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _when(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, tz=dt.UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def failure_dict(f: Failure, *, full: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": f.id, "object": f.object, "key": f.key, "operation": f.operation,
        "error_code": f.error_code, "message": f.message, "fields": f.fields,
        "attempts": f.attempts, "status": f.status, "first_seen": _when(f.first_seen),
        "last_seen": _when(f.last_seen), "source_event_id": f.source_event_id,
    }
    if f.discard_reason:
        out["discard_reason"] = f.discard_reason
    if full:
        out["payload"] = f.payload
        out["salesforce_response"] = f.salesforce_response
        from lc_console.salesforce import errors

        out["advice"] = errors.advice_for(f.error_code)
    return out


def _store(profile: str) -> Store:
    return Store.for_profile(profile)


def _list(args: argparse.Namespace) -> int:
    if args.status == "active":
        status: Any = ACTIVE_FAILURE_STATUSES
    elif args.status == "all":
        status = None
    elif args.status in FAILURE_STATUSES:
        status = args.status
    else:
        _err(f"error: --status {args.status!r}: use active, all, or one of "
             + ", ".join(FAILURE_STATUSES))
        return 2
    with _store(args.profile) as store:
        page = store.list_failures(FailureFilter(status=status, object=args.object,
                                                 error_code=args.code),
                                   limit=max(1, args.limit))
    if args.json:
        print_json({"total": page.total, "failures": [failure_dict(f) for f in page.rows]})
        return 0
    if not page.rows:
        print("No failed records." if status == ACTIVE_FAILURE_STATUSES else "None.")
        return 0
    rows = [("ID", "OBJECT", "KEY", "CODE", "TRIES", "LAST SEEN", "MESSAGE")]
    for f in page.rows:
        rows.append((str(f.id), f.object, f.key[:32], f.error_code, str(f.attempts),
                     _when(f.last_seen), f.message[:60]))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r[:-1], widths, strict=True)) + "  " + r[-1])
    shown = len(page.rows)
    print(f"{shown} of {page.total} shown." + (" Use --limit to see more." if shown < page.total
                                               else ""))
    return 0


def _show(args: argparse.Namespace) -> int:
    with _store(args.profile) as store:
        f = store.get_failure(args.id)
    if f is None:
        _err(f"error: no failed record #{args.id}; `lc-console failures list` shows the ids.")
        return 2
    data = failure_dict(f, full=True)
    if args.json:
        print_json(data)
        return 0
    print(f"#{f.id} {f.object} {f.key} ({f.operation}) - {f.status}")
    print(f"Error: {f.error_code}: {f.message}")
    if f.fields:
        print(f"Fields: {', '.join(f.fields)}")
    print(f"Attempts: {f.attempts}, first seen {data['first_seen']}, last {data['last_seen']}")
    if f.source_event_id:
        print(f"Stripe event: {f.source_event_id}")
    if f.discard_reason:
        print(f"Discarded: {f.discard_reason}")
    if data["advice"]:
        print(f"What to do: {data['advice']}")
    print("Payload:")
    print(json.dumps(f.payload, indent=2, sort_keys=True, default=str))
    if f.salesforce_response is not None:
        print("Salesforce's answer:")
        print(json.dumps(f.salesforce_response, indent=2, sort_keys=True, default=str))
    return 0


def _retry(args: argparse.Namespace) -> int:
    if args.ids and args.all:
        _err("error: give ids or --all, not both.")
        return 2
    if not args.ids and not args.all:
        _err("error: name the failed records to retry (ids), or use --all (with --code CODE "
             "for one error code).")
        return 2
    if args.code and not args.all:
        _err("error: --code goes with --all.")
        return 2
    from lc_console.services import failures as svc
    from lc_console.services.connect import describe_error

    try:
        with _store(args.profile) as store:
            ids = list(args.ids) or svc.active_ids(store, error_code=args.code)
            missing = [i for i in args.ids if store.get_failure(i) is None]
            if missing:
                _err(f"error: no failed record #{missing[0]}; `lc-console failures list` "
                     "shows the ids.")
                return 2
            if not ids:
                print("Nothing to retry.")
                return 0
            result = svc.retry(store, ids, svc.runner_for_profile(args.profile))
    except Exception as exc:
        _err(describe_error(exc).text())
        return 2
    if args.json:
        print_json({"requested": len(ids), "resolved": result.resolved, "failed": result.failed,
                    "skipped": result.skipped, "problems": result.problems})
    else:
        print(result.summary())
        for line in result.problems[1:]:
            print(f"  {line}")
    return 1 if result.failed or result.skipped else 0


def _discard(args: argparse.Namespace) -> int:
    from lc_console.services import failures as svc

    try:
        with _store(args.profile) as store:
            changed = svc.discard(store, args.ids, args.reason)
    except ValueError as exc:
        _err(f"error: {exc}")
        return 2
    if args.json:
        print_json({"discarded": changed})
    else:
        print(f"Discarded {changed} failed record(s); the reason is in the audit log.")
    return 0 if changed else 1
