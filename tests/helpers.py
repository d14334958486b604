"""Helpers shared by several test modules (tests never import each other)."""

from __future__ import annotations

from service.domain.usage import TokenCounts, UsageKey
from service.store.usage_booking import PricedCost


def flat_price(key: UsageKey, counts: TokenCounts) -> PricedCost:
    """A simple exact pricer: 1,000 nano-dollars per token, 7 per web search."""
    tokens = (
        counts.uncached_input_tokens
        + counts.cache_creation_5m_tokens
        + counts.cache_creation_1h_tokens
        + counts.cache_read_tokens
        + counts.output_tokens
    )
    unknown = key.model if key.model and key.model.startswith("mystery") else None
    return PricedCost(
        cost_nanos=tokens * 1000 + counts.web_search_requests * 7,
        estimated=unknown is not None,
        unknown_model=unknown,
        priced_as="claude-opus-4" if unknown else None,
    )
