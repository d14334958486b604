"""Anthropic's bill as the ledger sees it: billed lines, a day's usage, when adjustments land.

Reconciliation (:mod:`service.reconcile`) compares what ``cost_report`` bills for a finished UTC
day with what creditwatch estimated, and books one adjustment per day and workspace. The
adjustment is booked at the start of the day's last hour and charged to the walk like a bucket
from 23:00 to midnight: it belongs to that day, week and month (in UTC), and a reload it
triggers lands at the day's end.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from service.domain.usage import TokenCounts

DAY = timedelta(days=1)
ADJUSTMENT_OFFSET = timedelta(hours=23)
ADJUSTMENT_SPAN = DAY - ADJUSTMENT_OFFSET
PRIORITY_TIER = "priority"
"""The service tier the cost report omits: its usage keeps its estimate."""

# The cost report's token types, by the usage counter they bill (web search is a cost type).
TOKEN_TYPES: tuple[tuple[str, str], ...] = (
    ("uncached_input_tokens", "uncached_input_tokens"),
    ("cache_creation_5m_tokens", "cache_creation.ephemeral_5m_input_tokens"),
    ("cache_creation_1h_tokens", "cache_creation.ephemeral_1h_input_tokens"),
    ("cache_read_tokens", "cache_read_input_tokens"),
    ("output_tokens", "output_tokens"),
)
WEB_SEARCH = "web_search"


def adjustment_at(day: datetime) -> datetime:
    """When the adjustment of the UTC day starting at ``day`` is booked."""
    return day + ADJUSTMENT_OFFSET


def first_adjustable_day(opening_at: datetime) -> datetime:
    """The first UTC day that begins at or after the starting balance's time."""
    utc = opening_at.astimezone(UTC)
    midnight = utc.replace(hour=0, minute=0, second=0, microsecond=0)
    return midnight if midnight == utc else midnight + DAY


@dataclass(frozen=True, slots=True)
class BilledLine:
    """What the bill charges one workspace for one model and kind on one day.

    ``kind`` is the cost report's ``token_type`` for token costs, else its ``cost_type``
    (``web_search``, ``code_execution``, …); ``model`` is ``""`` for costs without one.
    """

    workspace_id: str
    model: str
    kind: str
    amount_nanos: int


@dataclass(frozen=True, slots=True)
class DayUsage:
    """One day's usage of one (workspace, model, tier, context window, geo), summed, with its
    priced cost and the part of it charged to the balance. ``""`` stands for Anthropic's null,
    as in the ledger."""

    workspace_id: str
    model: str
    service_tier: str
    context_window: str
    inference_geo: str
    counts: TokenCounts
    cost_nanos: int
    charged_nanos: int
