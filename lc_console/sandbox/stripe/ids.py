"""Deterministic Stripe-shaped ids that decode back to their object number.

An id is the prefix plus a base62 string computed from (kind, number) by an invertible
affine map, so ids look random, never collide, are stable for a seed whatever the clock, and
need no lookup table: `decode` turns an id back into the number that indexes the ledger.
Long ids look like `evt_1Pgc76B7WZ01zgkWwyRHS12y` ("1", 5 chars, a 10-char account tag,
8 chars); short ones like `cus_QXg1o8vcGmoR32` (14 chars).
"""

from __future__ import annotations

import hashlib

ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_INDEX = {c: i for i, c in enumerate(ALPHABET)}

# Object kinds and their id prefixes; "long" kinds use the account-tagged 24-char form.
PREFIXES = {
    "event": ("evt", True),
    "customer": ("cus", False),
    "subscription": ("sub", True),
    "subscription_item": ("si", False),
    "invoice": ("in", True),
    "line_item": ("il", True),
    "invoice_payment": ("inpay", True),
    "payment_intent": ("pi", True),
    "charge": ("ch", True),
    "refund": ("re", True),
    "payment_method": ("pm", True),
    "balance_transaction": ("txn", True),
    "discount": ("di", True),
    "product": ("prod", False),
    "price": ("price", True),
    "request": ("req", False),
}
_SHORT_LEN = 14
_LONG_RANDOM_LEN = 13  # 5 before the account tag + 8 after it
_SHORT_SPACE = 62**_SHORT_LEN
_LONG_SPACE = 62**_LONG_RANDOM_LEN


_PAIRS = [a + b for a in ALPHABET for b in ALPHABET]


def _encode(value: int, width: int) -> str:
    """`value` in base62, left-padded to `width` (two digits per step: ids are hot)."""
    chunks = []
    for _ in range((width + 1) // 2):
        value, rem = divmod(value, 3844)
        chunks.append(_PAIRS[rem])
    return "".join(reversed(chunks))[-width:]


def _decode(text: str) -> int | None:
    value = 0
    for ch in text:
        digit = _INDEX.get(ch)
        if digit is None:
            return None
        value = value * 62 + digit
    return value


def _digest(*parts: str) -> int:
    return int.from_bytes(hashlib.sha256("|".join(parts).encode()).digest(), "big")


def _multiplier(space: int, salt: int) -> int:
    # Coprime with 62**k: odd and not a multiple of 31.
    m = salt % space
    m |= 1
    while m % 31 == 0:
        m += 2
    return m


class IdCodec:
    """Ids of one account in one mode (test or live)."""

    def __init__(self, seed: int, mode: str) -> None:
        self.seed = seed
        self.mode = mode
        tag_value = _digest("acct-tag", str(seed)) % (62**10)
        self.account_tag = _encode(tag_value, 10)
        self.account_id = "acct_1" + _encode(_digest("acct", str(seed)) % 62**5, 5) + self.account_tag
        self._params: dict[str, tuple[str, bool, int, int, int]] = {}
        for kind, (prefix, long) in PREFIXES.items():
            space = _LONG_SPACE if long else _SHORT_SPACE
            mult = _multiplier(space, _digest("mult", kind, str(seed), mode))
            offset = _digest("offset", kind, str(seed), mode) % space
            inverse = pow(mult, -1, space)
            self._params[kind] = (prefix, long, mult, offset, inverse)
        self._prefix_kind = {prefix: kind for kind, (prefix, _l) in PREFIXES.items()}
        self._made: dict[tuple[str, int], str] = {}

    def make(self, kind: str, number: int) -> str:
        made = self._made.get((kind, number))
        if made is not None:
            return made
        if len(self._made) > 200_000:
            self._made.clear()  # bounded: rendering a page reuses a handful of ids
        made = self._made[(kind, number)] = self._make(kind, number)
        return made

    def _make(self, kind: str, number: int) -> str:
        prefix, long, mult, offset, _inv = self._params[kind]
        if long:
            body = _encode((number * mult + offset) % _LONG_SPACE, _LONG_RANDOM_LEN)
            return f"{prefix}_1{body[:5]}{self.account_tag}{body[5:]}"
        body = _encode((number * mult + offset) % _SHORT_SPACE, _SHORT_LEN)
        return f"{prefix}_{body}"

    def decode(self, kind: str, text: str) -> int | None:
        """The object number an id encodes, or None when it is not an id of this codec."""
        prefix, long, _mult, offset, inverse = self._params[kind]
        head = prefix + "_"
        if not text.startswith(head):
            return None
        body = text[len(head) :]
        if long:
            if len(body) != 24 or body[0] != "1" or body[6:16] != self.account_tag:
                return None
            value = _decode(body[1:6] + body[16:])
            space = _LONG_SPACE
        else:
            if len(body) != _SHORT_LEN:
                return None
            value = _decode(body)
            space = _SHORT_SPACE
        if value is None:
            return None
        return ((value - offset) * inverse) % space

    def kind_of(self, text: str) -> str | None:
        prefix, _sep, _rest = text.partition("_")
        return self._prefix_kind.get(prefix)
