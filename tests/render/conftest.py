"""A report built by hand: a month of daily spend, a balance with a reload, a runway."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from service.domain.report import (
    BalanceEvent,
    BalanceHistory,
    BalancePoint,
    BudgetLine,
    DaySpend,
    Report,
    ReportBy,
    UsageLine,
)

USD = 10**9
DAY = timedelta(days=1)
SINCE = datetime(2026, 11, 1, tzinfo=UTC)
NOW = datetime(2026, 11, 12, 15, 20, tzinfo=UTC)
TRICKY = "<script>alert('x')</script> & \"Prod\" 🚀"


def make_report(by: ReportBy = "workspace", *, tricky: bool = False) -> Report:
    """Twelve days of usage, the first ten billed, a $100-a-day budget, a reload on day 7
    and a projection reaching zero three days from now."""
    days = []
    for index in range(12):
        day = SINCE + index * DAY
        spend = (60 + 9 * index) * USD if index < 11 else 55 * USD
        days.append(
            DaySpend(
                day=day,
                estimated_nanos=spend,
                billed_nanos=spend - USD // 2 if index < 10 else None,
                budget_nanos=100 * USD,
            )
        )
    points = []
    balance = 900 * USD
    moment = SINCE + timedelta(hours=1)
    while moment <= NOW:
        if moment == SINCE + 7 * DAY:
            balance += 600 * USD
        balance -= 4 * USD
        points.append(BalancePoint(moment, balance))
        moment += timedelta(hours=1)
    points.append(BalancePoint(NOW, balance))
    zero = NOW + timedelta(days=3, hours=2)
    projection = [BalancePoint(NOW, balance)]
    moment = NOW.replace(minute=0) + timedelta(hours=1)
    step = balance // 80
    while moment < zero:
        projection.append(BalancePoint(moment, max(0, balance - step * len(projection))))
        moment += timedelta(hours=1)
    projection.append(BalancePoint(zero, 0))
    name = TRICKY if tricky else "Production"
    lines = (
        UsageLine(
            key="wrkspc_01Prod",
            name=name,
            uncached_input_tokens=123_456_789,
            cache_write_tokens=2_000_000,
            cache_read_tokens=45_000_000,
            output_tokens=9_999,
            web_search_requests=12,
            estimated_nanos=700 * USD,
            billed_nanos=690 * USD,
            compared_nanos=680 * USD,
        ),
        UsageLine(
            key="",
            name="Default workspace",
            uncached_input_tokens=1_000,
            estimated_nanos=300 * USD,
            priced_estimate=True,
            billed_nanos=295 * USD,
            compared_nanos=300 * USD,
        ),
    )
    total = UsageLine(key="total", billed_nanos=985 * USD, compared_nanos=980 * USD)
    for line in lines:
        total.add_usage(line)
    return Report(
        by=by,
        since=SINCE,
        until=NOW,
        generated_at=NOW,
        bucket_width="1h",
        lines=lines,
        total=total,
        billed_days=tuple(SINCE + i * DAY for i in range(10)),
        days=tuple(days),
        budget=BudgetLine(
            "daily", "daily budget $100.00", 100 * USD, "day", "UTC", 55 * USD, "2026-11-12"
        ),
        balance=BalanceHistory(
            points=tuple(points),
            events=(
                BalanceEvent(SINCE + 7 * DAY, 600 * USD, "reload"),
                BalanceEvent(NOW + timedelta(days=1), 500 * USD, "reload", projected=True),
            ),
            projection=tuple(projection),
            zero_at=zero,
            now=NOW,
            balance_nanos=balance,
            reload_rule="auto-reload below $100.00 to $700.00",
            reload_threshold_nanos=100 * USD,
        ),
        organization=name,
        priority_unbilled_nanos=3 * USD,
    )


@pytest.fixture
def report() -> Report:
    return make_report()
