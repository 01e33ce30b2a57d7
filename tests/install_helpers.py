"""Helpers for the install tests: a profile connected to the Salesforce sandbox the way
`lc-console connect salesforce` leaves it (settings + keyring), and values for every field."""

from __future__ import annotations

import dataclasses
from typing import Any

from simple_salesforce import Salesforce

from lc_console import net, secrets, settings
from lc_console.salesforce import metadata, tokens
from lc_console.salesforce.schema_manifest import MANIFEST, FieldKind, FieldSpec
from lc_console.sandbox.salesforce import metadata_api
from lc_console.services import install as svc

PROFILE = "default"
FAST = {"poll_interval": 0.05, "max_poll_interval": 0.2}


def connect(sandbox: Any, user: Any = None, profile: str = PROFILE) -> svc.Target:
    """Store tokens for `user` (admin by default) and the org in `profile`, as a finished
    OAuth sign-in does; return the install Target built by the product's own code."""
    user = user or sandbox.admin
    org = sandbox.org
    # Deploys queue 0.05 s and run 0.4 s: long enough to poll InProgress several times.
    metadata_api.configure(sandbox.app, queue_seconds=0.05, run_seconds=0.4)
    grant = org.sessions.new_grant(user.id, sandbox.client_id, ("api", "refresh_token"))
    session = org.sessions.issue(user.id, sandbox.client_id, ("api", "refresh_token"),
                                 refresh_token=grant.refresh_token)
    current = settings.load(profile)
    current.tls.ca_bundle = sandbox.ca_file
    sf = current.salesforce
    sf.environment = "custom"
    sf.login_url = sandbox.url
    sf.client_id = sandbox.client_id
    sf.instance_url = sandbox.url
    sf.org_id = org.org_id
    sf.org_name = "LostChurn Sandbox Org"
    sf.user_id = user.id
    sf.username = user.username
    settings.save(profile, current)
    secrets.put(profile, secrets.SecretKind.SALESFORCE_REFRESH_TOKEN, grant.refresh_token)
    secrets.put(profile, secrets.SecretKind.SALESFORCE_ACCESS_TOKEN, session.token)
    tokens._managers.pop(profile, None)  # a fresh manager: no token cached from another org
    return svc.target_for_profile(profile)


def admin_client(sandbox: Any) -> Salesforce:
    """A second, independent client (the admin acting in Setup while the console works)."""
    return Salesforce(instance_url=sandbox.url, session_id=sandbox.login(sandbox.admin),
                      version="62.0", session=net.requests_session(sandbox.ca_file))


def deploy_specs(sf: Salesforce, fields: list[FieldSpec], whole_objects: set[str] = frozenset()) -> None:  # type: ignore[assignment]
    """Deploy some fields (possibly not as the manifest wants them), as an admin might have."""
    sel = metadata.Selection(whole_objects=set(whole_objects), fields=fields)
    zip_bytes = metadata.build_zip(metadata.deploy_files(MANIFEST, sel, "62.0"))
    status = metadata.deploy_and_wait(sf, zip_bytes, check_only=False, sandbox=True,
                                      poll_interval=0.05, max_poll_interval=0.2)
    assert status.success, [f.line_text() for f in status.failures]


def field_as(full_name: str, **changes: Any) -> FieldSpec:
    return dataclasses.replace(MANIFEST.field(full_name), **changes)


def sample_value(spec: FieldSpec, ids: dict[str, str]) -> Any:
    kind = spec.kind
    if kind is FieldKind.TEXT:
        return ("v-" + spec.name)[: spec.length]
    if kind is FieldKind.PICKLIST:
        return spec.values[-1].api_name
    if kind is FieldKind.NUMBER:
        return 7
    if kind is FieldKind.CURRENCY:
        return 1234.56
    if kind is FieldKind.DATETIME:
        return "2025-03-01T10:00:00.000+0000"
    if kind is FieldKind.DATE:
        return "2025-03-01"
    if kind is FieldKind.CHECKBOX:
        return True
    return ids[spec.reference_to]


def values_for(sobject: str, ids: dict[str, str]) -> dict[str, Any]:
    return {f.name: sample_value(f, ids) for f in MANIFEST.fields_of(sobject)}


def deploy_requests(sandbox: Any) -> list[dict[str, Any]]:
    return [r for r in sandbox.requests() if r["path"].rstrip("/").endswith("deployRequest")]
