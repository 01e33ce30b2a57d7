"""What the org holds today, read through describe (REST) and readMetadata (SOAP).

Describe shows only what the connected user can see: a field without field-level security
or an object without Read permission is absent from it (reference §4.7). So whatever the
manifest expects and describe does not show is looked up with readMetadata before it is
called missing; otherwise an existing field of another type would be re-deployed blindly.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceError, SalesforceResourceNotFound

from lc_console.salesforce import metadata
from lc_console.salesforce.schema_manifest import (
    PERMISSION_SET,
    ComponentType,
    FieldKind,
    Manifest,
)

# Metadata API field types -> describe types, for fields seen only through readMetadata.
_MD_TO_DESCRIBE = {k.value: v for k, v in {
    FieldKind.TEXT: "string", FieldKind.PICKLIST: "picklist", FieldKind.NUMBER: "double",
    FieldKind.CURRENCY: "currency", FieldKind.DATETIME: "datetime", FieldKind.DATE: "date",
    FieldKind.CHECKBOX: "boolean", FieldKind.LOOKUP: "reference",
}.items()} | {
    "TextArea": "textarea", "LongTextArea": "textarea", "Html": "textarea", "Email": "email",
    "Phone": "phone", "Url": "url", "Percent": "percent", "MasterDetail": "reference",
    "AutoNumber": "string", "MultiselectPicklist": "multipicklist", "Time": "time",
    "EncryptedText": "encryptedstring", "Location": "location",
}


@dataclass(frozen=True)
class ObservedField:
    type: str  # describe vocabulary: string, double, picklist, ...
    length: int = 0
    precision: int = 0
    scale: int = 0
    external_id: bool = False
    unique: bool = False
    calculated: bool = False
    picklist: tuple[tuple[str, str], ...] = ()  # (api value, label), active values only
    reference_to: tuple[str, ...] = ()
    visible: bool = True  # listed by describe for the connected user
    createable: bool = False
    updateable: bool = False


@dataclass
class ObservedObject:
    exists: bool
    visible: bool  # describe succeeded for the connected user
    createable: bool = False
    updateable: bool = False
    name_auto_number: bool | None = None  # custom objects: is the Name field an Auto Number
    fields: dict[str, ObservedField] = field(default_factory=dict)
    record_types: dict[str, bool] = field(default_factory=dict)  # developerName -> available
    stage_values: tuple[str, ...] = ()  # Opportunity.StageName active values


@dataclass(frozen=True)
class ObservedRecordType:
    business_process: str  # "" when unknown (seen through describe only)
    active: bool = True


@dataclass
class Observed:
    objects: dict[str, ObservedObject] = field(default_factory=dict)
    business_processes: dict[str, tuple[str, ...]] = field(default_factory=dict)  # fullName -> stages
    record_types: dict[str, ObservedRecordType] = field(default_factory=dict)  # by fullName
    permission_set: dict[str, Any] | None = None  # readMetadata record, None when missing
    permission_set_assigned: bool = False
    can_customize: bool = True
    # Why metadata could not be read (e.g. no Customize Application); "" when it could.
    metadata_error: str = ""

    def field(self, sobject: str, name: str) -> ObservedField | None:
        obj = self.objects.get(sobject)
        return obj.fields.get(name) if obj else None


def _int(v: Any) -> int:
    try:
        return int(float(v or 0))
    except (TypeError, ValueError):
        return 0


def _bool(v: Any) -> bool:
    return v is True or str(v).lower() == "true"


def field_from_describe(d: dict[str, Any]) -> ObservedField:
    return ObservedField(
        type=str(d.get("type", "")),
        length=_int(d.get("length")),
        precision=_int(d.get("precision")),
        scale=_int(d.get("scale")),
        external_id=_bool(d.get("externalId")),
        unique=_bool(d.get("unique")),
        calculated=_bool(d.get("calculated")) and not _bool(d.get("autoNumber")),
        picklist=tuple((str(p.get("value")), str(p.get("label") or p.get("value")))
                       for p in d.get("picklistValues") or [] if p.get("active", True)),
        reference_to=tuple(d.get("referenceTo") or ()),
        visible=True,
        createable=_bool(d.get("createable")),
        updateable=_bool(d.get("updateable")),
    )


def field_from_metadata(r: dict[str, Any]) -> ObservedField:
    """A readMetadata CustomField record (dict) in describe terms; invisible to the user."""
    md_type = str(r.get("type", ""))
    values: list[tuple[str, str]] = []
    value_set = r.get("valueSet")
    if isinstance(value_set, dict):
        definition = value_set.get("valueSetDefinition")
        if isinstance(definition, dict):
            for v in definition.get("value") or []:
                if isinstance(v, dict) and str(v.get("isActive", "true")).lower() != "false":
                    values.append((str(v.get("fullName", "")), str(v.get("label") or v.get("fullName", ""))))
    refs = r.get("referenceTo") or []
    return ObservedField(
        type=_MD_TO_DESCRIBE.get(md_type, md_type.lower()),
        length=_int(r.get("length")),
        precision=_int(r.get("precision")),
        scale=_int(r.get("scale")),
        external_id=_bool(r.get("externalId")),
        unique=_bool(r.get("unique")),
        calculated=bool(r.get("formula")),
        picklist=tuple(values),
        reference_to=tuple(refs if isinstance(refs, list) else [refs]),
        visible=False,
    )


def describe_object(sf: Salesforce, name: str) -> dict[str, Any] | None:
    """Describe result, or None when the object does not exist for this user (404)."""
    try:
        result: dict[str, Any] = getattr(sf, name).describe()
    except SalesforceResourceNotFound:
        return None
    return result


def _object_from_describe(d: dict[str, Any]) -> ObservedObject:
    fields = {f["name"]: field_from_describe(f) for f in d.get("fields", [])}
    name_field = next((f for f in d.get("fields", []) if f.get("name") == "Name"), None)
    stage = next((f for f in d.get("fields", []) if f.get("name") == "StageName"), None)
    return ObservedObject(
        exists=True,
        visible=True,
        createable=_bool(d.get("createable")),
        updateable=_bool(d.get("updateable")),
        name_auto_number=_bool(name_field.get("autoNumber")) if name_field else None,
        fields=fields,
        record_types={str(rt.get("developerName")): _bool(rt.get("available"))
                      for rt in d.get("recordTypeInfos") or []
                      if rt.get("developerName") and rt.get("developerName") != "Master"},
        stage_values=tuple(str(p["value"]) for p in (stage or {}).get("picklistValues") or []
                           if p.get("active", True)),
    )


def has_customize_application(sf: Salesforce, user_id: str) -> bool:
    """Profile or any assigned permission set grants Customize Application (reference §2.12)."""
    soql = ("SELECT Id FROM PermissionSetAssignment WHERE AssigneeId = '{}' "
            "AND PermissionSet.PermissionsCustomizeApplication = true LIMIT 1")
    result = sf.query(soql.format(_soql_id(user_id)))
    return int(result.get("totalSize", 0)) > 0


def permission_set_assignment_ids(sf: Salesforce, user_id: str | None = None) -> list[str]:
    soql = f"SELECT Id FROM PermissionSetAssignment WHERE PermissionSet.Name = '{PERMISSION_SET}'"
    if user_id:
        soql += f" AND AssigneeId = '{_soql_id(user_id)}'"
    return [r["Id"] for r in sf.query_all(soql).get("records", [])]


def _soql_id(value: str) -> str:
    if not value.isalnum():
        raise ValueError(f"not a Salesforce id: {value!r}")
    return value


class _MetadataReader:
    """readMetadata that stops trying after the first refusal (e.g. no permission)."""

    def __init__(self, sf: Salesforce, observed: Observed):
        self.sf = sf
        self.observed = observed

    def read(self, type_name: str, names: Iterable[str]) -> dict[str, dict[str, Any]]:
        names = list(names)
        if not names or self.observed.metadata_error:
            return {}
        try:
            return metadata.read_metadata(self.sf, type_name, names)
        except metadata.MetadataError as exc:
            self.observed.metadata_error = f"{exc.code or 'error'}: {exc}"
            return {}


def observe(sf: Salesforce, manifest: Manifest, user_id: str) -> Observed:
    """Everything the plan needs to know about the org, in as few calls as possible."""
    observed = Observed()
    reader = _MetadataReader(sf, observed)
    try:
        observed.can_customize = has_customize_application(sf, user_id)
    except SalesforceError:
        # Querying PermissionSetAssignment needs View Setup: a user who cannot do that
        # cannot customize the application either.
        observed.can_customize = False

    hidden_objects = []
    for obj in manifest.objects:
        d = describe_object(sf, obj.name)
        if d is None:
            observed.objects[obj.name] = ObservedObject(exists=False, visible=False)
            hidden_objects.append(obj.name)
        else:
            observed.objects[obj.name] = _object_from_describe(d)

    for name, record in reader.read(ComponentType.CUSTOM_OBJECT, hidden_objects).items():
        obj_obs = observed.objects[name]
        obj_obs.exists = True
        name_field = record.get("nameField")
        if isinstance(name_field, dict):
            obj_obs.name_auto_number = name_field.get("type") == "AutoNumber"
        for f in record.get("fields") or []:
            if isinstance(f, dict) and f.get("fullName"):
                obj_obs.fields[f["fullName"]] = field_from_metadata(f)

    hidden_fields = [f.full_name for f in manifest.fields
                     if observed.objects[f.sobject].exists
                     and f.name not in observed.objects[f.sobject].fields]
    for full_name, record in reader.read(ComponentType.CUSTOM_FIELD, hidden_fields).items():
        sobject, _, fname = full_name.partition(".")
        observed.objects[sobject].fields[fname] = field_from_metadata(record)

    bps = reader.read(ComponentType.BUSINESS_PROCESS,
                      [b.full_name for b in manifest.business_processes])
    for full_name, record in bps.items():
        values = [v.get("fullName", "") for v in record.get("values") or [] if isinstance(v, dict)]
        observed.business_processes[full_name] = tuple(values)

    rts = reader.read(ComponentType.RECORD_TYPE, [r.full_name for r in manifest.record_types])
    for full_name, record in rts.items():
        observed.record_types[full_name] = ObservedRecordType(
            str(record.get("businessProcess", "")), _bool(record.get("active", True)))
    # Record types describe shows but readMetadata could not (no permission): still present.
    for rt in manifest.record_types:
        obj_obs = observed.objects.get(rt.sobject)
        if obj_obs and rt.name in obj_obs.record_types and rt.full_name not in observed.record_types:
            observed.record_types[rt.full_name] = ObservedRecordType("")

    ps = reader.read(ComponentType.PERMISSION_SET, [manifest.permission_set.name])
    observed.permission_set = ps.get(manifest.permission_set.name)
    try:
        observed.permission_set_assigned = bool(permission_set_assignment_ids(sf, user_id))
    except SalesforceError:
        observed.permission_set_assigned = False
    return observed
