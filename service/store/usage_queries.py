"""Read-only queries over stored usage: spend in a window, per hour, and by scope.

Windows are half-open and bucket-exact: a bucket belongs to the window that holds its start, so
the reports of ``[a, b)`` and ``[b, c)`` add up to the report of ``[a, c)``.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from service.domain.usage import BUCKET_SECONDS, BucketWidth
from service.store.tables import USAGE, USAGE_ROWS

HOUR = timedelta(hours=1)


def period_spend_nanos(session: Session, start: datetime, end: datetime, width: BucketWidth) -> int:
    """Priced cost of usage in buckets starting in ``[start, end)``, charged or not."""
    statement = select(func.coalesce(func.sum(USAGE.c.cost_nanos), 0)).where(
        USAGE.c.bucket_width == width,
        USAGE.c.bucket_start >= start,
        USAGE.c.bucket_start < end,
    )
    return int(session.execute(statement).scalar_one())


def charged_total_nanos(session: Session) -> int:
    return int(
        session.execute(select(func.coalesce(func.sum(USAGE.c.charged_nanos), 0))).scalar_one()
    )


def usage_widths(session: Session) -> list[str]:
    """The bucket widths stored: one index probe per width, not a scan of every row."""
    return [
        width
        for width in BUCKET_SECONDS
        if session.execute(select(USAGE.c.id).where(USAGE.c.bucket_width == width).limit(1)).first()
        is not None
    ]


def latest_bucket_start(session: Session, width: BucketWidth) -> datetime | None:
    latest: datetime | None = session.execute(
        select(func.max(USAGE.c.bucket_start)).where(USAGE.c.bucket_width == width)
    ).scalar_one()
    return latest


def first_bucket_start(session: Session, width: BucketWidth) -> datetime | None:
    first: datetime | None = session.execute(
        select(func.min(USAGE.c.bucket_start)).where(USAGE.c.bucket_width == width)
    ).scalar_one()
    return first


def estimated_spend_nanos(
    session: Session, start: datetime, end: datetime, width: BucketWidth
) -> int:
    """Like :func:`period_spend_nanos`, counting only rows whose price is an estimate."""
    statement = select(func.coalesce(func.sum(USAGE.c.cost_nanos), 0)).where(
        USAGE.c.bucket_width == width,
        USAGE.c.bucket_start >= start,
        USAGE.c.bucket_start < end,
        USAGE.c.estimated.is_(True),
    )
    return int(session.execute(statement).scalar_one())


def hourly_spend(session: Session, width: str, since: datetime) -> dict[datetime, int]:
    """Usage cost per UTC hour from ``since``: minutes summed, days spread evenly over 24 hours."""
    u = USAGE
    rows = session.execute(
        select(u.c.bucket_start, func.sum(u.c.cost_nanos))
        .where(u.c.bucket_width == width, u.c.bucket_start >= since)
        .group_by(u.c.bucket_start)
    )
    hours: dict[datetime, int] = defaultdict(int)
    for start, total in rows:
        if BUCKET_SECONDS[width] <= 3600:
            hours[start.replace(minute=0, second=0, microsecond=0)] += int(total)
            continue
        share, rest = divmod(int(total), 24)
        for h in range(24):
            hours[start + h * HOUR] += share + (1 if h < rest else 0)
    return dict(hours)


@dataclass(frozen=True, slots=True)
class ScopedSpend:
    """Spend of one (workspace, API key, model) in a window; ``before`` up to a cut inside it."""

    workspace_id: str
    api_key_id: str
    model: str
    cost_nanos: int
    before_nanos: int


def spend_by_dimensions(
    session: Session,
    width: BucketWidth,
    start: datetime,
    end: datetime,
    *,
    cut: datetime | None = None,
) -> list[ScopedSpend]:
    """Cost by workspace, API key and model for buckets starting in ``[start, end)``.

    ``before_nanos`` is the part in buckets starting before ``cut`` (all of it without one).
    """
    before = (
        USAGE_ROWS.c.cost_nanos
        if cut is None
        else case((USAGE_ROWS.c.bucket_start < cut, USAGE_ROWS.c.cost_nanos), else_=0)
    )
    rows = session.execute(
        select(
            USAGE_ROWS.c.workspace_id,
            USAGE_ROWS.c.api_key_id,
            USAGE_ROWS.c.model,
            func.sum(USAGE_ROWS.c.cost_nanos),
            func.sum(before),
        )
        .where(
            USAGE_ROWS.c.bucket_width == width,
            USAGE_ROWS.c.bucket_start >= start,
            USAGE_ROWS.c.bucket_start < end,
        )
        .group_by(USAGE_ROWS.c.workspace_id, USAGE_ROWS.c.api_key_id, USAGE_ROWS.c.model)
    )
    return [
        ScopedSpend(str(ws), str(key), str(model), int(cost), int(early))
        for ws, key, model, cost, early in rows
    ]
