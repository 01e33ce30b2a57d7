"""Compare the manifest with what the org holds: the install plan (pure, no I/O).

Each component is present, missing, different (a compatible change the deploy makes:
a longer text, a wider number, extra picklist values, a missing flag or grant) or a conflict
(another type, a formula, a lookup to another object, a Name field that is not an auto
number): conflicts are never changed by the console, the admin decides.
Widening never narrows what the org has: a longer text or extra picklist values are kept.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from enum import StrEnum

from lc_console.salesforce.metadata import Selection
from lc_console.salesforce.schema_manifest import (
    FieldKind,
    FieldSpec,
    Manifest,
    ObjectKind,
    PicklistValue,
)
from lc_console.salesforce.schema_observe import Observed, ObservedField

MAX_PRECISION = 18


class Status(StrEnum):
    PRESENT = "present"
    MISSING = "missing"
    DIFFERENT = "different"
    CONFLICT = "conflict"


class Kind(StrEnum):
    OBJECT = "Custom object"
    EVENT = "Platform event"
    FIELD = "Field"
    BUSINESS_PROCESS = "Sales process"
    RECORD_TYPE = "Record type"
    PERMISSION_SET = "Permission set"
    ASSIGNMENT = "Assignment"


@dataclass(frozen=True)
class PlanItem:
    kind: Kind
    name: str
    status: Status
    expected: str
    found: str = ""
    detail: str = ""

    @property
    def action(self) -> str:
        if self.status is Status.MISSING:
            return "assign" if self.kind is Kind.ASSIGNMENT else "create"
        if self.status is Status.DIFFERENT:
            return "update"
        if self.status is Status.CONFLICT:
            return "stop"
        return "none"

    def to_dict(self) -> dict[str, str]:
        return {"kind": self.kind.value, "name": self.name, "status": self.status.value,
                "action": self.action, "expected": self.expected, "found": self.found,
                "detail": self.detail}


@dataclass
class Plan:
    items: list[PlanItem]
    selection: Selection
    assign_permission_set: bool
    can_customize: bool = True
    metadata_error: str = ""

    @property
    def conflicts(self) -> list[PlanItem]:
        return [i for i in self.items if i.status is Status.CONFLICT]

    @property
    def changes(self) -> list[PlanItem]:
        return [i for i in self.items if i.status in (Status.MISSING, Status.DIFFERENT)]

    @property
    def nothing_to_change(self) -> bool:
        return not self.changes and not self.conflicts

    def counts(self) -> dict[str, int]:
        out = {s.value: 0 for s in Status}
        for i in self.items:
            out[i.status.value] += 1
        return out

    def summary(self) -> str:
        c = self.counts()
        if self.nothing_to_change:
            return f"Everything is installed ({c['present']} components present): nothing to change."
        parts = [f"{c[s.value]} {s.value}" for s in Status if c[s.value]]
        return ", ".join(parts) + "."


def describe_shape(o: ObservedField) -> str:
    """How an admin would name what exists: Text(32), Number(18,0), Formula (Text), ..."""
    if o.calculated:
        return f"Formula ({o.type})"
    if o.type == "string":
        return f"Text({o.length})"
    if o.type in ("double", "currency", "percent"):
        name = {"double": "Number", "currency": "Currency", "percent": "Percent"}[o.type]
        return f"{name}({o.precision},{o.scale})"
    if o.type in ("picklist", "multipicklist"):
        return f"{'Picklist' if o.type == 'picklist' else 'Multi-select picklist'} ({len(o.picklist)} values)"
    if o.type == "reference":
        return f"Lookup({', '.join(o.reference_to)})"
    names = {"boolean": "Checkbox", "datetime": "DateTime", "date": "Date", "textarea": "Text Area",
             "email": "Email", "phone": "Phone", "url": "URL", "time": "Time"}
    return names.get(o.type, o.type)


def _flags(external_id: bool, unique: bool) -> str:
    parts = (["External ID"] if external_id else []) + (["Unique"] if unique else [])
    return (", " + ", ".join(parts)) if parts else ""


def spec_text(spec: FieldSpec) -> str:
    return spec.shape() + _flags(spec.external_id, spec.unique)


def observed_text(o: ObservedField) -> str:
    return describe_shape(o) + _flags(o.external_id, o.unique)


@dataclass(frozen=True)
class FieldVerdict:
    status: Status
    detail: str
    deploy: FieldSpec | None  # the spec to deploy (widened to keep what exists), if any


def compare_field(spec: FieldSpec, o: ObservedField | None) -> FieldVerdict:
    if o is None:
        return FieldVerdict(Status.MISSING, "", spec)
    where = f"{spec.full_name} exists as {describe_shape(o)}"
    if o.calculated:
        return FieldVerdict(Status.CONFLICT,
                            f"{where} (a formula); the console needs {spec.shape()}. Rename or "
                            "delete that field in Setup, then run install again.", None)
    if o.type != spec.describe_type:
        return FieldVerdict(Status.CONFLICT,
                            f"{where}; the console needs {spec.shape()}. Changing the type can "
                            "lose data, so the console will not do it: change or delete the "
                            "field in Setup (after saving its data), then run install again.", None)
    changes: list[str] = []
    kept: list[str] = []
    new = spec
    if spec.kind is FieldKind.TEXT and spec.length is not None:
        if o.length < spec.length:
            changes.append(f"length {o.length} -> {spec.length}")
        elif o.length > spec.length:
            kept.append(f"length {o.length} kept")
            new = dataclasses.replace(new, length=o.length)
    if spec.kind in (FieldKind.NUMBER, FieldKind.CURRENCY) and spec.precision is not None:
        need_scale = spec.scale or 0
        need_int = spec.precision - need_scale
        new_scale = max(o.scale, need_scale)
        new_int = max(o.precision - o.scale, need_int)
        if new_int + new_scale > MAX_PRECISION:
            return FieldVerdict(
                Status.CONFLICT,
                f"{where}; the console needs {spec.shape()} and no {spec.kind.value} field "
                f"can hold both (at most {MAX_PRECISION} digits). Decide which one to keep "
                "and change the field in Setup.", None)
        if (new_int + new_scale, new_scale) != (o.precision, o.scale):
            changes.append(f"{spec.kind.value}({o.precision},{o.scale}) -> "
                           f"({new_int + new_scale},{new_scale})")
        elif (o.precision, o.scale) != (spec.precision, spec.scale):
            kept.append(f"({o.precision},{o.scale}) kept")
        new = dataclasses.replace(new, precision=new_int + new_scale, scale=new_scale)
    if spec.kind is FieldKind.PICKLIST:
        existing = [v for v, _ in o.picklist]
        missing_values = [v.api_name for v in spec.values if v.api_name not in existing]
        if missing_values:
            changes.append("add values " + ", ".join(missing_values))
        extra = [v for v in existing if v not in {s.api_name for s in spec.values}]
        if extra:
            kept.append("values " + ", ".join(extra) + " kept")
        labels = dict(o.picklist)
        merged = [PicklistValue(v, labels[v]) for v in existing] + [
            v for v in spec.values if v.api_name in missing_values]
        new = dataclasses.replace(new, values=tuple(merged))
    if spec.kind is FieldKind.LOOKUP and tuple(o.reference_to) != (spec.reference_to,):
        return FieldVerdict(
            Status.CONFLICT,
            f"{where}; the console needs Lookup({spec.reference_to}). A lookup cannot be "
            "pointed at another object: rename or delete the field in Setup.", None)
    if spec.external_id and not o.external_id:
        changes.append("set External ID")
    if spec.unique and not o.unique:
        changes.append("set Unique (fails if duplicate values exist)")
    new = dataclasses.replace(new, external_id=spec.external_id or o.external_id,
                              unique=spec.unique or o.unique)
    if changes:
        return FieldVerdict(Status.DIFFERENT, "; ".join(changes + kept), new)
    return FieldVerdict(Status.PRESENT, "; ".join(kept), None)


def build_plan(manifest: Manifest, observed: Observed, user_label: str = "you") -> Plan:
    items: list[PlanItem] = []
    sel = Selection()
    unread = (f" (could not be checked: {observed.metadata_error})"
              if observed.metadata_error else "")

    # Owned objects first (custom object, platform event), then all fields.
    for obj in manifest.owned_objects():
        o = observed.objects.get(obj.name)
        kind = Kind.OBJECT if obj.kind is ObjectKind.CUSTOM else Kind.EVENT
        expected = obj.label + (", Auto Number name" if obj.kind is ObjectKind.CUSTOM else "")
        if o is None or not o.exists:
            items.append(PlanItem(kind, obj.name, Status.MISSING, expected, "", unread.strip()))
            sel.whole_objects.add(obj.name)
        elif obj.kind is ObjectKind.CUSTOM and o.name_auto_number is False:
            items.append(PlanItem(
                kind, obj.name, Status.CONFLICT, expected, "Text name",
                f"{obj.name} exists with a Text Name field; the console needs an Auto Number "
                "name. Change the Name field to Auto Number in Setup (existing names are "
                "replaced) or delete the object, then run install again."))
        else:
            note = "" if o.visible else "you have no access to it yet: the permission set grants it"
            items.append(PlanItem(kind, obj.name, Status.PRESENT, expected, "exists", note))

    for spec in manifest.fields:
        o = observed.field(spec.sobject, spec.name)
        verdict = compare_field(spec, o)
        detail = verdict.detail
        if verdict.status is Status.MISSING and observed.metadata_error:
            detail = unread.strip()
        elif o is not None and not o.visible and verdict.status is not Status.CONFLICT:
            hint = "not visible to you yet: the permission set grants it"
            detail = f"{detail}; {hint}" if detail else hint
        items.append(PlanItem(Kind.FIELD, spec.full_name, verdict.status, spec_text(spec),
                              observed_text(o) if o else "", detail))
        if verdict.deploy is not None:
            sel.fields.append(verdict.deploy)

    opportunity = observed.objects.get("Opportunity")
    stage_values = set(opportunity.stage_values) if opportunity else set()
    for bp in manifest.business_processes:
        expected = ", ".join(bp.values)
        unknown = [s for s in bp.values if stage_values and s not in stage_values]
        existing = observed.business_processes.get(bp.full_name)
        if unknown:
            items.append(PlanItem(
                Kind.BUSINESS_PROCESS, bp.full_name, Status.CONFLICT, expected,
                ", ".join(existing or ()),
                "Opportunity Stage has no value " + ", ".join(repr(s) for s in unknown)
                + ": add it in Setup (Object Manager > Opportunity > Fields > Stage) or "
                "change the stage mapping (lc-console config), then run install again."))
        elif existing is None:
            items.append(PlanItem(Kind.BUSINESS_PROCESS, bp.full_name, Status.MISSING, expected,
                                  "", unread.strip()))
            sel.business_processes.append(bp)
        else:
            missing_stages = [s for s in bp.values if s not in existing]
            if missing_stages:
                merged = dataclasses.replace(bp, values=tuple(existing) + tuple(missing_stages))
                items.append(PlanItem(Kind.BUSINESS_PROCESS, bp.full_name, Status.DIFFERENT,
                                      expected, ", ".join(existing),
                                      "add stages " + ", ".join(missing_stages)))
                sel.business_processes.append(merged)
            else:
                items.append(PlanItem(Kind.BUSINESS_PROCESS, bp.full_name, Status.PRESENT,
                                      expected, ", ".join(existing)))

    for rt in manifest.record_types:
        expected = f"{rt.label}, process {rt.business_process}"
        seen = observed.record_types.get(rt.full_name)
        if seen is None:
            items.append(PlanItem(Kind.RECORD_TYPE, rt.full_name, Status.MISSING, expected, "",
                                  unread.strip()))
            sel.record_types.append(rt)
            continue
        found = (f"process {seen.business_process}" if seen.business_process else "exists") + (
            "" if seen.active else ", inactive")
        changes = []
        if seen.business_process and seen.business_process != rt.business_process:
            changes.append(f"use sales process {rt.business_process}")
        if not seen.active:
            changes.append("activate it")
        if changes:
            items.append(PlanItem(Kind.RECORD_TYPE, rt.full_name, Status.DIFFERENT, expected,
                                  found, "; ".join(changes)))
            sel.record_types.append(rt)
        else:
            items.append(PlanItem(Kind.RECORD_TYPE, rt.full_name, Status.PRESENT, expected, found))

    ps = manifest.permission_set
    ps_expected = f"read/edit on {len(manifest.granted_fields())} fields, 2 objects, 2 record types"
    if observed.permission_set is None:
        items.append(PlanItem(Kind.PERMISSION_SET, ps.name, Status.MISSING, ps_expected, "",
                              unread.strip()))
        sel.permission_set = True
    else:
        gaps = permission_set_gaps(manifest, observed.permission_set)
        if gaps:
            items.append(PlanItem(Kind.PERMISSION_SET, ps.name, Status.DIFFERENT, ps_expected,
                                  f"{len(gaps)} grants missing", "grant " + ", ".join(gaps[:4])
                                  + (f" and {len(gaps) - 4} more" if len(gaps) > 4 else "")))
            sel.permission_set = True
        else:
            items.append(PlanItem(Kind.PERMISSION_SET, ps.name, Status.PRESENT, ps_expected,
                                  "all grants"))

    assign_name = f"{ps.name} -> {user_label}"
    if observed.permission_set_assigned:
        items.append(PlanItem(Kind.ASSIGNMENT, assign_name, Status.PRESENT, "assigned", "assigned"))
    else:
        items.append(PlanItem(Kind.ASSIGNMENT, assign_name, Status.MISSING, "assigned", "",
                              "without it the fields are invisible to the API"))

    plan = Plan(items, sel, assign_permission_set=not observed.permission_set_assigned,
                can_customize=observed.can_customize, metadata_error=observed.metadata_error)
    return plan


def permission_set_gaps(manifest: Manifest, record: dict[str, object]) -> list[str]:
    """Grants the manifest needs that the permission set record lacks."""

    def entries(key: str) -> list[dict[str, object]]:
        value = record.get(key) or []
        items = value if isinstance(value, list) else [value]
        return [e for e in items if isinstance(e, dict)]

    def yes(v: object) -> bool:
        return str(v).lower() == "true"

    fields = {str(e.get("field")) for e in entries("fieldPermissions")
              if yes(e.get("readable")) and yes(e.get("editable"))}
    objects = {str(e.get("object")) for e in entries("objectPermissions")
               if yes(e.get("allowRead")) and yes(e.get("allowCreate"))}
    rts = {str(e.get("recordType")) for e in entries("recordTypeVisibilities")
           if yes(e.get("visible"))}
    gaps = [f.full_name for f in manifest.granted_fields() if f.full_name not in fields]
    gaps += [o.name for o in manifest.owned_objects() if o.name not in objects]
    gaps += [r.full_name for r in manifest.record_types if r.full_name not in rts]
    return gaps
