"""Budget periods: local midnight, Monday, the 1st, in any zone, across DST and year ends."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from service.domain.periods import PeriodKind, period_at

Z = UTC


@pytest.mark.parametrize(
    ("kind", "tz", "moment", "start", "end", "label"),
    [
        # Month end: the last hour of January belongs to January, the next to February.
        ("month", "UTC", datetime(2026, 1, 31, 23, 59, tzinfo=Z), datetime(2026, 1, 1, tzinfo=Z),
         datetime(2026, 2, 1, tzinfo=Z), "2026-01"),
        ("month", "UTC", datetime(2026, 2, 1, tzinfo=Z), datetime(2026, 2, 1, tzinfo=Z),
         datetime(2026, 3, 1, tzinfo=Z), "2026-02"),
        ("month", "UTC", datetime(2028, 2, 29, 12, tzinfo=Z), datetime(2028, 2, 1, tzinfo=Z),
         datetime(2028, 3, 1, tzinfo=Z), "2028-02"),
        ("month", "UTC", datetime(2026, 12, 31, 23, tzinfo=Z), datetime(2026, 12, 1, tzinfo=Z),
         datetime(2027, 1, 1, tzinfo=Z), "2026-12"),
        # Weeks start on Monday; Sunday night still belongs to the week before.
        ("week", "UTC", datetime(2026, 11, 8, 23, tzinfo=Z), datetime(2026, 11, 2, tzinfo=Z),
         datetime(2026, 11, 9, tzinfo=Z), "2026-W45"),
        ("week", "UTC", datetime(2026, 11, 9, tzinfo=Z), datetime(2026, 11, 9, tzinfo=Z),
         datetime(2026, 11, 16, tzinfo=Z), "2026-W46"),
        # ISO weeks across the year end: 2026-12-31 is a Thursday in week 53.
        ("week", "UTC", datetime(2027, 1, 2, tzinfo=Z), datetime(2026, 12, 28, tzinfo=Z),
         datetime(2027, 1, 4, tzinfo=Z), "2026-W53"),
        # A Los Angeles day starts at 08:00 UTC in winter, 07:00 in summer.
        ("day", "America/Los_Angeles", datetime(2026, 11, 20, 7, 59, tzinfo=Z),
         datetime(2026, 11, 19, 8, tzinfo=Z), datetime(2026, 11, 20, 8, tzinfo=Z), "2026-11-19"),
        ("day", "America/Los_Angeles", datetime(2026, 7, 1, 7, tzinfo=Z),
         datetime(2026, 7, 1, 7, tzinfo=Z), datetime(2026, 7, 2, 7, tzinfo=Z), "2026-07-01"),
        # The DST days: 25 hours when clocks go back (Nov 1), 23 when they go forward (Mar 8).
        ("day", "America/Los_Angeles", datetime(2026, 11, 1, 12, tzinfo=Z),
         datetime(2026, 11, 1, 7, tzinfo=Z), datetime(2026, 11, 2, 8, tzinfo=Z), "2026-11-01"),
        ("day", "America/Los_Angeles", datetime(2026, 3, 8, 12, tzinfo=Z),
         datetime(2026, 3, 8, 8, tzinfo=Z), datetime(2026, 3, 9, 7, tzinfo=Z), "2026-03-08"),
        # A month in a zone ahead of UTC starts the evening before, in UTC.
        ("month", "Asia/Tokyo", datetime(2026, 11, 30, 15, tzinfo=Z),
         datetime(2026, 11, 30, 15, tzinfo=Z), datetime(2026, 12, 31, 15, tzinfo=Z), "2026-12"),
        # Half-hour zones cut buckets in half: a bucket belongs where its start falls.
        ("day", "Asia/Kolkata", datetime(2026, 11, 20, 18, 30, tzinfo=Z),
         datetime(2026, 11, 20, 18, 30, tzinfo=Z), datetime(2026, 11, 21, 18, 30, tzinfo=Z),
         "2026-11-21"),
    ],
)  # fmt: skip
def test_period_bounds(
    kind: PeriodKind, tz: str, moment: datetime, start: datetime, end: datetime, label: str
) -> None:
    """The period holding a moment: [start, end) in UTC and its label in the period's zone."""
    period = period_at(kind, tz, moment)
    assert (period.start, period.end, period.label) == (start, end, label)
    assert period.start <= moment < period.end


def test_dst_days_last_23_and_25_hours() -> None:
    """Local midnight to local midnight, however long that is."""
    spring = period_at("day", "America/Los_Angeles", datetime(2026, 3, 8, 12, tzinfo=Z))
    autumn = period_at("day", "America/Los_Angeles", datetime(2026, 11, 1, 12, tzinfo=Z))
    assert spring.end - spring.start == timedelta(hours=23)
    assert autumn.end - autumn.start == timedelta(hours=25)


@pytest.mark.parametrize("kind", ["day", "week", "month"])
def test_consecutive_periods_tile_time(kind: PeriodKind) -> None:
    """Each period ends where the next begins: no gap, no overlap, through a DST change."""
    moment = datetime(2026, 10, 1, tzinfo=Z)
    period = period_at(kind, "America/Los_Angeles", moment)
    for _ in range(40):
        following = period_at(kind, "America/Los_Angeles", period.end)
        assert following.start == period.end
        assert following.label != period.label
        period = following
