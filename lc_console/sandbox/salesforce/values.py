"""Field value coercion and formatting, shared by REST (JSON values) and Bulk (CSV strings).

Stored forms (compact, comparable): text-like and ids -> str; boolean -> bool; int -> int;
double / currency / percent -> float; date -> "YYYY-MM-DD" str; datetime -> int epoch ms.
`coerce()` turns an incoming value into the stored form or raises FieldValueError with the
Salesforce status code and message; `render()` turns a stored value into its JSON form.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, date, datetime, timedelta
from typing import Any

from lc_console.sandbox.salesforce.schema import FieldDef

TEXT_TYPES = frozenset({"string", "textarea", "email", "phone", "url", "picklist", "multipicklist"})
NUMBER_TYPES = frozenset({"int", "double", "currency", "percent"})

_EMAIL_RE = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+$")
_DT_RE = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?)?"
    r"\s*(Z|[+-]\d{2}:?\d{2})?$"
)
_TRUE = frozenset({"true", "1", "yes", "y", "on"})
_FALSE = frozenset({"false", "0", "no", "n", "off", ""})


class FieldValueError(ValueError):
    def __init__(self, code: str, message: str, field_name: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.field_name = field_name


def _bad_type(f: FieldDef, value: Any) -> FieldValueError:
    return FieldValueError(
        "INVALID_TYPE_ON_FIELD_IN_RECORD", f"{f.label}: value not of required type: {value}", f.name
    )


def parse_datetime_ms(text: str) -> int | None:
    """ISO 8601 date or datetime (Z, +0000, +00:00 or no zone = UTC) -> epoch ms, or None."""
    m = _DT_RE.match(text.strip())
    if not m:
        return None
    y, mo, d, h, mi, s, frac, tz = m.groups()
    try:
        dt = datetime(int(y), int(mo), int(d), int(h or 0), int(mi or 0), int(s or 0), tzinfo=UTC)
    except ValueError:
        return None
    ms = int(dt.timestamp() * 1000) + (int((frac or "0")[:3].ljust(3, "0")) if frac else 0)
    if tz and tz != "Z":
        sign = 1 if tz[0] == "+" else -1
        digits = tz[1:].replace(":", "")
        ms -= sign * (int(digits[:2]) * 3600 + int(digits[2:]) * 60) * 1000
    return ms


def format_datetime(ms: int) -> str:
    """Epoch ms -> Salesforce's JSON datetime form, e.g. 2025-01-31T12:00:00.000+0000."""
    dt = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=ms)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}+0000"


def today_iso(now_ms: int) -> str:
    return format_datetime(now_ms)[:10]


def coerce(f: FieldDef, value: Any) -> Any:
    """Incoming value -> stored form (None stays None). Reference ids are only normalised to
    strings here; Org checks their prefix and existence."""
    if value is None:
        return None
    t = f.type
    if t in TEXT_TYPES or t in ("id", "reference"):
        if isinstance(value, bool):
            text = "true" if value else "false"
        elif isinstance(value, int | float):
            text = _number_text(value)
        elif isinstance(value, str):
            text = value
        else:
            raise _bad_type(f, value)
        if text == "":
            return None
        if t in ("id", "reference"):
            return text
        if t == "multipicklist":
            return _multipicklist(f, text)
        if t == "picklist":
            return _picklist(f, text)
        if f.length and len(text) > f.length:
            raise FieldValueError(
                "STRING_TOO_LONG",
                f"{f.label}: data value too large: {text[:80]} (max length={f.length})",
                f.name,
            )
        if t == "email" and not _EMAIL_RE.match(text):
            raise FieldValueError(
                "INVALID_EMAIL_ADDRESS", f"{f.label}: invalid email address: {text}", f.name
            )
        return text
    if t == "boolean":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in _TRUE:
            return True
        if isinstance(value, str) and value.strip().lower() in _FALSE:
            return False
        if isinstance(value, int | float) and value in (0, 1):
            return bool(value)
        raise _bad_type(f, value)
    if t in NUMBER_TYPES:
        return _number(f, value)
    if t == "date":
        if not isinstance(value, str):
            raise _bad_type(f, value)
        text = value.strip()
        if text == "":
            return None
        if len(text) < 10 or (len(text) > 10 and parse_datetime_ms(text) is None):
            raise _bad_type(f, value)
        try:
            return date.fromisoformat(text[:10]).isoformat()
        except ValueError:
            raise _bad_type(f, value) from None
    if t == "datetime":
        if isinstance(value, str):
            if value.strip() == "":
                return None
            ms = parse_datetime_ms(value)
            if ms is None:
                raise _bad_type(f, value)
            return ms
        raise _bad_type(f, value)
    raise _bad_type(f, value)


def _number_text(value: float) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _number(f: FieldDef, value: Any) -> int | float:
    if isinstance(value, bool):
        raise _bad_type(f, value)
    if isinstance(value, str):
        text = value.strip()
        if text == "":
            return None  # type: ignore[return-value]
        try:
            num: float = float(text.replace(",", "")) if f.type != "int" else int(text)
        except ValueError:
            try:
                num = float(text)
            except ValueError:
                raise _bad_type(f, value) from None
    elif isinstance(value, int | float):
        num = value
    else:
        raise _bad_type(f, value)
    if isinstance(num, float) and (math.isnan(num) or math.isinf(num)):
        raise _bad_type(f, value)
    if f.type == "int":
        if isinstance(num, float) and not num.is_integer():
            raise _bad_type(f, value)
        num = int(num)
        if f.precision and len(str(abs(num))) > f.precision:
            raise _out_of_range(f, value)
        return num
    scale = f.scale
    num = round(float(num), scale)
    if f.precision:
        whole = int(abs(num))
        if whole and len(str(whole)) > f.precision - scale:
            raise _out_of_range(f, value)
    return num


def _out_of_range(f: FieldDef, value: Any) -> FieldValueError:
    return FieldValueError(
        "NUMBER_OUTSIDE_VALID_RANGE",
        f"{f.label}: value outside of valid range on numeric field: {value}",
        f.name,
    )


def _picklist(f: FieldDef, text: str) -> str:
    values = f.active_picklist_values
    if text in values:
        return text
    lowered = text.lower()
    for v in values:
        if v.lower() == lowered:
            return v
    if f.restricted_picklist:
        raise FieldValueError(
            "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
            f"{f.label}: bad value for restricted picklist field: {text}",
            f.name,
        )
    if f.length and len(text) > f.length:
        raise FieldValueError(
            "STRING_TOO_LONG",
            f"{f.label}: data value too large: {text[:80]} (max length={f.length})",
            f.name,
        )
    return text


def _multipicklist(f: FieldDef, text: str) -> str | None:
    out: list[str] = []
    for part in text.split(";"):
        part = part.strip()
        if part and part not in out:
            out.append(_picklist(f, part))
    return ";".join(out) or None


def render(f: FieldDef, stored: Any) -> Any:
    """Stored form -> JSON value."""
    if stored is None:
        return None
    if f.type == "datetime":
        return format_datetime(stored)
    return stored


def render_csv(f: FieldDef, stored: Any) -> str:
    """Stored form -> CSV cell text (Bulk API results)."""
    if stored is None:
        return ""
    if f.type == "datetime":
        return format_datetime(stored)
    if f.type == "boolean":
        return "true" if stored else "false"
    if isinstance(stored, float) and stored.is_integer() and f.scale == 0:
        return str(int(stored))
    return str(stored)


def index_key(f: FieldDef, stored: Any) -> Any:
    """Key used in unique / external-id indexes: text is case-folded unless case-sensitive."""
    if isinstance(stored, str) and not f.case_sensitive and f.type not in ("id", "reference"):
        low = stored.lower()
        return stored if low == stored else low
    return stored
