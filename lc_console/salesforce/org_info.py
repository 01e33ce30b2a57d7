"""What the console learns about an org right after connecting, and what the user may do.

Org: Id, Name, edition (Organization.OrganizationType), Production or Sandbox
(Organization.IsSandbox; a sandbox with a TrialExpirationDate is a scratch org), instance.
User: username and name. API: the version the console uses, the newest the org offers, the
daily API limit and usage (/limits, DailyApiRequests). Permissions: API Enabled (every call
needs it) and Customize Application (installing the custom objects needs it), checked through
PermissionSetAssignment, which covers the profile and the permission sets in one query.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceError
from simple_salesforce.format import format_soql


@dataclass(frozen=True)
class PermissionCheck:
    label: str  # as shown in Setup
    field: str  # PermissionSet field
    needed_for: str
    granted: bool | None  # None: could not be checked
    detail: str = ""


# (label in Setup, PermissionSet field, what needs it)
PERMISSIONS: tuple[tuple[str, str, str], ...] = (
    ("API Enabled", "PermissionsApiEnabled", "every call the console makes"),
    ("Customize Application", "PermissionsCustomizeApplication",
     "installing the LostChurn objects and fields"),
)


@dataclass(frozen=True)
class OrgInfo:
    org_id: str
    org_name: str
    edition: str
    is_sandbox: bool
    is_scratch: bool
    instance_name: str
    user_id: str
    username: str
    user_display_name: str
    api_version: str
    latest_api_version: str
    api_limit: int | None
    api_used: int | None
    limits_note: str = ""
    permissions: list[PermissionCheck] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def kind(self) -> str:
        if self.is_scratch:
            return "Scratch org"
        return "Sandbox" if self.is_sandbox else "Production"

    @property
    def missing_permissions(self) -> list[PermissionCheck]:
        return [p for p in self.permissions if p.granted is False]

    def api_usage_text(self) -> str:
        if self.api_limit is None or self.api_used is None:
            return self.limits_note or "unknown"
        pct = 100 * self.api_used / self.api_limit if self.api_limit else 0
        return f"{self.api_used:,} of {self.api_limit:,} requests today ({pct:.0f}%)"


def _error_code(exc: SalesforceError) -> str:
    content = exc.content
    if isinstance(content, list) and content and isinstance(content[0], dict):
        return str(content[0].get("errorCode") or "")
    return ""


def _error_message(exc: SalesforceError) -> str:
    content = exc.content
    if isinstance(content, list) and content and isinstance(content[0], dict):
        return str(content[0].get("message") or "")
    return str(content)[:200]


def _permission(sf: Salesforce, user_id: str, label: str, fieldname: str,
                needed_for: str) -> PermissionCheck:
    soql = format_soql(
        "SELECT Id, PermissionSet.Name FROM PermissionSetAssignment "
        "WHERE AssigneeId = {} AND PermissionSet." + fieldname + " = true LIMIT 1", user_id)
    try:
        result = sf.query(soql)
    except SalesforceError as exc:
        code = _error_code(exc)
        return PermissionCheck(label, fieldname, needed_for, None,
                               f"could not be checked ({code or exc.status}: "
                               f"{_error_message(exc)}); the user may lack View Setup and "
                               "Configuration")
    granted = bool(result.get("records"))
    detail = "granted" if granted else (
        f"{needed_for} needs it. In Setup, add '{label}' to the user's profile or assign a "
        "permission set that has it.")
    return PermissionCheck(label, fieldname, needed_for, granted, detail)


def _version_key(v: str) -> tuple[int, ...]:
    return tuple(int(p) for p in v.split(".") if p.isdigit())


def _latest_version(sf: Salesforce) -> str:
    resp = sf.session.get(f"https://{sf.sf_instance}/services/data/", headers=sf.headers,
                          timeout=30)
    resp.raise_for_status()
    versions = [str(v.get("version")) for v in resp.json() if isinstance(v, dict)]
    return max(versions, key=_version_key) if versions else ""


def _limits(sf: Salesforce) -> tuple[int | None, int | None, str]:
    try:
        data: Any = sf.restful("limits/")
    except SalesforceError as exc:
        if exc.status == 403:
            return None, None, ("unknown: reading /limits needs the View Setup and "
                                "Configuration permission")
        return None, None, f"unknown ({_error_code(exc) or exc.status})"
    daily = (data or {}).get("DailyApiRequests") or {}
    try:
        limit = int(daily["Max"])
        used = limit - int(daily["Remaining"])
    except (KeyError, TypeError, ValueError):
        return None, None, "unknown: /limits has no DailyApiRequests"
    return limit, used, ""


def collect(sf: Salesforce, user_id: str, api_version: str,
            call: Callable[[Callable[[Salesforce], Any]], Any] | None = None) -> OrgInfo:
    """Ask the org. `call` wraps each operation (TokenManager.call: refresh on expiry)."""
    run = call or (lambda fn: fn(sf))
    org_rows = run(lambda c: c.query(
        "SELECT Id, Name, IsSandbox, OrganizationType, InstanceName, TrialExpirationDate "
        "FROM Organization"))["records"]
    org = org_rows[0] if org_rows else {}
    user_rows = run(lambda c: c.query(format_soql(
        "SELECT Id, Username, Name FROM User WHERE Id = {}", user_id)))["records"]
    user = user_rows[0] if user_rows else {}
    latest = run(_latest_version)
    limit, used, note = run(_limits)
    perms = [run(lambda c, p=p: _permission(c, user_id, *p)) for p in PERMISSIONS]
    warnings = []
    if latest and _version_key(api_version) > _version_key(latest):
        warnings.append(f"The console is set to API v{api_version} but the org offers at most "
                        f"v{latest}: run `lc-console config set salesforce.api_version {latest}`.")
    if limit is not None and used is not None and limit and used / limit >= 0.8:
        warnings.append(f"The org has used {used:,} of its {limit:,} daily API requests; the "
                        "sync throttles itself near the limit.")
    is_sandbox = bool(org.get("IsSandbox"))
    return OrgInfo(
        org_id=str(org.get("Id") or ""),
        org_name=str(org.get("Name") or ""),
        edition=str(org.get("OrganizationType") or ""),
        is_sandbox=is_sandbox,
        is_scratch=is_sandbox and bool(org.get("TrialExpirationDate")),
        instance_name=str(org.get("InstanceName") or ""),
        user_id=user_id,
        username=str(user.get("Username") or ""),
        user_display_name=str(user.get("Name") or ""),
        api_version=api_version,
        latest_api_version=latest,
        api_limit=limit,
        api_used=used,
        limits_note=note,
        permissions=perms,
        warnings=warnings,
    )
