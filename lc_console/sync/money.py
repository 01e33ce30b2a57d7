"""Stripe amounts are integers in the currency's minor unit; Salesforce wants major units.

Exponents follow Stripe's currency guide (docs.stripe.com/currencies):
- zero-decimal (the amount is already in major units): BIF CLP DJF GNF JPY KMF KRW MGA PYG
  RWF UGX VND VUV XAF XOF XPF;
- three-decimal: BHD JOD KWD OMR TND;
- everything else two-decimal, including ISK, HUF and TWD, which Stripe keeps as two-decimal
  in the API for backwards compatibility (ISK 100 = 1 króna) even where only whole units
  can be charged.
Results are Decimal rounded half-up to the cent, the scale of Salesforce Currency fields.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

ZERO_DECIMAL = frozenset(
    "bif clp djf gnf jpy kmf krw mga pyg rwf ugx vnd vuv xaf xof xpf".split()
)
THREE_DECIMAL = frozenset("bhd jod kwd omr tnd".split())

CENT = Decimal("0.01")


def exponent(currency: str) -> int:
    code = (currency or "").lower()
    if code in ZERO_DECIMAL:
        return 0
    if code in THREE_DECIMAL:
        return 3
    return 2


def to_major(amount_minor: int | Decimal | str | None, currency: str) -> Decimal:
    """Minor units -> major units, e.g. (1999, "usd") -> 19.99, (500, "jpy") -> 500.00."""
    if amount_minor is None:
        return Decimal("0.00")
    value = Decimal(str(amount_minor)).scaleb(-exponent(currency))
    return round_money(value)


def round_money(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)
