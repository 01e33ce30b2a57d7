"""The console's Salesforce schema, declared once.

Everything `lc-console install` puts into an org is listed here: the zip builder
(metadata.py) renders these specs into Metadata API XML, and the plan (services/install.py)
compares them with what describe / readMetadata report. Every name starts with `LostChurn_`
so that removal deletes exactly what the console created.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

RECOVERY_OBJECT = "LostChurn_Recovery__c"
RECOVERY_EVENT = "LostChurn_Recovery_Event__e"
PERMISSION_SET = "LostChurn_Integration"
PREFIX = "LostChurn_"


class FieldKind(StrEnum):
    """Metadata API CustomField.type values the console uses."""

    TEXT = "Text"
    PICKLIST = "Picklist"
    NUMBER = "Number"
    CURRENCY = "Currency"
    DATETIME = "DateTime"
    DATE = "Date"
    CHECKBOX = "Checkbox"
    LOOKUP = "Lookup"


# Metadata type -> the `type` that REST describe reports for such a field.
DESCRIBE_TYPES: dict[FieldKind, str] = {
    FieldKind.TEXT: "string",
    FieldKind.PICKLIST: "picklist",
    FieldKind.NUMBER: "double",
    FieldKind.CURRENCY: "currency",
    FieldKind.DATETIME: "datetime",
    FieldKind.DATE: "date",
    FieldKind.CHECKBOX: "boolean",
    FieldKind.LOOKUP: "reference",
}


class ObjectKind(StrEnum):
    CUSTOM = "custom"  # a custom object the console owns entirely
    EVENT = "event"  # a platform event the console owns entirely
    STANDARD = "standard"  # a standard object: the console adds fields only


class ComponentType(StrEnum):
    """Metadata API type names, as they appear in package.xml."""

    CUSTOM_OBJECT = "CustomObject"
    CUSTOM_FIELD = "CustomField"
    BUSINESS_PROCESS = "BusinessProcess"
    RECORD_TYPE = "RecordType"
    PERMISSION_SET = "PermissionSet"


@dataclass(frozen=True)
class PicklistValue:
    api_name: str
    label: str
    default: bool = False


@dataclass(frozen=True)
class ObjectSpec:
    name: str
    kind: ObjectKind
    label: str = ""
    plural_label: str = ""
    description: str = ""
    name_field_label: str = ""
    name_display_format: str = ""  # auto-number format of the Name field

    @property
    def owned(self) -> bool:
        """True when the console creates (and removal deletes) the whole object."""
        return self.kind is not ObjectKind.STANDARD


@dataclass(frozen=True)
class FieldSpec:
    sobject: str
    name: str
    label: str
    kind: FieldKind
    description: str = ""
    length: int | None = None
    precision: int | None = None
    scale: int | None = None
    external_id: bool = False
    unique: bool = False
    values: tuple[PicklistValue, ...] = ()
    reference_to: str = ""
    relationship_name: str = ""
    relationship_label: str = ""

    @property
    def full_name(self) -> str:
        return f"{self.sobject}.{self.name}"

    @property
    def describe_type(self) -> str:
        return DESCRIBE_TYPES[self.kind]

    @property
    def on_event(self) -> bool:
        return self.sobject.endswith("__e")

    def shape(self) -> str:
        """Human form, as an admin reads it in Setup: Text(64), Number(4,0), Picklist (4)."""
        if self.kind is FieldKind.TEXT:
            return f"Text({self.length})"
        if self.kind in (FieldKind.NUMBER, FieldKind.CURRENCY):
            return f"{self.kind.value}({self.precision},{self.scale})"
        if self.kind is FieldKind.PICKLIST:
            return f"Picklist ({len(self.values)} values)"
        if self.kind is FieldKind.LOOKUP:
            return f"Lookup({self.reference_to})"
        return self.kind.value

    def expected_describe(self) -> dict[str, object]:
        """The describe properties this field must have (what the plan compares)."""
        props: dict[str, object] = {"type": self.describe_type}
        if self.kind is FieldKind.TEXT:
            props["length"] = self.length
        if self.kind in (FieldKind.NUMBER, FieldKind.CURRENCY):
            props["precision"] = self.precision
            props["scale"] = self.scale
        if self.external_id:
            props["externalId"] = True
        if self.unique:
            props["unique"] = True
        if self.kind is FieldKind.PICKLIST:
            props["picklistValues"] = [v.api_name for v in self.values]
        if self.kind is FieldKind.LOOKUP:
            props["referenceTo"] = [self.reference_to]
        return props


@dataclass(frozen=True)
class BusinessProcessSpec:
    sobject: str
    name: str
    description: str
    values: tuple[str, ...]  # StageName API values
    default: str

    @property
    def full_name(self) -> str:
        return f"{self.sobject}.{self.name}"


@dataclass(frozen=True)
class RecordTypeSpec:
    sobject: str
    name: str
    label: str
    business_process: str
    description: str = ""

    @property
    def full_name(self) -> str:
        return f"{self.sobject}.{self.name}"


@dataclass(frozen=True)
class PermissionSetSpec:
    name: str
    label: str
    description: str


@dataclass(frozen=True)
class Manifest:
    objects: tuple[ObjectSpec, ...]
    fields: tuple[FieldSpec, ...]
    business_processes: tuple[BusinessProcessSpec, ...]
    record_types: tuple[RecordTypeSpec, ...]
    permission_set: PermissionSetSpec
    _by_name: dict[str, ObjectSpec] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        self._by_name.update({o.name: o for o in self.objects})

    def object(self, name: str) -> ObjectSpec:
        return self._by_name[name]

    def fields_of(self, sobject: str) -> list[FieldSpec]:
        return [f for f in self.fields if f.sobject == sobject]

    def field(self, full_name: str) -> FieldSpec:
        for f in self.fields:
            if f.full_name == full_name:
                return f
        raise KeyError(full_name)

    def owned_objects(self) -> list[ObjectSpec]:
        return [o for o in self.objects if o.owned]

    def granted_fields(self) -> list[FieldSpec]:
        """Fields the permission set grants read/edit on.

        Platform event fields have no field-level security in Salesforce (only the event's
        Create/Read object permissions), so they are left out.
        """
        return [f for f in self.fields if not f.on_event]


def _pick(*values: str | tuple[str, str]) -> tuple[PicklistValue, ...]:
    out = []
    for v in values:
        api, label = (v, v) if isinstance(v, str) else v
        out.append(PicklistValue(api, label))
    return tuple(out)


# Stripe's subscription statuses (API values; the sync writes them unchanged).
SUBSCRIPTION_STATUSES = _pick(
    ("incomplete", "Incomplete"),
    ("incomplete_expired", "Incomplete Expired"),
    ("trialing", "Trialing"),
    ("active", "Active"),
    ("past_due", "Past Due"),
    ("canceled", "Canceled"),
    ("unpaid", "Unpaid"),
    ("paused", "Paused"),
)

EVENT_TYPES = ("started", "succeeded", "failed", "exhausted")

DEFAULT_RECOVERY_STAGES = ("Prospecting", "Negotiation/Review", "Closed Won", "Closed Lost")
EXPANSION_STAGES = (
    "Prospecting",
    "Qualification",
    "Proposal/Price Quote",
    "Negotiation/Review",
    "Closed Won",
    "Closed Lost",
)


def _ordered_unique(values: Iterable[str]) -> tuple[str, ...]:
    seen: dict[str, None] = {}
    for v in values:
        seen.setdefault(v, None)
    return tuple(seen)


def build_manifest(recovery_stages: Sequence[str] = DEFAULT_RECOVERY_STAGES) -> Manifest:
    """The full schema. `recovery_stages` are the Opportunity stages the recovery sales
    process must offer: the values of the profile's stage mapping, so that every stage the
    sync writes is valid for the Recovery record type."""
    rc, ev = RECOVERY_OBJECT, RECOVERY_EVENT
    T, P, N, C = FieldKind.TEXT, FieldKind.PICKLIST, FieldKind.NUMBER, FieldKind.CURRENCY
    DT, D, CB, LK = FieldKind.DATETIME, FieldKind.DATE, FieldKind.CHECKBOX, FieldKind.LOOKUP

    objects = (
        ObjectSpec(
            rc, ObjectKind.CUSTOM, "LostChurn Recovery", "LostChurn Recoveries",
            "One failed-payment recovery tracked by LostChurn.",
            name_field_label="Recovery Number", name_display_format="LCR-{000000}",
        ),
        ObjectSpec(
            ev, ObjectKind.EVENT, "LostChurn Recovery Event", "LostChurn Recovery Events",
            "Published by lc-console when a recovery starts, succeeds, fails or is exhausted.",
        ),
        ObjectSpec("Contact", ObjectKind.STANDARD),
        ObjectSpec("Account", ObjectKind.STANDARD),
        ObjectSpec("Opportunity", ObjectKind.STANDARD),
    )

    fields = (
        # LostChurn_Recovery__c
        FieldSpec(rc, "Recovery_ID__c", "Recovery ID", T, "LostChurn recovery id (idempotency key).",
                  length=64, external_id=True, unique=True),
        FieldSpec(rc, "Status__c", "Status", P, "Where the recovery stands.",
                  values=_pick("Started", "Retrying", "Succeeded", "Exhausted")),
        FieldSpec(rc, "Decline_Code__c", "Decline Code", T, "Card network decline code.", length=64),
        FieldSpec(rc, "Decline_Category__c", "Decline Category", T, "Soft, hard, fraud, ...",
                  length=32),
        FieldSpec(rc, "Retry_Count__c", "Retry Count", N, "Payment retries so far.",
                  precision=4, scale=0),
        FieldSpec(rc, "Recovered_Amount__c", "Recovered Amount", C, "Amount recovered.",
                  precision=16, scale=2),
        FieldSpec(rc, "Started_At__c", "Started At", DT, "When the first payment failed."),
        FieldSpec(rc, "Completed_At__c", "Completed At", DT, "When the recovery ended."),
        FieldSpec(rc, "Contact__c", "Contact", LK, "The customer's contact.",
                  reference_to="Contact", relationship_name="LostChurn_Recoveries",
                  relationship_label="LostChurn Recoveries"),
        FieldSpec(rc, "Opportunity__c", "Opportunity", LK, "The recovery opportunity.",
                  reference_to="Opportunity", relationship_name="LostChurn_Recoveries",
                  relationship_label="LostChurn Recoveries"),
        # Contact
        FieldSpec("Contact", "LostChurn_ID__c", "LostChurn ID", T, "Stripe customer id.",
                  length=64, external_id=True, unique=True),
        FieldSpec("Contact", "LostChurn_MRR__c", "LostChurn MRR", C, "Monthly recurring revenue.",
                  precision=16, scale=2),
        FieldSpec("Contact", "LostChurn_Recovery_Count__c", "LostChurn Recovery Count", N,
                  "Recoveries started for this contact.", precision=18, scale=0),
        FieldSpec("Contact", "LostChurn_Churn_Risk__c", "LostChurn Churn Risk", N,
                  "Churn risk score, 0-100.", precision=3, scale=0),
        # Account
        FieldSpec("Account", "LostChurn_Stripe_Customer_ID__c", "LostChurn Stripe Customer ID", T,
                  "Stripe customer id of the account's billing customer.",
                  length=255, external_id=True),
        FieldSpec("Account", "LostChurn_MRR__c", "LostChurn MRR", C, "Monthly recurring revenue.",
                  precision=16, scale=2),
        FieldSpec("Account", "LostChurn_CLV__c", "LostChurn CLV", C, "Customer lifetime value.",
                  precision=16, scale=2),
        FieldSpec("Account", "LostChurn_CLV_Tier__c", "LostChurn CLV Tier", P, "CLV tier.",
                  values=_pick("High", "Mid", "Low")),
        FieldSpec("Account", "LostChurn_Last_Payment_Date__c", "LostChurn Last Payment Date", D,
                  "Date of the last successful payment."),
        FieldSpec("Account", "LostChurn_Payment_Health__c", "LostChurn Payment Health", P,
                  "Payment health over the health window.", values=_pick("Green", "Yellow", "Red")),
        FieldSpec("Account", "LostChurn_Churn_Risk_Flag__c", "LostChurn Churn Risk Flag", CB,
                  "Set when the account is at risk of churning."),
        FieldSpec("Account", "LostChurn_Subscription_Status__c", "LostChurn Subscription Status", P,
                  "Stripe subscription status.", values=SUBSCRIPTION_STATUSES),
        # Opportunity
        FieldSpec("Opportunity", "LostChurn_Recovery_ID__c", "LostChurn Recovery ID", T,
                  "Makes recovery opportunities idempotent.",
                  length=64, external_id=True, unique=True),
        # Platform event: only Text, Number, Date, DateTime, Checkbox and Long Text Area exist
        # on platform events, so the event type is a Text holding one of EVENT_TYPES.
        FieldSpec(ev, "Recovery_ID__c", "Recovery ID", T, "LostChurn recovery id.", length=64),
        FieldSpec(ev, "Event_Type__c", "Event Type", T,
                  "One of: " + ", ".join(EVENT_TYPES) + ".", length=32),
        FieldSpec(ev, "Customer_Email__c", "Customer Email", T, "The customer's email.",
                  length=255),
        FieldSpec(ev, "Amount__c", "Amount", N, "Amount concerned.", precision=16, scale=2),
        FieldSpec(ev, "Decline_Code__c", "Decline Code", T, "Card network decline code.",
                  length=64),
    )

    stages = _ordered_unique(recovery_stages) or DEFAULT_RECOVERY_STAGES
    business_processes = (
        BusinessProcessSpec("Opportunity", "LostChurn_Recovery_Process",
                            "Stages of a failed-payment recovery (from the stage mapping).",
                            stages, stages[0]),
        BusinessProcessSpec("Opportunity", "LostChurn_Expansion_Process",
                            "Stages of an expansion opportunity.",
                            EXPANSION_STAGES, EXPANSION_STAGES[0]),
    )
    record_types = (
        RecordTypeSpec("Opportunity", "LostChurn_Recovery", "Recovery",
                       "LostChurn_Recovery_Process", "Failed-payment recovery opportunities."),
        RecordTypeSpec("Opportunity", "LostChurn_Expansion", "Expansion",
                       "LostChurn_Expansion_Process", "Expansion opportunities."),
    )
    permission_set = PermissionSetSpec(
        PERMISSION_SET, "LostChurn Integration",
        "Read and edit on every LostChurn field and object, for the lc-console user.",
    )
    return Manifest(objects, fields, business_processes, record_types, permission_set)


MANIFEST = build_manifest()
