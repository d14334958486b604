"""Read-only queries over stored usage: spend in a window, per hour, and the breakdowns.

Windows are half-open and bucket-exact: a bucket belongs to the window that holds its start, so
the reports of ``[a, b)`` and ``[b, c)`` add up to the report of ``[a, c)``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Literal

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from service.domain.money import credits_of, format_usd
from service.domain.usage import BUCKET_SECONDS, BucketWidth
from service.store.names import load_names
from service.store.tables import USAGE

ReportBy = Literal["model", "api_key", "workspace", "day"]
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
    return [str(w) for w in session.scalars(select(USAGE.c.bucket_width).distinct())]


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


@dataclass
class BreakdownRow:
    key: str
    name: str
    uncached_input_tokens: int = 0
    cache_write_tokens: int = 0
    cache_read_tokens: int = 0
    output_tokens: int = 0
    web_search_requests: int = 0
    cost_nanos: int = 0
    estimated: bool = False

    def as_json(self, credit_unit_usd: Decimal = Decimal(1)) -> dict[str, Any]:
        credits = (
            {"cost_credits": credits_of(self.cost_nanos, credit_unit_usd)}
            if credit_unit_usd != 1
            else {}
        )
        return {
            "key": self.key,
            "name": self.name,
            "uncached_input_tokens": self.uncached_input_tokens,
            "cache_write_tokens": self.cache_write_tokens,
            "cache_read_tokens": self.cache_read_tokens,
            "output_tokens": self.output_tokens,
            "web_search_requests": self.web_search_requests,
            "cost_usd": format_usd(self.cost_nanos),
            **credits,
            "estimated": self.estimated,
        }


def usage_breakdown(
    session: Session, width: BucketWidth, by: ReportBy, since: datetime, until: datetime
) -> list[BreakdownRow]:
    """Tokens and cost by ``by`` for buckets starting in ``[since, until)``, costliest first."""
    group = USAGE.c.bucket_start if by == "day" else USAGE.c[_COLUMN[by]]
    statement = (
        select(
            group,
            func.sum(USAGE.c.uncached_input_tokens),
            func.sum(USAGE.c.cache_creation_5m_tokens + USAGE.c.cache_creation_1h_tokens),
            func.sum(USAGE.c.cache_read_tokens),
            func.sum(USAGE.c.output_tokens),
            func.sum(USAGE.c.web_search_requests),
            func.sum(USAGE.c.cost_nanos),
            func.max(case((USAGE.c.estimated.is_(True), 1), else_=0)),
        )
        .where(
            USAGE.c.bucket_width == width,
            USAGE.c.bucket_start >= since,
            USAGE.c.bucket_start < until,
        )
        .group_by(group)
    )
    names = _names(session, by)
    rows: dict[str, BreakdownRow] = {}
    for value, uncached, write, read, output, search, cost, estimated in session.execute(statement):
        key = value.date().isoformat() if by == "day" else str(value)
        row = rows.setdefault(key, BreakdownRow(key=key, name=names(key)))
        row.uncached_input_tokens += int(uncached)
        row.cache_write_tokens += int(write)
        row.cache_read_tokens += int(read)
        row.output_tokens += int(output)
        row.web_search_requests += int(search)
        row.cost_nanos += int(cost)
        row.estimated = row.estimated or bool(estimated)
    ordered = list(rows.values())
    if by == "day":
        return sorted(ordered, key=lambda r: r.key)
    return sorted(ordered, key=lambda r: (-r.cost_nanos, r.key))


_COLUMN = {"model": "model", "api_key": "api_key_id", "workspace": "workspace_id"}


def _names(session: Session, by: ReportBy) -> Callable[[str], str]:
    if by == "api_key":
        known = load_names(session, "api_key")
        return lambda key: known.get(key, "Console (no API key)" if key == "" else "")
    if by == "workspace":
        known = load_names(session, "workspace")
        return lambda key: known.get(key, "Default workspace" if key == "" else "")
    return lambda key: ""


def totals(rows: list[BreakdownRow]) -> BreakdownRow:
    total = BreakdownRow(key="total", name="")
    for row in rows:
        total.uncached_input_tokens += row.uncached_input_tokens
        total.cache_write_tokens += row.cache_write_tokens
        total.cache_read_tokens += row.cache_read_tokens
        total.output_tokens += row.output_tokens
        total.web_search_requests += row.web_search_requests
        total.cost_nanos += row.cost_nanos
        total.estimated = total.estimated or row.estimated
    return total


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
        USAGE.c.cost_nanos
        if cut is None
        else case((USAGE.c.bucket_start < cut, USAGE.c.cost_nanos), else_=0)
    )
    rows = session.execute(
        select(
            USAGE.c.workspace_id,
            USAGE.c.api_key_id,
            USAGE.c.model,
            func.sum(USAGE.c.cost_nanos),
            func.sum(before),
        )
        .where(
            USAGE.c.bucket_width == width,
            USAGE.c.bucket_start >= start,
            USAGE.c.bucket_start < end,
        )
        .group_by(USAGE.c.workspace_id, USAGE.c.api_key_id, USAGE.c.model)
    )
    return [
        ScopedSpend(str(ws), str(key), str(model), int(cost), int(early))
        for ws, key, model, cost, early in rows
    ]
