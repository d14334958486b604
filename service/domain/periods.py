"""Period arithmetic on aware UTC datetimes: bucket floors and calendar months."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from service.domain.usage import BUCKET_SECONDS, BucketWidth

PeriodKind = Literal["day", "week", "month"]


def floor_to_bucket(moment: datetime, width: BucketWidth) -> datetime:
    """The start of the ``width`` bucket holding ``moment`` (buckets are aligned to the epoch)."""
    seconds = BUCKET_SECONDS[width]
    epoch = int(moment.timestamp())
    return datetime.fromtimestamp(epoch - epoch % seconds, tz=UTC)


def day_start(moment: datetime) -> datetime:
    """Midnight UTC of ``moment``'s day."""
    return moment.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def month_start(moment: datetime) -> datetime:
    """Midnight UTC on the 1st of ``moment``'s month."""
    return day_start(moment).replace(day=1)


def month_of(moment: datetime) -> tuple[int, int]:
    """(year, month) of ``moment`` in UTC."""
    utc = moment.astimezone(UTC)
    return utc.year, utc.month


def next_month_start(moment: datetime) -> datetime:
    """Midnight UTC on the 1st of the month after ``moment``'s."""
    year, month = month_of(moment)
    return datetime(year + month // 12, month % 12 + 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Period:
    """One budget period: ``[start, end)`` in UTC, and its label in the period's own zone."""

    kind: PeriodKind
    start: datetime
    end: datetime
    label: str

    def fraction_elapsed(self, now: datetime) -> float:
        """How much of the period has passed, 0 to 1 (for display only, never for money)."""
        total = (self.end - self.start).total_seconds()
        return min(1.0, max(0.0, (now - self.start).total_seconds() / total))


def period_at(kind: PeriodKind, tz: str, moment: datetime) -> Period:
    """The day, week (from Monday) or month holding ``moment``, in time zone ``tz``.

    Periods start at local midnight, so a day in a zone with daylight saving time lasts 23 or 25
    hours on the days the clocks change. Labels: ``2026-11-03``, ``2026-W45``, ``2026-11``.
    """
    zone = ZoneInfo(tz)
    local = moment.astimezone(zone)
    day = local.date()
    if kind == "day":
        first, after = day, day + timedelta(days=1)
        label = first.isoformat()
    elif kind == "week":
        first = day - timedelta(days=day.weekday())
        after = first + timedelta(days=7)
        year, week, _ = first.isocalendar()
        label = f"{year}-W{week:02d}"
    else:
        first = day.replace(day=1)
        after = (first + timedelta(days=32)).replace(day=1)
        label = f"{first:%Y-%m}"
    start = datetime(first.year, first.month, first.day, tzinfo=zone).astimezone(UTC)
    end = datetime(after.year, after.month, after.day, tzinfo=zone).astimezone(UTC)
    return Period(kind, start, end, label)
