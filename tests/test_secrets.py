"""Secrets: the OS keyring only. Real Secret Service (gnome-keyring under dbus-run-session, as
`make test` runs it), the in-memory backend, and backends that cannot be used."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import keyring
import keyring.backend
import keyring.backends.fail
import keyring.errors
import pytest

from lc_console import secrets
from lc_console.secrets import KeyringUnavailable, SecretKind

REFRESH = "5Aep861TSESvWeug_xvFHRBTTbf_YrTWgEyjBJo7Xrg2mq.Hzl8Bp0vbdnHM4KtsMZsHnVcbfwNxXXjQK3"
ACCESS = "00D5g000004XyZ1!" "AQ0AQH7f8kR2mPqN3vW.xYzT9bLc4dE5fG6hJ7kL8mN9pQ0rS1tU2vW3xY4zA5"
STRIPE = "sk_test_51HqLyjWDarjtT1zdp7dcXYZ0SGYgHxFqmwDHWtSEB7h2PvmjvyvnPMtRRzExBdUc"


def _exercise(profile: str, other: str) -> None:
    """The whole secrets API against whatever backend is installed."""
    assert secrets.get(profile, SecretKind.STRIPE_API_KEY) is None
    secrets.put(profile, SecretKind.SALESFORCE_REFRESH_TOKEN, REFRESH)
    secrets.put(profile, SecretKind.SALESFORCE_ACCESS_TOKEN, ACCESS)
    secrets.put(profile, SecretKind.STRIPE_API_KEY, STRIPE)
    secrets.put(other, SecretKind.STRIPE_API_KEY, "sk_test_other_profile_key_123")
    assert secrets.get(profile, SecretKind.SALESFORCE_REFRESH_TOKEN) == REFRESH
    assert secrets.get(profile, SecretKind.SALESFORCE_ACCESS_TOKEN) == ACCESS
    assert secrets.get(profile, SecretKind.STRIPE_API_KEY) == STRIPE
    assert secrets.status(profile) == dict.fromkeys(SecretKind, True)

    secrets.put(profile, SecretKind.SALESFORCE_ACCESS_TOKEN, ACCESS + "rotated")  # overwrite
    assert secrets.get(profile, SecretKind.SALESFORCE_ACCESS_TOKEN) == ACCESS + "rotated"

    assert secrets.delete(profile, SecretKind.SALESFORCE_ACCESS_TOKEN) is True
    assert secrets.delete(profile, SecretKind.SALESFORCE_ACCESS_TOKEN) is False
    assert secrets.get(profile, SecretKind.SALESFORCE_ACCESS_TOKEN) is None

    removed = secrets.delete_all(profile)
    assert set(removed) == {SecretKind.SALESFORCE_REFRESH_TOKEN, SecretKind.STRIPE_API_KEY}
    assert secrets.status(profile) == dict.fromkeys(SecretKind, False)
    # Another profile's secrets are untouched.
    assert secrets.get(other, SecretKind.STRIPE_API_KEY) == "sk_test_other_profile_key_123"
    secrets.delete_all(other)


def test_secrets_with_the_in_memory_backend(memory_keyring) -> None:  # type: ignore[no-untyped-def]
    _exercise("default", "acme")
    assert memory_keyring.store == {}


def test_empty_secret_is_refused() -> None:
    with pytest.raises(ValueError, match="empty"):
        secrets.put("default", SecretKind.STRIPE_API_KEY, "")


def test_accounts_are_keyed_by_profile_and_kind(memory_keyring) -> None:  # type: ignore[no-untyped-def]
    secrets.put("acme", SecretKind.STRIPE_API_KEY, STRIPE)
    assert memory_keyring.store == {("lc-console", "acme:stripe.api_key"): STRIPE}


# --- the real Secret Service ------------------------------------------------------------------


@pytest.mark.secret_service
def test_secrets_in_the_real_secret_service(secret_service: keyring.backend.KeyringBackend) -> None:
    assert "SecretService" in secrets.backend_name()
    profile, other = f"test-{os.getpid()}", f"test-other-{os.getpid()}"
    try:
        _exercise(profile, other)
    finally:
        secrets.delete_all(profile)
        secrets.delete_all(other)


@pytest.mark.secret_service
def test_secret_is_really_in_gnome_keyring_and_seen_by_another_process(
        secret_service: keyring.backend.KeyringBackend) -> None:
    """Not just this process's memory: look the item up over D-Bus from a fresh process."""
    profile = f"test-xproc-{os.getpid()}"
    secrets.put(profile, SecretKind.STRIPE_API_KEY, STRIPE)
    try:
        code = (
            "import secretstorage, sys\n"
            "conn = secretstorage.dbus_init()\n"
            "items = list(secretstorage.search_items(conn, {'service': 'lc-console',"
            " 'username': sys.argv[1] + ':stripe.api_key'}))\n"
            "print(len(items), items[0].get_secret().decode() if items else '')\n"
        )
        out = subprocess.run([sys.executable, "-c", code, profile], capture_output=True,
                             text=True, timeout=60, check=True, cwd="/tmp").stdout.split()
        assert out == ["1", STRIPE]
    finally:
        secrets.delete_all(profile)


@pytest.mark.secret_service
def test_probe_with_the_real_secret_service(secret_service: keyring.backend.KeyringBackend) -> None:
    ok, message = secrets.probe()
    assert ok, message
    assert "SecretService" in message
    assert keyring.get_password(secrets.SERVICE, "__lc-console-doctor-probe__") is None


# --- unusable backends -------------------------------------------------------------------------


@pytest.fixture
def fail_backend() -> Iterator[None]:
    previous = keyring.get_keyring()
    keyring.set_keyring(keyring.backends.fail.Keyring())
    yield
    keyring.set_keyring(previous)


def _assert_how_to_fix(message: str) -> None:
    for needle in ("gnome-keyring", "unlock", "dbus-run-session", "PYTHON_KEYRING_BACKEND",
                   "lc-console doctor"):
        assert needle in message


def test_fail_backend_raises_one_clear_error_and_writes_no_file(
        fail_backend: None, isolated_dirs: Path, tmp_path: Path) -> None:
    for call in (
        lambda: secrets.put("default", SecretKind.STRIPE_API_KEY, STRIPE),
        lambda: secrets.get("default", SecretKind.STRIPE_API_KEY),
        lambda: secrets.delete("default", SecretKind.STRIPE_API_KEY),
        lambda: secrets.delete_all("default"),
        lambda: secrets.status("default"),
    ):
        with pytest.raises(KeyringUnavailable) as err:
            call()
        assert "No OS keyring backend is available." in str(err.value)
        _assert_how_to_fix(str(err.value))
        assert STRIPE not in str(err.value)
    ok, message = secrets.probe()
    assert not ok and "No OS keyring" in message
    # No plaintext fallback anywhere under the test's home.
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert STRIPE.encode() not in path.read_bytes(), path


class _RaisingKeyring(keyring.backend.KeyringBackend):
    priority = 1  # type: ignore[assignment]

    def __init__(self, exc: Exception) -> None:
        super().__init__()
        self.exc = exc

    def get_password(self, service: str, username: str) -> str | None:
        raise self.exc

    def set_password(self, service: str, username: str, password: str) -> None:
        raise self.exc

    def delete_password(self, service: str, username: str) -> None:
        raise self.exc


@pytest.mark.parametrize(
    ("exc", "what"),
    [
        (keyring.errors.KeyringLocked("locked"), "locked"),
        (keyring.errors.InitError("Failed to create the collection: Prompt dismissed.."),
         "locked"),
        (keyring.errors.NoKeyringError("No recommended backend was available."),
         "No OS keyring backend"),
        (keyring.errors.PasswordSetError("refused"), "refused the request"),
    ],
)
def test_locked_or_broken_keyring_maps_to_keyring_unavailable(exc: Exception, what: str) -> None:
    previous = keyring.get_keyring()
    keyring.set_keyring(_RaisingKeyring(exc))
    try:
        with pytest.raises(KeyringUnavailable) as err:
            secrets.put("default", SecretKind.SALESFORCE_REFRESH_TOKEN, REFRESH)
        assert what in str(err.value)
        _assert_how_to_fix(str(err.value))
        assert REFRESH not in str(err.value)
        ok, message = secrets.probe()
        assert not ok and what in message
    finally:
        keyring.set_keyring(previous)


def test_no_dbus_session_gives_the_fix_text_in_a_real_process(tmp_path: Path) -> None:
    """What a user on a headless box without a keyring sees: the real backend discovery,
    no D-Bus session, and the CLI saying how to fix it instead of writing a file."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("DBUS_SESSION_BUS_ADDRESS", "PYTHON_KEYRING_BACKEND")}
    env.update(HOME=str(tmp_path), XDG_CONFIG_HOME=str(tmp_path / "c"),
               XDG_DATA_HOME=str(tmp_path / "d"), XDG_STATE_HOME=str(tmp_path / "s"),
               DBUS_SESSION_BUS_ADDRESS="unix:path=" + str(tmp_path / "no-bus"))
    code = ("from lc_console import secrets\n"
            "try:\n"
            "    secrets.put('default', secrets.SecretKind.STRIPE_API_KEY, 'sk_test_abcdefgh12')\n"
            "except secrets.KeyringUnavailable as e:\n"
            "    print('UNAVAILABLE', e)\n")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         timeout=60, cwd="/tmp").stdout
    assert out.startswith("UNAVAILABLE")
    _assert_how_to_fix(out)
    leaked = [p for p in tmp_path.rglob("*") if p.is_file() and b"abcdefgh12" in p.read_bytes()]
    assert leaked == []
