"""Events arrive twice and out of order: per field, the newest Stripe state wins.

Every derived field carries the `Version` (event `created`, then event id) of the event
whose Stripe state produced it. Merging keeps, per (record, field), the value with the
highest version. That merge is commutative, associative and idempotent, so applying any
permutation of a customer's events, with duplicates, gives the same records as applying
them in order (the property tests check it). Inserts (Tasks, platform events) are kept
once per dedupe key, the oldest version first.

The engine uses:
- `coalesce(records)` to turn a batch's records into one write per Salesforce record;
- `apply(state, records)` / `accept(stored_version, incoming_version)` across batches, with
  the versions it keeps per field in its store, so an event replayed late never overwrites
  a newer value.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace

from lc_console.sync.model import DesiredField, DesiredRecord, Insert, RecordKey, Version

State = dict[tuple[str, RecordKey], DesiredRecord]


def accept(stored: Version | None, incoming: Version) -> bool:
    """Whether a value of `incoming` version may replace one of `stored` version."""
    return stored is None or tuple(incoming) >= tuple(stored)


def _tiebreak(field: DesiredField) -> tuple[object, ...]:
    # One event gives one value per field, so equal versions hold equal values; the repr
    # only makes the choice deterministic should a caller break that.
    return (tuple(field.version), repr(field.value))


def merge(a: DesiredRecord, b: DesiredRecord) -> DesiredRecord:
    """Field-wise newest-wins merge of two versions of one record."""
    if a.identity != b.identity:
        raise ValueError(f"cannot merge {a.identity} with {b.identity}")
    fields = dict(a.fields)
    for name, incoming in b.fields.items():
        held = fields.get(name)
        if held is None or _tiebreak(incoming) > _tiebreak(held):
            fields[name] = incoming
    newest = a if a.version >= b.version else b
    return replace(newest, fields=dict(sorted(fields.items())))


def apply(state: Mapping[tuple[str, RecordKey], DesiredRecord],
          records: Iterable[DesiredRecord]) -> State:
    out: State = dict(state)
    for record in records:
        held = out.get(record.identity)
        out[record.identity] = record if held is None else merge(held, record)
    return out


def coalesce(records: Iterable[DesiredRecord]) -> list[DesiredRecord]:
    """One record per Salesforce record, in a stable order."""
    merged = apply({}, records)
    return [merged[k] for k in sorted(merged, key=lambda k: (k[0], str(k[1])))]


def coalesce_inserts(inserts: Iterable[Insert]) -> list[Insert]:
    kept: dict[str, Insert] = {}
    for insert in inserts:
        held = kept.get(insert.dedupe_key)
        if held is None or (tuple(insert.version), repr(sorted(insert.fields.items()))) < (
                tuple(held.version), repr(sorted(held.fields.items()))):
            kept[insert.dedupe_key] = insert
    return [kept[k] for k in sorted(kept)]
