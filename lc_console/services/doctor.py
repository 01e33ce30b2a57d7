"""Environment checks shared by `lc-console doctor` and the Doctor screen.

Each check returns a Check; a failed one says how to fix it. Later features add their checks
to CHECKS (callback port, connections, installed schema).
"""

from __future__ import annotations

import os
import platform
import ssl
import sys
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from lc_console import __version__, paths, secrets, settings


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""
    # "info" checks only report facts; they never fail.
    level: str = "check"


PACKAGES = ("textual", "httpx", "keyring", "simple-salesforce", "stripe", "platformdirs", "tomli-w")


def check_versions(profile: str) -> Check:
    parts = [f"lc-console {__version__}", f"Python {platform.python_version()}"]
    for pkg in PACKAGES:
        try:
            parts.append(f"{pkg} {version(pkg)}")
        except PackageNotFoundError:
            return Check("versions", False, f"{pkg} is not installed",
                         f"Reinstall lc-console: pip install --force-reinstall lc-console ({pkg} missing)")
    ok = sys.version_info >= (3, 11)
    return Check("versions", ok, ", ".join(parts), "" if ok else "Use Python 3.11 or newer.")


def check_settings(profile: str) -> Check:
    path = paths.config_file(profile)
    try:
        settings.load(profile)
    except settings.SettingsError as exc:
        return Check("settings", False, str(exc), f"Edit {path} or run `lc-console config set`.")
    state = "exists" if path.exists() else "not created yet (defaults in use)"
    return Check("settings", True, f"{path} ({state})")


def check_paths(profile: str) -> Check:
    detail = (f"config {paths.config_file(profile)}; state {paths.state_db(profile)}; "
              f"log {paths.log_file()}")
    for d in (paths.config_dir(), paths.data_dir(profile), paths.log_dir()):
        try:
            d.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            return Check("paths", False, f"{d}: {exc.strerror}", f"Make {d} writable by you.")
    return Check("paths", True, detail)


def check_keyring(profile: str) -> Check:
    ok, message = secrets.probe()
    return Check("keyring", ok, message, "" if ok else secrets.HOW_TO_FIX)


def check_terminal(profile: str) -> Check:
    term = os.environ.get("TERM", "unset")
    colorterm = os.environ.get("COLORTERM", "")
    if colorterm in ("truecolor", "24bit"):
        depth = "truecolor"
    elif "256" in term:
        depth = "256 colours"
    elif term in ("dumb", "unset"):
        depth = "no colour information"
    else:
        depth = "16 colours (themes stay readable)"
    no_color = " NO_COLOR is set." if "NO_COLOR" in os.environ else ""
    return Check("terminal", True, f"TERM={term} COLORTERM={colorterm or 'unset'}: {depth}.{no_color}",
                 level="info")


def check_tls(profile: str) -> Check:
    try:
        ca = settings.load(profile).tls.ca_bundle
    except settings.SettingsError:
        return Check("tls", True, "settings unreadable (see the settings check)", level="info")
    if not ca:
        return Check("tls", True, "system CA bundle only (tls.ca_bundle not set)")
    path = Path(ca).expanduser()
    if not path.is_file():
        return Check("tls", False, f"tls.ca_bundle {path} does not exist",
                     "Point tls.ca_bundle at a PEM file: lc-console config set tls.ca_bundle /path/ca.pem")
    try:
        ssl.create_default_context(cafile=str(path))
    except ssl.SSLError as exc:
        return Check("tls", False, f"tls.ca_bundle {path} is not a PEM CA file ({exc})",
                     "Export the CA certificate in PEM format and set tls.ca_bundle to it.")
    return Check("tls", True, f"extra CA trusted: {path}")


def check_state(profile: str) -> Check:
    from lc_console.store import Store, StoreError

    path = paths.state_db(profile)
    if not path.exists():
        return Check("state", True, f"{path} (not created yet; the first sync creates it)")
    try:
        with Store(path) as store:
            ok = store.integrity_ok()
            version = store.schema_version()
            failures = store.failure_counts_by_status()
            pending = store.outbox_pending()
    except (StoreError, OSError) as exc:
        return Check("state", False, str(exc), "Move the file away and run the sync again; "
                     "it rebuilds its position from Stripe.")
    if not ok:
        return Check("state", False, f"{path} fails SQLite's integrity check",
                     f"Stop lc-console, move {path} away (keep it for support) and sync again.")
    return Check("state", True, f"{path} (schema v{version}, {pending} writes pending, "
                 f"{failures['open'] + failures['retrying']} failed records open)")


def check_installed_schema(profile: str) -> Check:
    from lc_console.services.install import schema_check

    return schema_check(profile)


def check_callback_port(profile: str) -> Check:
    from lc_console.services.connect import callback_port_check

    result: Check = callback_port_check(profile)
    return result


def check_connections(profile: str) -> Check:
    from lc_console.services.connect import connections_check

    result: Check = connections_check(profile)
    return result


CHECKS: list[Callable[[str], Check]] = [
    check_versions,
    check_settings,
    check_paths,
    check_state,
    check_keyring,
    check_terminal,
    check_tls,
    check_installed_schema,
    check_callback_port,
    check_connections,
]


def run_checks(profile: str) -> list[Check]:
    results = []
    for check in CHECKS:
        try:
            results.append(check(profile))
        except Exception as exc:  # a broken check must not hide the others
            results.append(Check(check.__name__.removeprefix("check_"), False,
                                 f"check crashed: {type(exc).__name__}: {exc}",
                                 "Report this with the log file attached."))
    return results
