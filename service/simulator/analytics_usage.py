"""``GET /v1/organizations/analytics/usage``: token usage rows, one per bucket and combination.

A row is flat: ``{"starting_at", "ending_at", "group": {…}, "usage": {…}}``, the legacy report's
token fields plus ``total_tokens`` (every token counter, not web searches) and ``requests``.
Only combinations with usage appear.
"""

from __future__ import annotations

from typing import Any

from service.simulator.analytics_query import (
    AnalyticsQuery,
    RankedRow,
    data_refreshed_at,
    ordered,
    page_of,
    parse_query,
    tiebreak,
)
from service.simulator.analytics_rows import AnalyticsData, Sums, usage_object
from service.simulator.wire import format_timestamp

Json = dict[str, Any]
_METRIC = {"uncached_input_tokens": 0, "output_tokens": 4, "requests": 6}


UsageRow = tuple[tuple[int, int, tuple[str | None, ...]], Sums]
"""((bucket start, bucket end, group key), sums)."""


def analytics_usage(
    data: AnalyticsData, pairs: list[tuple[str, str]], now: int, *, stuck: bool
) -> Json:
    """The response body for one request; raises a 400 ApiError for a bad query."""
    query = parse_query(pairs, now, endpoint="usage")
    rows = data.ranked(query, lambda: _ranked_rows(data, query))
    page = page_of(len(rows), query, stuck=stuck)
    return {
        "data": [
            {
                "starting_at": format_timestamp(start),
                "ending_at": format_timestamp(end),
                "group": data.group(query, key),
                "usage": usage_object(totals),
            }
            for (start, end, key), totals in rows[page.start : page.stop]
        ],
        "has_more": page.next_page is not None,
        "next_page": page.next_page,
        "data_refreshed_at": data_refreshed_at(query, data.visibility_delay),
    }


def _ranked_rows(data: AnalyticsData, query: AnalyticsQuery) -> list[UsageRow]:
    sums = data.sums(query, lambda _index, labels: query.group_key(labels))
    column = _METRIC.get(query.order_by)

    def rank(item: UsageRow) -> RankedRow:
        (start, _end, key), totals = item
        total_tokens = sum(totals[:5])
        metric = total_tokens if column is None else totals[column]
        return RankedRow(start, metric, total_tokens, tiebreak(key))

    return ordered(list(sums.items()), rank, query)
