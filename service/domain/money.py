"""Exact money: the ledger counts integer nano-dollars (1e-9 USD); people read decimal strings.

A nano-dollar is fine enough for the cheapest token (Claude 3 Haiku cache read at batch rates is
15 nano-dollars) and a signed 64-bit column still holds 9.2 billion dollars.
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal

NANOS_PER_USD = 1_000_000_000


def usd_to_nanos(amount: Decimal) -> int:
    """Round an exact USD amount to whole nano-dollars, half to even."""
    return int((amount * NANOS_PER_USD).to_integral_value(rounding=ROUND_HALF_EVEN))


def nanos_to_usd(nanos: int) -> Decimal:
    return Decimal(nanos).scaleb(-9)


def format_usd(nanos: int) -> str:
    """A plain decimal string with at least two decimals and no trailing zeros beyond them."""
    text = f"{nanos_to_usd(nanos):f}"
    if "." not in text:
        return f"{text}.00"
    whole, frac = text.split(".")
    frac = frac.rstrip("0").ljust(2, "0")
    return f"{whole}.{frac}"


def usd_text(nanos: int, credit_unit_usd: Decimal = Decimal(1)) -> str:
    """For people: ``$1,234.57``, small amounts to four places; credits beside when configured."""
    usd = nanos_to_usd(nanos)
    places = Decimal("0.01") if abs(usd) >= 1 or usd == 0 else Decimal("0.0001")
    text = f"${usd.quantize(places, rounding=ROUND_HALF_EVEN):,}"
    if text.startswith("$-"):
        text = "-$" + text[2:]
    if credit_unit_usd != 1:
        credits = (usd / credit_unit_usd).quantize(Decimal("0.01"), rounding=ROUND_HALF_EVEN)
        text += f" ({credits:,} credits)"
    return text


def credits_of(nanos: int, credit_unit_usd: Decimal) -> str:
    """The amount in the operator's credit unit, as an exact-to-the-hundredth decimal string."""
    value = nanos_to_usd(nanos) / credit_unit_usd
    return f"{value.quantize(Decimal('0.01'), rounding=ROUND_HALF_EVEN):f}"


def percent_text(value: Decimal) -> str:
    """``80%``, ``12.5%``: a percentage without exponent or trailing zeros."""
    text = f"{value.normalize():f}"
    return f"{text}%"


def usd_label(nanos: int) -> str:
    """``$1500.00``: a dollar amount as part of an identifier (no separators, exact)."""
    return f"${format_usd(nanos)}"
