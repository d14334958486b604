"""The status outlook from stored usage: hourly series for every bucket width, credits, forecast."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine

from service.domain.usage import TokenCounts, UsageKey, UsageRow
from service.runtime.outlook import credit_outlook
from service.settings import load_settings
from service.store import balance, usage_booking
from service.store.credit_sync import sync_credits
from service.store.engine import transaction
from service.store.tables import CollectionState
from service.store.usage_queries import hourly_spend
from tests.helpers import flat_price

T0 = datetime(2026, 11, 2, tzinfo=UTC)
H = timedelta(hours=1)
USD = 10**9


def rows(width: str, starts: list[datetime], micro_usd: int) -> list[UsageRow]:
    return [
        UsageRow(
            UsageKey(start, width, "m", "k", None, "standard", "0-200k", "g"),  # type: ignore[arg-type]
            TokenCounts(uncached_input_tokens=micro_usd),
        )
        for start in starts
    ]


def test_minute_buckets_add_up_to_hours(engine: Engine) -> None:
    """1m buckets are summed into their hour."""
    minutes = [T0 + timedelta(minutes=m) for m in range(0, 120, 10)]
    with transaction(engine) as session:
        usage_booking.book_usage(session, rows("1m", minutes, 10**6), flat_price, now=T0)
        series = hourly_spend(session, "1m", T0)
    assert series == {T0: 6 * USD, T0 + H: 6 * USD}


def test_day_buckets_spread_over_their_hours(engine: Engine) -> None:
    """A 1d bucket is spread evenly over its 24 hours, the remainder on the first hours."""
    with transaction(engine) as session:
        usage_booking.book_usage(session, rows("1d", [T0], 24 * 10**6 + 1), flat_price, now=T0)
        series = hourly_spend(session, "1d", T0)
    assert len(series) == 24
    assert sum(series.values()) == 24 * USD + 1000
    assert series[T0] == USD + 1000 // 24 + 1


def test_outlook_reports_lots_reloads_burn_rate_and_runway(engine: Engine) -> None:
    """Two days of $1/h with auto-reload: lots, this month's reloads, burn rate and a runway."""
    settings = load_settings(
        {
            "ANTHROPIC_ADMIN_KEY": "sk-ant-admin01-outlook-test",
            "CREDITWATCH_STARTING_BALANCE": "30",
            "CREDITWATCH_STARTING_BALANCE_AT": T0.isoformat(),
            "CREDITWATCH_AUTO_RELOAD_THRESHOLD": "10",
            "CREDITWATCH_AUTO_RELOAD_TO": "30",
            "CREDITWATCH_AUTO_RELOAD_MONTHLY_LIMIT": "40",
        },
        None,
    )
    now = T0 + 48 * H
    hours = [T0 + i * H for i in range(48)]
    with transaction(engine) as session:
        balance.ensure_opening(session, 30 * USD, T0, T0)
        usage_booking.book_usage(session, rows("1h", hours, 10**6), flat_price, now=now)
        session.add(CollectionState(bucket_width="1h", collected_from=T0, watermark=now))
        sync_credits(session, "1h", settings.ledger.credit_terms(), now)
        outlook = credit_outlook(session, settings, now)
    credits, forecast = outlook["credits"], outlook["forecast"]
    # 30 - 21 = 9: reload 21 at 21h; 30 - 21 = 9 again at 42h: 19 left of the 40 limit.
    # 48 spent oldest first: the opening and 18 of the first reload; 22 left in two lots.
    assert credits["reloads_this_month"] == 2
    assert credits["reloaded_this_month_usd"] == "40.00"
    assert credits["reload_allowance_left_usd"] == "0.00"
    assert [lot["remaining_usd"] for lot in credits["lots"]] == ["3.00", "19.00"]
    assert credits["lots_used_up"] == 1
    assert forecast["burn_rate_usd_per_hour"] == "1.00"
    # 22 left at $1/h with the allowance spent: the hour starting 21 hours later empties it.
    assert forecast["runway_until"] == "2026-11-04T21:00:00Z"
    assert forecast["at_zero_now"] is False
