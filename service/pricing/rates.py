"""Price records: rates per token kind, price entries by date, and the priced result of a row."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Context, Decimal

from msgspec.structs import astuple

from service.domain.usage import TokenCounts

# Anthropic's rule for a model that states no cache prices: 5m write 1.25x, 1h write 2x, read 0.1x.
CACHE_DEFAULTS = {
    "cache_write_5m": Decimal("1.25"),
    "cache_write_1h": Decimal("2"),
    "cache_read": Decimal("0.1"),
}
RATE_KEYS = ("input", "output", *CACHE_DEFAULTS)
# Costs are exact whatever the caller's decimal context: wide enough for any integer total.
_EXACT = Context(prec=100, Emin=-999_999, Emax=999_999)


@dataclass(frozen=True, slots=True)
class TokenRates:
    """USD per million tokens for each token kind."""

    input: Decimal
    output: Decimal
    cache_write_5m: Decimal
    cache_write_1h: Decimal
    cache_read: Decimal

    def scaled(self, factor: Decimal) -> TokenRates:
        return TokenRates(*(getattr(self, key) * factor for key in RATE_KEYS))


@dataclass(frozen=True, slots=True)
class PromptTier:
    """Rates for requests above a prompt size, which aggregated usage rows cannot identify."""

    above_prompt_tokens: int
    rates: TokenRates


@dataclass(frozen=True, slots=True)
class PriceEntry:
    effective_from: date
    rates: TokenRates
    context_windows: Mapping[str, TokenRates]
    prompt_tiers: tuple[PromptTier, ...]


@dataclass(frozen=True, slots=True)
class ModelPrices:
    id: str
    family: str
    version: tuple[int, ...]
    us_geo_multiplier: bool
    aliases: tuple[str, ...]
    entries: tuple[PriceEntry, ...]  # oldest first

    def entry_at(self, day: date) -> PriceEntry:
        """The newest entry in effect on ``day``; the oldest one for a day before them all."""
        applicable = [e for e in self.entries if e.effective_from <= day]
        return applicable[-1] if applicable else self.entries[0]


@dataclass(frozen=True, slots=True)
class PricedUsage:
    cost_usd: Decimal  # exact, not rounded
    estimated: bool
    unknown_model: bool
    priced_as: str | None  # the book's model id whose prices were used
    reasons: tuple[str, ...]  # why the cost is estimated; empty when it is not


@dataclass(frozen=True, slots=True)
class Rates:
    """Per-million token rates after batch/geo modifiers, for one model, day, tier and geo."""

    input: Decimal
    output: Decimal
    cache_write_5m: Decimal
    cache_write_1h: Decimal
    cache_read: Decimal
    web_search_per_1000: Decimal
    priced_as: str | None
    estimated: bool
    unknown_model: bool
    reasons: tuple[str, ...]
    # Every rate as an integer count of 10**_exponent USD per token (per request for web
    # search), so pricing a row is integer multiply-adds and one exact Decimal at the end.
    _units: tuple[int, int, int, int, int, int] = field(init=False, repr=False, compare=False)
    _exponent: int = field(init=False, repr=False, compare=False)
    # Units are 10**_exponent USD and a nano-dollar is 10**-9 USD: nanos are units times
    # _nano_scale (10**(_exponent + 9)) or, when _exponent < -9, units divided by it.
    _nano_scale: int = field(init=False, repr=False, compare=False)
    _nano_divides: bool = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        per_unit = (
            self.input.scaleb(-6),
            self.cache_write_5m.scaleb(-6),
            self.cache_write_1h.scaleb(-6),
            self.cache_read.scaleb(-6),
            self.output.scaleb(-6),
            self.web_search_per_1000.scaleb(-3),
        )
        exponent = min(int(rate.as_tuple().exponent) for rate in per_unit)
        units = tuple(int(rate.scaleb(-exponent, _EXACT)) for rate in per_unit)
        object.__setattr__(self, "_units", units)
        object.__setattr__(self, "_exponent", exponent)
        object.__setattr__(self, "_nano_scale", int(10 ** abs(exponent + 9)))
        object.__setattr__(self, "_nano_divides", exponent + 9 < 0)

    def units(self, counts: TokenCounts) -> int:
        """The cost of ``counts`` as an integer count of 10**_exponent USD."""
        return self.units_of(astuple(counts))

    def units_of(self, values: Sequence[int]) -> int:
        """``units`` of counts given as their values, in ``TokenCounts``' field order."""
        u_in, u_5m, u_1h, u_read, u_out, u_search = self._units
        n_in, n_5m, n_1h, n_read, n_out, n_search = values
        return (
            n_in * u_in
            + n_5m * u_5m
            + n_1h * u_1h
            + n_read * u_read
            + n_out * u_out
            + n_search * u_search
        )

    def cost(self, counts: TokenCounts) -> Decimal:
        """The exact USD cost of ``counts`` at these rates."""
        return Decimal(self.units(counts)).scaleb(self._exponent, _EXACT)

    def cost_nanos(self, counts: TokenCounts) -> int:
        """``cost(counts)`` in whole nano-dollars rounded half to even, as ``usd_to_nanos``
        rounds it."""
        return self.nanos_of(astuple(counts))

    def nanos_of(self, values: Sequence[int]) -> int:
        """``cost_nanos`` of counts given as their values, in ``TokenCounts``' field order: in
        integer arithmetic alone (booking prices every row of a backfill)."""
        units = self.units_of(values)
        scale = self._nano_scale
        if not self._nano_divides:
            return units * scale
        nanos, left = divmod(units, scale)
        if 2 * left > scale or (2 * left == scale and nanos & 1):
            nanos += 1
        return nanos

    def priced(self, counts: TokenCounts) -> PricedUsage:
        return PricedUsage(
            self.cost(counts), self.estimated, self.unknown_model, self.priced_as, self.reasons
        )
