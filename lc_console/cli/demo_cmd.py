"""`lc-console demo`: the whole console against local sandboxes, in the separate 'demo' profile.

Starts fresh every time (the demo profile's settings, secrets and state are wiped first, and it
says so), opens the console, and stops the sandboxes when the console exits, on Ctrl+C too.
With --no-console it signs in as the demo admin and connects Stripe from the command line
(the same service calls as the console), prints the status and keeps the sandboxes running
until Ctrl+C, for scripts and `lc-console --profile demo ...` in another terminal.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from typing import Any

from lc_console.cli.common import add_command, fail

# Kept in step with services.demo (not imported here: registering commands stays fast).
SCENARIOS = ("small", "demo", "large", "live")
DEMO_PROFILE = "demo"


def register(sub: Any) -> None:
    parser = add_command(
        sub, "demo", "try the console against local Salesforce and Stripe sandboxes "
        "(separate 'demo' profile, wiped at each start)")
    parser.add_argument("--scenario", choices=SCENARIOS, default="live",
                        help="the Stripe account's data: live keeps events flowing (default), "
                             "small/demo are still, large has 100,000 customers")
    parser.add_argument("--seed", type=int, default=1, metavar="S",
                        help="seed of the generated Stripe account (default 1)")
    parser.add_argument("--no-console", action="store_true",
                        help="connect both sandboxes from the command line, print the status "
                             "and keep them running until Ctrl+C instead of opening the console")
    parser.set_defaults(handler=_demo)


def _say(text: str = "") -> None:
    print(text, file=sys.stderr, flush=True)


def _demo(args: argparse.Namespace) -> int:
    from lc_console.paths import DEFAULT_PROFILE
    from lc_console.services import demo

    if args.profile not in (DEFAULT_PROFILE, DEMO_PROFILE):
        _say(f"note: the demo always uses its own '{DEMO_PROFILE}' profile; profile "
             f"'{args.profile}' is ignored and left untouched.")
    try:
        with demo.single_demo():
            return _run(args)
    except demo.DemoError as exc:
        return fail(str(exc), 1)


def _run(args: argparse.Namespace) -> int:
    from lc_console import secrets
    from lc_console.services import demo

    try:
        removed = demo.wipe(DEMO_PROFILE)
    except secrets.KeyringUnavailable as exc:
        return fail(f"the demo stores its tokens in the OS keyring like any profile. {exc}", 1)
    if removed:
        _say("Starting a fresh demo: removed the previous demo's " + ", ".join(removed) + ".")
    _say(f"Starting the Salesforce and Stripe sandboxes (scenario {args.scenario}, "
         f"seed {args.seed})...")
    try:
        session = demo.start(args.scenario, args.seed, profile=DEMO_PROFILE)
    except demo.DemoError as exc:
        return fail(str(exc), 1)
    # SIGTERM/SIGHUP end the demo like Ctrl+C does, so the sandboxes are stopped.
    previous = {s: signal.signal(s, _interrupt) for s in (signal.SIGTERM, signal.SIGHUP)}
    try:
        for line in session.hints():
            _say(line)
        if args.no_console:
            return _headless(session)
        from lc_console.screens.demo import make_demo_app

        app = make_demo_app(session)
        _running_app.append(app)
        app.run()
        return app.return_code or 0
    except KeyboardInterrupt:
        _say("Interrupted.")
        return 130
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        _running_app.clear()
        session.stop()
        _say("Demo stopped: both sandboxes are shut down. Its settings and state stay in the "
             f"'{DEMO_PROFILE}' profile until the next `lc-console demo`.")


_running_app: list[Any] = []


def _interrupt(signum: int, frame: Any) -> None:
    if _running_app:
        _running_app[0].exit()  # the console restores the terminal; then the finally above
    else:
        raise KeyboardInterrupt


def _headless(session: Any) -> int:
    from lc_console.services import demo
    from lc_console.services.connect import ConnectError

    try:
        sf = demo.connect_salesforce(session)
        _say(f"Salesforce: connected to {sf.org.org_name} as {sf.org.username}.")
        st = demo.connect_stripe(session)
    except ConnectError as exc:
        return fail(exc.message.text(), 1)
    if not st.stored:
        return fail(st.missing_message().text(), 1)
    _say(f"Stripe: connected to {st.check.account_name or st.check.account_id} "
         f"({st.check.mode} mode).")
    _say(f"Use it from another terminal: lc-console --profile {DEMO_PROFILE} status. "
         "Press Ctrl+C to stop the sandboxes.")
    print("ready", flush=True)
    stop = threading.Event()
    try:
        while session.running and not stop.wait(0.5):
            pass
    except KeyboardInterrupt:  # the way to end a --no-console demo: not an error
        return 0
    if not session.running:
        return fail(f"the sandboxes stopped unexpectedly; see {session.log_file}", 1)
    return 0
