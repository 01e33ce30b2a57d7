"""`lc-console disconnect`: keep or remove the LostChurn metadata, revoke the Salesforce
tokens, delete the keyring secrets and (unless --keep-state) the local state."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from lc_console.cli.common import add_command, fail, print_json


def register(sub: Any) -> None:
    parser = add_command(sub, "disconnect", "revoke the tokens, delete the secrets and "
                         "optionally the LostChurn metadata and the local state")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--keep-metadata", action="store_true",
                       help="leave the LostChurn objects, fields and data in the org (default)")
    which.add_argument("--remove-metadata", action="store_true",
                       help="delete the LostChurn objects and fields, and their data")
    parser.add_argument("--keep-state", action="store_true",
                        help="keep the local state (cursor, failures, audit log)")
    parser.add_argument("--yes", action="store_true",
                        help="do not ask for confirmation (needed when not on a terminal)")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    parser.set_defaults(handler=_disconnect)


def _confirm(args: argparse.Namespace, org: str) -> str | None:
    """None when confirmed, else the reason to stop."""
    if args.yes:
        return None
    if not sys.stdin.isatty():
        return "not on a terminal: add --yes to confirm the disconnect."
    if args.remove_metadata:
        typed = input(f"Type the org name, {org}, to delete the LostChurn metadata: ").strip()
        return None if org and typed == org else "the org name did not match; nothing changed."
    answer = input("Revoke the tokens and delete the secrets of this profile? [y/N] ")
    return None if answer.strip().lower() in ("y", "yes") else "cancelled; nothing changed."


def _disconnect(args: argparse.Namespace) -> int:
    from lc_console.services import disconnect as svc
    from lc_console.services.install import error_message

    org = svc.org_name(args.profile)
    if args.remove_metadata:
        try:
            preview = svc.preview(args.profile)
        except Exception as exc:
            return fail(f"cannot count what removal deletes: {error_message(exc)}", code=1)
        if not args.json:
            for line in preview.lines():
                print(line)
    stop = _confirm(args, org)
    if stop:
        return fail(stop)
    result = svc.disconnect(args.profile, remove_metadata=args.remove_metadata,
                            keep_state=args.keep_state)
    if args.json:
        print_json(result.to_dict())
    else:
        for line in result.lines():
            print(line)
    return 0 if result.ok else 1
