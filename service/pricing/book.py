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

import hashlib
from collections.abc import Mapping
from datetime import UTC, date, datetime
from decimal import Decimal
from importlib import resources
from pathlib import Path

from service.domain.model_ids import is_other_version
from service.domain.usage import TokenCounts, UsageKey
from service.errors import PriceBookError
from service.pricing.loader import MODIFIER_KEYS, finish_models, parse_price_file
from service.pricing.rates import ModelPrices, PricedUsage, Rates

_STANDARD_TIERS = frozenset({None, "standard"})
_RESOLVED_CACHE_MAX = 100_000


class PriceBook:
    """Model prices by id prefix and date. Build with :meth:`load`."""

    def __init__(
        self,
        models: tuple[ModelPrices, ...],
        modifiers: Mapping[str, Decimal],
        *,
        fingerprint: str = "",
    ) -> None:
        self._models = models
        # Identifies the files the book was read from: stored usage priced under another
        # fingerprint is re-priced (a price correction must reach what was booked before it).
        self.fingerprint = fingerprint
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
        shipped = resources.files("service.pricing").joinpath("prices.toml")
        shipped_bytes = shipped.read_bytes()
        digest = hashlib.sha256(shipped_bytes)
        modifiers, drafts = parse_price_file(str(shipped), shipped_bytes)
        if override is not None:
            try:
                data = override.read_bytes()
            except OSError as exc:
                raise PriceBookError(f"{override}: cannot read price file: {exc}") from exc
            digest.update(b"\0override\0" + data)
            extra_modifiers, extra_drafts = parse_price_file(str(override), data)
            modifiers.update(extra_modifiers)
            for model_id, draft in extra_drafts.items():
                drafts[model_id] = drafts[model_id].extended(draft) if model_id in drafts else draft
        missing = [k for k in MODIFIER_KEYS if k not in modifiers]
        if missing:
            raise PriceBookError(f"{shipped}: [modifiers]: missing {', '.join(missing)}")
        return cls(finish_models(drafts), modifiers, fingerprint=digest.hexdigest()[:32])

    @property
    def model_ids(self) -> tuple[str, ...]:
        return tuple(m.id for m in self._models)

    def price(self, key: UsageKey, counts: TokenCounts) -> PricedUsage:
        """The cost of one usage row, at the prices in effect on its bucket's UTC date."""
        return self.rates_of(key).priced(counts)

    def rates_of(self, key: UsageKey) -> Rates:
        """The rates that price a usage row of ``key``: those in effect on its bucket's UTC
        date for its model, tier, context window and geography."""
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
        return rates

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
                return None if is_other_version(rest) else found
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
    if moment.tzinfo is UTC:  # what every reader gives: no offset to apply
        return moment.date()
    offset = moment.utcoffset()
    if offset is None:
        raise ValueError(f"naive datetime {moment.isoformat()}: usage times must be aware UTC")
    return (moment.astimezone(UTC) if offset else moment).date()


def _fmt(value: Decimal) -> str:
    return f"{value:f}"
