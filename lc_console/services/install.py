"""Install, verify, repair and remove the console's schema: the facade both faces call.

plan()            what exists vs the manifest: present / missing / different / conflict
install()         checks Customize Application and conflicts before anything changes, then
                  one Metadata API deploy (checkOnly validation first) of the missing and
                  compatible-changed components, assigns the permission set, verifies
verify()          describe as the connected user: every field visible and writable
remove_preview()  how much data removal deletes (SOQL COUNT() queries)
remove()          destructive deploy of everything the console installed

The org is reached through a Target: a function returning a ready simple_salesforce client
plus who is connected. `target_for_profile` builds it from the token manager; tests build
it from a sandbox login.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, TypeVar

from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceError, SalesforceMalformedRequest

from lc_console import settings
from lc_console.salesforce import metadata, schema_observe, tokens
from lc_console.salesforce.metadata import ComponentFailure, DeployStatus, MetadataError
from lc_console.salesforce.schema_diff import Plan, build_plan
from lc_console.salesforce.schema_manifest import (
    DEFAULT_RECOVERY_STAGES,
    PERMISSION_SET,
    RECOVERY_OBJECT,
    ComponentType,
    FieldKind,
    Manifest,
    ObjectKind,
    build_manifest,
)

T = TypeVar("T")
log = logging.getLogger(__name__)

SETUP_PATH = "Setup > Permission Sets > LostChurn Integration > Manage Assignments"


# --- the seam to the connection ---------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """The connected org: `client()` returns a ready simple_salesforce.Salesforce."""

    client: Callable[[], Salesforce]
    user_id: str
    username: str = ""
    org_name: str = ""
    is_sandbox: bool = False
    # Runs fn(client) and, when the session expired in a way the HTTP layer could not fix
    # (SOAP faults), refreshes and runs it once more. Default: fn(client()).
    runner: Callable[[Callable[[Salesforce], Any]], Any] | None = None
    recovery_stages: tuple[str, ...] = DEFAULT_RECOVERY_STAGES

    @property
    def user_label(self) -> str:
        return self.username or "the connected user"

    def run(self, fn: Callable[[Salesforce], T]) -> T:
        if self.runner is not None:
            result: T = self.runner(fn)
            return result
        return fn(self.client())

    def manifest(self) -> Manifest:
        return build_manifest(self.recovery_stages)


def target_for_profile(profile: str) -> Target:
    manager = tokens.manager_for(profile)
    info = manager.info()
    if not info.instance_url:
        raise tokens.NotConnected("no org is connected for this profile")
    if info.expired:
        raise tokens.ConnectionExpired("invalid_grant", "marked expired by an earlier refresh")
    current = settings.load(profile)
    stages = tuple(current.rules.stage_mapping.values()) or DEFAULT_RECOVERY_STAGES
    client_cache: dict[str, Salesforce] = {}

    def client() -> Salesforce:
        # One client per Target (simple-salesforce clients are not thread-safe; a Target
        # is used by one worker at a time).
        if "c" not in client_cache:
            client_cache["c"] = manager.salesforce()
        return client_cache["c"]

    def runner(fn: Callable[[Salesforce], Any]) -> Any:
        return manager.call(fn, client())

    return Target(client=client, user_id=info.user_id, username=info.username,
                  org_name=current.salesforce.org_name, is_sandbox=current.salesforce.is_sandbox,
                  runner=runner, recovery_stages=stages)


def count(n: int, word: str, plural: str = "") -> str:
    """'1 record', '2 records', '1,200 values'."""
    return f"{n:,} {word if n == 1 else (plural or word + 's')}"


# --- progress -----------------------------------------------------------------------------


class Phase(StrEnum):
    PLAN = "plan"
    VALIDATE = "validate"
    DEPLOY = "deploy"
    ASSIGN = "assign"
    VERIFY = "verify"
    REMOVE = "remove"


@dataclass(frozen=True)
class Progress:
    phase: Phase
    message: str
    status: DeployStatus | None = None
    plan: Plan | None = None  # sent once, when the plan is known and nothing changed yet

    @property
    def fraction(self) -> float | None:
        s = self.status
        if s is None or not s.total:
            return None
        return min(1.0, (s.deployed + s.errors) / s.total)


ProgressFn = Callable[[Progress], None]


def _noop(_: Progress) -> None:
    pass


PHASE_VERBS = {Phase.VALIDATE: "Validating", Phase.DEPLOY: "Deploying", Phase.REMOVE: "Removing"}


def deploy_progress_text(phase: Phase, s: DeployStatus) -> str:
    verb = PHASE_VERBS.get(phase, "Deploying")
    counts = f"{s.deployed}/{s.total} components" if s.total else "queued"
    if s.errors:
        counts += f", {s.errors} errors"
    detail = f" ({s.state_detail})" if s.state_detail else ""
    return f"{verb}: {s.status or 'Pending'}, {counts}{detail}"


# --- verify -------------------------------------------------------------------------------


@dataclass
class VerifyResult:
    checked: int
    issues: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.issues


def _verify(sf: Salesforce, target: Target, manifest: Manifest) -> VerifyResult:
    result = VerifyResult(checked=0)
    who = target.user_label
    for obj in manifest.objects:
        d = schema_observe.describe_object(sf, obj.name)
        if d is None:
            if obj.owned:
                result.issues.append(
                    f"{obj.name} is not visible to {who}: assign the {PERMISSION_SET} "
                    f"permission set ({SETUP_PATH}) or run `lc-console install` to repair.")
            continue
        if obj.owned:
            result.checked += 1
            if not d.get("createable"):
                result.issues.append(
                    f"{who} cannot create {obj.name} records: the {PERMISSION_SET} permission "
                    "set grants Create; check it is assigned.")
        fields = {f["name"]: f for f in d.get("fields", [])}
        for spec in manifest.fields_of(obj.name):
            result.checked += 1
            f = fields.get(spec.name)
            if f is None:
                result.issues.append(
                    f"{spec.full_name} is not visible to {who}: field-level security hides it. "
                    f"Assign the {PERMISSION_SET} permission set ({SETUP_PATH}) or run "
                    "`lc-console install` to repair.")
            elif spec.on_event and not f.get("createable"):
                result.issues.append(f"{spec.full_name} cannot be published by {who}.")
            elif not spec.on_event and not f.get("updateable"):
                result.issues.append(
                    f"{spec.full_name} is read-only for {who}: give Edit on it in the "
                    f"{PERMISSION_SET} permission set (Field Permissions) and check the "
                    "profile does not make it read-only.")
        if obj.name == "Opportunity":
            infos = {rt.get("developerName"): rt for rt in d.get("recordTypeInfos") or []}
            for rt in manifest.record_types:
                result.checked += 1
                info = infos.get(rt.name)
                if info is None:
                    result.issues.append(f"Record type {rt.full_name} does not exist.")
                elif not info.get("available"):
                    result.issues.append(
                        f"Record type {rt.full_name} is not available to {who}: the "
                        f"{PERMISSION_SET} permission set makes it visible; check it is assigned.")
    return result


def verify(target: Target) -> VerifyResult:
    return target.run(lambda sf: _verify(sf, target, target.manifest()))


# --- plan ---------------------------------------------------------------------------------


def _plan(sf: Salesforce, target: Target, manifest: Manifest) -> Plan:
    observed = schema_observe.observe(sf, manifest, target.user_id)
    return build_plan(manifest, observed, target.username or "you")


def plan(target: Target) -> Plan:
    return target.run(lambda sf: _plan(sf, target, target.manifest()))


# --- install ------------------------------------------------------------------------------


class Outcome(StrEnum):
    INSTALLED = "installed"
    NOTHING_TO_CHANGE = "nothing_to_change"
    NO_PERMISSION = "no_permission"
    CONFLICT = "conflict"
    VALIDATION_FAILED = "validation_failed"
    DEPLOY_FAILED = "deploy_failed"
    VERIFY_FAILED = "verify_failed"
    ERROR = "error"


@dataclass
class InstallResult:
    outcome: Outcome
    message: str
    plan: Plan | None = None
    failures: list[ComponentFailure] = field(default_factory=list)
    issues: list[str] = field(default_factory=list)  # conflicts or verify findings
    deploy_id: str = ""
    assigned: bool = False

    @property
    def ok(self) -> bool:
        return self.outcome in (Outcome.INSTALLED, Outcome.NOTHING_TO_CHANGE)

    def lines(self) -> list[str]:
        """What both faces print: the message, then one line per failure or issue."""
        return [self.message] + [f.line_text() for f in self.failures] + self.issues

    def to_dict(self) -> dict[str, Any]:
        return {
            "outcome": self.outcome.value, "ok": self.ok, "message": self.message,
            "failures": [{"type": f.component_type, "name": f.full_name, "problem": f.problem,
                          "file": f.file_name} for f in self.failures],
            "issues": self.issues, "deploy_id": self.deploy_id, "assigned": self.assigned,
            "plan": plan_to_dict(self.plan) if self.plan else None,
        }


def no_permission_message(who: str, action: str = "install the LostChurn objects and fields") -> str:
    return (f"{who} lacks the Customize Application permission, which is needed to {action}. "
            "Ask a Salesforce admin to grant it (profile or a permission set), or connect as an "
            "admin. Nothing was changed.")


def _deploy(sf: Salesforce, target: Target, zip_bytes: bytes, progress: ProgressFn,
            poll: tuple[float, float], *, ignore_warnings: bool = False,
            phases: tuple[Phase, Phase] = (Phase.VALIDATE, Phase.DEPLOY),
            ) -> tuple[DeployStatus, Phase]:
    """checkOnly validation, then the real deploy. Returns the last status and its phase."""
    status: DeployStatus | None = None
    for phase in phases:
        check_only = phase is Phase.VALIDATE

        def report(s: DeployStatus, phase: Phase = phase) -> None:
            progress(Progress(phase, deploy_progress_text(phase, s), s))

        progress(Progress(phase, f"{PHASE_VERBS.get(phase, 'Deploying')}: submitted"))
        status = metadata.deploy_and_wait(sf, zip_bytes, check_only=check_only,
                                          sandbox=target.is_sandbox, on_progress=report,
                                          poll_interval=poll[0], max_poll_interval=poll[1],
                                          ignore_warnings=ignore_warnings)
        if not status.success:
            return status, phase
    assert status is not None
    return status, phases[-1]


def _failures(status: DeployStatus) -> list[ComponentFailure]:
    failures = list(status.failures)
    if not failures and status.error_message:
        failures.append(ComponentFailure("", "", status.error_message))
    if not failures:
        failures.append(ComponentFailure("", "", f"deploy ended with status {status.status}"))
    return failures


def assign_permission_set(sf: Salesforce, user_id: str) -> bool:
    """Assign LostChurn_Integration to the user; False when it was already assigned."""
    if schema_observe.permission_set_assignment_ids(sf, user_id):
        return False
    ps = sf.query(f"SELECT Id FROM PermissionSet WHERE Name = '{PERMISSION_SET}'")
    if not ps.get("records"):
        raise MetadataError(f"Permission set {PERMISSION_SET} is not in the org after the deploy")
    try:
        sf.PermissionSetAssignment.create(
            {"AssigneeId": user_id, "PermissionSetId": ps["records"][0]["Id"]})
    except SalesforceMalformedRequest as exc:
        if _error_code(exc) == "DUPLICATE_VALUE":
            return False
        raise
    return True


def _error_code(exc: SalesforceError) -> str:
    content = exc.content
    if isinstance(content, list) and content and isinstance(content[0], dict):
        return str(content[0].get("errorCode") or "")
    return ""


def _install(sf: Salesforce, target: Target, progress: ProgressFn,
             poll: tuple[float, float]) -> InstallResult:
    manifest = target.manifest()
    progress(Progress(Phase.PLAN, "Reading the org's schema"))
    the_plan = _plan(sf, target, manifest)
    progress(Progress(Phase.PLAN, the_plan.summary(), plan=the_plan))
    who = target.user_label
    needs_deploy = not the_plan.selection.is_empty()

    if needs_deploy and not the_plan.can_customize:
        return InstallResult(Outcome.NO_PERMISSION, no_permission_message(who), the_plan)
    if the_plan.conflicts:
        n = len(the_plan.conflicts)
        return InstallResult(
            Outcome.CONFLICT,
            f"Install stopped: {count(n, 'component')} conflict{'s' if n == 1 else ''} with what the "
            "console needs, and the console never changes them by itself. Decide what to do "
            "with each (below), then run install again. Nothing was changed.",
            the_plan, issues=[c.detail for c in the_plan.conflicts])

    result = InstallResult(Outcome.INSTALLED, "", the_plan)
    if needs_deploy:
        files = metadata.deploy_files(manifest, the_plan.selection, sf.sf_version)
        status, phase = _deploy(sf, target, metadata.build_zip(files), progress, poll)
        result.deploy_id = status.id
        if not status.success:
            failures = _failures(status)
            if phase is Phase.VALIDATE:
                return InstallResult(
                    Outcome.VALIDATION_FAILED,
                    f"Validation failed: Salesforce rejected {count(len(failures), 'component')}. "
                    "Nothing was changed.",
                    the_plan, failures, deploy_id=status.id)
            return InstallResult(
                Outcome.DEPLOY_FAILED,
                f"Deploy failed and was rolled back ({count(len(failures), 'component error')}). "
                "Nothing was changed.",
                the_plan, failures, deploy_id=status.id)

    if the_plan.assign_permission_set:
        progress(Progress(Phase.ASSIGN, f"Assigning {PERMISSION_SET} to {who}"))
        result.assigned = assign_permission_set(sf, target.user_id)

    progress(Progress(Phase.VERIFY, "Verifying field access"))
    checked = _verify(sf, target, manifest)
    if not checked.ok:
        result.outcome = Outcome.VERIFY_FAILED
        result.issues = checked.issues
        result.message = (f"Installed, but {count(len(checked.issues), 'check')} failed: the console "
                          "cannot write these yet.")
        return result
    if not needs_deploy and not result.assigned:
        result.outcome = Outcome.NOTHING_TO_CHANGE
        result.message = (f"Nothing to change: every component is installed and {who} can "
                          f"write all {checked.checked} checked fields and objects.")
        return result
    created = sum(1 for i in the_plan.changes if i.action == "create")
    updated = sum(1 for i in the_plan.changes if i.action == "update")
    parts = []
    if created:
        parts.append(f"{created} created")
    if updated:
        parts.append(f"{updated} updated")
    if result.assigned:
        parts.append(f"{PERMISSION_SET} assigned to {who}")
    result.message = ("Installed: " + ", ".join(parts) + f". Verified: {who} can write all "
                      f"{checked.checked} checked fields and objects.")
    return result


def install(target: Target, on_progress: ProgressFn | None = None,
            poll_interval: float = 1.0, max_poll_interval: float = 5.0) -> InstallResult:
    """Poll checkDeployStatus every poll_interval s, slowing to max_poll_interval."""
    progress = on_progress or _noop
    poll = (poll_interval, max_poll_interval)
    try:
        result: InstallResult = target.run(lambda sf: _install(sf, target, progress, poll))
        return result
    except Exception as exc:
        return InstallResult(Outcome.ERROR, error_message(exc))


# --- remove -------------------------------------------------------------------------------


@dataclass
class RemovePreview:
    org_name: str
    records: int  # LostChurn_Recovery__c records
    populated: dict[str, int]  # "Contact.LostChurn_MRR__c" -> records holding a value
    unknown: list[str]  # what could not be counted
    opportunities_with_record_types: int
    deletes: dict[str, list[str]]  # Metadata type -> full names present in the org
    deactivates: list[str]  # record types (Salesforce does not delete them through the API)
    can_customize: bool = True

    @property
    def populated_values(self) -> int:
        return sum(self.populated.values())

    @property
    def populated_fields(self) -> int:
        return sum(1 for v in self.populated.values() if v)

    @property
    def component_count(self) -> int:
        return sum(len(v) for v in self.deletes.values())

    @property
    def nothing_installed(self) -> bool:
        return self.component_count == 0 and not self.deactivates

    def summary(self) -> str:
        if self.nothing_installed:
            return "Nothing to remove: no LostChurn component is installed in this org."
        records = count(self.records, f"{RECOVERY_OBJECT} record")
        values = (f"{count(self.populated_values, 'value')} in "
                  f"{count(self.populated_fields, 'populated LostChurn field')} on Contact, "
                  "Account and Opportunity")
        text = (f"Removal deletes {records} and {values}, with {self.component_count} "
                "components. This cannot be undone.")
        if self.unknown:
            text += f" Could not count: {', '.join(self.unknown)}."
        return text

    def lines(self) -> list[str]:
        out = [self.summary()]
        for name, n in sorted(self.populated.items()):
            if n:
                out.append(f"  {name}: {count(n, 'value')}")
        if self.deactivates:
            out.append(record_types_kept(self.deactivates, self.opportunities_with_record_types))
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"org_name": self.org_name, "records": self.records,
                "populated": self.populated, "populated_values": self.populated_values,
                "populated_fields": self.populated_fields, "unknown": self.unknown,
                "opportunities_with_record_types": self.opportunities_with_record_types,
                "deletes": self.deletes, "deactivates": self.deactivates,
                "summary": self.summary()}


def record_types_kept(names: list[str], opportunities: int) -> str:
    used = (f" ({opportunities:,} opportunities use them and keep them)" if opportunities
            else "")
    return (f"Record types {' and '.join(names)} are deactivated, not deleted{used}: Salesforce "
            "deletes record types only in Setup (Object Manager > Opportunity > Record Types), "
            "then their sales processes.")


def _count(sf: Salesforce, soql: str) -> int:
    return int(sf.query(soql).get("totalSize", 0))


def _present_components(manifest: Manifest, observed: schema_observe.Observed) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    objects = [o.name for o in manifest.owned_objects()
               if observed.objects.get(o.name) and observed.objects[o.name].exists]
    fields = [f.full_name for f in manifest.fields
              if manifest.object(f.sobject).kind is ObjectKind.STANDARD
              and observed.field(f.sobject, f.name)]
    if objects:
        out[ComponentType.CUSTOM_OBJECT.value] = objects
    if fields:
        out[ComponentType.CUSTOM_FIELD.value] = fields
    if observed.permission_set is not None:
        out[ComponentType.PERMISSION_SET.value] = [manifest.permission_set.name]
    return out


def _remove_preview(sf: Salesforce, target: Target, manifest: Manifest) -> RemovePreview:
    observed = schema_observe.observe(sf, manifest, target.user_id)
    records = 0
    unknown: list[str] = []
    rec = observed.objects.get(RECOVERY_OBJECT)
    if rec and rec.exists:
        try:
            records = _count(sf, f"SELECT COUNT() FROM {RECOVERY_OBJECT}")
        except SalesforceError:
            unknown.append(f"{RECOVERY_OBJECT} records")
    populated: dict[str, int] = {}
    for spec in manifest.fields:
        if manifest.object(spec.sobject).kind is not ObjectKind.STANDARD:
            continue
        if observed.field(spec.sobject, spec.name) is None:
            continue
        condition = "= true" if spec.kind is FieldKind.CHECKBOX else "!= null"
        try:
            populated[spec.full_name] = _count(
                sf, f"SELECT COUNT() FROM {spec.sobject} WHERE {spec.name} {condition}")
        except SalesforceError:
            unknown.append(spec.full_name)  # e.g. not visible to this user
    active_rts = [r.full_name for r in manifest.record_types
                  if (seen := observed.record_types.get(r.full_name)) and seen.active]
    opps = 0
    if active_rts:
        names = ", ".join(f"'{r.name}'" for r in manifest.record_types)
        try:
            opps = _count(sf, "SELECT COUNT() FROM Opportunity WHERE RecordType.DeveloperName "
                              f"IN ({names})")
        except SalesforceError:
            unknown.append("opportunities using LostChurn record types")
    return RemovePreview(
        org_name=target.org_name, records=records, populated=populated, unknown=unknown,
        opportunities_with_record_types=opps, deletes=_present_components(manifest, observed),
        deactivates=active_rts, can_customize=observed.can_customize)


def remove_preview(target: Target) -> RemovePreview:
    return target.run(lambda sf: _remove_preview(sf, target, target.manifest()))


@dataclass
class RemoveResult:
    ok: bool
    message: str
    preview: RemovePreview | None = None
    failures: list[ComponentFailure] = field(default_factory=list)
    deploy_id: str = ""
    unassigned: int = 0
    notes: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        return [self.message] + [f.line_text() for f in self.failures] + self.notes

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "message": self.message, "deploy_id": self.deploy_id,
                "unassigned": self.unassigned, "notes": self.notes,
                "failures": [{"type": f.component_type, "name": f.full_name, "problem": f.problem,
                              "file": f.file_name} for f in self.failures],
                "preview": self.preview.to_dict() if self.preview else None}


def _remove(sf: Salesforce, target: Target, progress: ProgressFn, poll: tuple[float, float]) -> RemoveResult:
    manifest = target.manifest()
    progress(Progress(Phase.PLAN, "Reading what is installed"))
    preview = _remove_preview(sf, target, manifest)
    progress(Progress(Phase.PLAN, preview.summary()))
    if preview.nothing_installed:
        return RemoveResult(True, preview.summary(), preview)
    if not preview.can_customize:
        return RemoveResult(False, no_permission_message(
            target.user_label, "remove the LostChurn objects and fields"), preview)
    # An assigned permission set cannot be deleted: remove the assignments first.
    unassigned = 0
    if ComponentType.PERMISSION_SET.value in preview.deletes:
        ids = schema_observe.permission_set_assignment_ids(sf)
        if ids:
            progress(Progress(Phase.ASSIGN,
                              f"Removing {count(len(ids), PERMISSION_SET + ' assignment')}"))
        for psa_id in ids:
            sf.PermissionSetAssignment.delete(psa_id)
            unassigned += 1
    deactivate = [r for r in manifest.record_types if r.full_name in preview.deactivates]
    files = metadata.destructive_files(manifest, preview.deletes, sf.sf_version, deactivate)
    status, _phase = _deploy(sf, target, metadata.build_zip(files), progress, poll,
                             ignore_warnings=True, phases=(Phase.REMOVE,))
    if not status.success:
        failures = _failures(status)
        return RemoveResult(False, f"Removal failed and was rolled back "
                                   f"({count(len(failures), 'component error')}); "
                                   "nothing was deleted.",
                            preview, failures, status.id, unassigned)
    notes = ([record_types_kept(preview.deactivates, preview.opportunities_with_record_types)]
             if preview.deactivates else [])
    return RemoveResult(
        True, f"Removed {count(preview.component_count, 'component')}: "
              f"{count(preview.records, RECOVERY_OBJECT + ' record')} and "
              f"{count(preview.populated_values, 'field value')} deleted.",
        preview, [], status.id, unassigned, notes)


def remove(target: Target, on_progress: ProgressFn | None = None,
           poll_interval: float = 1.0, max_poll_interval: float = 5.0) -> RemoveResult:
    progress = on_progress or _noop
    poll = (poll_interval, max_poll_interval)
    try:
        result: RemoveResult = target.run(lambda sf: _remove(sf, target, progress, poll))
        return result
    except Exception as exc:
        return RemoveResult(False, error_message(exc))


# --- errors -------------------------------------------------------------------------------


def error_message(exc: BaseException) -> str:
    """The words both faces show when an operation could not run. Metadata API faults are
    ours; everything else goes through the connect service's one error-to-message mapping."""
    from lc_console.services.connect import describe_error

    if isinstance(exc, MetadataError):
        code = f" ({exc.code})" if exc.code else ""
        return f"The Metadata API refused the request{code}: {exc}"
    known = (SalesforceError, OSError, tokens.NotConnected, tokens.ConnectionExpired)
    if not isinstance(exc, known):
        log.error("install operation failed", exc_info=exc)
    return describe_error(exc).text()


def is_not_connected(exc: BaseException) -> bool:
    return isinstance(exc, tokens.NotConnected | tokens.ConnectionExpired)


# --- doctor -------------------------------------------------------------------------------


def schema_check(profile: str) -> Any:
    """The doctor's "installed schema" check (services/doctor.py CHECKS)."""
    from lc_console.services.doctor import Check

    name = "installed schema"
    try:
        target = target_for_profile(profile)
    except tokens.NotConnected:
        return Check(name, True, "Salesforce is not connected yet; install runs after connecting.",
                     level="info")
    except Exception as exc:
        return Check(name, False, error_message(exc).splitlines()[0],
                     "Reconnect with `lc-console connect salesforce`.")
    try:
        p = plan(target)
    except Exception as exc:
        return Check(name, False, "Could not read the org's schema: "
                     + " ".join(error_message(exc).splitlines()),
                     "Check the connection with `lc-console status`, then retry.")
    if p.nothing_to_change:
        return Check(name, True, f"all {len(p.items)} LostChurn components installed, "
                                 "permission set assigned")
    if p.conflicts:
        names = ", ".join(c.name for c in p.conflicts[:3])
        return Check(name, False, f"{len(p.conflicts)} conflict(s): {names}",
                     "Run `lc-console install --plan` to see what to decide for each.")
    return Check(name, False, p.summary(), "Run `lc-console install` to install or repair.")


# --- serialisation ------------------------------------------------------------------------


def plan_to_dict(p: Plan) -> dict[str, Any]:
    return {
        "summary": p.summary(), "counts": p.counts(), "nothing_to_change": p.nothing_to_change,
        "can_customize": p.can_customize, "metadata_error": p.metadata_error,
        "conflicts": len(p.conflicts), "items": [i.to_dict() for i in p.items],
    }
