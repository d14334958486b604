"""The price book: what a usage row costs, in exact USD.

Prices live in ``prices.toml`` (package data; its header documents the format). An operator
file named by ``CREDITWATCH_PRICES_FILE`` *extends* the shipped book rather than replacing it, so
a new release's models and price changes are never lost to a stale copy: a ``[[model]]`` with a
new ``id`` is added (it needs ``family``, ``version`` and at least one price entry); one with a
shipped ``id`` keeps what it does not restate, and its price entries are merged by
``effective_from``, the operator's entry winning on the same date. ``[modifiers]`` keys replace
the shipped ones one by one.

A result is *estimated* when the list price cannot be exact: an unknown model (priced at its
family's newest rates, or the book's highest, never zero), a price that depends on request size
the usage report does not show (claude-haiku-5-5 above 100k prompt tokens), or a service tier
without a public price (priority). ``reasons`` says which; reconciliation with ``cost_report``
corrects the estimate.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Context, Decimal, InvalidOperation
from importlib import resources
from pathlib import Path
from typing import Any

from service.errors import PriceBookError
from service.usage import TokenCounts, UsageKey

# Anthropic's rule for a model that states no cache prices: 5m write 1.25x, 1h write 2x, read 0.1x.
_CACHE_DEFAULTS = {
    "cache_write_5m": Decimal("1.25"),
    "cache_write_1h": Decimal("2"),
    "cache_read": Decimal("0.1"),
}
_RATE_KEYS = ("input", "output", *_CACHE_DEFAULTS)
_MODIFIER_KEYS = ("batch", "inference_geo_us", "web_search_per_1000")
_MODEL_KEYS = {"id", "family", "version", "us_geo_multiplier", "aliases", "prices"}
_ENTRY_KEYS = {"effective_from", "context_window", "prompt_tiers", *_RATE_KEYS}
_TIER_KEYS = {"above_prompt_tokens", *_RATE_KEYS}
_VERSION = re.compile(r"\d+(\.\d+)*")
_FAMILY = re.compile(r"[a-z0-9]+")
_STANDARD_TIERS = frozenset({None, "standard"})
# A longer id whose next part is a short number names another version ("claude-opus-4-9" is not
# claude-opus-4); an 8-digit part is a dated snapshot of the same model, "-0" Anthropic's alias.
_SNAPSHOT_DIGITS = 8
_RESOLVED_CACHE_MAX = 100_000
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
        return TokenRates(*(getattr(self, key) * factor for key in _RATE_KEYS))


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

    def cost(self, counts: TokenCounts) -> Decimal:
        """The exact USD cost of ``counts`` at these rates."""
        u_in, u_5m, u_1h, u_read, u_out, u_search = self._units
        units = (
            counts.uncached_input_tokens * u_in
            + counts.cache_creation_5m_tokens * u_5m
            + counts.cache_creation_1h_tokens * u_1h
            + counts.cache_read_tokens * u_read
            + counts.output_tokens * u_out
            + counts.web_search_requests * u_search
        )
        return Decimal(units).scaleb(self._exponent, _EXACT)

    def priced(self, counts: TokenCounts) -> PricedUsage:
        return PricedUsage(
            self.cost(counts), self.estimated, self.unknown_model, self.priced_as, self.reasons
        )


class PriceBook:
    """Model prices by id prefix and date. Build with :meth:`load`."""

    def __init__(self, models: tuple[ModelPrices, ...], modifiers: Mapping[str, Decimal]) -> None:
        self._models = models
        self._by_prefix = {p: m for m in models for p in (m.id, *m.aliases)}
        self._families = frozenset(m.family for m in models)
        self._batch = modifiers["batch"]
        self._geo_us = modifiers["inference_geo_us"]
        self._web_search_per_1000 = modifiers["web_search_per_1000"]
        self._resolved: dict[tuple[str | None, date, str | None, str | None, str | None], Rates]
        self._resolved = {}

    @classmethod
    def load(cls, override: Path | None = None) -> PriceBook:
        """The shipped book, extended by ``override`` when given.

        Raises PriceBookError naming the file and entry when either file is unreadable,
        malformed or inconsistent.
        """
        shipped = resources.files("service").joinpath("prices.toml")
        modifiers, drafts = _parse(str(shipped), shipped.read_bytes())
        if override is not None:
            try:
                data = override.read_bytes()
            except OSError as exc:
                raise PriceBookError(f"{override}: cannot read price file: {exc}") from exc
            extra_modifiers, extra_drafts = _parse(str(override), data)
            modifiers.update(extra_modifiers)
            for model_id, draft in extra_drafts.items():
                drafts[model_id] = drafts[model_id].extended(draft) if model_id in drafts else draft
        missing = [k for k in _MODIFIER_KEYS if k not in modifiers]
        if missing:
            raise PriceBookError(f"{shipped}: [modifiers]: missing {', '.join(missing)}")
        return cls(_finish(drafts), modifiers)

    @property
    def model_ids(self) -> tuple[str, ...]:
        return tuple(m.id for m in self._models)

    def price(self, key: UsageKey, counts: TokenCounts) -> PricedUsage:
        """The cost of one usage row, at the prices in effect on its bucket's UTC date."""
        cache_key = (
            key.model,
            _utc_day(key.bucket_start),
            key.service_tier,
            key.context_window,
            key.inference_geo,
        )
        rates = self._resolved.get(cache_key)
        if rates is None:
            rates = self._resolve(*cache_key)
        return rates.priced(counts)

    def rates_for(
        self,
        model: str | None,
        at: datetime,
        *,
        service_tier: str | None = None,
        context_window: str | None = None,
        inference_geo: str | None = None,
    ) -> Rates:
        """The rates ``price`` uses for a row of ``model`` in a bucket starting at ``at``."""
        return self._resolve(model, _utc_day(at), service_tier, context_window, inference_geo)

    def _resolve(
        self,
        model: str | None,
        day: date,
        service_tier: str | None,
        context_window: str | None,
        inference_geo: str | None,
    ) -> Rates:
        cache_key = (model, day, service_tier, context_window, inference_geo)
        cached = self._resolved.get(cache_key)
        if cached is not None:
            return cached
        reasons: list[str] = []
        known = self._match(model)
        chosen = known if known is not None else self._fallback(model, day, reasons)
        entry = chosen.entry_at(day)
        token_rates = entry.rates
        if context_window is not None:
            token_rates = entry.context_windows.get(context_window, token_rates)
        reasons.extend(
            f"{chosen.id} charges {_fmt(t.rates.input)}/{_fmt(t.rates.output)} USD per million "
            f"input/output tokens for requests over {t.above_prompt_tokens} prompt tokens; "
            "usage rows do not say which requests were, so this is priced at the lower rates"
            for t in entry.prompt_tiers
        )
        factor = Decimal(1)
        if service_tier == "batch":
            factor *= self._batch
        elif service_tier not in _STANDARD_TIERS:
            reasons.append(
                f"service tier {service_tier!r} has no public price: priced at standard rates"
            )
        if inference_geo == "us" and chosen.us_geo_multiplier:
            factor *= self._geo_us
        scaled = token_rates.scaled(factor)
        rates = Rates(
            scaled.input,
            scaled.output,
            scaled.cache_write_5m,
            scaled.cache_write_1h,
            scaled.cache_read,
            self._web_search_per_1000,
            priced_as=chosen.id,
            estimated=bool(reasons),
            unknown_model=known is None,
            reasons=tuple(reasons),
        )
        if len(self._resolved) >= _RESOLVED_CACHE_MAX:
            self._resolved.clear()
        self._resolved[cache_key] = rates
        return rates

    def _match(self, model: str | None) -> ModelPrices | None:
        """The model with the longest id prefix of ``model`` on a ``-`` boundary, if any."""
        if model is None:
            return None
        parts = model.split("-")
        for end in range(len(parts), 0, -1):
            found = self._by_prefix.get("-".join(parts[:end]))
            if found is not None:
                rest = parts[end] if end < len(parts) else ""
                is_other_version = rest.isdigit() and len(rest) < _SNAPSHOT_DIGITS and rest != "0"
                return None if is_other_version else found
        return None

    def _fallback(self, model: str | None, day: date, reasons: list[str]) -> ModelPrices:
        """The stand-in for an unknown model; appends the reason to ``reasons``."""
        family = next((p for p in (model or "").split("-") if p in self._families), None)
        if family is not None:
            chosen = max((m for m in self._models if m.family == family), key=_release_order)
            why = f"the newest {family} model in the price book"
        else:
            chosen = max(self._models, key=lambda m: _price_order(m, day))
            why = "the highest-priced model in the price book"
        named = f"unknown model {model!r}" if model else "usage without a model"
        reasons.append(f"{named}: priced as {chosen.id}, {why}")
        return chosen


def _release_order(model: ModelPrices) -> tuple[tuple[int, ...], str]:
    return model.version, model.id


def _price_order(model: ModelPrices, day: date) -> tuple[Decimal, Decimal, tuple[int, ...], str]:
    rates = model.entry_at(day).rates
    return rates.output, rates.input, model.version, model.id


def _utc_day(moment: datetime) -> date:
    offset = moment.utcoffset()
    if offset is None:
        raise ValueError(f"naive datetime {moment.isoformat()}: usage times must be aware UTC")
    return (moment.astimezone(UTC) if offset else moment).date()


def _fmt(value: Decimal) -> str:
    return f"{value:f}"


# Loading: one file parses into drafts (what it states), drafts merge, then they are completed.


@dataclass(slots=True)
class _ModelDraft:
    id: str
    source: str  # the file that introduced the model, for errors found after merging
    family: str | None
    version: tuple[int, ...] | None
    us_geo_multiplier: bool | None
    aliases: tuple[str, ...] | None
    entries: dict[date, PriceEntry]

    def extended(self, other: _ModelDraft) -> _ModelDraft:
        return _ModelDraft(
            self.id,
            self.source,
            other.family if other.family is not None else self.family,
            other.version if other.version is not None else self.version,
            other.us_geo_multiplier
            if other.us_geo_multiplier is not None
            else self.us_geo_multiplier,
            other.aliases if other.aliases is not None else self.aliases,
            {**self.entries, **other.entries},
        )


def _parse(path: str, data: bytes) -> tuple[dict[str, Decimal], dict[str, _ModelDraft]]:
    try:
        document = tomllib.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise PriceBookError(f"{path}: not valid TOML: {exc}") from exc
    _check_keys(path, "the file", document, {"modifiers", "model"})
    raw_modifiers = _table(path, "[modifiers]", document.get("modifiers", {}))
    _check_keys(path, "[modifiers]", raw_modifiers, set(_MODIFIER_KEYS))
    modifiers = {k: _decimal(path, "[modifiers]", k, v) for k, v in raw_modifiers.items()}
    raw_models = document.get("model", [])
    if not isinstance(raw_models, list):
        raise PriceBookError(f"{path}: 'model' must be an array of tables ([[model]])")
    drafts: dict[str, _ModelDraft] = {}
    for index, raw in enumerate(raw_models, start=1):
        draft = _parse_model(path, index, _table(path, f"[[model]] #{index}", raw))
        if draft.id in drafts:
            raise PriceBookError(f"{path}: model {draft.id!r} appears twice")
        drafts[draft.id] = draft
    return modifiers, drafts


def _parse_model(path: str, index: int, raw: dict[str, Any]) -> _ModelDraft:
    model_id = raw.get("id")
    if not isinstance(model_id, str) or not model_id or model_id.endswith("-") or " " in model_id:
        raise PriceBookError(f"{path}: [[model]] #{index}: 'id' must be a model id prefix string")
    where = f"model {model_id!r}"
    _check_keys(path, where, raw, _MODEL_KEYS)
    family = raw.get("family")
    if family is not None and not (isinstance(family, str) and _FAMILY.fullmatch(family)):
        raise PriceBookError(f"{path}: {where}: 'family' must be one word like \"opus\"")
    version = raw.get("version")
    if version is not None and not (isinstance(version, str) and _VERSION.fullmatch(version)):
        raise PriceBookError(f"{path}: {where}: 'version' must be a string like \"4.5\"")
    us_geo = raw.get("us_geo_multiplier")
    if us_geo is not None and not isinstance(us_geo, bool):
        raise PriceBookError(f"{path}: {where}: 'us_geo_multiplier' must be true or false")
    aliases = raw.get("aliases")
    if aliases is not None and not (
        isinstance(aliases, list) and all(isinstance(a, str) and a for a in aliases)
    ):
        raise PriceBookError(f"{path}: {where}: 'aliases' must be a list of id prefix strings")
    raw_entries = raw.get("prices", [])
    if not isinstance(raw_entries, list):
        raise PriceBookError(f"{path}: {where}: 'prices' must be an array of tables")
    entries: dict[date, PriceEntry] = {}
    for number, raw_entry in enumerate(raw_entries, start=1):
        entry_where = f"{where}, price entry #{number}"
        entry = _parse_entry(path, entry_where, _table(path, entry_where, raw_entry))
        if entry.effective_from in entries:
            raise PriceBookError(
                f"{path}: {entry_where}: a second entry effective from {entry.effective_from}"
            )
        entries[entry.effective_from] = entry
    return _ModelDraft(
        model_id,
        path,
        family,
        tuple(int(p) for p in version.split(".")) if version is not None else None,
        us_geo,
        tuple(aliases) if aliases is not None else None,
        entries,
    )


def _parse_entry(path: str, where: str, raw: dict[str, Any]) -> PriceEntry:
    _check_keys(path, where, raw, _ENTRY_KEYS)
    effective = raw.get("effective_from")
    if isinstance(effective, datetime) or not isinstance(effective, date):
        raise PriceBookError(
            f"{path}: {where}: 'effective_from' must be a TOML date like 2026-10-07"
        )
    where = f"{where} (effective_from {effective})"
    windows_raw = _table(path, f"{where} context_window", raw.get("context_window", {}))
    context_windows = {
        name: _token_rates(path, f"{where} context_window {name!r}", _table(path, where, rates))
        for name, rates in windows_raw.items()
    }
    tiers_raw = raw.get("prompt_tiers", [])
    if not isinstance(tiers_raw, list):
        raise PriceBookError(f"{path}: {where}: 'prompt_tiers' must be an array of tables")
    tiers = []
    for number, tier_raw in enumerate(tiers_raw, start=1):
        tier_where = f"{where} prompt tier #{number}"
        tier = _table(path, tier_where, tier_raw)
        _check_keys(path, tier_where, tier, _TIER_KEYS)
        above = tier.get("above_prompt_tokens")
        if isinstance(above, bool) or not isinstance(above, int) or above <= 0:
            raise PriceBookError(
                f"{path}: {tier_where}: 'above_prompt_tokens' must be a positive integer"
            )
        rates = _token_rates(path, tier_where, {k: v for k, v in tier.items() if k in _RATE_KEYS})
        tiers.append(PromptTier(above, rates))
    base = {k: v for k, v in raw.items() if k in _RATE_KEYS}
    return PriceEntry(effective, _token_rates(path, where, base), context_windows, tuple(tiers))


def _token_rates(path: str, where: str, raw: dict[str, Any]) -> TokenRates:
    _check_keys(path, where, raw, set(_RATE_KEYS))
    for required in ("input", "output"):
        if required not in raw:
            raise PriceBookError(f"{path}: {where}: missing required rate {required!r}")
    values = {k: _decimal(path, where, k, v) for k, v in raw.items()}
    for key, factor in _CACHE_DEFAULTS.items():
        values.setdefault(key, values["input"] * factor)
    return TokenRates(*(values[k] for k in _RATE_KEYS))


def _decimal(path: str, where: str, key: str, value: object) -> Decimal:
    if not isinstance(value, str):
        shown = f"{type(value).__name__} {value!r}"
        raise PriceBookError(
            f'{path}: {where}: {key!r} must be a decimal string like "3.75" (not a TOML '
            f"number, which would be read through binary floating point), got {shown}"
        )
    try:
        number = Decimal(value)
    except InvalidOperation:
        number = Decimal("NaN")
    if not number.is_finite() or number < 0:
        raise PriceBookError(
            f"{path}: {where}: {key!r} must be a non-negative decimal, got {value!r}"
        )
    return number


def _table(path: str, where: str, value: object) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise PriceBookError(f"{path}: {where}: expected a table, got {type(value).__name__}")
    return value


def _check_keys(path: str, where: str, raw: Mapping[str, Any], allowed: set[str]) -> None:
    unknown = sorted(set(raw) - allowed)
    if unknown:
        raise PriceBookError(
            f"{path}: {where}: unknown key(s) {', '.join(map(repr, unknown))}; "
            f"expected some of {', '.join(sorted(allowed))}"
        )


def _finish(drafts: Mapping[str, _ModelDraft]) -> tuple[ModelPrices, ...]:
    """Complete the merged drafts into models; every model needs family, version and a price."""
    models = []
    owners: dict[str, str] = {}
    for draft in drafts.values():
        where = f"{draft.source}: model {draft.id!r}"
        if draft.family is None or draft.version is None:
            missing = "family" if draft.family is None else "version"
            raise PriceBookError(f"{where}: missing required field {missing!r}")
        if not draft.entries:
            raise PriceBookError(f"{where}: no [[model.prices]] entry")
        aliases = draft.aliases or ()
        for prefix in (draft.id, *aliases):
            if prefix in owners and owners[prefix] != draft.id:
                raise PriceBookError(
                    f"{where}: prefix {prefix!r} already belongs to model {owners[prefix]!r}"
                )
            owners[prefix] = draft.id
        models.append(
            ModelPrices(
                draft.id,
                draft.family,
                draft.version,
                bool(draft.us_geo_multiplier),
                aliases,
                tuple(draft.entries[d] for d in sorted(draft.entries)),
            )
        )
    if not models:
        raise PriceBookError("the price book has no [[model]] entries")
    return tuple(models)
