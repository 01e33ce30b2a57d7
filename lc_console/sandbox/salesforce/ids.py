"""Salesforce record ids: 15-char case-sensitive ids and their 18-char case-insensitive form.

An id is `<3-char key prefix><2-char pod><1 reserved><9 base-62 counter>` (15 chars), plus a
3-char suffix that encodes which of the 15 chars are upper-case letters, so the 18-char form
survives case-insensitive handling. The sandbox always emits 18-char ids and accepts 15-char
ids (and 18-char ids in any letter case) as equivalent: pass anything through `normalize()`.

    new_id("003")            -> "0038d000000001AAAA"-style id (unique per process + org seed)
    normalize("0038d000000001A") -> the 18-char form
    prefix_of(id)            -> "003"
"""

from __future__ import annotations

import itertools
import re
import threading

# Key prefixes of the objects the sandbox knows. Custom objects get a0*, platform events e0*.
KEY_PREFIXES: dict[str, str] = {
    "Account": "001",
    "Contact": "003",
    "User": "005",
    "Opportunity": "006",
    "Task": "00T",
    "Organization": "00D",
    "Profile": "00e",
    "CustomField": "00N",
    "RecordType": "012",
    "BusinessProcess": "019",
    "CustomObject": "01I",
    "QueryLocator": "01g",
    "PermissionSet": "0PS",
    "PermissionSetAssignment": "0Pa",
    "AsyncResult": "0Af",  # Metadata API deploy / retrieve ids
    "BulkJob": "750",  # Bulk API 2.0 job ids
}

_ALNUM62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_SUFFIX = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
_SUFFIX_INDEX = {c: i for i, c in enumerate(_SUFFIX)}
_ID_RE = re.compile(r"[0-9A-Za-z]{15}(?:[0-9A-Za-z]{3})?")
POD = "8d"  # fixed instance/pod chars: every sandbox id looks like it came from one pod

_counters: dict[str, itertools.count[int]] = {}
_counters_lock = threading.Lock()


class MalformedIdError(ValueError):
    """The string is not a 15/18-char Salesforce id (or its suffix does not decode)."""


_UPPER_BITS = str.maketrans({c: "1" if "A" <= c <= "Z" else "0" for c in _ALNUM62})


def suffix(id15: str) -> str:
    """The 3-char case-encoding suffix of a 15-char id: per 5-char chunk, bit i set when char
    i is an upper-case letter, mapped onto A-Z0-5."""
    bits = id15.translate(_UPPER_BITS)
    return (_SUFFIX[int(bits[4::-1], 2)] + _SUFFIX[int(bits[9:4:-1], 2)]
            + _SUFFIX[int(bits[14:9:-1], 2)])  # fmt: skip


def to18(id15: str) -> str:
    """15-char id -> 18-char id."""
    return id15 + suffix(id15)


def normalize(value: str) -> str:
    """Return the canonical 18-char id for a 15- or 18-char id; raise MalformedIdError.

    An 18-char id is case-insensitive: its suffix restores the case of the first 15 chars,
    as Salesforce does, so "0038D000000001aAAA" and "0038d000000001AAAA" name the same record.
    """
    if not isinstance(value, str) or not _ID_RE.fullmatch(value):
        raise MalformedIdError(f"malformed id {value}")
    if len(value) == 15:
        return to18(value)
    if value[15:] == suffix(value[:15]):  # already canonical (the common case)
        return value
    head, tail = value[:15], value[15:].upper()
    chars = []
    for chunk in range(3):
        bits = _SUFFIX_INDEX.get(tail[chunk])
        if bits is None:
            raise MalformedIdError(f"malformed id {value}")
        for i, ch in enumerate(head[chunk * 5 : chunk * 5 + 5]):
            if ch.isalpha():
                ch = ch.upper() if bits & (1 << i) else ch.lower()
            elif bits & (1 << i):
                raise MalformedIdError(f"malformed id {value}")
            chars.append(ch)
    fixed = "".join(chars)
    return fixed + suffix(fixed)


def try_normalize(value: object) -> str | None:
    """normalize() or None when the value is not an id."""
    if not isinstance(value, str):
        return None
    try:
        return normalize(value)
    except MalformedIdError:
        return None


def looks_like_id(value: object) -> bool:
    return isinstance(value, str) and bool(_ID_RE.fullmatch(value))


def prefix_of(record_id: str) -> str:
    return record_id[:3]


def _base62(n: int, width: int) -> str:
    chars = []
    for _ in range(width):
        n, r = divmod(n, 62)
        chars.append(_ALNUM62[r])
    if n:
        raise OverflowError("id counter exhausted")
    return "".join(reversed(chars))


def new_id(prefix: str) -> str:
    """A fresh 18-char id with the given 3-char key prefix (thread-safe, never repeats)."""
    with _counters_lock:
        counter = _counters.get(prefix)
        if counter is None:
            counter = _counters[prefix] = itertools.count(1)
        n = next(counter)
    return to18(f"{prefix}{POD}0{_base62(n, 9)}")


def bump_counter(record_id: str) -> None:
    """Make new_id() never return ids at or below this one (used when loading saved state)."""
    rid = normalize(record_id)
    if rid[3:5] != POD:
        return
    n = 0
    for ch in rid[6:15]:
        n = n * 62 + _ALNUM62.index(ch)
    prefix = rid[:3]
    with _counters_lock:
        counter = _counters.get(prefix)
        current = next(counter) if counter is not None else 1
        _counters[prefix] = itertools.count(max(current, n + 1))


def custom_prefix(index: int, platform_event: bool = False) -> str:
    """Key prefix for the index-th custom object (a00, a01, ...) or platform event (e00...)."""
    head = "e" if platform_event else "a"
    return head + _base62(index, 2)
