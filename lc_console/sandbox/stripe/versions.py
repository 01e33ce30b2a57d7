"""Stripe API versions: parsing, validation and the breaking changes the sandbox renders.

Stripe renders every response in one API version: the request's `Stripe-Version`, else the
account's default; an event's `data.object` keeps the version the event was created under.
Additive changes reach every version, so the sandbox renders one current object and walks it
back across the breaking changes the console can see (see render.py).
"""

from __future__ import annotations

import re
from datetime import date

DEFAULT_API_VERSION = "2026-10-28.endive"
LEGACY_API_VERSION = "2020-08-27"

# Named releases: the first (breaking) version of each, in order. Versions on or after
# 2024-09-30 carry the release name as a suffix ("2025-03-31.basil").
RELEASES = (
    ("2024-09-30", "acacia"),
    ("2025-03-31", "basil"),
    ("2025-09-30", "clover"),
    ("2026-03-25", "dahlia"),
    ("2026-09-30", "endive"),
)
FIRST_NAMED = RELEASES[0][0]
OLDEST_VERSION = "2011-01-01"

# Breaking changes the renderer applies (version at which the new behaviour starts).
CHARGES_ON_PI_REMOVED = "2022-11-15"  # PaymentIntent.charges -> latest_charge; Charge.refunds includable
BASIL = "2025-03-31"  # invoice parent/payments, periods on items, taxes, no invoice on charge/PI
INVOICE_PAYMENT_EVENTS = "2025-03-31"  # invoice_payment objects and invoice_payment.paid
CLOVER = "2025-09-30"  # discount.coupon -> discount.source.coupon

_VERSION_RE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})(?:\.([a-z]+))?$")


class InvalidApiVersion(ValueError):
    """Raised for a Stripe-Version header Stripe would reject."""


def release_name(day: str) -> str | None:
    name = None
    for first, release in RELEASES:
        if day >= first:
            name = release
    return name


def parse_version(value: str) -> str:
    """Validate a Stripe API version string and return it normalised.

    Dates before 2024-09-30 are plain (`2020-08-27`); later ones need their release suffix
    (`2026-10-28.endive`). Dates after the newest release this sandbox knows are rejected, as
    Stripe rejects versions it has not released.
    """
    raw = value.strip()
    match = _VERSION_RE.match(raw)
    if not match:
        raise InvalidApiVersion(raw)
    year, month, day, suffix = match.groups()
    try:
        date(int(year), int(month), int(day))
    except ValueError:
        raise InvalidApiVersion(raw) from None
    day_str = f"{year}-{month}-{day}"
    if day_str < OLDEST_VERSION or day_str > DEFAULT_API_VERSION[:10]:
        raise InvalidApiVersion(raw)
    expected = release_name(day_str)
    if expected is None:
        if suffix is not None:
            raise InvalidApiVersion(raw)
        return day_str
    if suffix != expected:
        raise InvalidApiVersion(raw)
    return f"{day_str}.{suffix}"


def day_of(version: str) -> str:
    return version[:10]


def at_least(version: str, change: str) -> bool:
    return day_of(version) >= change


def is_current_shape(version: str) -> bool:
    """True for basil and later: the shapes of sdk-fields-endive.json / fixtures-subset.json."""
    return at_least(version, BASIL)
