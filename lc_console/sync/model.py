"""What the sync rules produce: the Salesforce records the org should hold, and inserts.

The rules never talk to Salesforce; they describe outcomes the engine can batch, coalesce,
check and explain:

- `DesiredRecord`: one record to upsert. `key` says how the engine addresses it (an external
  id, or the Id of a record matched in Salesforce). Every field carries the Salesforce field
  name, the *source name* of the value (a key of `RulesSettings.fields`, or a fixed name for
  structural fields such as upsert keys), the conflict policy to apply and the Stripe
  `Version` (event `created`, event id) that produced it. With that the engine can coalesce
  several events into one write (`ordering.coalesce`), decide what to write
  (`conflicts.decide`) and, in a dry run, name the rule that decided each field.
- `Insert`: a record that is created once and never updated (Tasks, platform events). It has
  a deterministic `dedupe_key`: the engine publishes or creates each key once (it keeps the
  keys it has written in its store), so replays and duplicate events add nothing.
- Lookup values are `Ref`s (a record addressed by Id or by external id) and record types are
  `RecordTypeRef`s (developer name, resolved to an Id from the org's describe). The engine
  turns them into Ids, external-id relationship references or composite-graph references.

Values are plain Python: str, bool, int, Decimal (money, 2 places), date, datetime (UTC),
Ref, RecordTypeRef or None. `to_json` gives the Salesforce REST form of a plain value.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import NamedTuple, TypeAlias


class Version(NamedTuple):
    """Where a value comes from in Stripe's history: newer wins (created, then event id)."""

    created: int
    event_id: str


@dataclass(frozen=True, order=True)
class ExternalKey:
    """Address a record by an external-id field (upsert creates it when missing)."""

    field: str
    value: str

    def __str__(self) -> str:
        return f"{self.field}={self.value}"


@dataclass(frozen=True, order=True)
class IdKey:
    """Address a record Salesforce already holds, by its Id (matched, e.g. by email)."""

    id: str

    def __str__(self) -> str:
        return f"Id={self.id}"


RecordKey: TypeAlias = ExternalKey | IdKey


@dataclass(frozen=True, order=True)
class Ref:
    """A lookup value: the record of `sobject` addressed by `key`."""

    sobject: str
    key: RecordKey

    def __str__(self) -> str:
        return f"{self.sobject}({self.key})"


@dataclass(frozen=True, order=True)
class RecordTypeRef:
    """A record type by developer name; the engine resolves its Id from describe."""

    sobject: str
    developer_name: str

    def __str__(self) -> str:
        return f"RecordType({self.sobject}.{self.developer_name})"


Value: TypeAlias = (
    str | bool | int | Decimal | dt.date | dt.datetime | Ref | RecordTypeRef | None
)

# Conflict policies (settings.POLICIES) plus the one structural fields use.
KEY_POLICY = "key"  # the upsert key itself: always part of the payload


@dataclass(frozen=True)
class DesiredField:
    name: str  # Salesforce field API name
    value: Value
    source: str  # source value name (RulesSettings.fields key) or "fixed:<name>"
    policy: str  # lostchurn_wins | salesforce_wins | fill_if_empty | key
    version: Version


@dataclass(frozen=True)
class DesiredRecord:
    """One Salesforce record as the Stripe state says it should be."""

    sobject: str
    key: RecordKey
    fields: Mapping[str, DesiredField]
    customer_id: str  # the Stripe customer it derives from (ordering is per customer)
    reason: str = ""  # what produced it, for the audit log and dry run

    @property
    def identity(self) -> tuple[str, RecordKey]:
        """Records with one identity are the same Salesforce record (coalesce by this)."""
        return (self.sobject, self.key)

    @property
    def version(self) -> Version:
        return max((f.version for f in self.fields.values()), default=Version(0, ""))

    def values(self) -> dict[str, Value]:
        return {name: f.value for name, f in self.fields.items()}


@dataclass(frozen=True)
class Insert:
    """A record created once (Task, platform event); `dedupe_key` makes it idempotent."""

    sobject: str
    fields: Mapping[str, Value]
    dedupe_key: str
    version: Version
    customer_id: str
    reason: str = ""


@dataclass(frozen=True)
class Derivation:
    """Everything one Stripe event means for Salesforce."""

    event_id: str
    event_type: str
    version: Version
    customer_id: str | None
    records: tuple[DesiredRecord, ...] = ()
    inserts: tuple[Insert, ...] = ()
    notes: tuple[str, ...] = field(default=())  # why something was not derived

    def record(self, sobject: str) -> DesiredRecord | None:
        """The first record of `sobject` (handy in tests and previews)."""
        return next((r for r in self.records if r.sobject == sobject), None)


# --- serialisation ------------------------------------------------------------------------


def to_json(value: Value) -> object:
    """The Salesforce REST form of a plain value (Refs are the engine's job)."""
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, dt.datetime):
        utc = value.astimezone(dt.UTC) if value.tzinfo else value.replace(tzinfo=dt.UTC)
        return utc.strftime("%Y-%m-%dT%H:%M:%S.000Z")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, Ref | RecordTypeRef):
        raise TypeError(f"{value} must be resolved by the engine before serialising")
    return value


def relationship_name(field_name: str) -> str:
    """Relationship name of a lookup field: Contact__c -> Contact__r, AccountId -> Account."""
    if field_name.endswith("__c"):
        return field_name[:-3] + "__r"
    if field_name.endswith("Id"):
        return field_name[:-2]
    raise ValueError(f"{field_name} is not a lookup field")


def utc_datetime(ts: int | None) -> dt.datetime | None:
    return None if ts is None else dt.datetime.fromtimestamp(int(ts), tz=dt.UTC)


def utc_date(ts: int | None) -> dt.date | None:
    moment = utc_datetime(ts)
    return None if moment is None else moment.date()
