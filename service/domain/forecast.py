"""Burn rate, runway and projected period spend, from recent hourly spend. Pure; clock injected.

Method:
1. History is the spend of each UTC hour over the last ``window_days`` (14) days, zero hours
   included, up to ``as_of``: the start of the hour before the current one. The two newest hours
   are left out because their buckets are still growing (Anthropic's data arrives late).
2. The daily rhythm is a profile of 24 hourly values: for each hour of the day, the mean of that
   hour's spend over the recent days, weighted by recency (weight halves every
   ``half_life_days``, 3). Weekends get their own profile when the history holds at least two
   weekend days and two weekdays; otherwise one profile serves every day.
3. A future hour is expected to cost its profile value. The burn rate is the expected spend of
   the next 24 hours, per hour; it follows the rhythm instead of flattening the month.
4. The runway walks the credit lots forward on the expected spend (expiries, auto-reload and its
   monthly limit included, via :func:`service.domain.credit_walk.walk`) for up to ``horizon``
   (90 days) and reports when the balance would first reach zero, or that it does not.
5. A period's projected spend is what was spent before ``as_of`` plus the expected spend from
   ``as_of`` to the period's end.
With less than ``min_history`` (24 hours) of history the functions return
:class:`NotEnoughHistory` saying how much there is, instead of inventing a number.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal

from service.domain.credit_walk import Charge, Lot, ReloadPolicy, WalkResult, walk

HOUR = timedelta(hours=1)
DEFAULT_WINDOW_DAYS = 14
DEFAULT_HALF_LIFE_DAYS = 3
DEFAULT_MIN_HISTORY = timedelta(hours=24)
DEFAULT_HORIZON = timedelta(days=90)


@dataclass(frozen=True)
class NotEnoughHistory:
    have: timedelta
    need: timedelta

    @property
    def reason(self) -> str:
        hours = int(self.have.total_seconds() // 3600)
        need = int(self.need.total_seconds() // 3600)
        return f"not enough history: {hours} of the {need} hours needed"


@dataclass(frozen=True)
class SpendProfile:
    """Expected spend (nano-USD) per hour of the day, for weekdays and weekends."""

    weekday: tuple[int, ...]
    weekend: tuple[int, ...]
    as_of: datetime
    history: timedelta

    def expected(self, hour_start: datetime) -> int:
        table = self.weekend if hour_start.weekday() >= 5 else self.weekday
        return table[hour_start.hour]

    def charges(self, start: datetime, end: datetime) -> list[Charge]:
        """Expected hourly charges from the hour containing ``start`` until ``end``."""
        hour = start.replace(minute=0, second=0, microsecond=0)
        out = []
        while hour < end:
            amount = self.expected(hour)
            if amount:
                out.append(Charge(hour, hour + HOUR, amount))
            hour += HOUR
        return out

    def spend_between(self, start: datetime, end: datetime) -> int:
        return sum(c.amount_nanos for c in self.charges(start, end))

    def burn_rate_per_hour(self, now: datetime) -> int:
        """Expected spend per hour over the next 24 hours (nano-USD)."""
        start = now.replace(minute=0, second=0, microsecond=0)
        return self.spend_between(start, start + timedelta(hours=24)) // 24


def history_as_of(now: datetime) -> datetime:
    return now.astimezone(UTC).replace(minute=0, second=0, microsecond=0) - HOUR


def build_profile(
    hourly: Mapping[datetime, int],
    now: datetime,
    *,
    history_start: datetime | None,
    window_days: int = DEFAULT_WINDOW_DAYS,
    half_life_days: int = DEFAULT_HALF_LIFE_DAYS,
    min_history: timedelta = DEFAULT_MIN_HISTORY,
) -> SpendProfile | NotEnoughHistory:
    """A spend profile from ``hourly`` (hour start → nano-USD) before ``history_as_of(now)``.

    ``history_start`` is when data begins (the first collected bucket); hours before it are
    unknown, not zero.
    """
    as_of = history_as_of(now)
    start = as_of - timedelta(days=window_days)
    if history_start is not None:
        start = max(start, history_start.astimezone(UTC).replace(minute=0, second=0, microsecond=0))
    have = max(timedelta(0), as_of - start) if history_start is not None else timedelta(0)
    if have < min_history:
        return NotEnoughHistory(have=have, need=min_history)
    half = Decimal(1) / 2
    sums: dict[tuple[bool, int], Decimal] = {}
    weights: dict[tuple[bool, int], Decimal] = {}
    days: dict[bool, set[int]] = {True: set(), False: set()}
    hour = start
    while hour < as_of:
        age_days = Decimal((as_of - hour).total_seconds()) / 86400
        weight = half ** (age_days / half_life_days)
        slot = (hour.weekday() >= 5, hour.hour)
        sums[slot] = sums.get(slot, Decimal(0)) + weight * hourly.get(hour, 0)
        weights[slot] = weights.get(slot, Decimal(0)) + weight
        days[slot[0]].add(hour.toordinal())
        hour += HOUR
    split = len(days[True]) >= 2 and len(days[False]) >= 2

    def table(weekend: bool) -> tuple[int, ...]:
        values = []
        for h in range(24):
            keys = [(weekend, h)] if split else [(False, h), (True, h)]
            if not any(weights.get(k) for k in keys):
                # Partial days early on: an hour this side has not seen yet takes the mean of
                # every day rather than an invented zero.
                keys = [(False, h), (True, h)]
            total = sum((sums.get(k, Decimal(0)) for k in keys), Decimal(0))
            weight = sum((weights.get(k, Decimal(0)) for k in keys), Decimal(0))
            mean = total / weight if weight else Decimal(0)
            values.append(int(mean.to_integral_value(rounding=ROUND_HALF_EVEN)))
        return tuple(values)

    return SpendProfile(weekday=table(False), weekend=table(True), as_of=as_of, history=have)


@dataclass(frozen=True)
class Runway:
    """When the balance would first reach zero on expected spend, if within the horizon."""

    zero_at: datetime | None
    horizon: timedelta
    projection: WalkResult
    charges: tuple[Charge, ...] = ()  # the expected spend the walk charged

    def remaining(self, now: datetime) -> timedelta | None:
        return None if self.zero_at is None else max(timedelta(0), self.zero_at - now)

    def path(self, balance_nanos: int, times: Sequence[datetime]) -> list[int]:
        """The projected balance just before each of ``times`` (ascending), from
        ``balance_nanos`` at the walk's start: reloads in, expiries and expected spend out."""
        changes = sorted(
            [(r.at, r.granted_nanos) for r in self.projection.reloads]
            + [(e.at, -e.amount_nanos) for e in self.projection.expiries]
            + [(c.start, -c.amount_nanos) for c in self.charges]
        )
        out, index, balance = [], 0, balance_nanos
        for moment in times:
            while index < len(changes) and changes[index][0] < moment:
                balance += changes[index][1]
                index += 1
            out.append(balance)
        return out


def runway(
    profile: SpendProfile,
    *,
    now: datetime,
    lots: Sequence[Lot],
    remaining: Mapping[str, int],
    balance_nanos: int,
    policy: ReloadPolicy | None,
    reloaded_by_month: Mapping[tuple[int, int], int],
    lot_lifetime: timedelta,
    horizon: timedelta = DEFAULT_HORIZON,
) -> Runway:
    """Walk today's lots forward on ``profile``'s expected spend from ``now``."""
    if balance_nanos <= 0:
        return Runway(zero_at=now, horizon=horizon, projection=WalkResult())
    # Lots keep their purchase time so the walk still spends the oldest first; a reload due at
    # the end of the hour in progress counts as there already, as it is in the balance.
    live = [
        Lot(lot.key, lot.kind, min(lot.at, now), remaining[lot.key], lot.expires_at)
        for lot in lots
        if remaining.get(lot.key, 0) > 0 and lot.expires_at > now
    ]
    projected = profile.charges(now, now + horizon)
    # The current hour is partly spent already: expect only the rest of it.
    if projected and projected[0].start < now:
        first = projected[0]
        left_us = (first.end - now) // timedelta(microseconds=1)
        share = first.amount_nanos * left_us // (HOUR // timedelta(microseconds=1))
        projected[0] = Charge(now, first.end, share)
    result = walk(
        live,
        projected,
        start=now,
        until=now + horizon,
        policy=policy,
        lot_lifetime=lot_lifetime,
        reloaded_before=dict(reloaded_by_month),
    )
    return Runway(
        zero_at=result.first_zero_at, horizon=horizon, projection=result, charges=tuple(projected)
    )


def projected_period_spend(
    profile: SpendProfile,
    *,
    spent_before_as_of: int,
    period_end: datetime,
    period_start: datetime | None = None,
) -> int:
    """Spend before ``profile.as_of`` plus the expected spend from then to ``period_end``.

    ``spent_before_as_of`` covers the period's start up to ``as_of``; when the period began
    after ``as_of`` (the first hour of a month), expectation starts at ``period_start``.
    """
    start = profile.as_of if period_start is None else max(profile.as_of, period_start)
    return spent_before_as_of + profile.spend_between(start, period_end)
