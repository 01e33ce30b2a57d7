"""The org's metadata: sObject and field definitions, record types, business processes,
permission-set definitions, and the describe JSON rendered from them.

Who calls what:
- The REST layer and the Org read definitions (`Schema.get`, `SObjectDef.field`).
- The Metadata API deploy changes schema ONLY through the `Org` methods of the same names
  (`Org.upsert_object`, `Org.upsert_field`, `Org.remove_field`, `Org.remove_object`,
  `Org.upsert_record_type`, `Org.upsert_business_process`, `Org.upsert_permission_set`, ...):
  they hold the org lock and keep records in step (removing a field clears its values,
  removing an object deletes its records). The `Schema` methods below are the pure metadata
  half and raise `SchemaError(problem)` with a Metadata-API-style problem text when a
  definition is invalid, so a deploy can report it as a componentFailure.
- `Schema.clone()` gives an independent copy, e.g. to validate a checkOnly deploy.

Names are case-insensitive everywhere (as in Salesforce); definitions keep the spelling they
were created with, and that spelling is what the API returns.

Field types (FieldDef.type, the REST describe names): id, string, textarea, email, phone, url,
picklist, multipicklist, boolean, int, double, currency, percent, date, datetime, reference.
Metadata API type names map onto them with METADATA_FIELD_TYPES.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from lc_console.sandbox.salesforce import ids

FIELD_TYPES = frozenset(
    {
        "id", "string", "textarea", "email", "phone", "url", "picklist", "multipicklist",
        "boolean", "int", "double", "currency", "percent", "date", "datetime", "reference",
    }
)  # fmt: skip

# Metadata API <type> -> (describe type, extra FieldDef settings)
METADATA_FIELD_TYPES: dict[str, tuple[str, dict[str, Any]]] = {
    "Text": ("string", {}),
    "TextArea": ("textarea", {"length": 255}),
    "LongTextArea": ("textarea", {}),
    "Html": ("textarea", {"html_formatted": True}),
    "Email": ("email", {"length": 80}),
    "Phone": ("phone", {"length": 40}),
    "Url": ("url", {"length": 255}),
    "Picklist": ("picklist", {"length": 255}),
    "MultiselectPicklist": ("multipicklist", {"length": 4099}),
    "Checkbox": ("boolean", {"nillable": False, "default_value": False}),
    "Number": ("double", {}),
    "Currency": ("currency", {}),
    "Percent": ("percent", {}),
    "Date": ("date", {}),
    "DateTime": ("datetime", {}),
    "Lookup": ("reference", {"length": 18}),
    "MasterDetail": ("reference", {"length": 18, "nillable": False}),
    "AutoNumber": ("string", {"auto_number": True, "createable": False, "updateable": False}),
}

# Standard Opportunity stages: (value, probability, forecast category, closed, won).
OPPORTUNITY_STAGES: tuple[tuple[str, int, str, bool, bool], ...] = (
    ("Prospecting", 10, "Pipeline", False, False),
    ("Qualification", 10, "Pipeline", False, False),
    ("Needs Analysis", 20, "Pipeline", False, False),
    ("Value Proposition", 50, "Pipeline", False, False),
    ("Id. Decision Makers", 60, "Pipeline", False, False),
    ("Perception Analysis", 70, "Pipeline", False, False),
    ("Proposal/Price Quote", 75, "Pipeline", False, False),
    ("Negotiation/Review", 90, "Pipeline", False, False),
    ("Closed Won", 100, "Closed", True, True),
    ("Closed Lost", 0, "Omitted", True, False),
)

# User permissions modelled on PermissionSet / Profile records (field names minus "Permissions").
USER_PERMISSIONS: tuple[str, ...] = (
    "ApiEnabled",
    "ViewSetup",
    "CustomizeApplication",
    "ModifyAllData",
    "ViewAllData",
    "ModifyMetadata",
    "AssignPermissionSets",
    "ManageUsers",
)


class SchemaError(ValueError):
    """An invalid metadata definition. str(exc) is the problem text for a deploy failure."""


@dataclass(slots=True)
class PicklistValue:
    value: str
    label: str = ""
    default: bool = False
    active: bool = True

    def __post_init__(self) -> None:
        if not self.label:
            self.label = self.value


@dataclass(slots=True)
class FieldDef:
    """One field. `nillable=False` on a createable, non-defaulted field means "required"."""

    name: str
    type: str
    label: str = ""
    length: int = 0  # string-like types; 0 = not applicable
    precision: int = 0  # double / currency / percent / int
    scale: int = 0
    nillable: bool = True
    unique: bool = False
    external_id: bool = False
    case_sensitive: bool = False
    id_lookup: bool = False
    picklist_values: list[PicklistValue] = field(default_factory=list)
    restricted_picklist: bool = False
    reference_to: list[str] = field(default_factory=list)
    # Child -> parent traversal name used in SOQL and JSON ("Account", "LC_Contact__r").
    # Derived for custom lookups (field name with __c -> __r); leave None when creating one.
    relationship_name: str | None = None
    # Parent -> children name: the Metadata API <relationshipName> ("LostChurn_Recoveries");
    # describe shows it with "__r" appended for custom lookups.
    child_relationship_name: str | None = None
    relationship_label: str | None = None
    delete_constraint: str = "SetNull"  # SetNull | Restrict | Cascade
    custom: bool = False
    calculated: bool = False
    auto_number: bool = False
    display_format: str | None = None  # AutoNumber display format, e.g. "LCR-{0000}"
    createable: bool = True
    updateable: bool = True
    defaulted_on_create: bool = False
    default_value: Any = None
    name_field: bool = False
    html_formatted: bool = False
    visible_lines: int | None = None
    description: str | None = None
    inline_help_text: str | None = None
    filterable: bool = True
    sortable: bool = True
    # Whether field-level security applies: custom fields of non-event objects. Standard
    # fields are always visible to a user who can see the object.
    fls: bool = False

    def __post_init__(self) -> None:
        if self.type not in FIELD_TYPES:
            raise SchemaError(f"Invalid field type {self.type!r} for field {self.name}")
        if not self.label:
            self.label = label_from_name(self.name)
        if self.type == "boolean":
            self.nillable = False
            self.defaulted_on_create = True
            if self.default_value is None:
                self.default_value = False
        if self.type in ("textarea", "multipicklist") or self.html_formatted:
            self.filterable = self.type != "textarea" or self.length <= 255
            self.sortable = self.filterable
        if self.auto_number or self.calculated:
            self.createable = False
            self.updateable = False

    @property
    def required(self) -> bool:
        """Must be given on insert (REQUIRED_FIELD_MISSING otherwise)."""
        return (
            not self.nillable
            and self.createable
            and not self.defaulted_on_create
            and self.type != "boolean"
        )

    @property
    def active_picklist_values(self) -> list[str]:
        return [p.value for p in self.picklist_values if p.active]

    @property
    def indexed(self) -> bool:
        """Values are indexed for fast lookups (unique / external id / idLookup fields)."""
        return self.unique or self.external_id or self.id_lookup


@dataclass(slots=True)
class BusinessProcessDef:
    """A sales process (Opportunity) naming the StageName values it offers. `id` is the
    BusinessProcess record id (019...), set by the Org."""

    name: str  # fullName without the object, e.g. "LC_WinBack_Process"
    values: list[str]  # picklist API values, must exist on the object's picklist
    active: bool = True
    description: str | None = None
    default_value: str | None = None
    id: str | None = None


@dataclass(slots=True)
class RecordTypeDef:
    """`id` is the RecordType record id (012...), set by the Org."""

    developer_name: str
    label: str
    active: bool = True
    business_process: str | None = None  # BusinessProcessDef.name (required on Opportunity)
    description: str | None = None
    # picklist field name -> allowed values for this record type (informational)
    picklist_values: dict[str, list[str]] = field(default_factory=dict)
    id: str | None = None


@dataclass(slots=True)
class SObjectDef:
    name: str
    label: str
    label_plural: str
    key_prefix: str
    custom: bool = False
    platform_event: bool = False  # X__e: publish-only (create), never queried or read back
    createable: bool = True
    updateable: bool = True
    deletable: bool = True
    queryable: bool = True
    searchable: bool = True
    setup: bool = False  # setup objects (User, PermissionSet...) need ViewSetup to read
    fields: dict[str, FieldDef] = field(default_factory=dict)
    record_types: dict[str, RecordTypeDef] = field(default_factory=dict)
    business_processes: dict[str, BusinessProcessDef] = field(default_factory=dict)
    sharing_model: str | None = None
    deployment_status: str | None = None
    description: str | None = None
    event_type: str | None = None  # HighVolume for platform events
    publish_behavior: str | None = None
    auto_number_next: int = 1
    _lower: dict[str, str] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self._lower = {name.lower(): name for name in self.fields}

    # -- fields ------------------------------------------------------------------------------
    def field(self, name: str) -> FieldDef | None:
        """Case-insensitive field lookup (no FLS check: see Org for visibility)."""
        real = self._lower.get(name.lower())
        return self.fields[real] if real is not None else None

    def field_by_relationship(self, relationship_name: str) -> FieldDef | None:
        """The reference field whose relationshipName is this (e.g. "Account" -> AccountId)."""
        key = relationship_name.lower()
        for f in self.fields.values():
            if f.relationship_name and f.relationship_name.lower() == key:
                return f
        return None

    def put_field(self, f: FieldDef) -> None:
        old = self._lower.get(f.name.lower())
        if old is not None and old != f.name:
            del self.fields[old]
        self.fields[f.name] = f
        self._lower[f.name.lower()] = f.name

    def drop_field(self, name: str) -> FieldDef | None:
        real = self._lower.pop(name.lower(), None)
        return self.fields.pop(real) if real is not None else None

    def record_type(self, developer_name: str) -> RecordTypeDef | None:
        for key, rt in self.record_types.items():
            if key.lower() == developer_name.lower():
                return rt
        return None

    def business_process(self, name: str) -> BusinessProcessDef | None:
        for key, bp in self.business_processes.items():
            if key.lower() == name.lower():
                return bp
        return None

    @property
    def name_field(self) -> FieldDef | None:
        for f in self.fields.values():
            if f.name_field:
                return f
        return None


@dataclass(slots=True)
class ObjectPermission:
    allow_create: bool = False
    allow_read: bool = False
    allow_edit: bool = False
    allow_delete: bool = False
    view_all_records: bool = False
    modify_all_records: bool = False


@dataclass(slots=True)
class FieldPermission:
    readable: bool = False
    editable: bool = False


@dataclass(slots=True)
class PermissionSetDef:
    """Metadata of a permission set. Its PermissionSet *record* lives in the Org (0PS id)."""

    name: str
    label: str
    description: str | None = None
    user_permissions: dict[str, bool] = field(default_factory=dict)  # "CustomizeApplication"
    object_permissions: dict[str, ObjectPermission] = field(default_factory=dict)  # "Obj"
    field_permissions: dict[str, FieldPermission] = field(default_factory=dict)  # "Obj.Fld"
    record_type_visibilities: dict[str, bool] = field(default_factory=dict)  # "Obj.RT"
    owned_by_profile: str | None = None  # profile name for profile-owned sets


def label_from_name(name: str) -> str:
    """"LastName" -> "Last Name", "AccountId" -> "Account ID", "LC_Score__c" -> "LC Score"."""
    import re

    base = name[:-3] if name.lower().endswith(("__c", "__e")) else name
    if base.endswith("Id") and len(base) > 2:
        base = base[:-2] + " ID"
    if not name.lower().endswith(("__c", "__e")):
        base = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", base)
    return re.sub(r"\s+", " ", base.replace("_", " ")).strip()


class Schema:
    """All object and permission-set definitions of one org. Not thread-safe on its own:
    callers hold `Org.lock` (the Org methods do)."""

    def __init__(self) -> None:
        self.objects: dict[str, SObjectDef] = {}
        self._lower: dict[str, str] = {}
        self.permission_sets: dict[str, PermissionSetDef] = {}
        self.version = 0  # bumped on every change (caches key on it)
        self._next_custom = 0
        self._next_event = 0

    # -- lookup -------------------------------------------------------------------------------
    def get(self, name: str) -> SObjectDef | None:
        real = self._lower.get(name.lower())
        return self.objects[real] if real is not None else None

    def by_prefix(self, key_prefix: str) -> SObjectDef | None:
        for obj in self.objects.values():
            if obj.key_prefix == key_prefix:
                return obj
        return None

    def permission_set(self, name: str) -> PermissionSetDef | None:
        for key, ps in self.permission_sets.items():
            if key.lower() == name.lower():
                return ps
        return None

    def child_relationships(self, parent: str) -> list[tuple[SObjectDef, FieldDef]]:
        out = []
        for obj in self.objects.values():
            for f in obj.fields.values():
                if f.type == "reference" and any(r.lower() == parent.lower() for r in f.reference_to):
                    out.append((obj, f))
        return out

    def clone(self) -> Schema:
        return copy.deepcopy(self)

    # -- mutation (call through Org, which also updates records) ------------------------------
    def add_object(self, obj: SObjectDef) -> SObjectDef:
        """Register a new object (standard or custom). Custom objects get a key prefix and
        their standard fields here if they have none."""
        if self.get(obj.name) is not None:
            raise SchemaError(f"An object named {obj.name} already exists")
        if obj.custom:
            _check_custom_name(obj.name, ("__c", "__e"))
            obj.platform_event = obj.name.lower().endswith("__e")
            if not obj.key_prefix:
                if obj.platform_event:
                    obj.key_prefix = ids.custom_prefix(self._next_event, platform_event=True)
                    self._next_event += 1
                else:
                    obj.key_prefix = ids.custom_prefix(self._next_custom)
                    self._next_custom += 1
            if not obj.fields:
                base = event_standard_fields() if obj.platform_event else custom_standard_fields()
                for f in base:
                    obj.put_field(f)
            if obj.platform_event:
                obj.updateable = obj.deletable = obj.queryable = obj.searchable = False
                obj.event_type = obj.event_type or "HighVolume"
                obj.publish_behavior = obj.publish_behavior or "PublishAfterCommit"
        self.objects[obj.name] = obj
        self._lower[obj.name.lower()] = obj.name
        task = self.get("Task")
        what = task.field("WhatId") if task is not None else None
        if obj.custom and not obj.platform_event and what is not None:
            what.reference_to.append(obj.name)  # activities can relate to custom objects
        self.version += 1
        return obj

    def update_object(self, name: str, **attrs: Any) -> SObjectDef:
        """Change object-level attributes (label, label_plural, description, sharing_model,
        deployment_status, name field via `name_field=FieldDef`...)."""
        obj = self._require(name)
        name_field = attrs.pop("name_field", None)
        for key, value in attrs.items():
            if not hasattr(obj, key) or key.startswith("_") or key in ("fields", "name"):
                raise SchemaError(f"Unknown object attribute {key}")
            setattr(obj, key, value)
        if name_field is not None:
            current = obj.name_field
            name_field.name_field = True
            if current is not None:
                obj.drop_field(current.name)
            obj.put_field(name_field)
        self.version += 1
        return obj

    def remove_object(self, name: str) -> SObjectDef:
        obj = self._require(name)
        if not obj.custom:
            raise SchemaError(f"Cannot delete standard object {obj.name}")
        del self.objects[obj.name]
        del self._lower[obj.name.lower()]
        task = self.get("Task")
        what = task.field("WhatId") if task is not None else None
        if what is not None and obj.name in what.reference_to:
            what.reference_to.remove(obj.name)
        for ps in self.permission_sets.values():
            ps.object_permissions.pop(obj.name, None)
            prefix = obj.name.lower() + "."
            for key in [k for k in ps.field_permissions if k.lower().startswith(prefix)]:
                del ps.field_permissions[key]
        self.version += 1
        return obj

    def add_field(self, object_name: str, f: FieldDef) -> FieldDef:
        obj = self._require(object_name)
        if obj.field(f.name) is not None:
            raise SchemaError(f"There is already a field named {f.name} on {obj.name}.")
        self._check_field(obj, f)
        f.fls = f.custom and not obj.platform_event
        obj.put_field(f)
        self.version += 1
        return f

    def update_field(self, object_name: str, f: FieldDef) -> tuple[FieldDef, FieldDef]:
        """Replace a custom field's definition. Returns (old, new). Changing the type of a
        field is allowed only between compatible types (as Salesforce does for deploys)."""
        obj = self._require(object_name)
        old = obj.field(f.name)
        if old is None:
            raise SchemaError(f"No such field {obj.name}.{f.name}")
        if not old.custom:
            raise SchemaError(f"Cannot modify standard field {obj.name}.{old.name}")
        if old.type != f.type and not _compatible_change(old.type, f.type):
            raise SchemaError(
                f"Cannot change type of {obj.name}.{old.name} from {old.type} to {f.type}"
            )
        self._check_field(obj, f)
        f.name = old.name
        f.fls = f.custom and not obj.platform_event
        obj.put_field(f)
        self.version += 1
        return old, f

    def remove_field(self, object_name: str, field_name: str) -> FieldDef:
        obj = self._require(object_name)
        f = obj.field(field_name)
        if f is None:
            raise SchemaError(f"No such field {obj.name}.{field_name}")
        if not f.custom:
            raise SchemaError(f"Cannot delete standard field {obj.name}.{f.name}")
        obj.drop_field(f.name)
        key = f"{obj.name}.{f.name}".lower()
        for ps in self.permission_sets.values():
            for k in [k for k in ps.field_permissions if k.lower() == key]:
                del ps.field_permissions[k]
        self.version += 1
        return f

    def upsert_business_process(self, object_name: str, bp: BusinessProcessDef) -> bool:
        """Add or replace; returns True when created. Values must exist on StageName."""
        obj = self._require(object_name)
        stage = obj.field("StageName")
        if stage is None:
            raise SchemaError(f"Business processes are not supported on {obj.name}")
        known = {v.lower() for v in stage.active_picklist_values}
        missing = [v for v in bp.values if v.lower() not in known]
        if missing:
            raise SchemaError(f"Picklist value: {missing[0]} in picklist: StageName not found")
        if not bp.values:
            raise SchemaError("A business process needs at least one picklist value")
        existing = obj.business_process(bp.name)
        if existing is not None:
            del obj.business_processes[existing.name]
        obj.business_processes[bp.name] = bp
        self.version += 1
        return existing is None

    def remove_business_process(self, object_name: str, name: str) -> BusinessProcessDef:
        obj = self._require(object_name)
        bp = obj.business_process(name)
        if bp is None:
            raise SchemaError(f"No such business process {obj.name}.{name}")
        users = [rt.developer_name for rt in obj.record_types.values()
                 if (rt.business_process or "").lower() == bp.name.lower()]  # fmt: skip
        if users:
            raise SchemaError(
                f"This business process is in use by record type {obj.name}.{users[0]}"
            )
        del obj.business_processes[bp.name]
        self.version += 1
        return bp

    def upsert_record_type(self, object_name: str, rt: RecordTypeDef) -> bool:
        """Add or replace; returns True when created. Opportunity record types need a
        business process that exists on the object."""
        obj = self._require(object_name)
        if obj.platform_event:
            raise SchemaError("Record types are not supported on platform events")
        if obj.name == "Opportunity" and not rt.business_process:
            raise SchemaError("Record Type must reference a valid Sales Process")
        if rt.business_process and obj.business_process(rt.business_process) is None:
            raise SchemaError(
                f"In field: businessProcess - no BusinessProcess named "
                f"{obj.name}.{rt.business_process} found"
            )
        existing = obj.record_type(rt.developer_name)
        if existing is not None:
            del obj.record_types[existing.developer_name]
        obj.record_types[rt.developer_name] = rt
        if obj.field("RecordTypeId") is None:
            obj.put_field(
                FieldDef("RecordTypeId", "reference", label="Record Type ID", length=18,
                         reference_to=["RecordType"], relationship_name="RecordType")
            )  # fmt: skip
        self.version += 1
        return existing is None

    def remove_record_type(self, object_name: str, developer_name: str) -> RecordTypeDef:
        obj = self._require(object_name)
        rt = obj.record_type(developer_name)
        if rt is None:
            raise SchemaError(f"No such record type {obj.name}.{developer_name}")
        del obj.record_types[rt.developer_name]
        self.version += 1
        return rt

    def upsert_permission_set(self, ps: PermissionSetDef) -> bool:
        """Add or replace a permission set definition; returns True when created. Object and
        field names must exist; permissions on required fields are rejected."""
        for obj_name in ps.object_permissions:
            if self.get(obj_name) is None:
                raise SchemaError(f"In field: object - no CustomObject named {obj_name} found")
        for key in ps.field_permissions:
            obj_name, _, field_name = key.partition(".")
            obj = self.get(obj_name)
            f = obj.field(field_name) if obj is not None else None
            if f is None:
                raise SchemaError(f"In field: field - no CustomField named {key} found")
            if f.required:
                raise SchemaError(
                    f"You cannot deploy to a required field: {obj.name}.{f.name}"  # type: ignore[union-attr]
                )
        for perm in ps.user_permissions:
            if perm not in USER_PERMISSIONS:
                raise SchemaError(f"Unknown user permission: {perm}")
        existing = self.permission_set(ps.name)
        if existing is not None:
            del self.permission_sets[existing.name]
        self.permission_sets[ps.name] = ps
        self.version += 1
        return existing is None

    def remove_permission_set(self, name: str) -> PermissionSetDef:
        ps = self.permission_set(name)
        if ps is None:
            raise SchemaError(f"No such permission set {name}")
        if ps.owned_by_profile:
            raise SchemaError(f"Cannot delete the profile-owned permission set {name}")
        del self.permission_sets[ps.name]
        self.version += 1
        return ps

    # -- helpers -------------------------------------------------------------------------------
    def _require(self, name: str) -> SObjectDef:
        obj = self.get(name)
        if obj is None:
            raise SchemaError(f"No such object: {name}")
        return obj

    def _check_field(self, obj: SObjectDef, f: FieldDef) -> None:
        if f.custom:
            _check_custom_name(f.name, ("__c",))
        if f.type in ("string",) and not f.auto_number and not 1 <= f.length <= 255:
            raise SchemaError(f"Length must be between 1 and 255 for Text field {f.name}")
        if f.type == "textarea" and not 1 <= f.length <= 131072:
            raise SchemaError(f"Length must be between 1 and 131072 for text area {f.name}")
        if f.type in ("double", "currency", "percent"):
            if not 1 <= f.precision <= 18:
                raise SchemaError(f"Precision must be between 1 and 18 for field {f.name}")
            if not 0 <= f.scale <= f.precision:
                raise SchemaError(f"Scale must be between 0 and precision for field {f.name}")
        if f.type in ("picklist", "multipicklist") and not f.picklist_values:
            raise SchemaError(f"Picklist field {f.name} must have at least one value")
        if f.type == "reference":
            if not f.reference_to:
                raise SchemaError(f"Lookup field {f.name} needs referenceTo")
            for target in f.reference_to:
                if self.get(target) is None:
                    raise SchemaError(f"referenceTo value of '{target}' does not resolve to a valid sObject type")
            if f.custom:
                f.relationship_name = f.name[:-3] + "__r"
                if f.child_relationship_name and not f.child_relationship_name.endswith("__r"):
                    f.child_relationship_name += "__r"
            elif f.relationship_name is None:
                f.relationship_name = f.name[:-2] if f.name.endswith("Id") else f.name
            if not f.nillable and f.delete_constraint == "SetNull":
                raise SchemaError(
                    f"Field {f.name}: a required lookup cannot use the SetNull delete constraint"
                )
        if obj.platform_event and (f.unique or f.external_id or f.type == "reference"):
            raise SchemaError(f"Field {f.name}: this field type or option is not supported on platform events")


def _check_custom_name(name: str, suffixes: tuple[str, ...]) -> None:
    base = name[:-3]
    if not name.lower().endswith(suffixes) or not base:
        raise SchemaError(f"Invalid API name {name}: it must end with {' or '.join(suffixes)}")
    if not base[0].isalpha() or "__" in base or base.endswith("_") or not base.replace("_", "").isalnum():
        raise SchemaError(
            f"Invalid API name {name}: it must begin with a letter, use only alphanumeric "
            "characters and single underscores, and not end with an underscore"
        )


def _compatible_change(old: str, new: str) -> bool:
    text = {"string", "textarea", "email", "phone", "url", "picklist"}
    number = {"double", "currency", "percent", "int"}
    return (old in text and new in text) or (old in number and new in number)


# -- standard object definitions ----------------------------------------------------------------


def _f(name: str, type_: str, **kw: Any) -> FieldDef:
    return FieldDef(name, type_, **kw)


def _ref(name: str, targets: list[str], rel: str | None, label: str = "", **kw: Any) -> FieldDef:
    return FieldDef(name, "reference", label=label, length=18, reference_to=targets,
                    relationship_name=rel, **kw)  # fmt: skip


def _audit_fields() -> list[FieldDef]:
    sys_kw = {"createable": False, "updateable": False, "nillable": False, "defaulted_on_create": True}
    return [
        _f("CreatedDate", "datetime", label="Created Date", **sys_kw),
        _ref("CreatedById", ["User"], "CreatedBy", "Created By ID", **sys_kw),
        _f("LastModifiedDate", "datetime", label="Last Modified Date", **sys_kw),
        _ref("LastModifiedById", ["User"], "LastModifiedBy", "Last Modified By ID", **sys_kw),
        _f("SystemModstamp", "datetime", label="System Modstamp", **sys_kw),
    ]


def _id_field() -> FieldDef:
    return _f("Id", "id", label="Record ID", length=18, nillable=False, createable=False,
              updateable=False, defaulted_on_create=True, id_lookup=True)  # fmt: skip


def _is_deleted() -> FieldDef:
    return _f("IsDeleted", "boolean", label="Deleted", createable=False, updateable=False)


def _owner() -> FieldDef:
    return _ref("OwnerId", ["User"], "Owner", "Owner ID", nillable=False, defaulted_on_create=True)


def _picklist(name: str, values: list[str], label: str = "", restricted: bool = False,
              default: str | None = None, **kw: Any) -> FieldDef:  # fmt: skip
    return FieldDef(
        name, "picklist", label=label, length=255, restricted_picklist=restricted,
        picklist_values=[PicklistValue(v, default=v == default) for v in values], **kw,
    )  # fmt: skip


def _address(prefix: str) -> list[FieldDef]:
    return [
        _f(f"{prefix}Street", "textarea", length=255),
        _f(f"{prefix}City", "string", length=40),
        _f(f"{prefix}State", "string", length=80),
        _f(f"{prefix}PostalCode", "string", length=20),
        _f(f"{prefix}Country", "string", length=80),
    ]


def _obj(name: str, label: str, plural: str, fields: list[FieldDef], **kw: Any) -> SObjectDef:
    return SObjectDef(name=name, label=label, label_plural=plural,
                      key_prefix=ids.KEY_PREFIXES[name],
                      fields={f.name: f for f in fields}, **kw)  # fmt: skip


def custom_standard_fields(name_label: str = "Name", auto_number: str | None = None) -> list[FieldDef]:
    """Standard fields every custom object gets (Id, OwnerId, Name, audit fields)."""
    if auto_number:
        name = _f("Name", "string", label=name_label, length=80, auto_number=True,
                  display_format=auto_number, name_field=True, id_lookup=True,
                  nillable=False, defaulted_on_create=True)  # fmt: skip
    else:
        name = _f("Name", "string", label=name_label, length=80, name_field=True,
                  id_lookup=True, defaulted_on_create=True)  # fmt: skip
    return [_id_field(), _owner(), _is_deleted(), name, *_audit_fields()]


def event_standard_fields() -> list[FieldDef]:
    sys_kw = {"createable": False, "updateable": False, "defaulted_on_create": True}
    return [
        _f("ReplayId", "string", label="Replay ID", length=255, **sys_kw),
        _f("CreatedDate", "datetime", label="Created Date", nillable=False, **sys_kw),
        _ref("CreatedById", ["User"], "CreatedBy", "Created By ID", nillable=False, **sys_kw),
        _f("EventUuid", "string", label="Event UUID", length=36, **sys_kw),
    ]


def standard_objects() -> list[SObjectDef]:
    stages = [s[0] for s in OPPORTUNITY_STAGES]
    account = _obj("Account", "Account", "Accounts", [
        _id_field(), _is_deleted(),
        _f("Name", "string", label="Account Name", length=255, nillable=False, name_field=True),
        _picklist("Type", ["Prospect", "Customer - Direct", "Customer - Channel",
                           "Channel Partner / Reseller", "Installation Partner",
                           "Technology Partner", "Other"], label="Account Type"),
        _ref("ParentId", ["Account"], "Parent", "Parent Account ID"),
        *_address("Billing"), *_address("Shipping"),
        _f("Phone", "phone", label="Account Phone", length=40),
        _f("Fax", "phone", label="Account Fax", length=40),
        _f("AccountNumber", "string", length=40),
        _f("Website", "url", length=255),
        _picklist("Industry", ["Agriculture", "Apparel", "Banking", "Communications",
                               "Consulting", "Education", "Energy", "Finance", "Healthcare",
                               "Insurance", "Manufacturing", "Media", "Retail", "Technology",
                               "Other"]),
        _f("AnnualRevenue", "currency", precision=18, scale=0),
        _f("NumberOfEmployees", "int", label="Employees", precision=8),
        _f("Description", "textarea", label="Account Description", length=32000),
        _owner(), *_audit_fields(),
        _f("LastActivityDate", "date", createable=False, updateable=False),
    ])  # fmt: skip
    contact = _obj("Contact", "Contact", "Contacts", [
        _id_field(), _is_deleted(),
        _ref("AccountId", ["Account"], "Account", "Account ID", delete_constraint="Cascade"),
        _f("LastName", "string", length=80, nillable=False),
        _f("FirstName", "string", length=40),
        _picklist("Salutation", ["Mr.", "Ms.", "Mrs.", "Dr.", "Prof.", "Mx."]),
        _f("Name", "string", label="Full Name", length=121, name_field=True,
           createable=False, updateable=False),
        *_address("Mailing"),
        _f("Phone", "phone", label="Business Phone", length=40),
        _f("MobilePhone", "phone", length=40),
        _f("Email", "email", length=80, id_lookup=True),
        _f("Title", "string", length=128),
        _f("Department", "string", length=80),
        _picklist("LeadSource", ["Web", "Phone Inquiry", "Partner Referral", "Purchased List",
                                 "Other"]),
        _f("Birthdate", "date"),
        _f("Description", "textarea", label="Contact Description", length=32000),
        _f("HasOptedOutOfEmail", "boolean", label="Email Opt Out"),
        _f("DoNotCall", "boolean"),
        _owner(), *_audit_fields(),
        _f("LastActivityDate", "date", createable=False, updateable=False),
    ])  # fmt: skip
    opportunity = _obj("Opportunity", "Opportunity", "Opportunities", [
        _id_field(), _is_deleted(),
        _ref("AccountId", ["Account"], "Account", "Account ID", delete_constraint="Cascade"),
        _f("Name", "string", length=120, nillable=False, name_field=True),
        _f("Description", "textarea", length=32000),
        _picklist("StageName", stages, label="Stage", restricted=True, nillable=False),
        _f("Amount", "currency", precision=18, scale=2),
        _f("Probability", "percent", label="Probability (%)", precision=3, scale=0,
           defaulted_on_create=True),
        _f("CloseDate", "date", nillable=False),
        _picklist("Type", ["Existing Customer - Upgrade", "Existing Customer - Replacement",
                           "Existing Customer - Downgrade", "New Customer"],
                  label="Opportunity Type"),
        _f("NextStep", "string", length=255),
        _picklist("LeadSource", ["Web", "Phone Inquiry", "Partner Referral", "Purchased List",
                                 "Other"]),
        _f("IsClosed", "boolean", label="Closed", createable=False, updateable=False),
        _f("IsWon", "boolean", label="Won", createable=False, updateable=False),
        _picklist("ForecastCategoryName", ["Omitted", "Pipeline", "Best Case", "Commit",
                                           "Closed"], label="Forecast Category",
                  restricted=True, defaulted_on_create=True),
        _ref("ContactId", ["Contact"], "Contact", "Contact ID"),
        _owner(), *_audit_fields(),
        _f("LastActivityDate", "date", createable=False, updateable=False),
    ])  # fmt: skip
    task = _obj("Task", "Task", "Tasks", [
        _id_field(), _is_deleted(),
        _ref("WhoId", ["Contact"], "Who", "Name ID", delete_constraint="Cascade"),
        _ref("WhatId", ["Account", "Opportunity"], "What", "Related To ID",
             delete_constraint="Cascade"),
        _f("Subject", "string", length=255, name_field=True),
        _f("ActivityDate", "date", label="Due Date Only"),
        _picklist("Status", ["Not Started", "In Progress", "Completed",
                             "Waiting on someone else", "Deferred"], restricted=True,
                  default="Not Started", nillable=False, defaulted_on_create=True),
        _picklist("Priority", ["High", "Normal", "Low"], restricted=True, default="Normal",
                  nillable=False, defaulted_on_create=True),
        _f("IsClosed", "boolean", label="Closed", createable=False, updateable=False),
        _f("Description", "textarea", label="Comments", length=32000),
        _picklist("TaskSubtype", ["Task", "Email", "Call"], label="Task Subtype",
                  updateable=False),
        _owner(), *_audit_fields(),
    ])  # fmt: skip
    setup = {"createable": False, "updateable": False, "deletable": False, "setup": True}
    record_type = _obj("RecordType", "Record Type", "Record Types", [
        _id_field(),
        _f("Name", "string", label="Record Type Name", length=80, name_field=True),
        _f("DeveloperName", "string", label="Record Type Name", length=80),
        _f("NamespacePrefix", "string", length=15),
        _f("Description", "string", length=255),
        _ref("BusinessProcessId", ["BusinessProcess"], "BusinessProcess", "Business Process ID"),
        _f("SobjectType", "string", label="SObject Type Name", length=40),
        _f("IsActive", "boolean", label="Active"),
        *_audit_fields(),
    ], **{**setup, "setup": False})  # fmt: skip
    business_process = _obj("BusinessProcess", "Business Process", "Business Processes", [
        _id_field(),
        _f("Name", "string", length=80, name_field=True),
        _f("NamespacePrefix", "string", length=15),
        _f("Description", "string", length=255),
        _f("TableEnumOrId", "string", label="Entity Enumeration Or ID", length=40),
        _f("IsActive", "boolean", label="Active"),
        *_audit_fields(),
    ], **{**setup, "setup": False})  # fmt: skip
    organization = _obj("Organization", "Organization", "Organizations", [
        _id_field(),
        _f("Name", "string", label="Name", length=80, name_field=True),
        _f("Division", "string", length=80),
        _f("Country", "string", length=80),
        _f("IsSandbox", "boolean"),
        _picklist("OrganizationType", ["Team Edition", "Professional Edition",
                                       "Enterprise Edition", "Developer Edition",
                                       "Personal Edition", "Unlimited Edition",
                                       "Contact Manager Edition", "Base Edition"],
                  label="Edition"),
        _f("InstanceName", "string", length=5),
        _f("NamespacePrefix", "string", length=15),
        _f("TrialExpirationDate", "datetime"),
        _f("LanguageLocaleKey", "string", label="Language", length=40),
        _f("TimeZoneSidKey", "string", label="Time Zone", length=40),
        _f("DefaultLocaleSidKey", "string", label="Locale", length=40),
        *_audit_fields(),
    ], **{**setup, "setup": False})  # fmt: skip
    perm_fields = [
        _f(f"Permissions{p}", "boolean", label=label_from_name(p)) for p in USER_PERMISSIONS
    ]
    profile = _obj("Profile", "Profile", "Profiles", [
        _id_field(),
        _f("Name", "string", length=255, name_field=True),
        _picklist("UserType", ["Standard", "PowerPartner", "CsnOnly", "Guest"],
                  label="User Type"),
        _f("Description", "string", length=255),
        *[copy.deepcopy(f) for f in perm_fields],
        *_audit_fields(),
    ], **setup)  # fmt: skip
    user = _obj("User", "User", "Users", [
        _id_field(),
        _f("Username", "string", length=80, nillable=False, unique=True, id_lookup=True),
        _f("LastName", "string", length=80, nillable=False),
        _f("FirstName", "string", length=40),
        _f("Name", "string", label="Full Name", length=121, name_field=True,
           createable=False, updateable=False),
        _f("Email", "email", length=128, nillable=False),
        _f("Alias", "string", length=8, nillable=False),
        _f("CommunityNickname", "string", label="Nickname", length=40),
        _f("IsActive", "boolean", label="Active"),
        _ref("ProfileId", ["Profile"], "Profile", "Profile ID", nillable=False),
        _picklist("UserType", ["Standard", "PowerPartner", "CsnOnly", "Guest"],
                  label="User Type", createable=False, updateable=False),
        _f("TimeZoneSidKey", "string", label="Time Zone", length=40, nillable=False),
        _f("LocaleSidKey", "string", label="Locale", length=40, nillable=False),
        _f("LanguageLocaleKey", "string", label="Language", length=40, nillable=False),
        _f("EmailEncodingKey", "string", label="Email Encoding", length=40, nillable=False),
        *_audit_fields(),
    ], **{**setup, "setup": False})  # fmt: skip
    permission_set = _obj("PermissionSet", "Permission Set", "Permission Sets", [
        _id_field(),
        _f("Name", "string", length=80, nillable=False),
        _f("Label", "string", length=80, nillable=False, name_field=True),
        _f("Description", "string", length=255),
        _f("NamespacePrefix", "string", length=15, createable=False, updateable=False),
        _f("IsOwnedByProfile", "boolean", createable=False, updateable=False),
        _ref("ProfileId", ["Profile"], "Profile", "Profile ID", createable=False,
             updateable=False),
        _picklist("Type", ["Regular", "Profile", "Group", "Session"], createable=False,
                  updateable=False),
        *perm_fields,
        *_audit_fields(),
    ], **setup)  # fmt: skip
    assignment = _obj("PermissionSetAssignment", "Permission Set Assignment",
                      "Permission Set Assignments", [
        _id_field(),
        _ref("AssigneeId", ["User"], "Assignee", "Assignee ID", nillable=False,
             updateable=False),
        _ref("PermissionSetId", ["PermissionSet"], "PermissionSet", "Permission Set ID",
             nillable=False, updateable=False),
        _f("SystemModstamp", "datetime", label="System Modstamp", createable=False,
           updateable=False, nillable=False, defaulted_on_create=True),
    ], createable=True, updateable=False, deletable=True, setup=True)  # fmt: skip
    return [account, contact, opportunity, task, record_type, business_process, organization,
            profile, user, permission_set, assignment]  # fmt: skip


def standard_schema() -> Schema:
    schema = Schema()
    for obj in standard_objects():
        schema.add_object(obj)
    schema.version = 0
    return schema


# -- describe JSON --------------------------------------------------------------------------------

_SOAP_TYPES = {
    "id": "tns:ID", "reference": "tns:ID", "string": "xsd:string", "textarea": "xsd:string",
    "email": "xsd:string", "phone": "xsd:string", "url": "xsd:string",
    "picklist": "xsd:string", "multipicklist": "xsd:string", "boolean": "xsd:boolean",
    "int": "xsd:int", "double": "xsd:double", "currency": "xsd:double",
    "percent": "xsd:double", "date": "xsd:date", "datetime": "xsd:dateTime",
}  # fmt: skip


def object_urls(obj: SObjectDef, version: str) -> dict[str, str]:
    base = f"/services/data/v{version}/sobjects/{obj.name}"
    return {
        "sobject": base,
        "describe": f"{base}/describe",
        "rowTemplate": f"{base}/{{ID}}",
        "defaultValues": f"{base}/defaultValues?recordTypeId&fields",
        "compactLayouts": f"{base}/describe/compactLayouts",
        "layouts": f"{base}/describe/layouts",
    }


def describe_global_entry(obj: SObjectDef, version: str) -> dict[str, Any]:
    """One item of GET /sobjects/ (also the `objectDescribe` of GET /sobjects/X/)."""
    urls = object_urls(obj, version)
    return {
        "activateable": False,
        "associateEntityType": None,
        "associateParentEntity": None,
        "createable": obj.createable,
        "custom": obj.custom,
        "customSetting": False,
        "deepCloneable": False,
        "deletable": obj.deletable,
        "deprecatedAndHidden": False,
        "feedEnabled": False,
        "hasSubtypes": False,
        "isInterface": False,
        "isSubtype": False,
        "keyPrefix": obj.key_prefix,
        "label": obj.label,
        "labelPlural": obj.label_plural,
        "layoutable": not obj.setup and not obj.platform_event,
        "mergeable": obj.name in ("Account", "Contact"),
        "mruEnabled": not obj.setup and not obj.platform_event,
        "name": obj.name,
        "queryable": obj.queryable,
        "replicateable": not obj.platform_event,
        "retrieveable": not obj.platform_event,
        "searchable": obj.searchable,
        "triggerable": not obj.setup,
        "undeletable": obj.deletable and not obj.setup,
        "updateable": obj.updateable,
        "urls": {k: urls[k] for k in ("sobject", "describe", "rowTemplate")},
    }


def describe_field(f: FieldDef, editable: bool = True) -> dict[str, Any]:
    """Describe JSON of one field. `editable=False` (read-only FLS) clears create/update."""
    length = f.length if f.type not in ("boolean", "int", "double", "currency", "percent",
                                         "date", "datetime") else 0  # fmt: skip
    numeric = f.type in ("double", "currency", "percent")
    return {
        "aggregatable": f.type not in ("textarea", "multipicklist"),
        "aiPredictionField": False,
        "autoNumber": f.auto_number,
        "byteLength": length * 3,
        "calculated": f.calculated,
        "calculatedFormula": None,
        "cascadeDelete": f.delete_constraint == "Cascade",
        "caseSensitive": f.case_sensitive,
        "compoundFieldName": None,
        "controllerName": None,
        "createable": f.createable and editable,
        "custom": f.custom,
        "defaultValue": f.default_value if f.type == "boolean" else None,
        "defaultValueFormula": None,
        "defaultedOnCreate": f.defaulted_on_create,
        "dependentPicklist": False,
        "deprecatedAndHidden": False,
        "digits": f.precision if f.type == "int" else 0,
        "displayLocationInDecimal": False,
        "encrypted": False,
        "externalId": f.external_id,
        "extraTypeInfo": None,
        "filterable": f.filterable,
        "filteredLookupInfo": None,
        "formulaTreatNullNumberAsZero": False,
        "groupable": f.type not in ("textarea", "double", "currency", "percent",
                                    "datetime", "multipicklist"),  # fmt: skip
        "highScaleNumber": False,
        "htmlFormatted": f.html_formatted,
        "idLookup": f.id_lookup or f.external_id,
        "inlineHelpText": f.inline_help_text,
        "label": f.label,
        "length": length,
        "mask": None,
        "maskType": None,
        "name": f.name,
        "nameField": f.name_field,
        "namePointing": len(f.reference_to) > 1,
        "nillable": f.nillable,
        "permissionable": f.fls and f.nillable,
        "picklistValues": [
            {"active": p.active, "defaultValue": p.default, "label": p.label,
             "validFor": None, "value": p.value}
            for p in f.picklist_values
        ],  # fmt: skip
        "polymorphicForeignKey": len(f.reference_to) > 1,
        "precision": f.precision if numeric else 0,
        "queryByDistance": False,
        "referenceTargetField": None,
        "referenceTo": list(f.reference_to),
        "relationshipName": f.relationship_name,
        "relationshipOrder": None,
        "restrictedDelete": f.delete_constraint == "Restrict",
        "restrictedPicklist": f.restricted_picklist,
        "scale": f.scale if numeric else 0,
        "searchPrefilterable": f.type == "reference",
        "soapType": _SOAP_TYPES[f.type],
        "sortable": f.sortable,
        "type": f.type,
        "unique": f.unique,
        "updateable": f.updateable and editable,
        "writeRequiresMasterRead": False,
    }


def render_describe(
    schema: Schema,
    obj: SObjectDef,
    version: str,
    visible: dict[str, bool] | None = None,
) -> dict[str, Any]:
    """GET /sobjects/X/describe JSON. `visible` maps field name -> editable for the fields the
    caller may see (None = every field, editable). Fields not in it are left out, as
    Salesforce leaves out fields without field-level security."""
    fields = []
    for f in obj.fields.values():
        if visible is not None and f.name not in visible:
            continue
        fields.append(describe_field(f, editable=True if visible is None else visible[f.name]))
    children = []
    for child, f in schema.child_relationships(obj.name):
        if visible is not None and child.name == obj.name and f.name not in visible:
            continue
        rel = _child_relationship_name(child, f)
        children.append({
            "cascadeDelete": f.delete_constraint == "Cascade",
            "childSObject": child.name,
            "deprecatedAndHidden": False,
            "field": f.name,
            "junctionIdListNames": [],
            "junctionReferenceTo": [],
            "relationshipName": rel,
            "restrictedDelete": f.delete_constraint == "Restrict",
        })  # fmt: skip
    record_types = []
    master = {
        "active": True, "available": True, "defaultRecordTypeMapping": not obj.record_types,
        "developerName": "Master", "master": True, "name": "Master",
        "recordTypeId": "012000000000000AAA",
        "urls": {"layout": f"/services/data/v{version}/sobjects/{obj.name}/describe/layouts/012000000000000AAA"},
    }  # fmt: skip
    if not obj.platform_event and not obj.setup:
        record_types.append(master)
    for i, rt in enumerate(obj.record_types.values()):
        record_types.append({
            "active": rt.active, "available": rt.active,
            "defaultRecordTypeMapping": i == 0, "developerName": rt.developer_name,
            "master": False, "name": rt.label, "recordTypeId": rt.id,
            "urls": {"layout": f"/services/data/v{version}/sobjects/{obj.name}/describe/layouts/"},
        })  # fmt: skip
    out = describe_global_entry(obj, version)
    out.update({
        "actionOverrides": [],
        "childRelationships": children,
        "compactLayoutable": not obj.setup,
        "defaultImplementation": None,
        "extendedBy": None,
        "extendsInterfaces": None,
        "fields": fields,
        "implementedBy": None,
        "implementsInterfaces": None,
        "listviewable": None,
        "lookupLayoutable": None,
        "namedLayoutInfos": [],
        "networkScopeFieldName": None,
        "recordTypeInfos": record_types,
        "searchLayoutable": obj.searchable,
        "sobjectDescribeOption": "FULL",
        "supportedScopes": [{"label": "All records", "name": "everything"}],
        "urls": object_urls(obj, version),
    })  # fmt: skip
    return out


def _child_relationship_name(child: SObjectDef, f: FieldDef) -> str | None:
    if f.custom:
        return f.child_relationship_name
    plural = child.label_plural.replace(" ", "")
    return plural if not child.setup else None


# -- persistence -----------------------------------------------------------------------------------


def dump_schema(schema: Schema) -> dict[str, Any]:
    """JSON-ready form of the whole schema (for --state files)."""
    from dataclasses import asdict

    objects = []
    for obj in schema.objects.values():
        d = asdict(obj)
        d.pop("_lower", None)
        d["fields"] = [asdict(f) for f in obj.fields.values()]
        d["record_types"] = [asdict(rt) for rt in obj.record_types.values()]
        d["business_processes"] = [asdict(bp) for bp in obj.business_processes.values()]
        objects.append(d)
    return {
        "objects": objects,
        "permission_sets": [asdict(ps) for ps in schema.permission_sets.values()],
        "version": schema.version,
        "next_custom": schema._next_custom,
        "next_event": schema._next_event,
    }


def load_schema(data: dict[str, Any]) -> Schema:
    schema = Schema()
    for d in data["objects"]:
        d = dict(d)
        fields = []
        for fd in d.pop("fields"):
            fd = dict(fd)
            fd["picklist_values"] = [PicklistValue(**p) for p in fd.get("picklist_values", [])]
            fields.append(FieldDef(**fd))
        rts = [RecordTypeDef(**rt) for rt in d.pop("record_types")]
        bps = [BusinessProcessDef(**bp) for bp in d.pop("business_processes")]
        obj = SObjectDef(**d, fields={f.name: f for f in fields})
        obj.record_types = {rt.developer_name: rt for rt in rts}
        obj.business_processes = {bp.name: bp for bp in bps}
        schema.objects[obj.name] = obj
        schema._lower[obj.name.lower()] = obj.name
    for ps in data["permission_sets"]:
        ps = dict(ps)
        ps["object_permissions"] = {
            k: ObjectPermission(**v) for k, v in ps["object_permissions"].items()
        }
        ps["field_permissions"] = {
            k: FieldPermission(**v) for k, v in ps["field_permissions"].items()
        }
        schema.permission_sets[ps["name"]] = PermissionSetDef(**ps)
    schema.version = data.get("version", 0)
    schema._next_custom = data.get("next_custom", 0)
    schema._next_event = data.get("next_event", 0)
    return schema
