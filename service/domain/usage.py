"""Domain records for usage and cost, independent of Anthropic's wire format and of the database.

The Admin API client produces these; pricing, booking and reports consume them. Grouping fields
keep Anthropic's meaning of ``None``: ``workspace_id=None`` is the default workspace and
``api_key_id=None`` is Console (workbench) use, not "unknown".
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Literal

import msgspec

BucketWidth = Literal["1m", "1h", "1d"]
UsageSourceName = Literal["messages", "analytics"]
"""Where collection reads token usage: the legacy usage report or the Analytics API (beta)."""

BUCKET_SECONDS: dict[str, int] = {"1m": 60, "1h": 3600, "1d": 86400}


class Record(msgspec.Struct, frozen=True, gc=False):
    """An immutable value of which a backfill makes millions (a row, its key and its counts):
    built in C, a tenth of a frozen dataclass's cost, and never tracked by the cyclic garbage
    collector (a record holds values and other records, never a cycle). Equal by type and
    fields, hashable, with a dataclass's ``repr``; ``msgspec.structs.replace`` and ``astuple``
    stand for ``dataclasses``'."""


class UsageKey(Record, frozen=True, gc=False):
    """The natural key of one usage result row: one bucket, one combination of groupings."""

    bucket_start: datetime
    bucket_width: BucketWidth
    model: str | None
    api_key_id: str | None
    workspace_id: str | None
    service_tier: str | None
    context_window: str | None
    inference_geo: str | None


class TokenCounts(Record, frozen=True, gc=False):
    """Token and request counts of one usage row; all non-negative integers."""

    uncached_input_tokens: int = 0
    cache_creation_5m_tokens: int = 0
    cache_creation_1h_tokens: int = 0
    cache_read_tokens: int = 0
    output_tokens: int = 0
    web_search_requests: int = 0

    def merge_max(self, other: TokenCounts) -> TokenCounts:
        """Field-wise maximum: buckets only grow, so a smaller re-read is a stale one."""
        return TokenCounts(
            max(self.uncached_input_tokens, other.uncached_input_tokens),
            max(self.cache_creation_5m_tokens, other.cache_creation_5m_tokens),
            max(self.cache_creation_1h_tokens, other.cache_creation_1h_tokens),
            max(self.cache_read_tokens, other.cache_read_tokens),
            max(self.output_tokens, other.output_tokens),
            max(self.web_search_requests, other.web_search_requests),
        )


class BilledCost(Record, frozen=True, gc=False):
    """What the bill says one usage row costs, nano-USD: ``amount`` after discounts (what is
    charged) and ``list_amount`` at list price. Only the Analytics API's hourly cost gives it."""

    amount_nanos: int
    list_nanos: int


class UsageRow(Record, frozen=True, gc=False):
    """One usage row; ``billed`` when the source already knows the bill for it (else the
    price book estimates it)."""

    key: UsageKey
    counts: TokenCounts
    billed: BilledCost | None = None


class AttributionKey(Record, frozen=True, gc=False):
    """One bucket's usage by who and what was behind it (Analytics API only), with the
    dimensions that price it. ``actor`` is the user, service account or API key id; None when
    no actor is attributed."""

    bucket_start: datetime
    bucket_width: BucketWidth
    actor: str | None
    actor_type: str | None
    product: str | None
    model: str | None
    service_tier: str | None
    context_window: str | None

    def usage_key(self) -> UsageKey:
        """The same usage as the price book sees it (no key, workspace or geography)."""
        return UsageKey(
            self.bucket_start,
            self.bucket_width,
            self.model,
            None,
            None,
            self.service_tier,
            self.context_window,
            None,
        )


class AttributedRow(Record, frozen=True, gc=False):
    """Usage attributed to an actor and a product; ``actor_name`` is what people read for the
    actor (a user's name and e-mail address), when the source says."""

    key: AttributionKey
    counts: TokenCounts
    billed: BilledCost | None = None
    actor_name: str | None = None


@dataclass(frozen=True, slots=True)
class UsagePage:
    """One validated page of the usage report, with the bucket bounds it covered."""

    rows: tuple[UsageRow, ...]
    bucket_starts: tuple[datetime, ...]
    has_more: bool
    next_page: str | None


@dataclass(frozen=True, slots=True)
class CostRow:
    """One cost report result. ``amount_usd`` is already converted from Anthropic's cents."""

    day_start: datetime
    amount_usd: Decimal
    currency: str
    cost_type: str | None
    description: str | None
    model: str | None
    token_type: str | None
    service_tier: str | None
    context_window: str | None
    workspace_id: str | None
    inference_geo: str | None
