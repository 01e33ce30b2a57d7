"""Secrets in the OS keyring only (service "lc-console"), never in a file.

When no usable keyring exists we raise KeyringUnavailable with a message that says how to get
one; there is deliberately no plaintext fallback.
"""

from __future__ import annotations

from enum import StrEnum

import keyring
import keyring.backends.fail
import keyring.errors

from lc_console.logs import remember_secret

SERVICE = "lc-console"


class SecretKind(StrEnum):
    SALESFORCE_REFRESH_TOKEN = "salesforce.refresh_token"
    SALESFORCE_ACCESS_TOKEN = "salesforce.access_token"
    STRIPE_API_KEY = "stripe.api_key"


HOW_TO_FIX = (
    "lc-console keeps tokens and API keys only in the OS keyring. "
    "On Linux install and unlock a Secret Service provider (GNOME Keyring: "
    "`apt install gnome-keyring`, or KWallet), and make sure a D-Bus session is running "
    "(over SSH: `dbus-run-session -- bash`, then "
    "`echo -n PASSWORD | gnome-keyring-daemon --unlock --components=secrets`). "
    "On macOS and Windows the system keychain is used automatically. "
    "If PYTHON_KEYRING_BACKEND is set, check that it names an installed backend. "
    "`keyring --list-backends` and `lc-console doctor` show what is available."
)


class KeyringUnavailable(RuntimeError):
    """No usable keyring: missing backend, locked collection, or the `fail` backend."""

    def __init__(self, what: str):
        super().__init__(f"{what} {HOW_TO_FIX}")
        self.what = what


def _account(profile: str, kind: SecretKind) -> str:
    return f"{profile}:{kind.value}"


def _check_backend() -> None:
    if isinstance(keyring.get_keyring(), keyring.backends.fail.Keyring):
        raise KeyringUnavailable("No OS keyring backend is available.")


def _wrap(exc: keyring.errors.KeyringError) -> KeyringUnavailable:
    if isinstance(exc, keyring.errors.NoKeyringError):
        return KeyringUnavailable("No OS keyring backend is available.")
    if isinstance(exc, keyring.errors.KeyringLocked | keyring.errors.InitError):
        return KeyringUnavailable("The OS keyring is locked or could not be opened; unlock it.")
    return KeyringUnavailable(f"The OS keyring refused the request ({type(exc).__name__}).")


def backend_name() -> str:
    backend = keyring.get_keyring()
    return f"{type(backend).__module__}.{type(backend).__name__}"


def get(profile: str, kind: SecretKind) -> str | None:
    _check_backend()
    try:
        value = keyring.get_password(SERVICE, _account(profile, kind))
    except keyring.errors.KeyringError as exc:
        raise _wrap(exc) from None
    if value:
        remember_secret(value)  # so the log filter masks it wherever it shows up
    return value


def put(profile: str, kind: SecretKind, value: str) -> None:
    if not value:
        raise ValueError("refusing to store an empty secret")
    remember_secret(value)
    _check_backend()
    try:
        keyring.set_password(SERVICE, _account(profile, kind), value)
    except keyring.errors.KeyringError as exc:
        raise _wrap(exc) from None


def delete(profile: str, kind: SecretKind) -> bool:
    """Delete one secret; False when it was not there."""
    _check_backend()
    try:
        keyring.delete_password(SERVICE, _account(profile, kind))
        return True
    except keyring.errors.PasswordDeleteError:
        return False
    except keyring.errors.KeyringError as exc:
        raise _wrap(exc) from None


def delete_all(profile: str) -> list[SecretKind]:
    """Delete every secret of the profile; returns the kinds that were present."""
    return [kind for kind in SecretKind if delete(profile, kind)]


def status(profile: str) -> dict[SecretKind, bool]:
    """Which secrets are stored (never their values)."""
    return {kind: get(profile, kind) is not None for kind in SecretKind}


def probe() -> tuple[bool, str]:
    """Store, read back and delete a throwaway secret: (ok, message)."""
    account = "__lc-console-doctor-probe__"
    try:
        _check_backend()
        keyring.set_password(SERVICE, account, "probe-value")
        ok = keyring.get_password(SERVICE, account) == "probe-value"
        keyring.delete_password(SERVICE, account)
    except KeyringUnavailable as exc:
        return False, exc.what
    except keyring.errors.KeyringError as exc:
        return False, _wrap(exc).what
    if not ok:
        return False, "The keyring stored a test secret but read back something else."
    return True, f"{backend_name()} stores and reads secrets"
