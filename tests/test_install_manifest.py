"""The manifest and the XML rendered from it: names, limits, and conformance to the v63 WSDL
bundled with simple-salesforce (element names, required elements, enum values)."""

from __future__ import annotations

import io
import zipfile
from functools import cache
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest
import simple_salesforce

from lc_console.salesforce import metadata
from lc_console.salesforce.schema_manifest import (
    MANIFEST,
    PREFIX,
    FieldKind,
    ObjectKind,
    build_manifest,
)

XSD = "{http://www.w3.org/2001/XMLSchema}"
MD = "{http://soap.sforce.com/2006/04/metadata}"
WSDL = Path(simple_salesforce.__file__).parent / "metadata.wsdl"


@cache
def wsdl_types() -> tuple[dict[str, dict[str, tuple[str, bool]]], dict[str, set[str]]]:
    """complexType -> {element: (type, required)} (with inherited elements); simpleType enums."""
    root = ET.parse(WSDL).getroot()
    schema = next(s for s in root.iter(f"{XSD}schema")
                  if s.get("targetNamespace") == "http://soap.sforce.com/2006/04/metadata")
    raw: dict[str, tuple[str | None, dict[str, tuple[str, bool]]]] = {}
    enums: dict[str, set[str]] = {}
    for ct in schema.findall(f"{XSD}complexType"):
        base = None
        ext = ct.find(f"{XSD}complexContent/{XSD}extension")
        seq_parent = ext if ext is not None else ct
        if ext is not None:
            base = ext.get("base", "").split(":")[-1]
        elements = {}
        for el in seq_parent.iter(f"{XSD}element"):
            elements[el.get("name")] = (el.get("type", ""), el.get("minOccurs", "1") != "0")
        raw[ct.get("name")] = (base, elements)
    for st in schema.findall(f"{XSD}simpleType"):
        values = {e.get("value") for e in st.iter(f"{XSD}enumeration")}
        if values:
            enums[st.get("name")] = values

    def resolve(name: str) -> dict[str, tuple[str, bool]]:
        base, elements = raw[name]
        return {**(resolve(base) if base else {}), **elements}

    return {name: resolve(name) for name in raw}, enums


def check_element(el: ET.Element, type_name: str, path: str, problems: list[str]) -> None:
    types, enums = wsdl_types()
    allowed = types[type_name]
    present = set()
    for child in el:
        name = child.tag.removeprefix(MD)
        present.add(name)
        where = f"{path}/{name}"
        if name not in allowed:
            problems.append(f"{where}: not an element of {type_name}")
            continue
        child_type = allowed[name][0].split(":")[-1]
        prefix = allowed[name][0].split(":")[0]
        if prefix == "tns" and child_type in types:
            check_element(child, child_type, where, problems)
        elif prefix == "tns" and child_type in enums:
            if (child.text or "") not in enums[child_type]:
                problems.append(f"{where}: {child.text!r} is not a {child_type} value")
        elif child_type == "boolean" and child.text not in ("true", "false"):
            problems.append(f"{where}: {child.text!r} is not a boolean")
        elif child_type == "int" and not (child.text or "").lstrip("-").isdigit():
            problems.append(f"{where}: {child.text!r} is not an int")
    for name, (_t, required) in allowed.items():
        if required and name not in present:
            problems.append(f"{path}: required element {name} of {type_name} is missing")


ROOT_TYPES = {"CustomObject": "CustomObject", "PermissionSet": "PermissionSet",
              "Package": "Package"}


def test_every_rendered_file_conforms_to_the_v63_wsdl() -> None:
    files = metadata.deploy_files(MANIFEST, metadata.full_selection(MANIFEST), "62.0")
    assert set(files) == {
        "package.xml", "objects/LostChurn_Recovery__c.object",
        "objects/LostChurn_Recovery_Event__e.object", "objects/Contact.object",
        "objects/Account.object", "objects/Opportunity.object",
        "permissionsets/LostChurn_Integration.permissionset",
    }
    problems: list[str] = []
    for path, text in files.items():
        root = ET.fromstring(text.encode("utf-8"))
        assert root.tag.startswith(MD), path
        name = root.tag.removeprefix(MD)
        check_element(root, ROOT_TYPES[name], path, problems)
    assert problems == []


def test_the_validator_catches_a_wrong_element_and_a_bad_enum() -> None:
    bad = ET.fromstring(
        f'<CustomObject xmlns="{MD[1:-1]}"><fields><fullName>X__c</fullName>'
        "<lenght>5</lenght><type>Txt</type></fields></CustomObject>")
    problems: list[str] = []
    check_element(bad, "CustomObject", "x", problems)
    assert any("lenght" in p for p in problems)
    assert any("'Txt' is not a FieldType" in p for p in problems)


def test_package_xml_lists_every_component_once_with_the_version() -> None:
    files = metadata.deploy_files(MANIFEST, metadata.full_selection(MANIFEST), "62.0")
    root = ET.fromstring(files["package.xml"])
    members = {t.findtext(f"{MD}name"): [m.text for m in t.findall(f"{MD}members")]
               for t in root.findall(f"{MD}types")}
    assert root.findtext(f"{MD}version") == "62.0"
    assert members["CustomObject"] == ["LostChurn_Recovery_Event__e", "LostChurn_Recovery__c"]
    assert len(members["CustomField"]) == len(MANIFEST.fields) == 28
    assert "Contact.LostChurn_ID__c" in members["CustomField"]
    assert members["RecordType"] == ["Opportunity.LostChurn_Expansion", "Opportunity.LostChurn_Recovery"]
    assert members["BusinessProcess"] == ["Opportunity.LostChurn_Expansion_Process",
                                          "Opportunity.LostChurn_Recovery_Process"]
    assert members["PermissionSet"] == ["LostChurn_Integration"]


def test_recovery_object_has_an_auto_number_name_and_all_issue_fields() -> None:
    text = metadata.deploy_files(MANIFEST, metadata.full_selection(MANIFEST), "62.0")[
        "objects/LostChurn_Recovery__c.object"]
    root = ET.fromstring(text)
    assert root.findtext(f"{MD}nameField/{MD}type") == "AutoNumber"
    assert root.findtext(f"{MD}label") == "LostChurn Recovery"
    fields = {f.findtext(f"{MD}fullName"): f for f in root.findall(f"{MD}fields")}
    assert set(fields) == {"Recovery_ID__c", "Status__c", "Decline_Code__c",
                           "Decline_Category__c", "Retry_Count__c", "Recovered_Amount__c",
                           "Started_At__c", "Completed_At__c", "Contact__c", "Opportunity__c"}
    rid = fields["Recovery_ID__c"]
    assert [rid.findtext(f"{MD}{k}") for k in ("type", "length", "externalId", "unique")] == [
        "Text", "64", "true", "true"]
    status = [v.findtext(f"{MD}fullName") for v in fields["Status__c"].iter(f"{MD}value")]
    assert status == ["Started", "Retrying", "Succeeded", "Exhausted"]
    assert fields["Retry_Count__c"].findtext(f"{MD}precision") == "4"
    assert fields["Recovered_Amount__c"].findtext(f"{MD}type") == "Currency"
    assert fields["Contact__c"].findtext(f"{MD}referenceTo") == "Contact"


def test_permission_set_grants_read_edit_on_every_non_event_field_and_the_objects() -> None:
    text = metadata.render_permission_set(MANIFEST)
    root = ET.fromstring(text)
    grants = {f.findtext(f"{MD}field"): (f.findtext(f"{MD}readable"), f.findtext(f"{MD}editable"))
              for f in root.findall(f"{MD}fieldPermissions")}
    expected = {f.full_name for f in MANIFEST.fields if not f.sobject.endswith("__e")}
    assert set(grants) == expected
    assert set(grants.values()) == {("true", "true")}
    objects = {o.findtext(f"{MD}object"): o for o in root.findall(f"{MD}objectPermissions")}
    assert objects["LostChurn_Recovery__c"].findtext(f"{MD}allowEdit") == "true"
    assert objects["LostChurn_Recovery_Event__e"].findtext(f"{MD}allowCreate") == "true"
    assert objects["LostChurn_Recovery_Event__e"].findtext(f"{MD}allowEdit") == "false"
    rts = [r.findtext(f"{MD}recordType") for r in root.findall(f"{MD}recordTypeVisibilities")]
    assert rts == ["Opportunity.LostChurn_Expansion", "Opportunity.LostChurn_Recovery"]


def test_names_are_prefixed_so_removal_is_clean() -> None:
    for obj in MANIFEST.objects:
        if obj.owned:
            assert obj.name.startswith(PREFIX)
    for f in MANIFEST.fields:
        if MANIFEST.object(f.sobject).kind is ObjectKind.STANDARD:
            assert f.name.startswith(PREFIX), f.full_name
    for r in (*MANIFEST.record_types, *MANIFEST.business_processes):
        assert r.name.startswith(PREFIX)
    assert MANIFEST.permission_set.name.startswith(PREFIX)


def test_field_limits_salesforce_enforces() -> None:
    for f in MANIFEST.fields:
        if f.kind is FieldKind.TEXT:
            assert f.length and 1 <= f.length <= 255, f.full_name
        if f.kind in (FieldKind.NUMBER, FieldKind.CURRENCY):
            assert f.precision and f.precision <= 18 and 0 <= (f.scale or 0) <= f.precision
        if f.on_event:  # platform events have no picklists, lookups or currency fields
            assert f.kind in (FieldKind.TEXT, FieldKind.NUMBER, FieldKind.DATE,
                              FieldKind.DATETIME, FieldKind.CHECKBOX)
        assert len(f.name) <= 43 and f.name.endswith("__c")  # 40 chars + __c


def test_recovery_stages_come_from_the_stage_mapping() -> None:
    m = build_manifest(["Qualification", "Closed Won", "Closed Won", "Closed Lost"])
    bp = next(b for b in m.business_processes if b.name == "LostChurn_Recovery_Process")
    assert bp.values == ("Qualification", "Closed Won", "Closed Lost")
    assert bp.default == "Qualification"


def test_xml_special_characters_are_escaped() -> None:
    m = build_manifest(["Won & <Done>"])
    text = metadata.deploy_files(m, metadata.full_selection(m), "62.0")["objects/Opportunity.object"]
    root = ET.fromstring(text)  # parses: the ampersand and brackets were escaped
    assert "Won & <Done>" in [v.findtext(f"{MD}fullName") for v in root.iter(f"{MD}values")]


def test_zip_is_in_metadata_format_with_package_xml_at_the_root() -> None:
    data = metadata.build_zip(metadata.deploy_files(MANIFEST, metadata.full_selection(MANIFEST), "62.0"))
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        names = zf.namelist()
        assert "package.xml" in names
        assert all(not n.startswith("/") for n in names)
        assert zf.read("package.xml").startswith(b'<?xml version="1.0" encoding="UTF-8"?>')
    # Deterministic bytes: the same selection gives the same zip.
    again = metadata.build_zip(metadata.deploy_files(MANIFEST, metadata.full_selection(MANIFEST), "62.0"))
    assert again == data


def test_destructive_zip_deletes_the_members_and_deactivates_record_types() -> None:
    files = metadata.destructive_files(
        MANIFEST,
        {"CustomObject": ["LostChurn_Recovery__c"], "CustomField": ["Contact.LostChurn_MRR__c"]},
        "62.0", deactivate=list(MANIFEST.record_types))
    dc = ET.fromstring(files["destructiveChanges.xml"])
    assert [t.findtext(f"{MD}name") for t in dc.findall(f"{MD}types")] == ["CustomField", "CustomObject"]
    pkg = ET.fromstring(files["package.xml"])
    assert [m.text for m in pkg.iter(f"{MD}members")] == [
        "Opportunity.LostChurn_Expansion", "Opportunity.LostChurn_Recovery"]
    opp = ET.fromstring(files["objects/Opportunity.object"])
    assert [r.findtext(f"{MD}active") for r in opp.findall(f"{MD}recordTypes")] == ["false", "false"]
    assert opp.findall(f"{MD}businessProcesses") == []
    problems: list[str] = []
    check_element(opp, "CustomObject", "opp", problems)
    assert problems == []


@pytest.mark.parametrize("spec", MANIFEST.fields, ids=lambda f: f.full_name)
def test_expected_describe_properties(spec) -> None:  # type: ignore[no-untyped-def]
    props = spec.expected_describe()
    assert props["type"] == spec.describe_type
    if spec.kind is FieldKind.TEXT:
        assert props["length"] == spec.length
    if spec.external_id:
        assert props["externalId"] is True
