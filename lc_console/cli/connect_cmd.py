"""`lc-console connect salesforce|stripe` and `lc-console status`.

The words come from services.connect (the same the console shows). stdout carries results
(and, with --no-browser, the authorize URL alone on its line, for scripts); progress and
instructions go to stderr.
"""

from __future__ import annotations

import argparse
import dataclasses
import getpass
import sys
from typing import TYPE_CHECKING, Any

from lc_console.cli.common import add_command, print_json

# The services (simple-salesforce, zeep, httpx) are imported by the handlers, so that
# `lc-console --help` and the other commands start fast.
if TYPE_CHECKING:
    from lc_console.services import connect
    from lc_console.services.connect import UserMessage


def _permissions_help() -> str:
    from lc_console.stripe.keys import NEEDED

    return ", ".join(f"{n.permission}" for n in NEEDED)


def register(sub: Any) -> None:
    parser = add_command(sub, "connect", "connect Salesforce (OAuth) or Stripe (API key)")
    inner = parser.add_subparsers(dest="connect_target", metavar="TARGET", required=True)

    sf = add_command(inner, "salesforce", "sign in to a Salesforce org with your connected app")
    sf.add_argument("--env", metavar="production|sandbox|URL",
                    help="where to sign in: production, sandbox, or your My Domain URL "
                         "(default: the profile's salesforce.environment)")
    sf.add_argument("--client-id", metavar="ID",
                    help="Consumer Key of your connected app (default: salesforce.client_id)")
    sf.add_argument("--port", type=int, metavar="N",
                    help="loopback port for Salesforce's answer (default: salesforce.callback_port;"
                         " its callback URL http://localhost:N/OAuth/Callback must be on the app)")
    sf.add_argument("--timeout", type=float, metavar="SECONDS",
                    help="how long to wait for the browser (default: salesforce.oauth_timeout_seconds)")
    how = sf.add_mutually_exclusive_group()
    how.add_argument("--no-browser", action="store_true",
                     help="print the sign-in URL instead of opening a browser, then wait")
    how.add_argument("--device", action="store_true",
                     help="device flow for machines without a browser: shows a code to enter "
                          "on another device")
    sf.set_defaults(handler=_salesforce)

    st = add_command(inner, "stripe", "check a Stripe API key's account and permissions, then "
                     f"store it in the keyring (reads needed: {_permissions_help()})")
    st.add_argument("--key-stdin", action="store_true",
                    help="read the key from standard input instead of a hidden prompt")
    st.set_defaults(handler=_stripe)

    status = add_command(sub, "status", "show the connections and what to do next")
    status.add_argument("--json", action="store_true", help="print JSON")
    status.set_defaults(handler=_status)


def _err(text: str = "") -> None:
    print(text, file=sys.stderr, flush=True)


def _report_failure(message: UserMessage) -> int:
    _err(f"error: {message.title}")
    if message.detail:
        _err(f"  {message.detail}")
    if message.fix:
        _err(f"  What to do: {message.fix}")
    return 1


def _print_rows(rows: list[tuple[str, str]]) -> None:
    if not rows:
        return
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f"  {key + ':':<{width + 1}} {value}")


# --- salesforce ----------------------------------------------------------------------------


def _salesforce(args: argparse.Namespace) -> int:
    from lc_console.services import connect
    from lc_console.services.connect import ConnectError

    try:
        plan = connect.plan_salesforce(args.profile, env=args.env, client_id=args.client_id,
                                       port=args.port, timeout=args.timeout)
        if args.device:
            result = _device(plan)
        else:
            result = _web(plan, open_browser=not args.no_browser)
    except ConnectError as exc:
        return _report_failure(exc.message)
    print(f"Connected to Salesforce: {result.environment}")
    _print_rows(result.rows())
    for warning in result.warnings:
        print(f"warning: {warning}")
    return 0


def _web(plan: connect.SalesforcePlan, *, open_browser: bool) -> connect.SalesforceConnected:
    from lc_console.services import connect

    login = connect.start_web_login(plan)
    minutes = plan.timeout / 60
    if open_browser and login.open_browser():
        _err(f"Opened the browser at {plan.target.label}. Sign in and press Allow; "
             "if no browser appeared, open this URL:")
    else:
        _err(f"Open this URL in a browser, sign in to {plan.target.label} and press Allow:")
    print(login.authorize_url, flush=True)
    _err(f"Waiting for Salesforce's answer on {login.redirect_uri} "
         f"(up to {minutes:.0f} min; Ctrl+C cancels)...")
    try:
        return login.wait()
    except KeyboardInterrupt:
        login.cancel()
        raise


def _device(plan: connect.SalesforcePlan) -> connect.SalesforceConnected:
    from lc_console.services import connect

    login = connect.start_device_login(plan)
    _err("On any device with a browser, open")
    print(login.verification_uri, flush=True)
    _err("and enter the code")
    print(login.user_code, flush=True)
    _err(f"then sign in and press Allow. Checking every {login.code.interval:.0f} s "
         "(Ctrl+C cancels)...")
    try:
        return login.wait()
    except KeyboardInterrupt:
        login.cancel()
        raise


# --- stripe ----------------------------------------------------------------------------------


def _read_key(args: argparse.Namespace) -> str:
    from lc_console.services.connect import ConnectError, UserMessage

    if args.key_stdin:
        return sys.stdin.readline().strip()
    if not sys.stdin.isatty():
        raise ConnectError(UserMessage(
            "No terminal to type the key in.",
            "The key is read from a hidden prompt, which needs a terminal.",
            "Pipe it in with --key-stdin (e.g. from your secrets manager)."))
    return getpass.getpass("Stripe API key (rk_… recommended; not shown): ").strip()


def _stripe(args: argparse.Namespace) -> int:
    from lc_console.services import connect
    from lc_console.services.connect import ConnectError

    try:
        key = _read_key(args)
        _err("Checking the key with Stripe...")
        result = connect.connect_stripe(args.profile, key)
    except ConnectError as exc:
        return _report_failure(exc.message)
    except (EOFError, KeyboardInterrupt):
        _err("Cancelled; nothing was stored.")
        return 130
    check = result.check
    print(f"Stripe {check.mode} account {check.account_id or 'unknown'}"
          + (f" ({check.account_name})" if check.account_name else "") + f", {check.kind}")
    width = max(len(p.permission) for p in check.permissions)
    print("Permissions the sync needs:")
    for p in check.permissions:
        mark = "granted" if p.granted else "MISSING"
        print(f"  {p.permission:<{width}}  {mark:<8} {p.api_name:<24} {p.needed_for}")
    for warning in result.warnings:
        print(f"warning: {warning}")
    if not result.stored:
        return _report_failure(result.missing_message())
    print("Key stored in the OS keyring.")
    return 0


# --- status ----------------------------------------------------------------------------------


def _status(args: argparse.Namespace) -> int:
    from lc_console import settings
    from lc_console.services import connect
    from lc_console.services import status as status_service

    try:
        st = status_service.gather(args.profile)
    except settings.SettingsError as exc:
        return _report_failure(connect.describe_error(exc))
    if args.json:
        print_json({
            "profile": st.profile,
            "settings_file": str(st.settings_file),
            "salesforce": _plain(st.salesforce),
            "stripe": _plain(st.stripe),
            "install": st.install,
            "sync": {**_plain(st.sync), "summary": st.sync.summary},
            "keyring_error": st.keyring_error,
            "warnings": st.warnings,
            "next_steps": [_plain(s) for s in st.next_steps],
        })
        return 0
    sf, stripe = st.salesforce, st.stripe
    print(f"profile {st.profile} ({st.settings_file})")
    print(f"Salesforce: {sf.connection}")
    if sf.org_id:
        rows = [("Org", f"{sf.org_name} ({sf.org_id})" if sf.org_name else sf.org_id),
                ("Type", sf.org_kind), ("User", sf.username), ("Instance", sf.instance_url)]
        _print_rows([(k, v) for k, v in rows if v])
    else:
        _print_rows([("Login", sf.login_url)])
    if sf.connection is status_service.Connection.EXPIRED:
        msg = connect.describe_error(connect.tokens.ConnectionExpired())
        print(f"  {msg.title} {msg.fix}")
    print(f"Stripe: {stripe.connection}")
    rows = [("Account", f"{stripe.account_name} ({stripe.account_id})" if stripe.account_name
             else stripe.account_id), ("Mode", stripe.mode), ("Key", stripe.key_kind)]
    _print_rows([(k, v) for k, v in rows if v])
    print(f"Install: {st.install}")
    print(f"Sync: {st.sync.summary}")
    _print_rows(_sync_rows(st.sync))
    if st.keyring_error:
        print(f"Keyring: {st.keyring_error}")
    for warning in st.warnings:
        print(f"warning: {warning}")
    if st.next_steps:
        print("Next:")
        for n, step in enumerate(st.next_steps, start=1):
            how = f"  ({step.command})" if step.command else ""
            print(f"  {n}. {step.title}{how}")
    return 0


def _age(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 172800:
        return f"{seconds / 3600:.0f} h"
    return f"{seconds / 86400:.0f} days"


def _sync_rows(sync: Any) -> list[tuple[str, str]]:
    rows: list[tuple[str, str]] = []
    if sync.engine_state:
        state = sync.engine_state + (f" ({sync.engine_reason})" if sync.engine_reason
                                     and sync.engine_reason not in ("drained", "stopped")
                                     else "")
        rows.append(("Engine", state))
    if sync.last_sync:
        rows.append(("Last sync", sync.last_sync.strftime("%Y-%m-%d %H:%M:%S UTC")))
    if sync.cursor_event and sync.cursor_age_seconds is not None:
        rows.append(("Cursor", f"{sync.cursor_event} ({_age(sync.cursor_age_seconds)} old)"))
    if sync.has_run:
        rows.append(("Queued", f"{sync.pending_writes} events"))
        rows.append(("Failed", f"{sync.open_failures} records"))
    if sync.records_synced:
        rows.append(("Synced", ", ".join(f"{o} {n:,}" for o, n in sync.records_synced.items())))
    if sync.api_used is not None and sync.api_max:
        usage = f"{sync.api_used:,}/{sync.api_max:,} ({100 * sync.api_used / sync.api_max:.1f}%)"
        if sync.throttle_threshold:
            usage += f", writes pause at {sync.throttle_threshold:,}"
        rows.append(("API usage", usage))
    if sync.engine_state == "throttled" and sync.resume_at:
        rows.append(("Resumes", f"about {sync.resume_at.strftime('%H:%M UTC')}"))
    return rows


def _plain(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {k: _plain(v) for k, v in dataclasses.asdict(obj).items()}
    return obj
