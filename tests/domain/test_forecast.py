"""The forecast, by hand-computed cases: history guard, daily rhythm, weekends, recency, runway."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from service.domain.credit_walk import Expiry, Lot, Reload, ReloadPolicy
from service.domain.forecast import (
    NotEnoughHistory,
    Runway,
    SpendProfile,
    build_profile,
    projected_period_spend,
    runway,
)

H = timedelta(hours=1)
DAY = timedelta(days=1)
USD = 10**9
YEAR = timedelta(days=365)
# Monday 16 November 2026, midnight UTC: history ends here when the profile is built an hour later.
AS_OF = datetime(2026, 11, 16, tzinfo=UTC)
NOW = AS_OF + H
# A Tuesday, mid-month, so a day-long runway never crosses into a new allowance month.
T = datetime(2026, 11, 10, tzinfo=UTC)


def series(
    start: datetime, end: datetime, nanos_at: Callable[[datetime], int]
) -> dict[datetime, int]:
    """Hour start → spend for every hour in [start, end)."""
    hours: dict[datetime, int] = {}
    hour = start
    while hour < end:
        hours[hour] = nanos_at(hour)
        hour += H
    return hours


def profile_of(hourly: dict[datetime, int], start: datetime) -> SpendProfile:
    built = build_profile(hourly, NOW, history_start=start)
    assert isinstance(built, SpendProfile)
    return built


def flat(usd_per_hour: int, as_of: datetime = T) -> SpendProfile:
    rate = usd_per_hour * USD
    return SpendProfile((rate,) * 24, (rate,) * 24, as_of=as_of, history=14 * DAY)


def opening(usd: int, expires: datetime = T + YEAR) -> Lot:
    return Lot("opening", "opening", T - 30 * DAY, usd * USD, expires)


def runway_from(
    profile: SpendProfile,
    lots: list[Lot],
    *,
    now: datetime = T,
    policy: ReloadPolicy | None = None,
    reloaded_by_month: dict[tuple[int, int], int] | None = None,
) -> datetime | None:
    """The runway's zero time from ``now`` with every lot still whole."""
    return whole_lots_runway(
        profile, lots, now=now, policy=policy, reloaded_by_month=reloaded_by_month
    ).zero_at


def whole_lots_runway(
    profile: SpendProfile,
    lots: list[Lot],
    *,
    now: datetime = T,
    policy: ReloadPolicy | None = None,
    reloaded_by_month: dict[tuple[int, int], int] | None = None,
) -> Runway:
    """The runway from ``now`` with every lot still whole."""
    return runway(
        profile,
        now=now,
        lots=lots,
        remaining={lot.key: lot.amount_nanos for lot in lots},
        balance_nanos=sum(lot.amount_nanos for lot in lots),
        policy=policy,
        reloaded_by_month=reloaded_by_month or {},
        lot_lifetime=YEAR,
    )


@pytest.mark.parametrize(
    ("history_start", "have_hours", "reason"),
    [
        (AS_OF - 23 * H, 23, "not enough history: 23 of the 24 hours needed"),
        (AS_OF + 5 * H, 0, "not enough history: 0 of the 24 hours needed"),
        (None, 0, "not enough history: 0 of the 24 hours needed"),
    ],
)
def test_less_than_a_day_of_history_says_so_instead_of_forecasting(
    history_start: datetime | None, have_hours: int, reason: str
) -> None:
    """Below 24 hours of known history the answer is NotEnoughHistory with how much there is."""
    hourly = series(AS_OF - 23 * H, AS_OF, lambda _: USD)
    result = build_profile(hourly, NOW, history_start=history_start)
    assert result == NotEnoughHistory(have=have_hours * H, need=24 * H)
    assert isinstance(result, NotEnoughHistory)
    assert result.reason == reason


def test_exactly_a_day_of_history_is_enough() -> None:
    """24 complete hours before the two growing ones give a profile."""
    start = AS_OF - 24 * H
    assert profile_of(series(start, AS_OF, lambda _: USD), start).history == 24 * H


def test_the_two_newest_hours_are_left_out_as_still_growing() -> None:
    """At 01:30 history ends at 00:00: the 00:00 and 01:00 buckets do not count yet."""
    start = AS_OF - 2 * DAY
    hourly = series(start, AS_OF, lambda _: USD)
    hourly[AS_OF] = hourly[AS_OF + H] = 1000 * USD
    profile = build_profile(hourly, AS_OF + timedelta(minutes=90), history_start=start)
    assert isinstance(profile, SpendProfile)
    assert profile.as_of == AS_OF
    assert set(profile.weekday) == {USD}


def test_a_flat_series_gives_a_flat_profile_and_its_hourly_rate() -> None:
    """Two weeks at $2 an hour: every hour of every day expects $2, and the burn rate is $2/h."""
    start = AS_OF - 14 * DAY
    profile = profile_of(series(start, AS_OF, lambda _: 2 * USD), start)
    assert profile.weekday == profile.weekend == (2 * USD,) * 24
    assert profile.burn_rate_per_hour(NOW) == 2 * USD
    assert profile.burn_rate_per_hour(NOW + 7 * H + timedelta(minutes=20)) == 2 * USD


def busy_days(hour: datetime) -> int:
    return 10 * USD if 9 <= hour.hour < 17 else USD


def test_a_daily_rhythm_is_kept_hour_by_hour() -> None:
    """Busy 09–17 UTC at $10/h, $1/h at night: the profile holds both, not a $4 average."""
    start = AS_OF - 14 * DAY
    profile = profile_of(series(start, AS_OF, busy_days), start)
    expected = tuple(10 * USD if 9 <= h < 17 else USD for h in range(24))
    assert profile.weekday == profile.weekend == expected
    assert profile.burn_rate_per_hour(NOW) == (8 * 10 + 16) * USD // 24
    assert profile.expected(AS_OF + 12 * H) == 10 * USD
    assert profile.expected(AS_OF + 3 * H) == USD


def weekday_3_weekend_1(hour: datetime) -> int:
    return USD if hour.weekday() >= 5 else 3 * USD


@pytest.mark.parametrize(
    ("start", "end", "split"),
    [
        (AS_OF - 4 * DAY, AS_OF, True),  # Thursday to Sunday: two weekdays, two weekend days
        (AS_OF - 5 * DAY, AS_OF - DAY, False),  # Wednesday to Saturday: one weekend day
        (AS_OF - 14 * DAY, AS_OF, True),
    ],
)
def test_weekends_get_their_own_profile_only_with_two_of_each(
    start: datetime, end: datetime, split: bool
) -> None:
    """$3/h on weekdays and $1/h on weekends split with ≥2 days of each, else blend into one."""
    built = build_profile(series(start, end, weekday_3_weekend_1), end + H, history_start=start)
    assert isinstance(built, SpendProfile)
    if split:
        assert built.weekday == (3 * USD,) * 24
        assert built.weekend == (USD,) * 24
        assert built.expected(AS_OF - DAY) == USD  # a Sunday
        assert built.expected(AS_OF) == 3 * USD  # a Monday
    else:
        assert built.weekday == built.weekend
        assert all(USD < nanos < 3 * USD for nanos in built.weekday)


def test_recent_days_weigh_more_so_a_step_change_moves_the_profile() -> None:
    """$1/h, then $4/h for the last 3 days: each day weighs 0.5^(age/3 days), pulling toward $4."""
    start = AS_OF - 14 * DAY
    step = AS_OF - 3 * DAY  # Friday 13th; Saturday and Sunday follow at the new level
    profile = profile_of(series(start, AS_OF, lambda h: 4 * USD if h >= step else USD), start)
    for weekend, table in ((False, profile.weekday), (True, profile.weekend)):
        for hour_of_day in range(24):
            hours = [start + d * DAY + hour_of_day * H for d in range(14)]
            hours = [hour for hour in hours if (hour.weekday() >= 5) == weekend]
            weights = [0.5 ** ((AS_OF - hour) / DAY / 3) for hour in hours]
            levels = [4 if hour >= step else 1 for hour in hours]
            weighted = sum(w * v for w, v in zip(weights, levels, strict=True)) / sum(weights)
            plain = sum(levels) / len(levels)
            assert abs(table[hour_of_day] - weighted * USD) <= 1
            assert plain * USD < table[hour_of_day] < 4 * USD


def test_runway_of_a_flat_burn_without_reload() -> None:
    """$100 at $10/h from 00:00: the charge of the 10th hour, booked at 09:00, reaches zero."""
    result = runway_from(flat(10), [opening(100)])
    assert result == T + 9 * H


def test_runway_counts_only_the_rest_of_the_hour_in_progress() -> None:
    """$100 at $10/h from 00:30: $5 for the half hour, then $95 lasts until the 10:00 charge."""
    now = T + timedelta(minutes=30)
    assert runway_from(flat(10), [opening(100)], now=now) == T + 10 * H


def test_runway_loses_what_an_expiring_lot_still_holds() -> None:
    """$50 expiring at 02:00 (oldest, spent first) keeps $30; after it expires $100 lasts 10 h."""
    lots = [
        opening(50, expires=T + 2 * H),
        Lot("purchase:1", "purchase", T - DAY, 100 * USD, T + YEAR),
    ]
    result = whole_lots_runway(flat(10), lots)
    assert result.zero_at == T + 11 * H
    assert result.projection.expiries == [Expiry(T + 2 * H, "opening", 30 * USD)]


def test_runway_with_auto_reload_and_no_monthly_limit_never_reaches_zero() -> None:
    """Reloads to $200 whenever the balance drops below $50: no zero within the 90-day horizon."""
    policy = ReloadPolicy(threshold_nanos=50 * USD, target_nanos=200 * USD)
    result = whole_lots_runway(flat(10), [opening(100)], policy=policy)
    assert result.zero_at is None
    assert result.remaining(T) is None
    assert result.horizon == timedelta(days=90)
    assert result.projection.reloads[0] == Reload(T + 6 * H, 160 * USD, 160 * USD)


def test_runway_reaches_zero_once_the_monthly_reload_allowance_is_spent() -> None:
    """Limit $300: $160 at 06:00, $140 of $160 at 22:00, then $180 runs out at the 15:00 charge."""
    policy = ReloadPolicy(50 * USD, 200 * USD, monthly_limit_nanos=300 * USD)
    result = whole_lots_runway(flat(10), [opening(100)], policy=policy)
    assert result.projection.reloads[:2] == [
        Reload(T + 6 * H, 160 * USD, 160 * USD),
        Reload(T + 22 * H, 160 * USD, 140 * USD),
    ]
    # The projection walks on past zero: December's allowance reloads at midnight.
    assert result.projection.reloads[2].at == datetime(2026, 12, 1, tzinfo=UTC)
    assert result.zero_at == T + 39 * H
    assert result.remaining(T + 30 * H) == 9 * H


def test_runway_counts_reloads_already_made_this_month() -> None:
    """With this month's $300 already reloaded, no reload comes: same zero as without a policy."""
    policy = ReloadPolicy(50 * USD, 200 * USD, monthly_limit_nanos=300 * USD)
    result = runway_from(
        flat(10), [opening(100)], policy=policy, reloaded_by_month={(2026, 11): 300 * USD}
    )
    assert result == T + 9 * H


@pytest.mark.parametrize("balance_usd", [0, -5])
def test_runway_of_an_empty_balance_is_zero_now(balance_usd: int) -> None:
    """A balance at or below zero means the API refuses calls already: zero at ``now``."""
    result = runway(
        flat(10),
        now=T + timedelta(minutes=17),
        lots=[opening(10)],
        remaining={"opening": 0},
        balance_nanos=balance_usd * USD,
        policy=ReloadPolicy(50 * USD, 200 * USD),
        reloaded_by_month={},
        lot_lifetime=YEAR,
    )
    assert result.zero_at == T + timedelta(minutes=17)
    assert result.remaining(T + H) == timedelta(0)


def test_projected_period_spend_adds_the_expected_rest_to_what_was_spent() -> None:
    """From Saturday 28 Nov: $123 spent + weekend 2 × 24 × $1 + Monday 8 × $10 + 16 × $1 = $267."""
    weekday = tuple(10 * USD if 9 <= h < 17 else USD for h in range(24))
    as_of = datetime(2026, 11, 28, tzinfo=UTC)
    profile = SpendProfile(weekday, (USD,) * 24, as_of=as_of, history=14 * DAY)
    december = datetime(2026, 12, 1, tzinfo=UTC)
    assert projected_period_spend(profile, spent_before_as_of=123 * USD, period_end=december) == (
        (123 + 48 + 96) * USD
    )
    assert projected_period_spend(profile, spent_before_as_of=7, period_end=as_of) == 7


@settings(max_examples=60, deadline=None)
@given(
    values=st.lists(st.integers(0, 50 * USD), min_size=24, max_size=24 * 16),
    k=st.integers(1, 1000),
)
def test_scaling_all_history_by_k_scales_the_profile_by_k(values: list[int], k: int) -> None:
    """Profiles are linear in spend: k × history gives k × profile, within rounding of ±(k+1)/2."""
    start = AS_OF - len(values) * H
    hourly = {start + i * H: v for i, v in enumerate(values)}
    scaled = {hour: k * v for hour, v in hourly.items()}
    one = profile_of(hourly, start)
    many = profile_of(scaled, start)
    for base, multiplied in zip(
        one.weekday + one.weekend, many.weekday + many.weekend, strict=True
    ):
        assert abs(multiplied - k * base) <= (k + 1) / 2


@settings(max_examples=40, deadline=None)
@given(
    rates=st.lists(st.integers(0, 20 * USD), min_size=24, max_size=24),
    low=st.integers(1, 500 * USD),
    extra=st.integers(0, 500 * USD),
)
def test_runway_is_monotone_in_the_starting_balance(rates: list[int], low: int, extra: int) -> None:
    """More money never runs out sooner: zero time is non-decreasing in the starting balance."""
    profile = SpendProfile(tuple(rates), tuple(rates), as_of=T, history=14 * DAY)

    def zero_at(balance: int) -> datetime:
        lot = Lot("opening", "opening", T - DAY, balance, T + YEAR)
        result = runway(
            profile,
            now=T,
            lots=[lot],
            remaining={"opening": balance},
            balance_nanos=balance,
            policy=None,
            reloaded_by_month={},
            lot_lifetime=YEAR,
            horizon=timedelta(days=30),
        )
        return result.zero_at or datetime.max.replace(tzinfo=UTC)

    assert zero_at(low) <= zero_at(low + extra)


def test_partial_days_do_not_split_weekends_into_empty_hours() -> None:
    """Data from Friday 22:00 to Monday 00:00 at $1/h: Monday's hours still expect $1, not $0."""
    start = datetime(2026, 10, 2, 22, tzinfo=UTC)  # a Friday
    now = datetime(2026, 10, 5, 2, 30, tzinfo=UTC)  # Monday 02:30, history up to 01:00
    hourly = {start + i * H: USD for i in range(60)}
    profile = build_profile(hourly, now, history_start=start)
    assert isinstance(profile, SpendProfile)
    assert profile.weekday == (USD,) * 24
    assert profile.burn_rate_per_hour(now) == USD


def test_runway_spends_the_oldest_lot_first() -> None:
    """A March reload is spent before a June purchase, so nothing is left of it to expire."""
    now = datetime(2027, 2, 20, tzinfo=UTC)
    rate = USD
    profile = SpendProfile((rate,) * 24, (rate,) * 24, as_of=now, history=14 * DAY)
    reload_expires = now + 150 * H
    lots = [
        Lot(
            "reload:2026-02-26T06:00:00Z",
            "reload",
            reload_expires - YEAR,
            100 * USD,
            reload_expires,
        ),
        Lot(
            "purchase:5",
            "purchase",
            datetime(2026, 6, 1, tzinfo=UTC),
            100 * USD,
            datetime(2027, 6, 1, tzinfo=UTC),
        ),
    ]
    result = runway(
        profile,
        now=now,
        lots=lots,
        remaining={lot.key: 100 * USD for lot in lots},
        balance_nanos=200 * USD,
        policy=None,
        reloaded_by_month={},
        lot_lifetime=YEAR,
    )
    # Oldest first: the reload lot is gone by +100 h, the purchase lasts to the +199 h charge.
    assert result.zero_at == now + 199 * H
    assert result.projection.expiries == []
