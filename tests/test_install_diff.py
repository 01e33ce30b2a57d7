"""The plan's comparison rules (pure): what is compatible, what is a conflict, what is kept."""

from __future__ import annotations

import pytest

from lc_console.salesforce.schema_diff import Status, build_plan, compare_field
from lc_console.salesforce.schema_manifest import MANIFEST, FieldKind
from lc_console.salesforce.schema_observe import (
    Observed,
    ObservedField,
    ObservedObject,
    ObservedRecordType,
)

TEXT64 = MANIFEST.field("Contact.LostChurn_ID__c")  # Text(64) External ID Unique
NUM4 = MANIFEST.field("LostChurn_Recovery__c.Retry_Count__c")  # Number(4,0)
CUR = MANIFEST.field("Account.LostChurn_MRR__c")  # Currency(16,2)
PICK = MANIFEST.field("Account.LostChurn_CLV_Tier__c")  # High, Mid, Low
LOOKUP = MANIFEST.field("LostChurn_Recovery__c.Contact__c")


def text(length: int, ext: bool = True, unique: bool = True) -> ObservedField:
    return ObservedField("string", length=length, external_id=ext, unique=unique)


@pytest.mark.parametrize(("observed", "status", "detail_part"), [
    (None, Status.MISSING, ""),
    (text(64), Status.PRESENT, ""),
    (text(255), Status.PRESENT, "length 255 kept"),
    (text(32), Status.DIFFERENT, "length 32 -> 64"),
    (text(64, ext=False), Status.DIFFERENT, "set External ID"),
    (text(64, unique=False), Status.DIFFERENT, "set Unique (fails if duplicate values exist)"),
    (ObservedField("double", precision=18, scale=0), Status.CONFLICT,
     "exists as Number(18,0); the console needs Text(64)"),
    (ObservedField("string", length=64, calculated=True), Status.CONFLICT, "a formula"),
    (ObservedField("email"), Status.CONFLICT, "exists as Email"),
])
def test_text_field(observed: ObservedField | None, status: Status, detail_part: str) -> None:
    v = compare_field(TEXT64, observed)
    assert v.status is status
    assert detail_part in v.detail
    if status in (Status.MISSING, Status.DIFFERENT):
        assert v.deploy is not None
    else:
        assert v.deploy is None


def test_a_longer_text_is_never_shortened_when_the_field_is_redeployed() -> None:
    v = compare_field(TEXT64, text(128, ext=False))
    assert v.status is Status.DIFFERENT and v.deploy is not None
    assert v.deploy.length == 128 and v.deploy.external_id


@pytest.mark.parametrize(("p", "s", "status", "new"), [
    (4, 0, Status.PRESENT, (4, 0)),
    (18, 0, Status.PRESENT, (18, 0)),
    (6, 2, Status.PRESENT, (6, 2)),   # 4 integer digits, more decimals: holds every value
    (3, 0, Status.DIFFERENT, (4, 0)),
    (3, 1, Status.DIFFERENT, (5, 1)),  # widen integers, keep the decimal
])
def test_number_widening(p: int, s: int, status: Status, new: tuple[int, int]) -> None:
    v = compare_field(NUM4, ObservedField("double", precision=p, scale=s))
    assert v.status is status
    if v.deploy:
        assert (v.deploy.precision, v.deploy.scale) == new


def test_currency_that_cannot_hold_both_is_a_conflict() -> None:
    # (18,10) has 8 integer digits; (16,2) needs 14: 14 + 10 > 18.
    v = compare_field(CUR, ObservedField("currency", precision=18, scale=10))
    assert v.status is Status.CONFLICT and "at most 18 digits" in v.detail


def test_picklist_missing_values_are_added_and_extra_values_kept() -> None:
    o = ObservedField("picklist", picklist=(("High", "High"), ("Platinum", "Platinum ★")))
    v = compare_field(PICK, o)
    assert v.status is Status.DIFFERENT
    assert "add values Mid, Low" in v.detail and "Platinum kept" in v.detail
    assert v.deploy is not None
    assert [(x.api_name, x.label) for x in v.deploy.values] == [
        ("High", "High"), ("Platinum", "Platinum ★"), ("Mid", "Mid"), ("Low", "Low")]


def test_lookup_to_another_object_is_a_conflict() -> None:
    v = compare_field(LOOKUP, ObservedField("reference", reference_to=("Lead",)))
    assert v.status is Status.CONFLICT and "Lookup(Contact)" in v.detail
    assert compare_field(LOOKUP, ObservedField("reference", reference_to=("Contact",))).status is Status.PRESENT


def installed_observed() -> Observed:
    """An org where everything in the manifest exists and is visible."""
    obs = Observed()
    for obj in MANIFEST.objects:
        o = ObservedObject(exists=True, visible=True, name_auto_number=True)
        for f in MANIFEST.fields_of(obj.name):
            kw: dict[str, object] = {"external_id": f.external_id, "unique": f.unique}
            if f.kind is FieldKind.TEXT:
                kw["length"] = f.length
            if f.kind in (FieldKind.NUMBER, FieldKind.CURRENCY):
                kw.update(precision=f.precision, scale=f.scale)
            if f.kind is FieldKind.PICKLIST:
                kw["picklist"] = tuple((v.api_name, v.label) for v in f.values)
            if f.kind is FieldKind.LOOKUP:
                kw["reference_to"] = (f.reference_to,)
            o.fields[f.name] = ObservedField(f.describe_type, **kw)  # type: ignore[arg-type]
        if obj.name == "Opportunity":
            o.stage_values = ("Prospecting", "Qualification", "Proposal/Price Quote",
                              "Negotiation/Review", "Closed Won", "Closed Lost")
        obs.objects[obj.name] = o
    for bp in MANIFEST.business_processes:
        obs.business_processes[bp.full_name] = bp.values
    for rt in MANIFEST.record_types:
        obs.record_types[rt.full_name] = ObservedRecordType(rt.business_process)
    obs.permission_set = {
        "fieldPermissions": [{"field": f.full_name, "readable": "true", "editable": "true"}
                             for f in MANIFEST.granted_fields()],
        "objectPermissions": [{"object": o.name, "allowRead": "true", "allowCreate": "true"}
                              for o in MANIFEST.owned_objects()],
        "recordTypeVisibilities": [{"recordType": r.full_name, "visible": "true"}
                                   for r in MANIFEST.record_types],
    }
    obs.permission_set_assigned = True
    return obs


def empty_observed() -> Observed:
    obs = Observed()
    for obj in MANIFEST.objects:
        exists = not obj.owned
        obs.objects[obj.name] = ObservedObject(exists=exists, visible=exists)
    obs.objects["Opportunity"].stage_values = installed_observed().objects["Opportunity"].stage_values
    return obs


def test_plan_on_an_installed_org_changes_nothing() -> None:
    plan = build_plan(MANIFEST, installed_observed())
    assert plan.nothing_to_change, [i for i in plan.items if i.status is not Status.PRESENT]
    assert plan.selection.is_empty() and not plan.assign_permission_set
    assert plan.summary().endswith("nothing to change.")


def test_plan_on_an_empty_org_creates_everything() -> None:
    plan = build_plan(MANIFEST, empty_observed())
    counts = plan.counts()
    # 2 objects + 28 fields + 2 processes + 2 record types + permission set + assignment
    assert counts == {"present": 0, "missing": 36, "different": 0, "conflict": 0}
    assert plan.selection.whole_objects == {"LostChurn_Recovery__c", "LostChurn_Recovery_Event__e"}
    assert len(plan.selection.fields) == 28 and plan.selection.permission_set
    assert plan.assign_permission_set


def test_stage_missing_from_the_org_is_a_conflict_naming_the_fix() -> None:
    obs = installed_observed()
    obs.objects["Opportunity"].stage_values = ("Prospecting", "Closed Won", "Closed Lost")
    plan = build_plan(MANIFEST, obs)
    bad = {i.name: i.detail for i in plan.conflicts}
    assert "Opportunity.LostChurn_Recovery_Process" in bad
    assert "'Negotiation/Review'" in bad["Opportunity.LostChurn_Recovery_Process"]
    assert "change the stage mapping" in bad["Opportunity.LostChurn_Recovery_Process"]


def test_hidden_field_is_present_with_a_permission_note_and_missing_grant_is_different() -> None:
    obs = installed_observed()
    f = obs.objects["Contact"].fields["LostChurn_MRR__c"]
    obs.objects["Contact"].fields["LostChurn_MRR__c"] = ObservedField(
        f.type, precision=f.precision, scale=f.scale, visible=False)
    assert obs.permission_set is not None
    obs.permission_set["fieldPermissions"] = [
        g for g in obs.permission_set["fieldPermissions"] if g["field"] != "Contact.LostChurn_MRR__c"]
    obs.permission_set_assigned = False
    plan = build_plan(MANIFEST, obs, "admin@example.com")
    items = {i.name: i for i in plan.items}
    assert items["Contact.LostChurn_MRR__c"].status is Status.PRESENT
    assert "permission set grants it" in items["Contact.LostChurn_MRR__c"].detail
    assert items["LostChurn_Integration"].status is Status.DIFFERENT
    assert "Contact.LostChurn_MRR__c" in items["LostChurn_Integration"].detail
    assert items["LostChurn_Integration -> admin@example.com"].status is Status.MISSING
    assert plan.selection.permission_set and plan.selection.fields == []


def test_text_name_field_on_the_recovery_object_is_a_conflict() -> None:
    obs = installed_observed()
    obs.objects["LostChurn_Recovery__c"].name_auto_number = False
    plan = build_plan(MANIFEST, obs)
    assert [i.name for i in plan.conflicts] == ["LostChurn_Recovery__c"]


def test_an_inactive_record_type_is_reactivated() -> None:
    obs = installed_observed()
    obs.record_types["Opportunity.LostChurn_Recovery"] = ObservedRecordType(
        "LostChurn_Recovery_Process", active=False)
    plan = build_plan(MANIFEST, obs)
    item = next(i for i in plan.items if i.name == "Opportunity.LostChurn_Recovery")
    assert item.status is Status.DIFFERENT and item.detail == "activate it"
    assert [r.name for r in plan.selection.record_types] == ["LostChurn_Recovery"]
