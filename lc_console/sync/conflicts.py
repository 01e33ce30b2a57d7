"""The conflict rules, as one function: what to write of a desired record, and why.

    decide(desired, current, last_written, policies) -> [FieldDecision, ...]

- `desired`: field -> value the Stripe state asks for (Refs must be resolved to Ids, or
  compared as given; see `same_value`).
- `current`: field -> value Salesforce holds now; None when the record does not exist yet.
- `last_written`: field -> value the console last wrote (the store keeps it); a field
  missing here was never written by the console.
- `policies`: field -> lostchurn_wins | salesforce_wins | fill_if_empty | key.

Per field, in this order:
1. new record (current is None): written ("create").
2. Salesforce already holds the value: skipped ("unchanged"), which saves the call and
   avoids edit loops.
3. key: always written (it is how the record is addressed).
4. lostchurn_wins: written.
5. fill_if_empty: written only when Salesforce's value is empty (null or "").
6. salesforce_wins: written only when nobody changed the field in Salesforce since the
   console last wrote it (current == last written), or when it is empty. A field the console
   never wrote that already holds a value belongs to Salesforce.

A person's edit is detected by comparing Salesforce's current value with the last value
the console wrote. Values compare as Salesforce stores them: numbers numerically, dates and
datetimes as instants, 15/18-character Ids on their 15-character form, null equal to "".
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from decimal import Decimal, InvalidOperation
from typing import Any

from lc_console.sync.model import KEY_POLICY, DesiredRecord, IdKey, Ref

LOSTCHURN_WINS, SALESFORCE_WINS, FILL_IF_EMPTY = "lostchurn_wins", "salesforce_wins", "fill_if_empty"
_MISSING = object()


@dataclass(frozen=True)
class FieldDecision:
    field: str
    write: bool
    value: Any  # the value to write (the desired one)
    current: Any  # Salesforce's value (None for a new record)
    policy: str
    rule: str  # create | unchanged | key | lostchurn_wins | salesforce_wins | fill_if_empty
    reason: str  # one line for the dry run
    source: str = ""  # the mapping that produced the value (e.g. "account.mrr")


def is_empty(value: Any) -> bool:
    return value is None or (isinstance(value, str) and value.strip() == "")


_ID = re.compile(r"^[A-Za-z0-9]{15}(?:[A-Za-z0-9]{3})?$")
_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}T")


def _canonical(value: Any) -> Any:
    if isinstance(value, Ref) and isinstance(value.key, IdKey):
        value = value.key.id
    if is_empty(value):
        return None
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float | Decimal):
        try:
            return Decimal(str(value)).normalize()
        except InvalidOperation:
            return value
    if isinstance(value, dt.datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=dt.UTC)
        return moment.astimezone(dt.UTC).replace(microsecond=0)
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        text = value.strip()
        if _DATETIME.match(text):
            try:
                moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00").replace(
                    "+0000", "+00:00"))
                return _canonical(moment)
            except ValueError:
                return text
        if len(text) == 10 and text[4] == "-" and text[7] == "-":
            try:
                return dt.date.fromisoformat(text)
            except ValueError:
                return text
        return text
    return value


def same_value(a: Any, b: Any) -> bool:
    """Whether Salesforce would consider the two values equal."""
    ca, cb = _canonical(a), _canonical(b)
    if isinstance(ca, Decimal) and isinstance(cb, str | Decimal):
        try:
            return ca == Decimal(str(cb))
        except InvalidOperation:
            return False
    if isinstance(cb, Decimal) and isinstance(ca, str):
        return same_value(b, a)
    if (isinstance(ca, str) and isinstance(cb, str) and len(ca) != len(cb)
            and _ID.match(ca) and _ID.match(cb)):
        return ca[:15] == cb[:15]  # an 18-character Id and its 15-character form
    return bool(ca == cb)


def decide_field(field: str, desired: Any, current: Any, last_written: Any, policy: str,
                 *, new_record: bool) -> FieldDecision:
    def out(write: bool, rule: str, reason: str) -> FieldDecision:
        return FieldDecision(field, write, desired, None if new_record else current, policy,
                             rule, reason)

    if new_record:
        return out(True, "create", "new record")
    if same_value(desired, current):
        return out(False, "unchanged", "Salesforce already holds this value")
    if policy == KEY_POLICY:
        return out(True, "key", "upsert key")
    if policy == LOSTCHURN_WINS:
        return out(True, LOSTCHURN_WINS, "LostChurn wins: value from Stripe")
    if policy == FILL_IF_EMPTY:
        if is_empty(current):
            return out(True, FILL_IF_EMPTY, "fill if empty: empty in Salesforce")
        return out(False, FILL_IF_EMPTY, "fill if empty: Salesforce already has a value")
    if policy == SALESFORCE_WINS:
        if is_empty(current):
            return out(True, SALESFORCE_WINS, "Salesforce wins: empty in Salesforce")
        if last_written is _MISSING:
            return out(False, SALESFORCE_WINS,
                       "Salesforce wins: value set in Salesforce, never written by LostChurn")
        if same_value(current, last_written):
            return out(True, SALESFORCE_WINS,
                       "Salesforce wins: not edited in Salesforce since the last sync")
        return out(False, SALESFORCE_WINS,
                   f"Salesforce wins: edited in Salesforce since the last sync "
                   f"(LostChurn wrote {last_written!r})")
    raise ValueError(f"unknown conflict policy {policy!r} for {field}")


def decide(desired: Mapping[str, Any], current: Mapping[str, Any] | None,
           last_written: Mapping[str, Any], policies: Mapping[str, str]) -> list[FieldDecision]:
    """Every desired field with whether to write it and the rule that decided."""
    new_record = current is None
    return [
        decide_field(name, value, (current or {}).get(name),
                     last_written.get(name, _MISSING), policies.get(name, LOSTCHURN_WINS),
                     new_record=new_record)
        for name, value in desired.items()
    ]


def decide_record(record: DesiredRecord, current: Mapping[str, Any] | None,
                  last_written: Mapping[str, Any]) -> list[FieldDecision]:
    """`decide` for a derived record, with each decision naming the mapping behind it."""
    desired = {name: f.value for name, f in record.fields.items()}
    policies = {name: f.policy for name, f in record.fields.items()}
    return [replace(d, source=record.fields[d.field].source)
            for d in decide(desired, current, last_written, policies)]


def fields_to_write(desired: Mapping[str, Any], current: Mapping[str, Any] | None,
                    last_written: Mapping[str, Any],
                    policies: Mapping[str, str]) -> dict[str, Any]:
    """Just the field -> value pairs to send."""
    return {d.field: d.value for d in decide(desired, current, last_written, policies) if d.write}
