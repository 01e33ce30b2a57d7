"""What a Metadata API deploy does to an org: read the zip, turn its components into ordered
steps, run them against a schema, and describe each outcome as a DeployMessage.

A deploy is planned and validated against a clone of the org's `Schema` (so a checkOnly
deploy, or one that fails under rollbackOnError, changes nothing), then the steps that
validated are replayed against the live org through the same method names (`Org` keeps
records in step: removing an object deletes its records, removing a field clears it).

Order, as Salesforce processes a deploy: destructiveChanges.xml / destructiveChangesPre.xml
deletions, then objects, fields, business processes, record types, list views, permission
sets, then destructiveChangesPost.xml deletions. Problem texts are Salesforce's where they
are known (see tests/test_sf_sandbox_metadata.py).
"""

from __future__ import annotations

import hashlib
import io
import posixpath
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from lc_console.sandbox.salesforce import ids
from lc_console.sandbox.salesforce.metadata_xml import (
    FieldSpec,
    ObjectFile,
    PackageManifest,
    PermissionSetSpec,
    XmlError,
    parse_manifest,
    parse_object,
    parse_permission_set,
)
from lc_console.sandbox.salesforce.schema import (
    METADATA_FIELD_TYPES,
    BusinessProcessDef,
    FieldDef,
    FieldPermission,
    ObjectPermission,
    PermissionSetDef,
    PicklistValue,
    RecordTypeDef,
    Schema,
    SchemaError,
    SObjectDef,
    custom_standard_fields,
)

SUPPORTED_TYPES = ("CustomObject", "CustomField", "BusinessProcess", "RecordType", "ListView",
                   "PermissionSet")
DESTRUCTIVE_FILES = ("destructiveChanges.xml", "destructiveChangesPre.xml",
                     "destructiveChangesPost.xml")
# Limits of a deploy zip (Metadata API docs): 10,000 files, 39 MB zipped, 600 MB unzipped.
MAX_FILES = 10_000
MAX_UNZIPPED_BYTES = 600 * 1024 * 1024


class SchemaTarget(Protocol):
    """What a deploy changes, by the `Org`'s metadata method names: the live `Org`, or a
    `ValidationTarget` over a schema clone."""

    schema: Schema

    def upsert_object(self, obj: SObjectDef) -> bool: ...
    def remove_object(self, name: str) -> SObjectDef: ...
    def upsert_field(self, object_name: str, f: FieldDef) -> bool: ...
    def remove_field(self, object_name: str, field_name: str) -> FieldDef: ...
    def upsert_business_process(self, object_name: str, bp: BusinessProcessDef) -> bool: ...
    def remove_business_process(self, object_name: str, name: str) -> BusinessProcessDef: ...
    def upsert_record_type(self, object_name: str, rt: RecordTypeDef) -> bool: ...
    def remove_record_type(self, object_name: str, developer_name: str) -> RecordTypeDef: ...
    def upsert_permission_set(self, ps: PermissionSetDef) -> Any: ...
    def remove_permission_set(self, name: str) -> PermissionSetDef: ...


class ValidationTarget:
    """The Org's metadata methods over a schema clone: a dry run that touches no records."""

    def __init__(self, schema: Schema):
        self.schema = schema

    def upsert_object(self, obj: SObjectDef) -> bool:
        existing = self.schema.get(obj.name)
        if existing is None:
            fields = list(obj.fields.values())
            obj.fields, obj._lower = {}, {}
            created = self.schema.add_object(obj)
            for f in fields:
                if created.field(f.name) is not None:
                    if f.name_field:
                        self.schema.update_object(created.name, name_field=f)
                    continue
                self.schema.add_field(created.name, f)
            return True
        attrs = {k: getattr(obj, k) for k in ("label", "label_plural", "description",
                                              "sharing_model", "deployment_status")
                 if getattr(obj, k) is not None}
        self.schema.update_object(existing.name, **attrs)
        for f in obj.fields.values():
            if f.name_field:
                self.schema.update_object(existing.name, name_field=f)
            else:
                self.upsert_field(existing.name, f)
        return False

    def remove_object(self, name: str) -> SObjectDef:
        return self.schema.remove_object(name)

    def upsert_field(self, object_name: str, f: FieldDef) -> bool:
        obj = self.schema.get(object_name)
        if obj is None:
            raise SchemaError(f"No such object: {object_name}")
        if obj.field(f.name) is None:
            self.schema.add_field(obj.name, f)
            return True
        self.schema.update_field(obj.name, f)
        return False

    def remove_field(self, object_name: str, field_name: str) -> FieldDef:
        return self.schema.remove_field(object_name, field_name)

    def upsert_business_process(self, object_name: str, bp: BusinessProcessDef) -> bool:
        return self.schema.upsert_business_process(object_name, bp)

    def remove_business_process(self, object_name: str, name: str) -> BusinessProcessDef:
        return self.schema.remove_business_process(object_name, name)

    def upsert_record_type(self, object_name: str, rt: RecordTypeDef) -> bool:
        return self.schema.upsert_record_type(object_name, rt)

    def remove_record_type(self, object_name: str, developer_name: str) -> RecordTypeDef:
        return self.schema.remove_record_type(object_name, developer_name)

    def upsert_permission_set(self, ps: PermissionSetDef) -> bool:
        return self.schema.upsert_permission_set(ps)

    def remove_permission_set(self, name: str) -> PermissionSetDef:
        return self.schema.remove_permission_set(name)


@dataclass
class DeployOptions:
    check_only: bool = False
    rollback_on_error: bool = False
    ignore_warnings: bool = False
    purge_on_delete: bool = False
    single_package: bool = False
    allow_missing_files: bool = False
    auto_update_package: bool = False
    perform_retrieve: bool = False
    test_level: str | None = None
    run_tests: list[str] = field(default_factory=list)


@dataclass
class DeployMessage:
    """One componentSuccesses / componentFailures entry of a DeployResult."""

    component_type: str
    full_name: str
    file_name: str
    success: bool = True
    changed: bool = False
    created: bool = False
    deleted: bool = False
    problem: str | None = None
    problem_type: str | None = None  # Error | Warning
    line: int | None = None
    column: int | None = None
    id: str | None = None
    created_date: datetime | None = None


@dataclass
class Outcome:
    created: bool = False
    changed: bool = True
    deleted: bool = False
    id: str | None = None
    warning: str | None = None  # success with a problem (e.g. nothing to delete)


@dataclass
class Step:
    component_type: str
    full_name: str
    file_name: str
    phase: int
    action: Callable[[SchemaTarget], Outcome] | None
    # A failure known before running (parse error, missing file, ...)
    problem: str | None = None
    line: int | None = None
    column: int | None = None
    parent: str | None = None  # object the component belongs to (fails with its parent)


@dataclass
class Plan:
    steps: list[Step] = field(default_factory=list)
    manifest_problem: DeployMessage | None = None  # package.xml missing or unreadable


PHASE_DELETE_PRE, PHASE_OBJECT, PHASE_FIELD, PHASE_PROCESS, PHASE_RECORD_TYPE = 0, 1, 2, 3, 4
PHASE_LIST_VIEW, PHASE_PERMISSION_SET, PHASE_DELETE_POST = 5, 6, 7


# --- ids ---------------------------------------------------------------------------------

_B62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def metadata_id(prefix: str, key: str) -> str:
    """A stable 18-char id for a metadata component (CustomObject 01I, CustomField 00N):
    the schema does not store ids for them, and the same component must keep its id."""
    n = int.from_bytes(hashlib.sha256(key.lower().encode()).digest()[:8], "big")
    chars = []
    for _ in range(9):
        n, r = divmod(n, 62)
        chars.append(_B62[r])
    return ids.to18(f"{prefix}{ids.POD}1{''.join(chars)}")


def object_id(name: str) -> str:
    return metadata_id("01I", name)


def field_id(object_name: str, field_name: str) -> str:
    return metadata_id("00N", f"{object_name}.{field_name}")


# --- Metadata API field types <-> schema field definitions --------------------------------

_LENGTH_DEFAULTS = {"TextArea": 255, "Email": 80, "Phone": 40, "Url": 255, "Picklist": 255,
                    "MultiselectPicklist": 4099, "Lookup": 18, "MasterDetail": 18}
_TEXT_GROUP = {"string", "textarea", "email", "phone", "url", "picklist"}
_NUMBER_GROUP = {"double", "currency", "percent", "int"}
_RELATIONSHIP_TYPES = {"Lookup", "MasterDetail", "Hierarchy", "MetadataRelationship",
                       "ExternalLookup", "IndirectLookup"}


def metadata_type_of(f: FieldDef) -> str:
    """The Metadata API <type> of a schema field."""
    if f.auto_number:
        return "AutoNumber"
    if f.type == "reference":
        return "MasterDetail" if f.custom and not f.nillable else "Lookup"
    if f.type == "textarea":
        if f.html_formatted:
            return "Html"
        return "LongTextArea" if f.length > 255 else "TextArea"
    return {
        "string": "Text", "email": "Email", "phone": "Phone", "url": "Url",
        "picklist": "Picklist", "multipicklist": "MultiselectPicklist", "boolean": "Checkbox",
        "int": "Number", "double": "Number", "currency": "Currency", "percent": "Percent",
        "date": "Date", "datetime": "DateTime", "id": "Id",
    }[f.type]  # fmt: skip


def field_def_from_spec(spec: FieldSpec, platform_event: bool = False) -> FieldDef:
    """Turn a <fields> entry into a schema FieldDef; SchemaError carries the deploy problem."""
    if spec.formula is not None:
        raise SchemaError("Formula fields are not supported by the Salesforce sandbox org")
    if not spec.type:
        raise SchemaError("Required field is missing: type")
    if spec.type not in METADATA_FIELD_TYPES:
        raise SchemaError(f"Field type {spec.type} is not supported by the Salesforce sandbox org")
    if not spec.label:
        raise SchemaError("Required field is missing: label")
    if spec.external_id and spec.type not in ("Text", "Number", "Email", "AutoNumber"):
        raise SchemaError("Only Text, Number, Email and Auto Number fields can be External IDs")
    if spec.unique and spec.type not in ("Text", "Number", "Email"):
        raise SchemaError(f"The unique attribute is not supported on fields of type {spec.type}")
    describe_type, extra = METADATA_FIELD_TYPES[spec.type]
    kwargs: dict[str, Any] = dict(extra)
    length = spec.length if spec.length is not None else kwargs.pop("length", 0)
    kwargs.pop("length", None)
    if spec.type == "LongTextArea" and spec.length is None:
        raise SchemaError("Required field is missing: length")
    if spec.type == "Text" and spec.length is None:
        raise SchemaError("Required field is missing: length")
    if spec.type in ("Number", "Currency", "Percent"):
        if spec.precision is None:
            raise SchemaError("Required field is missing: precision")
        kwargs["precision"] = spec.precision
        kwargs["scale"] = spec.scale or 0
    if spec.type in ("Picklist", "MultiselectPicklist"):
        if spec.value_set_name:
            raise SchemaError(
                f"In field: valueSetName - no GlobalValueSet named {spec.value_set_name} found")
        if not spec.values:
            raise SchemaError("Required field is missing: valueSet")
        kwargs["picklist_values"] = [PicklistValue(v.full_name, v.label, v.default, v.is_active)
                                     for v in spec.values]
        kwargs["restricted_picklist"] = spec.restricted
    if spec.type in ("Lookup", "MasterDetail"):
        if not spec.reference_to:
            raise SchemaError("Required field is missing: referenceTo")
        if not spec.relationship_name:
            raise SchemaError("Required field is missing: relationshipName")
        kwargs["reference_to"] = [spec.reference_to]
        kwargs["child_relationship_name"] = spec.relationship_name
        kwargs["relationship_label"] = spec.relationship_label
        if spec.type == "MasterDetail":
            kwargs["delete_constraint"] = "Cascade"
        elif spec.delete_constraint:
            kwargs["delete_constraint"] = spec.delete_constraint
        elif spec.required:
            kwargs["delete_constraint"] = "Restrict"
    if spec.type == "Checkbox":
        default = (spec.default_value or "false").strip().lower()
        if default not in ("true", "false"):
            raise SchemaError("Checkbox default value must be true or false")
        kwargs["default_value"] = default == "true"
    if spec.type == "AutoNumber":
        kwargs["display_format"] = spec.display_format or "{0}"
    if spec.required and spec.type != "Checkbox":
        kwargs["nillable"] = False
    f = FieldDef(
        name=spec.full_name,
        type=describe_type,
        label=spec.label,
        length=length,
        unique=spec.unique,
        external_id=spec.external_id,
        case_sensitive=spec.case_sensitive,
        custom=True,
        description=spec.description,
        inline_help_text=spec.inline_help_text,
        visible_lines=spec.visible_lines,
        **kwargs,
    )
    if platform_event and (spec.unique or spec.external_id or spec.type in _RELATIONSHIP_TYPES):
        raise SchemaError(f"Field type {spec.type} with these options is not supported on "
                          "platform events")
    return f


def check_type_change(object_name: str, old: FieldDef, new: FieldDef, new_type: str) -> None:
    """Refuse the type changes a deploy cannot make, in Salesforce's words."""
    old_type = metadata_type_of(old)
    if old_type == new_type:
        if old.type == "reference" and [r.lower() for r in old.reference_to] != \
                [r.lower() for r in new.reference_to]:
            raise SchemaError(
                f"Cannot change which object a custom field references: {object_name}."
                f"{old.name} references {old.reference_to[0]}")
        return
    if old_type in _RELATIONSHIP_TYPES and new_type in _RELATIONSHIP_TYPES:
        raise SchemaError(f"Cannot update a field from a {old_type} to {new_type}")
    if new_type in _RELATIONSHIP_TYPES or (new_type == "AutoNumber" and old_type != "Text"):
        raise SchemaError(f"Cannot update a field to a {new_type} from something else")
    if old_type in _RELATIONSHIP_TYPES:
        raise SchemaError(f"Cannot update a field from a {old_type} to something else")
    if old_type == "AutoNumber" and new_type == "Text":
        return
    same_group = (old.type in _TEXT_GROUP and new.type in _TEXT_GROUP) or \
        (old.type in _NUMBER_GROUP and new.type in _NUMBER_GROUP)
    if not same_group:
        raise SchemaError(f"Cannot update a field from a {old_type} to {new_type}")


_SIGNATURE_FIELDS = ("type", "label", "length", "precision", "scale", "nillable", "unique",
                     "external_id", "case_sensitive", "restricted_picklist", "reference_to",
                     "child_relationship_name", "relationship_label", "delete_constraint",
                     "auto_number", "display_format", "default_value", "description",
                     "inline_help_text", "visible_lines", "html_formatted")


def _field_signature(f: FieldDef) -> tuple:
    values = tuple(_child_name(f.child_relationship_name) if name == "child_relationship_name"
                   else getattr(f, name) for name in _SIGNATURE_FIELDS)
    picklist = tuple((p.value, p.label, p.default, p.active) for p in f.picklist_values)
    return values + (picklist,)


def _child_name(name: str | None) -> str | None:
    return name[:-3] if name and name.endswith("__r") else name


# --- reading the zip ---------------------------------------------------------------------

class DeployZip:
    """The files of a deploy zip, keyed by their path relative to package.xml."""

    def __init__(self, data: bytes, single_package: bool):
        self.files: dict[str, bytes] = {}
        self.problem: str | None = None
        try:
            archive = zipfile.ZipFile(io.BytesIO(data))
            infos = [i for i in archive.infolist() if not i.is_dir()]
        except (zipfile.BadZipFile, ValueError):
            self.problem = "The deploy zip file is not a valid zip archive"
            return
        if len(infos) > MAX_FILES:
            self.problem = f"Too many files in the zip: {len(infos)} (limit {MAX_FILES})"
            return
        if sum(i.file_size for i in infos) > MAX_UNZIPPED_BYTES:
            self.problem = "The unzipped size of the deploy exceeds 600 MB"
            return
        raw = {posixpath.normpath(i.filename.replace("\\", "/")).lstrip("/"): archive.read(i)
               for i in infos}
        if single_package:
            self.files = raw
        else:
            # one folder per package, e.g. unpackaged/package.xml
            roots = {p.split("/", 1)[0] for p in raw if p.endswith("/package.xml")
                     and p.count("/") == 1}
            root = sorted(roots)[0] if roots else None
            self.files = {p.split("/", 1)[1]: b for p, b in raw.items()
                          if root and p.startswith(root + "/")}

    def get(self, path: str) -> bytes | None:
        return self.files.get(path)

    def folder(self, folder: str, suffix: str) -> list[str]:
        """Component names of the files in a folder, e.g. objects/*.object."""
        prefix = folder + "/"
        return sorted(p[len(prefix):-len(suffix) - 1] for p in self.files
                      if p.startswith(prefix) and p.endswith("." + suffix)
                      and "/" not in p[len(prefix):])


# --- planning ----------------------------------------------------------------------------

@dataclass
class _Context:
    zip: DeployZip
    schema: SchemaTarget
    objects: dict[str, ObjectFile | XmlError | None] = field(default_factory=dict)


def _object_file(ctx: _Context, name: str) -> ObjectFile | XmlError | None:
    if name not in ctx.objects:
        data = ctx.zip.get(f"objects/{name}.object")
        if data is None:
            ctx.objects[name] = None
        else:
            try:
                ctx.objects[name] = parse_object(name, data)
            except XmlError as exc:
                ctx.objects[name] = exc
    return ctx.objects[name]


def _not_in_zip(type_name: str, member: str, file_name: str, phase: int) -> Step:
    return Step(type_name, member, file_name, phase, None,
                problem=f"An object '{member}' of type {type_name} was named in package.xml, "
                        "but was not found in zipped directory")


def _parse_failure(type_name: str, member: str, file_name: str, phase: int,
                   exc: XmlError) -> Step:
    return Step(type_name, member, file_name, phase, None, problem=exc.problem,
                line=exc.line, column=exc.column)


def plan_deploy(data: bytes, options: DeployOptions, schema: SchemaTarget) -> Plan:
    """Read the zip and build the ordered steps of the deploy (nothing runs yet)."""
    plan = Plan()
    archive = DeployZip(data, options.single_package)
    manifest_data = archive.get("package.xml")
    if archive.problem or manifest_data is None:
        plan.manifest_problem = DeployMessage(
            "", "package.xml", "package.xml", success=False, problem_type="Error",
            problem=archive.problem or "No package.xml found")
        return plan
    try:
        manifest = parse_manifest(manifest_data)
    except XmlError as exc:
        plan.manifest_problem = DeployMessage(
            "", "package.xml", "package.xml", success=False, problem_type="Error",
            problem=exc.problem, line=exc.line, column=exc.column)
        return plan
    ctx = _Context(archive, schema)
    for type_name in manifest.types:
        if type_name not in SUPPORTED_TYPES:
            plan.steps.append(Step(
                type_name, type_name, "package.xml", PHASE_OBJECT, None,
                problem=f"Metadata type {type_name} is not supported by the Salesforce sandbox "
                        f"org (it deploys {', '.join(SUPPORTED_TYPES)})"))
    plan.steps += _additions(ctx, manifest)
    for file_name in DESTRUCTIVE_FILES:
        data_ = archive.get(file_name)
        if data_ is None:
            continue
        phase = PHASE_DELETE_POST if file_name == "destructiveChangesPost.xml" else PHASE_DELETE_PRE
        try:
            destructive = parse_manifest(data_)
        except XmlError as exc:
            plan.steps.append(_parse_failure("", file_name, file_name, phase, exc))
            continue
        plan.steps += _deletions(ctx, destructive, phase, options)
    plan.steps.sort(key=lambda s: s.phase)
    return plan


def _members(ctx: _Context, manifest: PackageManifest, type_name: str, folder: str,
             suffix: str) -> list[str]:
    members = manifest.members(type_name)
    if "*" in members:
        members = [m for m in members if m != "*"] + [
            n for n in ctx.zip.folder(folder, suffix) if n not in members]
    return members


def _additions(ctx: _Context, manifest: PackageManifest) -> list[Step]:
    steps: list[Step] = []
    whole_objects = _members(ctx, manifest, "CustomObject", "objects", "object")
    whole_lower = {m.lower() for m in whole_objects}
    for name in whole_objects:
        file_name = f"objects/{name}.object"
        parsed = _object_file(ctx, name)
        if parsed is None:
            steps.append(_not_in_zip("CustomObject", name, file_name, PHASE_OBJECT))
            continue
        if isinstance(parsed, XmlError):
            steps.append(_parse_failure("CustomObject", name, file_name, PHASE_OBJECT, parsed))
            continue
        steps.append(Step("CustomObject", name, file_name, PHASE_OBJECT, _object_action(parsed)))
        steps += _child_steps(parsed, file_name, None)
    # Child components listed on their own (custom fields of standard objects, record types...)
    for type_name in ("CustomField", "BusinessProcess", "RecordType", "ListView"):
        for member in manifest.members(type_name):
            object_name, _, child = member.partition(".")
            if object_name.lower() in whole_lower:
                continue  # already deployed with its object
            file_name = f"objects/{object_name}.object"
            phase = _CHILD_PHASES[type_name]
            parsed = _object_file(ctx, object_name)
            if parsed is None:
                steps.append(_not_in_zip(type_name, member, file_name, phase))
                continue
            if isinstance(parsed, XmlError):
                steps.append(_parse_failure(type_name, member, file_name, phase, parsed))
                continue
            wanted = _child_steps(parsed, file_name, (type_name, child))
            if not wanted:
                steps.append(_not_in_zip(type_name, member, file_name, phase))
            steps += wanted
    for name in _members(ctx, manifest, "PermissionSet", "permissionsets", "permissionset"):
        file_name = f"permissionsets/{name}.permissionset"
        data = ctx.zip.get(file_name)
        if data is None:
            steps.append(_not_in_zip("PermissionSet", name, file_name, PHASE_PERMISSION_SET))
            continue
        try:
            spec = parse_permission_set(name, data)
        except XmlError as exc:
            steps.append(_parse_failure("PermissionSet", name, file_name, PHASE_PERMISSION_SET,
                                        exc))
            continue
        steps.append(Step("PermissionSet", name, file_name, PHASE_PERMISSION_SET,
                          _permission_set_action(spec)))
    return steps


_CHILD_PHASES = {"CustomField": PHASE_FIELD, "BusinessProcess": PHASE_PROCESS,
                 "RecordType": PHASE_RECORD_TYPE, "ListView": PHASE_LIST_VIEW}


def _child_steps(obj: ObjectFile, file_name: str, only: tuple[str, str] | None) -> list[Step]:
    """Steps for the children of an object file; `only` = (type, name) picks one of them."""
    steps: list[Step] = []

    def wanted(type_name: str, name: str) -> bool:
        return only is None or (only[0] == type_name and only[1].lower() == name.lower())

    for spec in obj.fields:
        if wanted("CustomField", spec.full_name):
            steps.append(Step("CustomField", f"{obj.name}.{spec.full_name}", file_name,
                              PHASE_FIELD, _field_action(obj.name, spec), parent=obj.name,
                              line=spec.line, column=spec.column))
    for bp in obj.business_processes:
        if wanted("BusinessProcess", bp.full_name):
            steps.append(Step("BusinessProcess", f"{obj.name}.{bp.full_name}", file_name,
                              PHASE_PROCESS, _business_process_action(obj.name, bp),
                              parent=obj.name))
    for rt in obj.record_types:
        if wanted("RecordType", rt.full_name):
            steps.append(Step("RecordType", f"{obj.name}.{rt.full_name}", file_name,
                              PHASE_RECORD_TYPE, _record_type_action(obj.name, rt),
                              parent=obj.name))
    for lv in obj.list_views:
        if wanted("ListView", lv.full_name):
            steps.append(Step("ListView", f"{obj.name}.{lv.full_name}", file_name,
                              PHASE_LIST_VIEW, _list_view_action(obj.name, lv.full_name),
                              parent=obj.name))
    return steps


# --- actions -----------------------------------------------------------------------------

def _require_object(target: SchemaTarget, name: str, type_name: str = "CustomObject") -> SObjectDef:
    obj = target.schema.get(name)
    if obj is None:
        raise SchemaError(f"In field: fullName - no {type_name} named {name} found")
    return obj


def _object_action(spec: ObjectFile) -> Callable[[SchemaTarget], Outcome]:
    def run(target: SchemaTarget) -> Outcome:
        existing = target.schema.get(spec.name)
        event = spec.name.lower().endswith("__e")
        if existing is not None:
            changes: dict[str, Any] = {}
            if existing.custom:
                for attr, value in (("label", spec.label), ("label_plural", spec.plural_label),
                                    ("description", spec.description),
                                    ("sharing_model", spec.sharing_model),
                                    ("deployment_status", spec.deployment_status)):
                    if value is not None and getattr(existing, attr) != value:
                        changes[attr] = value
                if spec.name_field is not None and not event:
                    name_field = _name_field(spec)
                    current = existing.name_field
                    if current is None or _field_signature(current) != _field_signature(name_field):
                        changes["name_field"] = name_field
            if changes:
                name_field = changes.pop("name_field", None)
                update = SObjectDef(name=existing.name, label=changes.get("label", existing.label),
                                    label_plural=changes.get("label_plural", existing.label_plural),
                                    key_prefix=existing.key_prefix, custom=True,
                                    fields={"Name": name_field} if name_field else {},
                                    **{k: v for k, v in changes.items()
                                       if k not in ("label", "label_plural")})
                target.upsert_object(update)
            return Outcome(created=False, changed=bool(changes), id=object_id(existing.name))
        if not spec.name.lower().endswith(("__c", "__e")):
            raise SchemaError(f"In field: fullName - no CustomObject named {spec.name} found")
        if not spec.label:
            raise SchemaError("Must specify a non-empty label for the CustomObject")
        if not spec.plural_label:
            raise SchemaError("Must specify a non-empty plural label for the CustomObject")
        if event and spec.event_type == "StandardVolume":
            raise SchemaError("You can't create a platform event with the StandardVolume event "
                              "type. Use HighVolume instead.")
        fields: dict[str, FieldDef] = {}
        if not event:
            if spec.name_field is None:
                raise SchemaError("Must specify a nameField of type Text or AutoNumber")
            name_field = _name_field(spec)
            fields[name_field.name] = name_field
        obj = SObjectDef(
            name=spec.name, label=spec.label, label_plural=spec.plural_label, key_prefix="",
            custom=True, fields=fields, sharing_model=None if event else (spec.sharing_model or "ReadWrite"),
            deployment_status=spec.deployment_status or "Deployed", description=spec.description,
            event_type=spec.event_type, publish_behavior=spec.publish_behavior,
        )
        target.upsert_object(obj)
        return Outcome(created=True, changed=True, id=object_id(spec.name))

    return run


def _name_field(spec: ObjectFile) -> FieldDef:
    nf = spec.name_field
    assert nf is not None
    if nf.type not in ("Text", "AutoNumber"):
        raise SchemaError("Must specify a nameField of type Text or AutoNumber")
    label = nf.label or "Name"
    fields = custom_standard_fields(label, nf.display_format or "{0}"
                                    if nf.type == "AutoNumber" else None)
    return next(f for f in fields if f.name == "Name")


def _standard_field_problem(obj: SObjectDef, name: str) -> str | None:
    if name.lower().endswith("__c"):
        return None
    if "__" in name:
        return "fullName must end with: __c or __kav or __x or __b or __e or __p or __mdt"
    if obj.field(name) is None:
        return "Could not resolve standard field's name."
    return None


def _field_action(object_name: str, spec: FieldSpec) -> Callable[[SchemaTarget], Outcome]:
    def run(target: SchemaTarget) -> Outcome:
        obj = _require_object(target, object_name)
        if not spec.full_name:
            raise SchemaError("Required field is missing: fullName")
        problem = _standard_field_problem(obj, spec.full_name)
        if problem:
            raise SchemaError(problem)
        if not spec.full_name.lower().endswith("__c"):
            # a standard field listed with its object: nothing a deploy changes here
            return Outcome(created=False, changed=False)
        new = field_def_from_spec(spec, obj.platform_event)
        old = obj.field(spec.full_name)
        if old is None:
            target.upsert_field(obj.name, new)
            return Outcome(created=True, id=field_id(obj.name, new.name))
        new.name = old.name
        check_type_change(obj.name, old, new, spec.type or "")
        if _field_signature(old) == _field_signature(new):
            return Outcome(created=False, changed=False, id=field_id(obj.name, old.name))
        target.upsert_field(obj.name, new)
        return Outcome(created=False, changed=True, id=field_id(obj.name, old.name))

    return run


def _business_process_action(object_name: str, spec: Any) -> Callable[[SchemaTarget], Outcome]:
    def run(target: SchemaTarget) -> Outcome:
        obj = _require_object(target, object_name)
        existing = obj.business_process(spec.full_name)
        default = next((v for v, is_default in spec.values if is_default), None)
        bp = BusinessProcessDef(name=spec.full_name, values=[v for v, _ in spec.values],
                                active=spec.is_active, description=spec.description,
                                default_value=default, id=existing.id if existing else None)
        if existing is not None and (existing.values, existing.active, existing.description,
                                     existing.default_value) == \
                (bp.values, bp.active, bp.description, bp.default_value):
            return Outcome(created=False, changed=False, id=existing.id)
        created = target.upsert_business_process(obj.name, bp)
        saved = _require_object(target, object_name).business_process(spec.full_name)
        return Outcome(created=created, id=saved.id if saved else None)

    return run


def _record_type_action(object_name: str, spec: Any) -> Callable[[SchemaTarget], Outcome]:
    def run(target: SchemaTarget) -> Outcome:
        obj = _require_object(target, object_name)
        if not spec.label:
            raise SchemaError("Required field is missing: label")
        existing = obj.record_type(spec.full_name)
        rt = RecordTypeDef(developer_name=spec.full_name, label=spec.label, active=spec.active,
                           business_process=spec.business_process, description=spec.description,
                           picklist_values=dict(spec.picklist_values),
                           id=existing.id if existing else None)
        if existing is not None and (existing.label, existing.active, existing.business_process,
                                     existing.description, existing.picklist_values) == \
                (rt.label, rt.active, rt.business_process, rt.description, rt.picklist_values):
            return Outcome(created=False, changed=False, id=existing.id)
        created = target.upsert_record_type(obj.name, rt)
        saved = _require_object(target, object_name).record_type(spec.full_name)
        return Outcome(created=created, id=saved.id if saved else None)

    return run


def _list_view_action(object_name: str, name: str) -> Callable[[SchemaTarget], Outcome]:
    # The sandbox does not model list views; a valid one deploys without effect.
    def run(target: SchemaTarget) -> Outcome:
        _require_object(target, object_name)
        return Outcome(created=False, changed=False)

    return run


def _permission_set_action(spec: PermissionSetSpec) -> Callable[[SchemaTarget], Outcome]:
    def run(target: SchemaTarget) -> Outcome:
        if not spec.label:
            raise SchemaError("Required field is missing: label")
        for vis in spec.record_type_visibilities:
            object_name, _, rt_name = vis.record_type.partition(".")
            obj = target.schema.get(object_name)
            if obj is None or obj.record_type(rt_name) is None:
                raise SchemaError(
                    f"In field: recordType - no RecordType named {vis.record_type} found")
        ps = PermissionSetDef(
            name=spec.name, label=spec.label, description=spec.description,
            user_permissions=dict(spec.user_permissions),
            object_permissions={
                p.object: ObjectPermission(p.allow_create, p.allow_read, p.allow_edit,
                                           p.allow_delete, p.view_all_records,
                                           p.modify_all_records)
                for p in spec.object_permissions
            },
            field_permissions={
                p.field: FieldPermission(readable=p.readable or p.editable, editable=p.editable)
                for p in spec.field_permissions
            },
            record_type_visibilities={v.record_type: v.visible
                                      for v in spec.record_type_visibilities},
        )
        existing = target.schema.permission_set(spec.name)
        if existing is not None and _permission_set_signature(existing) == \
                _permission_set_signature(ps):
            return Outcome(created=False, changed=False, id=_permission_set_id(target, ps.name))
        target.upsert_permission_set(ps)
        return Outcome(created=existing is None, id=_permission_set_id(target, ps.name))

    return run


def _permission_set_id(target: SchemaTarget, name: str) -> str | None:
    lookup = getattr(target, "permission_set_id", None)
    return lookup(name) if lookup is not None else None


def _permission_set_signature(ps: PermissionSetDef) -> tuple:
    return (ps.label, ps.description, sorted(ps.user_permissions.items()),
            sorted((k.lower(), repr(v)) for k, v in ps.object_permissions.items()),
            sorted((k.lower(), repr(v)) for k, v in ps.field_permissions.items()),
            sorted((k.lower(), v) for k, v in ps.record_type_visibilities.items()))


# --- deletions ---------------------------------------------------------------------------

_DELETE_ORDER = ("PermissionSet", "ListView", "RecordType", "BusinessProcess", "CustomField",
                 "CustomObject")


def _deletions(ctx: _Context, manifest: PackageManifest, phase: int,
               options: DeployOptions) -> list[Step]:
    steps: list[Step] = []
    for type_name in manifest.types:
        if type_name not in SUPPORTED_TYPES:
            steps.append(Step(type_name, type_name, "destructiveChanges.xml", phase, None,
                              problem=f"Metadata type {type_name} is not supported by the "
                                      "Salesforce sandbox org"))
    for type_name in _DELETE_ORDER:
        for member in manifest.members(type_name):
            if member == "*":
                steps.append(Step(type_name, member, "destructiveChanges.xml", phase, None,
                                  problem="Wildcards are not supported in destructive changes"))
                continue
            file_name = (f"permissionsets/{member}.permissionset" if type_name == "PermissionSet"
                         else f"objects/{member.partition('.')[0]}.object")
            steps.append(Step(type_name, member, file_name, phase,
                              _delete_action(type_name, member, options)))
    return steps


def _delete_action(type_name: str, member: str,
                   options: DeployOptions) -> Callable[[SchemaTarget], Outcome]:
    def missing() -> Outcome:
        # Salesforce skips what is not there, with a warning
        return Outcome(changed=False, warning=f"No {type_name} named: {member} found")

    def run(target: SchemaTarget) -> Outcome:
        if type_name == "PermissionSet":
            ps = target.schema.permission_set(member)
            if ps is None:
                return missing()
            ps_id = _permission_set_id(target, ps.name)
            target.remove_permission_set(ps.name)
            return Outcome(deleted=True, id=ps_id)
        if type_name == "CustomObject":
            obj = target.schema.get(member)
            if obj is None:
                return missing()
            if not obj.custom:
                raise SchemaError(f"Cannot delete standard object {obj.name}")
            _check_not_referenced(target, obj)
            target.remove_object(obj.name)
            return Outcome(deleted=True, id=object_id(obj.name))
        object_name, _, child = member.partition(".")
        obj = target.schema.get(object_name)
        if obj is None:
            return missing()
        if type_name == "CustomField":
            f = obj.field(child)
            if f is None:
                return missing()
            if not f.custom:
                raise SchemaError(f"Cannot delete standard field {obj.name}.{f.name}")
            target.remove_field(obj.name, f.name)
            return Outcome(deleted=True, id=field_id(obj.name, f.name))
        if type_name == "RecordType":
            if obj.record_type(child) is None:
                return missing()
            raise SchemaError("Cannot delete record type through API")
        if type_name == "BusinessProcess":
            bp = obj.business_process(child)
            if bp is None:
                return missing()
            target.remove_business_process(obj.name, bp.name)
            return Outcome(deleted=True, id=bp.id)
        return Outcome(deleted=True)  # ListView: not modelled

    return run


def _check_not_referenced(target: SchemaTarget, obj: SObjectDef) -> None:
    for other in target.schema.objects.values():
        if other.name == obj.name:
            continue
        for f in other.fields.values():
            if f.custom and any(r.lower() == obj.name.lower() for r in f.reference_to):
                raise SchemaError(
                    "This custom object is referenced elsewhere in salesforce.com. Remove the "
                    f"usage and try again. : Custom Field - {other.name}.{f.name}")


# --- running -----------------------------------------------------------------------------

def run_step(step: Step, target: SchemaTarget, failed_objects: set[str],
             when: datetime) -> DeployMessage:
    """Run one step against a target and describe the outcome."""
    message = DeployMessage(step.component_type, step.full_name, step.file_name,
                            created_date=when)
    problem = step.problem
    outcome: Outcome | None = None
    if problem is None and step.parent and step.parent.lower() in failed_objects:
        problem = "Parent entity failed to deploy"
    if problem is None and step.action is not None:
        try:
            outcome = step.action(target)
        except SchemaError as exc:
            problem = str(exc)
    if problem is not None or outcome is None:
        message.success = False
        message.problem = problem
        message.problem_type = "Error"
        message.line, message.column = step.line, step.column
        if step.component_type == "CustomObject":
            failed_objects.add(step.full_name.lower())
        return message
    message.created = outcome.created
    message.changed = outcome.changed or outcome.created or outcome.deleted
    message.deleted = outcome.deleted
    message.id = outcome.id
    if outcome.warning:
        message.problem = outcome.warning
        message.problem_type = "Warning"
    return message
