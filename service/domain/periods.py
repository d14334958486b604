"""Period arithmetic on aware UTC datetimes: bucket floors and calendar months."""

from __future__ import annotations

from datetime import UTC, datetime

from service.domain.usage import BUCKET_SECONDS, BucketWidth


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
