"""Fixtures and helpers of the engine tests: an org with the LostChurn schema installed (by
the install service, once per session, then loaded from its saved state in each test, which
takes milliseconds), a profile connected to it and to the Stripe sandbox, and readers of
what the org holds.

Import the fixtures in a test module: `from engine_helpers import org, installed_org  # noqa`.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import keyring
import pytest
from install_helpers import connect

from lc_console import secrets, settings
from lc_console.sandbox.salesforce import SalesforceSandbox
from lc_console.services import install as install_service

PROFILE = "default"
SYNC_OBJECTS = ("Account", "Contact", "Opportunity", "LostChurn_Recovery__c", "Task")
# Fields that differ between two runs by construction (ids, audit times, auto numbers).
VOLATILE = {"Id", "CreatedDate", "LastModifiedDate", "SystemModstamp", "CreatedById",
            "LastModifiedById", "OwnerId", "Name_auto", "IsDeleted", "LastActivityDate",
            "LastReferencedDate", "LastViewedDate", "attributes"}


@pytest.fixture(scope="session")
def installed_org(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A saved org state with the schema installed by the product's install service."""
    from conftest import MemoryKeyring

    root = tmp_path_factory.mktemp("installed-org")
    certs = root / "certs"
    state = root / "org.json"
    with pytest.MonkeyPatch.context() as mp:
        for var in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME", "XDG_CACHE_HOME"):
            (root / var).mkdir()
            mp.setenv(var, str(root / var))
        previous = keyring.get_keyring()
        keyring.set_keyring(MemoryKeyring())
        try:
            with SalesforceSandbox(state_file=state, cert_dir=certs) as sandbox:
                target = connect(sandbox)
                result = install_service.install(target, poll_interval=0.05,
                                                 max_poll_interval=0.2)
                assert result.ok, result.lines()
        finally:
            keyring.set_keyring(previous)
    return {"state": state, "certs": certs}


@pytest.fixture
def org(installed_org: dict[str, Path], tmp_path: Path) -> Iterator[SalesforceSandbox]:
    """A running org with the LostChurn schema, connected as the `default` profile."""
    state = tmp_path / "org.json"
    shutil.copy(installed_org["state"], state)
    with SalesforceSandbox(state_file=state, cert_dir=installed_org["certs"],
                           save_interval=3600) as sandbox:
        connect(sandbox)
        yield sandbox


def connect_stripe(stripe_sandbox: Any, profile: str = PROFILE) -> None:
    """Store the sandbox's restricted key and its address, as `connect stripe` does."""
    current = settings.load(profile)
    current.stripe.api_base = stripe_sandbox.url
    current.stripe.account_id = "acct_sandbox"
    settings.save(profile, current)
    secrets.put(profile, secrets.SecretKind.STRIPE_API_KEY, stripe_sandbox.keys["restricted"])


def fast_settings(profile: str = PROFILE, **sync: Any) -> None:
    """Short windows and intervals for tests."""
    current = settings.load(profile)
    current.sync.poll_interval_seconds = sync.pop("poll_interval_seconds", 0.1)
    current.sync.batch_window_seconds = sync.pop("batch_window_seconds", 0.0)
    for name, value in sync.items():
        setattr(current.sync, name, value)
    settings.save(profile, current)


def snapshot(sandbox: SalesforceSandbox, objects: tuple[str, ...] = SYNC_OBJECTS
             ) -> dict[str, list[dict[str, Any]]]:
    """What the org holds, comparable across runs: ids replaced by the record's key."""
    ids: dict[str, str] = {}
    tables = {o: sandbox.records(o) for o in objects}
    for sobject, rows in tables.items():
        for row in rows:
            ids[str(row["Id"])] = f"{sobject}:{_key(sobject, row)}"
    out: dict[str, list[dict[str, Any]]] = {}
    for sobject, rows in tables.items():
        clean = []
        for row in rows:
            item = {}
            for name, value in row.items():
                if name in VOLATILE or (sobject == "LostChurn_Recovery__c" and name == "Name"):
                    continue
                if isinstance(value, str) and value in ids:
                    value = ids[value]
                item[name] = value
            clean.append(item)
        out[sobject] = sorted(clean, key=lambda r: repr(sorted(r.items(), key=str)))
    return out


def _key(sobject: str, row: dict[str, Any]) -> str:
    for name in ("LostChurn_Stripe_Customer_ID__c", "LostChurn_ID__c",
                 "LostChurn_Recovery_ID__c", "Recovery_ID__c"):
        if row.get(name):
            return str(row[name])
    if sobject == "Task":
        return str(row.get("Description") or "").rsplit("LostChurn ref: ", 1)[-1]
    return str(row.get("Email") or row.get("Name") or row["Id"])
