"""readMetadata, listMetadata and describeMetadata answers, rendered from the org's schema.

Elements are written in the WSDL's order (``fullName`` first, then alphabetical), the way the
Metadata API writes them. Standard objects are described with their custom fields, record
types and business processes only (the standard fields are not metadata a deploy can change).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from lc_console.sandbox.salesforce.metadata_deploy import field_id, metadata_type_of, object_id
from lc_console.sandbox.salesforce.metadata_soap import element, elements
from lc_console.sandbox.salesforce.schema import (
    BusinessProcessDef,
    FieldDef,
    PermissionSetDef,
    RecordTypeDef,
    SObjectDef,
)

if TYPE_CHECKING:
    from lc_console.sandbox.salesforce.org import Org

READ_TYPES = ("CustomObject", "CustomField", "RecordType", "BusinessProcess", "PermissionSet")
MAX_READ_NAMES = 10  # readMetadata: at most 10 components per call
MAX_LIST_QUERIES = 3  # listMetadata: at most 3 queries per call


def _sorted(parts: list[tuple[str, str]]) -> str:
    return "".join(xml for _, xml in sorted(parts, key=lambda p: p[0]))


def field_xml(obj: SObjectDef, f: FieldDef, qualified: bool) -> str:
    """The inside of a CustomField element."""
    md_type = metadata_type_of(f)
    parts: list[tuple[str, str]] = [
        ("label", element("label", f.label)),
        ("type", element("type", md_type)),
        ("externalId", element("externalId", f.external_id)),
        ("description", element("description", f.description)),
        ("inlineHelpText", element("inlineHelpText", f.inline_help_text)),
    ]
    if md_type not in ("Checkbox", "AutoNumber"):
        parts.append(("required", element("required", not f.nillable)))
    if md_type in ("Text", "TextArea", "LongTextArea", "Html"):
        parts.append(("length", element("length", f.length)))
    if md_type in ("Text", "Number", "Email"):
        parts.append(("unique", element("unique", f.unique)))
    if md_type == "Text" and f.unique:
        parts.append(("caseSensitive", element("caseSensitive", f.case_sensitive)))
    if md_type in ("LongTextArea", "Html"):
        parts.append(("visibleLines", element("visibleLines", f.visible_lines or 3)))
    if md_type in ("Number", "Currency", "Percent"):
        parts.append(("precision", element("precision", f.precision)))
        parts.append(("scale", element("scale", f.scale)))
    if md_type == "Checkbox":
        parts.append(("defaultValue", element("defaultValue", bool(f.default_value))))
    if md_type == "AutoNumber":
        parts.append(("displayFormat", element("displayFormat", f.display_format)))
    if md_type in ("Lookup", "MasterDetail"):
        parts.append(("referenceTo", element("referenceTo", f.reference_to[0] if f.reference_to else None)))
        child = f.child_relationship_name
        if child and child.endswith("__r"):
            child = child[:-3]
        parts.append(("relationshipName", element("relationshipName", child)))
        parts.append(("relationshipLabel", element("relationshipLabel", f.relationship_label)))
        if md_type == "Lookup":
            parts.append(("deleteConstraint", element("deleteConstraint", f.delete_constraint)))
    if md_type in ("Picklist", "MultiselectPicklist"):
        values = "".join(
            "<value>" + elements([("fullName", p.value), ("default", p.default),
                                  ("label", p.label)]) + ("" if p.active else element("isActive", False))
            + "</value>"
            for p in f.picklist_values
        )
        parts.append(("valueSet", "<valueSet>" + element("restricted", f.restricted_picklist)
                      + f"<valueSetDefinition><sorted>false</sorted>{values}</valueSetDefinition>"
                      "</valueSet>"))
    name = f"{obj.name}.{f.name}" if qualified else f.name
    return element("fullName", name) + _sorted(parts)


def _record_type_xml(obj: SObjectDef, rt: RecordTypeDef, qualified: bool) -> str:
    name = f"{obj.name}.{rt.developer_name}" if qualified else rt.developer_name
    picklists = "".join(
        "<picklistValues>" + element("picklist", picklist) + "".join(
            "<values>" + elements([("fullName", v), ("default", False)]) + "</values>"
            for v in values) + "</picklistValues>"
        for picklist, values in rt.picklist_values.items()
    )
    return element("fullName", name) + _sorted([
        ("active", element("active", rt.active)),
        ("businessProcess", element("businessProcess", rt.business_process)),
        ("description", element("description", rt.description)),
        ("label", element("label", rt.label)),
        ("picklistValues", picklists),
    ])


def _business_process_xml(obj: SObjectDef, bp: BusinessProcessDef, qualified: bool) -> str:
    name = f"{obj.name}.{bp.name}" if qualified else bp.name
    values = "".join(
        "<values>" + elements([("fullName", v), ("default", v == bp.default_value)]) + "</values>"
        for v in bp.values
    )
    return element("fullName", name) + _sorted([
        ("description", element("description", bp.description)),
        ("isActive", element("isActive", bp.active)),
        ("values", values),
    ])


def object_xml(obj: SObjectDef) -> str:
    parts: list[tuple[str, str]] = [
        ("fields", "".join(f"<fields>{field_xml(obj, f, False)}</fields>"
                           for f in obj.fields.values() if f.custom)),
        ("recordTypes", "".join(f"<recordTypes>{_record_type_xml(obj, rt, False)}</recordTypes>"
                                for rt in obj.record_types.values())),
        ("businessProcesses", "".join(
            f"<businessProcesses>{_business_process_xml(obj, bp, False)}</businessProcesses>"
            for bp in obj.business_processes.values())),
    ]
    if obj.custom:
        parts += [
            ("label", element("label", obj.label)),
            ("pluralLabel", element("pluralLabel", obj.label_plural)),
            ("deploymentStatus", element("deploymentStatus", obj.deployment_status or "Deployed")),
            ("description", element("description", obj.description)),
        ]
        if obj.platform_event:
            parts += [("eventType", element("eventType", obj.event_type)),
                      ("publishBehavior", element("publishBehavior", obj.publish_behavior))]
        else:
            name_field = obj.name_field
            if name_field is not None:
                nf = [("label", element("label", name_field.label)),
                      ("type", element("type", "AutoNumber" if name_field.auto_number else "Text"))]
                if name_field.auto_number:
                    nf.append(("displayFormat", element("displayFormat", name_field.display_format)))
                parts.append(("nameField", f"<nameField>{_sorted(nf)}</nameField>"))
            parts.append(("sharingModel", element("sharingModel", obj.sharing_model or "ReadWrite")))
    return element("fullName", obj.name) + _sorted(parts)


def permission_set_xml(ps: PermissionSetDef) -> str:
    objects = "".join(
        "<objectPermissions>" + elements([
            ("allowCreate", p.allow_create), ("allowDelete", p.allow_delete),
            ("allowEdit", p.allow_edit), ("allowRead", p.allow_read),
            ("modifyAllRecords", p.modify_all_records), ("object", name),
            ("viewAllFields", False), ("viewAllRecords", p.view_all_records),
        ]) + "</objectPermissions>"
        for name, p in sorted(ps.object_permissions.items())
    )
    fields = "".join(
        "<fieldPermissions>" + elements([("editable", p.editable), ("field", name),
                                         ("readable", p.readable)]) + "</fieldPermissions>"
        for name, p in sorted(ps.field_permissions.items())
    )
    record_types = "".join(
        "<recordTypeVisibilities>" + elements([("recordType", name), ("visible", visible)])
        + "</recordTypeVisibilities>"
        for name, visible in sorted(ps.record_type_visibilities.items())
    )
    users = "".join(
        "<userPermissions>" + elements([("enabled", enabled), ("name", name)])
        + "</userPermissions>"
        for name, enabled in sorted(ps.user_permissions.items())
    )
    return element("fullName", ps.name) + _sorted([
        ("description", element("description", ps.description)),
        ("fieldPermissions", fields),
        ("hasActivationRequired", element("hasActivationRequired", False)),
        ("label", element("label", ps.label)),
        ("objectPermissions", objects),
        ("recordTypeVisibilities", record_types),
        ("userPermissions", users),
    ])


def read_one(org: Org, type_name: str, full_name: str) -> str | None:
    """The inside of a readMetadata record, or None when the component does not exist."""
    schema = org.schema
    if type_name == "PermissionSet":
        ps = schema.permission_set(full_name)
        return permission_set_xml(ps) if ps is not None and not ps.owned_by_profile else None
    if type_name == "CustomObject":
        obj = schema.get(full_name)
        return object_xml(obj) if obj is not None else None
    object_name, _, child = full_name.partition(".")
    obj = schema.get(object_name)
    if obj is None or not child:
        return None
    if type_name == "CustomField":
        f = obj.field(child)
        return field_xml(obj, f, True) if f is not None and f.custom else None
    if type_name == "RecordType":
        rt = obj.record_type(child)
        return _record_type_xml(obj, rt, True) if rt is not None else None
    if type_name == "BusinessProcess":
        bp = obj.business_process(child)
        return _business_process_xml(obj, bp, True) if bp is not None else None
    return None


# --- listMetadata --------------------------------------------------------------------------

@dataclass
class FileProperties:
    type: str
    full_name: str
    file_name: str
    id: str
    created: datetime
    modified: datetime
    manageable_state: str | None = "unmanaged"

    def xml(self, user_id: str, user_name: str) -> str:
        return elements([
            ("createdById", user_id), ("createdByName", user_name),
            ("createdDate", self.created), ("fileName", self.file_name),
            ("fullName", self.full_name), ("id", self.id),
            ("lastModifiedById", user_id), ("lastModifiedByName", user_name),
            ("lastModifiedDate", self.modified), ("manageableState", self.manageable_state),
            ("type", self.type),
        ])


def list_components(org: Org, type_name: str,
                    stamps: dict[tuple[str, str], tuple[datetime, datetime]],
                    default: datetime) -> list[FileProperties]:
    """Every component of one type; `stamps` holds creation / change times of deployed ones."""
    out: list[FileProperties] = []

    def add(full_name: str, file_name: str, id_: str | None, managed: str | None = "unmanaged") -> None:
        created, modified = stamps.get((type_name, full_name.lower()), (default, default))
        out.append(FileProperties(type_name, full_name, file_name, id_ or "", created, modified,
                                  managed))

    with org.lock:
        if type_name == "PermissionSet":
            for ps in org.schema.permission_sets.values():
                if not ps.owned_by_profile:
                    add(ps.name, f"permissionsets/{ps.name}.permissionset",
                        org.permission_set_id(ps.name))
            return out
        for obj in org.schema.objects.values():
            file_name = f"objects/{obj.name}.object"
            if type_name == "CustomObject":
                add(obj.name, file_name, object_id(obj.name) if obj.custom else "",
                    "unmanaged" if obj.custom else None)
            elif type_name == "CustomField":
                for f in obj.fields.values():
                    if f.custom:
                        add(f"{obj.name}.{f.name}", file_name, field_id(obj.name, f.name))
            elif type_name == "RecordType":
                for rt in obj.record_types.values():
                    add(f"{obj.name}.{rt.developer_name}", file_name, rt.id)
            elif type_name == "BusinessProcess":
                for bp in obj.business_processes.values():
                    add(f"{obj.name}.{bp.name}", file_name, bp.id)
    return out


# --- describeMetadata ----------------------------------------------------------------------

DESCRIBE_OBJECTS = (
    # (xmlName, directoryName, suffix, childXmlNames)
    ("CustomObject", "objects", "object",
     ("CustomField", "BusinessProcess", "RecordType", "ListView", "CompactLayout", "FieldSet",
      "Index", "SharingReason", "ValidationRule", "WebLink")),
    ("PermissionSet", "permissionsets", "permissionset", ()),
)


def describe_metadata_xml(test_required: bool) -> str:
    objects = "".join(
        "<metadataObjects>" + element("childXmlNames", list(children))
        + elements([("directoryName", directory), ("inFolder", False), ("metaFile", False),
                    ("suffix", suffix), ("xmlName", xml_name)])
        + "</metadataObjects>"
        for xml_name, directory, suffix, children in DESCRIBE_OBJECTS
    )
    return (f"<result>{objects}<organizationNamespace></organizationNamespace>"
            f"{element('partialSaveAllowed', True)}{element('testRequired', test_required)}</result>")
