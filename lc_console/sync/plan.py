"""From a batch's derivations to the writes to send: pure, and explainable for the dry run.

    plan_batch(derivations, org) -> Plan

`org` (`OrgView`) is everything the engine read in bulk before planning: the describes, the
records Salesforce holds now for every identity of the batch (`current`), what the console
last wrote to them with the Stripe version of each field (`stored`), and the state of every
insert's dedupe key. Per record, in this order:

1. coalesce: one record per Salesforce record, newest Stripe state per field
   (`ordering.coalesce`); Tasks and platform events once per dedupe key.
2. resolve: a lookup `Ref` becomes the Id when the target exists (by external id or Id), else
   an external-id relationship reference (`{"Account": {"Ext__c": "v"}}`, with the type for
   polymorphic fields), which Salesforce resolves because parents are written first
   (`WRITE_ORDER`). A `RecordTypeRef` becomes the record type's Id from describe.
3. stale: a field whose stored version is newer than this one is dropped, so an event that
   arrives late (or a replayed window) never overwrites a newer value.
4. conflicts: `conflicts.decide_record` against the current values and last written values.
5. skip-unchanged: nothing but the key left to send -> no write at all.
6. pre-check against describe (`precheck.check`): a record Salesforce would reject becomes a
   rejection (it goes to failures without an API call).

Inserts: a dedupe key already written is skipped; a Task whose earlier create is in doubt
(sent, outcome unknown) and that the engine found in Salesforce is recorded as found, not
created again. Tasks carry their dedupe key in the Description (`TASK_REF_PREFIX`), which is
how the engine finds them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any

from lc_console.sync import ordering, precheck
from lc_console.sync.conflicts import FieldDecision, decide_record
from lc_console.sync.describe import ObjectInfo
from lc_console.sync.model import (
    KEY_POLICY,
    Derivation,
    DesiredRecord,
    ExternalKey,
    IdKey,
    Insert,
    RecordKey,
    RecordTypeRef,
    Ref,
    Version,
    to_json,
)
from lc_console.sync.precheck import Problem

# Parents before children: a child's external-id reference resolves against a parent
# written earlier in the same request.
WRITE_ORDER = ("Account", "Contact", "Opportunity", "LostChurn_Recovery__c", "Task",
               "LostChurn_Recovery_Event__e")
TASK_REF_PREFIX = "LostChurn ref: "

Identity = tuple[str, RecordKey]


def order_of(sobject: str) -> int:
    return WRITE_ORDER.index(sobject) if sobject in WRITE_ORDER else len(WRITE_ORDER)


@dataclass(frozen=True)
class Stored:
    """What the console last wrote to one record (JSON values) and the Stripe version of
    each field it wrote or found already holding the value."""

    values: Mapping[str, Any] = field(default_factory=dict)
    versions: Mapping[str, Version] = field(default_factory=dict)
    sf_id: str | None = None


@dataclass(frozen=True)
class InsertState:
    done: bool = False  # written and recorded: never again
    in_doubt: bool = False  # sent before, outcome unknown (crash, dropped connection)
    found_id: str | None = None  # the in-doubt Task, found in Salesforce


@dataclass(frozen=True)
class OrgView:
    describes: Mapping[str, ObjectInfo | None]
    current: Mapping[Identity, Mapping[str, Any]] = field(default_factory=dict)
    stored: Mapping[Identity, Stored] = field(default_factory=dict)
    inserts: Mapping[tuple[str, str], InsertState] = field(default_factory=dict)

    def current_id(self, identity: Identity) -> str | None:
        if isinstance(identity[1], IdKey):
            return identity[1].id
        row = self.current.get(identity)
        return str(row["Id"]) if row and row.get("Id") else None


@dataclass(frozen=True)
class RecordPlan:
    sobject: str
    key: RecordKey
    action: str  # create | update | skip | reject
    payload: dict[str, Any]  # the JSON record to send (no attributes); {} unless sent
    decisions: tuple[FieldDecision, ...]
    written: dict[str, Any]  # field -> JSON value to remember once written
    versions: dict[str, Version]  # merged versions to remember (written or unchanged)
    refs: dict[str, Ref]  # fields sent as relationship references, resolved after writing
    sf_id: str | None
    label: str  # what the admin reads in failures and the audit log
    customer_id: str
    event_id: str  # the newest event behind the record
    reason: str
    problem: Problem | None = None

    @property
    def identity(self) -> Identity:
        return (self.sobject, self.key)

    @property
    def operation(self) -> str:
        return "upsert" if isinstance(self.key, ExternalKey) else "update"

    @property
    def sends(self) -> bool:
        return self.action in ("create", "update")


@dataclass(frozen=True)
class InsertPlan:
    sobject: str
    dedupe_key: str
    action: str  # create | skip | found | reject
    payload: dict[str, Any]
    refs: dict[str, Ref]
    customer_id: str
    event_id: str
    reason: str
    problem: Problem | None = None
    found_id: str | None = None
    in_doubt: bool = False

    @property
    def sends(self) -> bool:
        return self.action == "create"


@dataclass(frozen=True)
class Plan:
    records: tuple[RecordPlan, ...]
    inserts: tuple[InsertPlan, ...]

    def to_send(self) -> list[RecordPlan | InsertPlan]:
        items: list[RecordPlan | InsertPlan] = [r for r in self.records if r.sends]
        items += [i for i in self.inserts if i.sends]
        return sorted(items, key=lambda p: order_of(p.sobject))

    def counts(self) -> dict[str, dict[str, int]]:
        """{object: {create, update, skip, reject}} (inserts: create, skip, reject)."""
        out: dict[str, dict[str, int]] = {}
        for item in [*self.records, *self.inserts]:
            row = out.setdefault(item.sobject, {"create": 0, "update": 0, "skip": 0,
                                                "reject": 0})
            action = "skip" if item.action == "found" else item.action
            row[action] += 1
        return dict(sorted(out.items(), key=lambda kv: order_of(kv[0])))


# --- values ---------------------------------------------------------------------------


def json_value(value: Any) -> Any:
    """The JSON form of a resolved plain value (Refs must be resolved or left as Ref)."""
    if isinstance(value, Ref):
        raise TypeError("unresolved Ref")
    return to_json(value)


def relationship_json(org: OrgView, sobject: str, field_name: str, ref: Ref) -> tuple[str, Any]:
    """(relationship name, reference body) for a lookup set by the parent's external id."""
    assert isinstance(ref.key, ExternalKey)
    info = org.describes.get(sobject)
    f = info.field(field_name) if info else None
    name = f.relationship_name if f and f.relationship_name else _relationship_name(field_name)
    body: dict[str, Any] = {ref.key.field: ref.key.value}
    if f is not None and f.polymorphic:
        body = {"attributes": {"type": ref.sobject}, **body}
    return name, body


def _relationship_name(field_name: str) -> str:
    if field_name.endswith("__c"):
        return field_name[:-3] + "__r"
    return field_name[:-2] if field_name.endswith("Id") else field_name


def _resolve(org: OrgView, sobject: str, value: Any) -> Any:
    """Ids for refs the org can resolve now; a Ref stays for a relationship reference; a
    RecordTypeRef that the org does not have stays as is (the pre-check reports it)."""
    if isinstance(value, Ref):
        found = org.current_id((value.sobject, value.key))
        return found if found else value
    if isinstance(value, RecordTypeRef):
        info = org.describes.get(value.sobject)
        rt_id = info.record_types.get(value.developer_name) if info else None
        return rt_id if rt_id else value
    return value


def _record_type_problem(sobject: str, values: Mapping[str, Any]) -> Problem | None:
    for name, value in values.items():
        if isinstance(value, RecordTypeRef):
            return Problem("INVALID_CROSS_REFERENCE_KEY",
                           f"Record type {value.developer_name} does not exist or is inactive "
                           f"on {value.sobject}: run `lc-console install` to repair the schema",
                           (name,))
    return None


def label_of(record: DesiredRecord) -> str:
    """A Contact is known by its email; every other record by its key value."""
    if record.sobject == "Contact":
        email = record.fields.get("Email")
        if email is not None and isinstance(email.value, str) and email.value:
            return email.value
    key = record.key
    return key.value if isinstance(key, ExternalKey) else key.id


def _key_field(record: DesiredRecord) -> str | None:
    return record.key.field if isinstance(record.key, ExternalKey) else None


# --- records --------------------------------------------------------------------------


def _stale(stored: Stored | None, name: str, version: Version) -> bool:
    held = stored.versions.get(name) if stored else None
    return held is not None and not ordering.accept(held, version)


def plan_record(record: DesiredRecord, org: OrgView) -> RecordPlan:
    identity = record.identity
    current = org.current.get(identity)
    if isinstance(record.key, IdKey) and current is None:
        # Addressed by Id but not read back (deleted, or not visible): update and let
        # Salesforce answer (ENTITY_IS_DELETED / NOT_FOUND).
        current = {"Id": record.key.id}
    stored = org.stored.get(identity)
    sf_id = org.current_id(identity) or (stored.sf_id if stored else None)
    create = current is None
    key_field = _key_field(record)

    resolved = {name: _resolve(org, record.sobject, f.value) for name, f in record.fields.items()}
    decisions: list[FieldDecision] = []
    live: dict[str, Any] = {}
    for name, f in record.fields.items():
        if f.policy != KEY_POLICY and not create and _stale(stored, name, f.version):
            held = stored.versions[name] if stored else None
            decisions.append(FieldDecision(
                name, False, resolved[name], (current or {}).get(name), f.policy, "stale",
                f"a newer Stripe state was already written (event {held.event_id if held else ''})",
                f.source))
        else:
            live[name] = name
    sub = DesiredRecord(record.sobject, record.key,
                        {n: _with_value(record.fields[n], resolved[n]) for n in live},
                        record.customer_id, record.reason)
    last_values = dict(stored.values) if stored else {}
    decisions += decide_record(sub, current, last_values)
    decisions.sort(key=lambda d: d.field)

    payload: dict[str, Any] = {}
    written: dict[str, Any] = {}
    refs: dict[str, Ref] = {}
    versions = dict(stored.versions) if stored else {}
    sending: dict[str, Any] = {}
    for d in decisions:
        f = record.fields[d.field]
        if d.rule == "unchanged":
            versions[d.field] = f.version
            continue
        if not d.write:
            continue
        if create and d.value is None:
            continue  # nothing to set on a new record
        sending[d.field] = d.value
        versions[d.field] = f.version
    changed = {n for n in sending if record.fields[n].policy != KEY_POLICY}
    base = dict(label=label_of(record), customer_id=record.customer_id,
                event_id=record.version.event_id, reason=record.reason)
    if not create and not changed:
        return RecordPlan(record.sobject, record.key, "skip", {}, tuple(decisions), {},
                          versions, {}, sf_id, **base)
    if key_field:
        sending[key_field] = record.key.value  # type: ignore[union-attr]
    problem = _record_type_problem(record.sobject, sending) or precheck.check(
        org.describes.get(record.sobject), record.sobject, sending, create=create,
        key_field=key_field)
    if problem is not None:
        return RecordPlan(record.sobject, record.key, "reject", {}, tuple(decisions), {}, {},
                          {}, sf_id, problem=problem, **base)
    for name, value in sending.items():
        if isinstance(value, Ref):
            rel, body = relationship_json(org, record.sobject, name, value)
            payload[rel] = body
            refs[name] = value
        else:
            payload[name] = json_value(value)
            written[name] = payload[name]
    if isinstance(record.key, IdKey):
        payload["Id"] = record.key.id
    return RecordPlan(record.sobject, record.key, "create" if create else "update", payload,
                      tuple(decisions), written, versions, refs, sf_id, **base)


def _with_value(f: Any, value: Any) -> Any:
    return replace(f, value=value) if f.value is not value else f


# --- inserts --------------------------------------------------------------------------


def _task_fields(insert: Insert) -> dict[str, Any]:
    values = dict(insert.fields)
    if insert.sobject == "Task":
        text = str(values.get("Description") or "")
        values["Description"] = (text + "\n\n" if text else "") + TASK_REF_PREFIX + insert.dedupe_key
    return values


def plan_insert(insert: Insert, org: OrgView) -> InsertPlan:
    state = org.inserts.get((insert.sobject, insert.dedupe_key), InsertState())
    base = dict(customer_id=insert.customer_id, event_id=insert.version.event_id,
                reason=insert.reason)
    if state.done:
        return InsertPlan(insert.sobject, insert.dedupe_key, "skip", {}, {}, **base)
    if state.found_id:
        return InsertPlan(insert.sobject, insert.dedupe_key, "found", {}, {},
                          found_id=state.found_id, **base)
    values = {n: _resolve(org, insert.sobject, v) for n, v in _task_fields(insert).items()}
    sending = {n: v for n, v in values.items() if v is not None}
    problem = precheck.check(org.describes.get(insert.sobject), insert.sobject, sending,
                             create=True)
    if problem is not None:
        readable = {n: plain(v) for n, v in sending.items()}
        return InsertPlan(insert.sobject, insert.dedupe_key, "reject", readable, {},
                          problem=problem, **base)
    payload: dict[str, Any] = {}
    refs: dict[str, Ref] = {}
    for name, value in sending.items():
        if isinstance(value, Ref):
            rel, body = relationship_json(org, insert.sobject, name, value)
            payload[rel] = body
            refs[name] = value
        else:
            payload[name] = json_value(value)
    return InsertPlan(insert.sobject, insert.dedupe_key, "create", payload, refs,
                      in_doubt=state.in_doubt, **base)


# --- the batch ------------------------------------------------------------------------


def coalesced(derivations: Iterable[Derivation]) -> tuple[list[DesiredRecord], list[Insert]]:
    derivations = list(derivations)
    records = ordering.coalesce(r for d in derivations for r in d.records)
    inserts = ordering.coalesce_inserts(i for d in derivations for i in d.inserts)
    return records, inserts


def plan_batch(derivations: Sequence[Derivation], org: OrgView) -> Plan:
    records, inserts = coalesced(derivations)
    record_plans = [plan_record(r, org) for r in records]
    insert_plans = [plan_insert(i, org) for i in inserts]
    record_plans.sort(key=lambda p: (order_of(p.sobject), str(p.key)))
    return Plan(tuple(record_plans), tuple(insert_plans))


def identities(derivations: Iterable[Derivation]) -> dict[str, set[RecordKey]]:
    """Per object, the keys of every record (and every lookup target) of the batch: what
    the engine reads from Salesforce before planning."""
    out: dict[str, set[RecordKey]] = {}
    for d in derivations:
        for r in d.records:
            out.setdefault(r.sobject, set()).add(r.key)
            for f in r.fields.values():
                if isinstance(f.value, Ref):
                    out.setdefault(f.value.sobject, set()).add(f.value.key)
        for i in d.inserts:
            for v in i.fields.values():
                if isinstance(v, Ref):
                    out.setdefault(v.sobject, set()).add(v.key)
    return out


def plain(value: Any) -> Any:
    """A JSON-friendly form of any plan value (for the dry run's --json)."""
    if isinstance(value, Ref | RecordTypeRef):
        return str(value)
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, dt.date):
        return to_json(value)
    return value
