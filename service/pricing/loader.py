"""Reading price files: one TOML file parses into drafts, drafts merge, then they complete.

An operator's file extends the shipped book (see :mod:`service.pricing.book`). Every problem is a
:class:`PriceBookError` naming the file and the entry.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from service.errors import PriceBookError
from service.pricing.rates import (
    CACHE_DEFAULTS,
    RATE_KEYS,
    ModelPrices,
    PriceEntry,
    PromptTier,
    TokenRates,
)

MODIFIER_KEYS = ("batch", "inference_geo_us", "web_search_per_1000")
_MODEL_KEYS = {"id", "family", "version", "us_geo_multiplier", "aliases", "prices"}
_ENTRY_KEYS = {"effective_from", "context_window", "prompt_tiers", *RATE_KEYS}
_TIER_KEYS = {"above_prompt_tokens", *RATE_KEYS}
_VERSION = re.compile(r"\d+(\.\d+)*")
_FAMILY = re.compile(r"[a-z0-9]+")


@dataclass(slots=True)
class ModelDraft:
    id: str
    source: str  # the file that introduced the model, for errors found after merging
    family: str | None
    version: tuple[int, ...] | None
    us_geo_multiplier: bool | None
    aliases: tuple[str, ...] | None
    entries: dict[date, PriceEntry]

    def extended(self, other: ModelDraft) -> ModelDraft:
        return ModelDraft(
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


def parse_price_file(path: str, data: bytes) -> tuple[dict[str, Decimal], dict[str, ModelDraft]]:
    try:
        document = tomllib.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise PriceBookError(f"{path}: not valid TOML: {exc}") from exc
    _check_keys(path, "the file", document, {"modifiers", "model"})
    raw_modifiers = _table(path, "[modifiers]", document.get("modifiers", {}))
    _check_keys(path, "[modifiers]", raw_modifiers, set(MODIFIER_KEYS))
    modifiers = {k: _decimal(path, "[modifiers]", k, v) for k, v in raw_modifiers.items()}
    raw_models = document.get("model", [])
    if not isinstance(raw_models, list):
        raise PriceBookError(f"{path}: 'model' must be an array of tables ([[model]])")
    drafts: dict[str, ModelDraft] = {}
    for index, raw in enumerate(raw_models, start=1):
        draft = _parse_model(path, index, _table(path, f"[[model]] #{index}", raw))
        if draft.id in drafts:
            raise PriceBookError(f"{path}: model {draft.id!r} appears twice")
        drafts[draft.id] = draft
    return modifiers, drafts


def _parse_model(path: str, index: int, raw: dict[str, Any]) -> ModelDraft:
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
    return ModelDraft(
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
        rates = _token_rates(path, tier_where, {k: v for k, v in tier.items() if k in RATE_KEYS})
        tiers.append(PromptTier(above, rates))
    base = {k: v for k, v in raw.items() if k in RATE_KEYS}
    return PriceEntry(effective, _token_rates(path, where, base), context_windows, tuple(tiers))


def _token_rates(path: str, where: str, raw: dict[str, Any]) -> TokenRates:
    _check_keys(path, where, raw, set(RATE_KEYS))
    for required in ("input", "output"):
        if required not in raw:
            raise PriceBookError(f"{path}: {where}: missing required rate {required!r}")
    values = {k: _decimal(path, where, k, v) for k, v in raw.items()}
    for key, factor in CACHE_DEFAULTS.items():
        values.setdefault(key, values["input"] * factor)
    return TokenRates(*(values[k] for k in RATE_KEYS))


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


def finish_models(drafts: Mapping[str, ModelDraft]) -> tuple[ModelPrices, ...]:
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
