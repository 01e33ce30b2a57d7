"""Test isolation: every test gets its own config/data/log dirs and an in-memory keyring.

Tests marked `secret_service` use the real Secret Service that `make test` starts
(gnome-keyring under dbus-run-session, see tests/with-keyring.sh).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import keyring
import keyring.backend
import keyring.errors
import pytest


class MemoryKeyring(keyring.backend.KeyringBackend):
    """In-memory backend for unit tests (no D-Bus)."""

    priority = 1  # type: ignore[assignment]

    def __init__(self) -> None:
        super().__init__()
        self.store: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.store.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.store[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        try:
            del self.store[(service, username)]
        except KeyError:
            raise keyring.errors.PasswordDeleteError(username) from None


@pytest.fixture(autouse=True)
def isolated_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "xdg"
    for var, sub in (
        ("XDG_CONFIG_HOME", "config"),
        ("XDG_DATA_HOME", "data"),
        ("XDG_STATE_HOME", "state"),
        ("XDG_CACHE_HOME", "cache"),
    ):
        (root / sub).mkdir(parents=True)
        monkeypatch.setenv(var, str(root / sub))
    monkeypatch.delenv("LC_CONSOLE_PROFILE", raising=False)
    monkeypatch.delenv("NO_COLOR", raising=False)
    return root


@pytest.fixture(autouse=True)
def memory_keyring(request: pytest.FixtureRequest) -> Iterator[MemoryKeyring | None]:
    if request.node.get_closest_marker("secret_service"):
        yield None
        return
    previous = keyring.get_keyring()
    backend = MemoryKeyring()
    keyring.set_keyring(backend)
    yield backend
    keyring.set_keyring(previous)


@pytest.fixture
def secret_service() -> Iterator[keyring.backend.KeyringBackend]:
    """The real Secret Service started by tests/with-keyring.sh (`make test`)."""
    if not os.environ.get("LC_TEST_SECRET_SERVICE"):
        pytest.skip("needs the Secret Service that `make test` starts (tests/with-keyring.sh)")
    from keyring.backends import SecretService

    previous = keyring.get_keyring()
    backend = SecretService.Keyring()
    keyring.set_keyring(backend)
    yield backend
    keyring.set_keyring(previous)


@pytest.fixture
def salesforce_sandbox() -> Iterator[object]:
    """A running local Salesforce org emulator (lc_console.sandbox.salesforce) on a free port;
    its CA lives under the test's XDG_STATE_HOME."""
    from lc_console.sandbox.salesforce import SalesforceSandbox

    with SalesforceSandbox() as sandbox:
        yield sandbox


@pytest.fixture
def stripe_sandbox() -> Iterator[object]:
    """A running local Stripe account emulator (lc_console.sandbox.stripe), `small` scenario,
    seed 1, on a free port; `.url`, `.keys["secret" | "restricted" | "restricted_missing"]`."""
    from lc_console.sandbox.stripe import StripeSandbox

    with StripeSandbox(scenario="small", seed=1) as sandbox:
        yield sandbox
