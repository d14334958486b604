"""What the Analytics API tests share: the 2026 workload's times, paging, and sums of rows."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx

from tests.helpers import Params, all_pages, counters, get_json

ANALYTICS_START = datetime(2026, 3, 1, tzinfo=UTC)
ANALYTICS_NOW = datetime(2026, 3, 20, 12, 30, tzinfo=UTC)
BETA = "analytics-usage-cost-2026-08-24"
A_USAGE = "/v1/organizations/analytics/usage"
A_COST = "/v1/organizations/analytics/cost"
TWO_DAYS: Params = [
    ("starting_at", "2026-03-05T00:00:00Z"),
    ("ending_at", "2026-03-07T00:00:00Z"),
]


def rows_of(api: httpx.Client, path: str, params: Params) -> list[dict[str, Any]]:
    """Every row of an analytics read, following ``next_page`` to the end."""
    rows: list[dict[str, Any]] = []
    page: str | None = None
    for _ in range(1000):
        body = get_json(api, path, params + ([("page", page)] if page else []))
        rows.extend(body["data"])
        if not body["has_more"]:
            assert body["next_page"] is None
            return rows
        page = body["next_page"]
    raise AssertionError("paging did not end")


def usage_counters(row: dict[str, Any]) -> tuple[int, int, int, int, int, int]:
    """The six legacy counters of an analytics usage row."""
    return counters(row["usage"])


def usage_total(rows: list[dict[str, Any]]) -> tuple[int, ...]:
    """Counter-wise sum of analytics usage rows."""
    sums = [0] * 6
    for row in rows:
        for i, value in enumerate(usage_counters(row)):
            sums[i] += value
    return tuple(sums)


def legacy_usage_total(api: httpx.Client, params: Params) -> tuple[int, ...]:
    """Counter-wise sum of every result of the legacy usage report over ``params``."""
    sums = [0] * 6
    for bucket in all_pages(api, "/v1/organizations/usage_report/messages", params):
        for result in bucket["results"]:
            for i, value in enumerate(counters(result)):
                sums[i] += value
    return tuple(sums)


def amount(rows: list[dict[str, Any]], field: str = "amount") -> Decimal:
    """The sum of the rows' ``cost.amount`` (or another cost field), in cents."""
    return sum((Decimal(row["cost"][field]) for row in rows), Decimal(0))
