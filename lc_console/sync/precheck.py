"""Would Salesforce reject this payload? Checked against the org's describe before sending.

A record that fails here goes to the failures table with the code and message Salesforce
would give, without spending an API call. The checks, in Salesforce's order of reporting:
unknown field (INVALID_FIELD), a field the user may not set (INVALID_FIELD_FOR_INSERT_UPDATE),
type (INVALID_TYPE_ON_FIELD_IN_RECORD, MALFORMED_ID), length (STRING_TOO_LONG), number
range (NUMBER_OUTSIDE_VALID_RANGE), e-mail format (INVALID_EMAIL_ADDRESS), restricted
picklist (INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST), required fields (REQUIRED_FIELD_MISSING).

Values are the sync's plain values (str, bool, int, Decimal, date, datetime) after the
engine resolved lookups: an Id string, or a `Ref` left for an external-id relationship.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from lc_console.sync.describe import FieldInfo, ObjectInfo
from lc_console.sync.model import Ref

TEXT_TYPES = {"string", "textarea", "email", "url", "phone", "picklist", "combobox",
              "encryptedstring", "multipicklist"}
NUMBER_TYPES = {"double", "currency", "percent", "int", "long"}
_ID = re.compile(r"^[A-Za-z0-9]{15}(?:[A-Za-z0-9]{3})?$")
# Salesforce's own check is looser than RFC 5322 but rejects these shapes.
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


@dataclass(frozen=True)
class Problem:
    code: str
    message: str
    fields: tuple[str, ...]


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float | Decimal) and not isinstance(value, bool)


def _check_value(obj: ObjectInfo, f: FieldInfo, value: Any) -> Problem | None:
    name = f.name
    if f.type in TEXT_TYPES:
        if not isinstance(value, str):
            return Problem("INVALID_TYPE_ON_FIELD_IN_RECORD",
                           f"{name}: value not of required type: {value}", (name,))
        if f.length and len(value) > f.length:
            return Problem("STRING_TOO_LONG",
                           f"{name}: data value too large: {value[:40]} (max length={f.length})",
                           (name,))
        if f.type == "email" and not _EMAIL.match(value):
            return Problem("INVALID_EMAIL_ADDRESS", f"{name}: invalid email address: {value}",
                           (name,))
        if f.type == "picklist" and f.restricted and value not in f.picklist:
            return Problem("INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                           f"{name}: bad value for restricted picklist field: {value}", (name,))
        return None
    if f.type == "boolean":
        if not isinstance(value, bool):
            return Problem("INVALID_TYPE_ON_FIELD_IN_RECORD",
                           f"{name}: value not of required type: {value}", (name,))
        return None
    if f.type in NUMBER_TYPES:
        if not _is_number(value):
            return Problem("INVALID_TYPE_ON_FIELD_IN_RECORD",
                           f"{name}: value not of required type: {value}", (name,))
        if f.precision:
            try:
                whole = abs(Decimal(str(value))).quantize(Decimal(1), rounding="ROUND_DOWN")
            except InvalidOperation:
                whole = Decimal(0)
            if len(str(int(whole))) > max(f.precision - f.scale, 1):
                return Problem("NUMBER_OUTSIDE_VALID_RANGE",
                               f"{name}: value outside of valid range on numeric field: {value}",
                               (name,))
        return None
    if f.type == "date":
        if isinstance(value, dt.datetime) or not isinstance(value, dt.date):
            return Problem("INVALID_TYPE_ON_FIELD_IN_RECORD",
                           f"{name}: value not of required type: {value}", (name,))
        return None
    if f.type == "datetime":
        if not isinstance(value, dt.datetime):
            return Problem("INVALID_TYPE_ON_FIELD_IN_RECORD",
                           f"{name}: value not of required type: {value}", (name,))
        return None
    if f.type == "reference":
        if isinstance(value, Ref):
            if value.sobject not in f.reference_to:
                return Problem("INVALID_FIELD",
                               f"{name} does not point at {value.sobject} records", (name,))
            return None
        if not isinstance(value, str) or not _ID.match(value):
            label = f"{obj.name} ID" if name == "Id" else name
            return Problem("MALFORMED_ID", f"{label}: id value of incorrect type: {value}",
                           (name,))
        return None
    return None


def check(obj: ObjectInfo | None, sobject: str, values: Mapping[str, Any], *,
          create: bool, key_field: str | None = None) -> Problem | None:
    """The first reason Salesforce would reject `values` (None when it would accept them).

    `values` holds the fields sent; on create, None values are left out of the payload, so
    they only matter through the required-field check."""
    if obj is None:
        return Problem("INVALID_TYPE", f"sObject type '{sobject}' is not supported. The "
                       "LostChurn schema is not installed, or the user cannot see it.", ())
    not_writable: list[str] = []
    for name in values:
        f = obj.field(name)
        if f is None:
            return Problem("INVALID_FIELD",
                           f"No such column '{name}' on sobject of type {sobject}", (name,))
        if name == "Id" or (key_field and f.name == key_field and not create):
            continue
        if not (f.createable if create else f.updateable):
            not_writable.append(f.name)
    if not_writable:
        return Problem(
            "INVALID_FIELD_FOR_INSERT_UPDATE",
            f"Unable to {'create' if create else 'create/update'} fields: "
            f"{', '.join(not_writable)}. Please check the security settings of this field and "
            "verify that it is read/write for your profile or permission set.",
            tuple(not_writable))
    missing: list[str] = []
    for name, value in values.items():
        f = obj.field(name)
        assert f is not None
        if value is None:
            if not f.nillable and f.type != "boolean" and not (create and f.defaulted_on_create):
                missing.append(f.name)
            continue
        problem = _check_value(obj, f, value)
        if problem is not None:
            return problem
    if create:
        given = {n.lower() for n, v in values.items() if v is not None}
        for f in obj.fields.values():
            if (not f.nillable and f.createable and not f.defaulted_on_create
                    and f.type != "boolean" and f.name.lower() not in given
                    and f.name not in missing):
                missing.append(f.name)
    if missing:
        return Problem("REQUIRED_FIELD_MISSING",
                       f"Required fields are missing: [{', '.join(missing)}]", tuple(missing))
    return None
