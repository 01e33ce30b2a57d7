"""`lc-console config path|show|set`."""

from __future__ import annotations

import argparse
from typing import Any

from lc_console import paths, settings
from lc_console.cli.common import add_command, fail, print_json


def register(sub: Any) -> None:
    parser = add_command(sub, "config", "show or change the profile's settings")
    inner = parser.add_subparsers(dest="config_command", metavar="{path,show,set}", required=True)
    add_command(inner, "path", "print the settings file path").set_defaults(handler=_path)
    show = add_command(inner, "show", "print the settings (secrets shown only as stored/missing)")
    show.add_argument("--json", action="store_true", help="print JSON")
    show.set_defaults(handler=_show)
    setp = add_command(inner, "set", "set one key, e.g. sync.throttle_threshold_percent 75")
    setp.add_argument("key", help="dotted key, e.g. tls.ca_bundle")
    setp.add_argument("value", help="new value (lists: comma-separated)")
    setp.set_defaults(handler=_set)


def _path(args: argparse.Namespace) -> int:
    print(paths.config_file(args.profile))
    return 0


def secrets_summary(profile: str) -> dict[str, str]:
    from lc_console import secrets  # keyring: imported here so --help stays fast

    try:
        stored = secrets.status(profile)
    except secrets.KeyringUnavailable as exc:
        return {"keyring": f"unavailable: {exc.what}"}
    return {kind.value: "stored in keyring" if ok else "missing" for kind, ok in stored.items()}


def _show(args: argparse.Namespace) -> int:
    try:
        current = settings.load(args.profile)
    except settings.SettingsError as exc:
        return fail(str(exc))
    data = settings.to_dict(current)
    secret_info = secrets_summary(args.profile)
    if args.json:
        print_json({"profile": args.profile, "file": str(paths.config_file(args.profile)),
                    "settings": data, "secrets": secret_info})
        return 0
    print(f"# profile: {args.profile}")
    print(f"# file: {paths.config_file(args.profile)}")
    import tomli_w

    print(tomli_w.dumps(data))
    print("# secrets (OS keyring)")
    for name, state in secret_info.items():
        print(f"#   {name}: {state}")
    return 0


def _set(args: argparse.Namespace) -> int:
    try:
        current = settings.load(args.profile)
        updated = settings.set_value(current, args.key, args.value)
    except settings.SettingsError as exc:
        return fail(str(exc))
    path = settings.save(args.profile, updated)
    print(f"{args.key} = {settings.get_value(updated, args.key)!r}  ({path})")
    return 0
