"""`lc-console audit SEARCH`: every write the console made for one record."""

from __future__ import annotations

import argparse
from typing import Any

from lc_console.cli.common import add_command, fail, print_json


def register(sub: Any) -> None:
    parser = add_command(sub, "audit", "show every write for a record (email, Stripe id or "
                         "Salesforce id)")
    parser.add_argument("search", nargs="?", default="",
                        help="an email or record key, a Stripe event/customer id or a "
                        "Salesforce id (empty: the latest writes)")
    parser.add_argument("--limit", type=int, default=200, help="at most this many (default 200)")
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.set_defaults(handler=_audit)


def _audit(args: argparse.Namespace) -> int:
    from lc_console.services import audit
    from lc_console.store import Store, StoreError

    if args.limit < 1:
        return fail("--limit must be at least 1.")
    try:
        with Store.for_profile(args.profile) as store:
            entries = audit.search(store, args.search, limit=args.limit)
    except StoreError as exc:
        return fail(str(exc), code=1)
    if args.json:
        print_json([audit.to_dict(e) for e in entries])
        return 0
    print(audit.headline(args.search, entries, more=len(entries) == args.limit))
    for e in entries:
        when, obj, record, action, outcome, sf_id, event, detail = audit.row(e)
        parts = [when, f"{obj:<22}", f"{action:<16}", f"{outcome:<9}", record]
        if sf_id:
            parts.append(sf_id)
        if event:
            parts.append(event)
        line = "  ".join(parts)
        print(line + (f"  — {detail}" if detail else ""))
    return 0
