"""The simulator's own list-price table, used to scale the workload and to bill the cost report.

Deliberately independent of ``service/pricing.py`` and ``prices.toml``: the simulator is a second
reading of Anthropic's pricing page, so a mistake in the client's price book shows up as drift.
Prices are USD per million tokens; a web search costs $10 per 1,000 requests.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

UNCACHED, CACHE_5M, CACHE_1H, CACHE_READ, OUTPUT, WEB_SEARCH = range(6)

TOKEN_TYPES: tuple[str, ...] = (
    "uncached_input_tokens",
    "cache_creation.ephemeral_5m_input_tokens",
    "cache_creation.ephemeral_1h_input_tokens",
    "cache_read_input_tokens",
    "output_tokens",
)
"""Cost-report ``token_type`` for the first five usage counters, in counter order."""

_TOKEN_LABELS = (
    "Input Tokens",
    "Prompt Caching Write (5m)",
    "Prompt Caching Write (1h)",
    "Prompt Caching Read",
    "Output Tokens",
)

WEB_SEARCH_USD = Decimal("0.01")
_BATCH = Decimal("0.5")
_US_GEO = Decimal("1.1")
_LONG_CONTEXT = "200k-1M"
_MILLION = Decimal(1_000_000)


@dataclass(frozen=True)
class ModelPrice:
    """List prices of one model family, matched by model-id prefix."""

    prefix: str
    name: str
    input: Decimal
    output: Decimal
    cache_5m: Decimal
    cache_1h: Decimal
    cache_read: Decimal
    long_context: tuple[Decimal, Decimal] | None = None
    """(input, output) for ``context_window: 200k-1M``; cache prices scale from that input."""
    us_geo_premium: bool = False
    """Claude 4.6 and later charge 1.1x for ``inference_geo: us``."""


def _family(
    prefix: str,
    name: str,
    input_usd: str,
    output_usd: str,
    *,
    cache_read: str | None = None,
    long_context: tuple[str, str] | None = None,
    us_geo_premium: bool = False,
) -> ModelPrice:
    base = Decimal(input_usd)
    return ModelPrice(
        prefix=prefix,
        name=name,
        input=base,
        output=Decimal(output_usd),
        cache_5m=base * Decimal("1.25"),
        cache_1h=base * 2,
        cache_read=Decimal(cache_read) if cache_read else base / 10,
        long_context=(Decimal(long_context[0]), Decimal(long_context[1])) if long_context else None,
        us_geo_premium=us_geo_premium,
    )


PRICE_TABLE: tuple[ModelPrice, ...] = (
    _family("claude-opus-4-8", "Claude Opus 4.8", "5", "25", us_geo_premium=True),
    _family("claude-opus-4-7", "Claude Opus 4.7", "5", "25", us_geo_premium=True),
    _family("claude-opus-4-6", "Claude Opus 4.6", "5", "25", us_geo_premium=True),
    _family("claude-opus-4-5", "Claude Opus 4.5", "5", "25"),
    _family("claude-opus-4-1", "Claude Opus 4.1", "15", "75"),
    _family("claude-opus-4", "Claude Opus 4", "15", "75"),
    _family("claude-sonnet-4-6", "Claude Sonnet 4.6", "3", "15", us_geo_premium=True),
    _family("claude-sonnet-4-5", "Claude Sonnet 4.5", "3", "15", long_context=("6", "22.50")),
    _family("claude-sonnet-4", "Claude Sonnet 4", "3", "15", long_context=("6", "22.50")),
    _family("claude-3-7-sonnet", "Claude Sonnet 3.7", "3", "15"),
    _family("claude-3-5-sonnet", "Claude Sonnet 3.5", "3", "15"),
    _family("claude-haiku-4-5", "Claude Haiku 4.5", "1", "5"),
    _family("claude-3-5-haiku", "Claude Haiku 3.5", "0.80", "4"),
    _family("claude-3-haiku", "Claude Haiku 3", "0.25", "1.25", cache_read="0.03"),
    _family("claude-3-opus", "Claude Opus 3", "15", "75"),
)

FALLBACK_PRICE = _family("", "Claude (unlisted model)", "3", "15")
"""Used for a workload model the table does not know, so a test can feed the client one."""


def model_price(model: str) -> ModelPrice:
    """The longest-prefix match for ``model`` (``claude-opus-4-1-…`` is not ``claude-opus-4``)."""
    matches = [p for p in PRICE_TABLE if model.startswith(p.prefix)]
    return max(matches, key=lambda p: len(p.prefix)) if matches else FALLBACK_PRICE


def usd_per_million(
    model: str, service_tier: str, context_window: str, inference_geo: str
) -> tuple[Decimal, Decimal, Decimal, Decimal, Decimal]:
    """USD per million tokens for the five token counters, in counter order.

    Priority tier has no public price and is charged at standard rates here.
    """
    price = model_price(model)
    base_in, out = price.input, price.output
    cache_5m, cache_1h, cache_read = price.cache_5m, price.cache_1h, price.cache_read
    if context_window == _LONG_CONTEXT and price.long_context is not None:
        long_in, out = price.long_context
        scale = long_in / base_in
        base_in, cache_5m, cache_1h, cache_read = (
            long_in,
            cache_5m * scale,
            cache_1h * scale,
            cache_read * scale,
        )
    factor = Decimal(1)
    if service_tier == "batch":
        factor *= _BATCH
    if inference_geo == "us" and price.us_geo_premium:
        factor *= _US_GEO
    return (
        base_in * factor,
        cache_5m * factor,
        cache_1h * factor,
        cache_read * factor,
        out * factor,
    )


def cents_per_unit(
    model: str, service_tier: str, context_window: str, inference_geo: str
) -> tuple[Decimal, ...]:
    """US cents per token for the five token counters, then cents per web search request."""
    per_token = tuple(
        usd * 100 / _MILLION
        for usd in usd_per_million(model, service_tier, context_window, inference_geo)
    )
    return (*per_token, WEB_SEARCH_USD * 100)


def describe(model: str, service_tier: str, context_window: str, counter: int) -> str:
    """A cost-report ``description`` (clients must not parse it; it is for humans)."""
    name = model_price(model).name
    if model_price(model) is FALLBACK_PRICE:
        name = model
    batch = " Batch" if service_tier == "batch" else ""
    if counter == WEB_SEARCH:
        return f"{name} Usage - Web Search"
    long_context = " (Long Context)" if context_window == _LONG_CONTEXT else ""
    return f"{name}{batch} Usage - {_TOKEN_LABELS[counter]}{long_context}"
