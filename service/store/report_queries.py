"""The queries behind `creditwatch report`: usage by line, the bill beside it, the balance.

Usage windows are half-open and bucket-exact (a bucket counts where its start falls). The bill
(``billed_cost``, filled by reconcile) is read only for *billed days*: whole UTC days of the
window that reconcile has fetched. Its estimate counterpart leaves priority-tier usage out, as
Anthropic's cost report does.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime

from sqlalchemy import FromClause, case, func, select
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import col

from service.domain.model_ids import belongs_to
from service.domain.names import NO_PRODUCT, NamedDimension, actor_display, display_name
from service.domain.periods import day_start
from service.domain.report import (
    ATTRIBUTED_BY,
    DAY,
    BalanceEvent,
    BalancePoint,
    ReportBy,
    UsageLine,
)
from service.domain.usage import BucketWidth
from service.store.attribution import ACTOR_NAMES
from service.store.ledger_entries import opening_entry
from service.store.names import load_names
from service.store.tables import (
    ATTRIBUTED,
    LEDGER,
    USAGE,
    USAGE_ROWS,
    BillAdjustment,
    BilledCost,
)

PRIORITY = "priority"
NO_MODEL = ""
_COLUMN = {
    "model": "model",
    "api_key": "api_key_id",
    "workspace": "workspace_id",
    "actor": "actor",
    "product": "product",
}


def usage_lines(
    session: Session, width: BucketWidth, by: ReportBy, since: datetime, until: datetime
) -> list[UsageLine]:
    """Tokens and estimated cost by ``by`` for buckets starting in ``[since, until)``:
    costliest first, days and hours in time order."""
    timed = by in ("day", "hour")
    table: FromClause = ATTRIBUTED if by in ATTRIBUTED_BY else USAGE if timed else USAGE_ROWS
    group = table.c.bucket_start if timed else table.c[_COLUMN[by]]
    statement = (
        select(
            group,
            func.sum(table.c.uncached_input_tokens),
            func.sum(table.c.cache_creation_5m_tokens + table.c.cache_creation_1h_tokens),
            func.sum(table.c.cache_read_tokens),
            func.sum(table.c.output_tokens),
            func.sum(table.c.web_search_requests),
            func.sum(table.c.cost_nanos),
            func.max(case((table.c.estimated.is_(True), 1), else_=0)),
            func.coalesce(func.sum(table.c.billed_nanos), 0),
            func.coalesce(func.sum(table.c.list_nanos), 0),
        )
        .where(
            table.c.bucket_width == width,
            table.c.bucket_start >= since,
            table.c.bucket_start < until,
        )
        .group_by(group)
    )
    name = namer(session, by)
    lines: dict[str, UsageLine] = {}
    for (
        value,
        uncached,
        write,
        read,
        output,
        search,
        cost,
        estimated,
        billed,
        listed,
    ) in session.execute(statement):
        key = line_key(by, value)
        line = lines.setdefault(key, UsageLine(key=key, name=name(key)))
        line.add_usage(
            UsageLine(
                key=key,
                uncached_input_tokens=int(uncached),
                cache_write_tokens=int(write),
                cache_read_tokens=int(read),
                output_tokens=int(output),
                web_search_requests=int(search),
                estimated_nanos=int(cost),
                priced_estimate=bool(estimated),
                hourly_billed_nanos=int(billed),
                hourly_list_nanos=int(listed),
            )
        )
    return list(lines.values())


def line_key(by: ReportBy, value: object) -> str:
    """The key of a line: the id itself, ``2026-11-05`` for a day, ``2026-11-05T13:00Z``."""
    if by == "day":
        assert isinstance(value, datetime)
        return value.date().isoformat()
    if by == "hour":
        assert isinstance(value, datetime)
        return value.replace(minute=0, second=0, microsecond=0).strftime("%Y-%m-%dT%H:%MZ")
    return str(value)


def namer(session: Session, by: ReportBy) -> Callable[[str], str]:
    """Display names for a breakdown's keys ("" where the key is its own name)."""
    dimension: NamedDimension
    if by == "actor":
        actors, keys = load_names(session, ACTOR_NAMES), load_names(session, "api_key")
        return lambda key: actor_display(key, actors, keys)
    if by == "product":
        return lambda key: "" if key else NO_PRODUCT
    if by == "api_key":
        dimension = "api_key"
    elif by == "workspace":
        dimension = "workspace"
    else:
        return lambda key: ""
    known = load_names(session, dimension)
    return lambda key: display_name(dimension, key, known)


def organization_name(session: Session) -> str:
    return load_names(session, "organization").get("name", "")


def billed_days(session: Session, days: Sequence[datetime]) -> list[datetime]:
    """Those of ``days`` that reconcile has fetched the bill of (a day billed at zero counts)."""
    if not days:
        return []
    first, end = days[0], days[-1] + DAY
    fetched: set[datetime] = set()
    for table in (BilledCost, BillAdjustment):
        day = col(table.day)
        fetched.update(session.scalars(select(day).where(day >= first, day < end).distinct()).all())
    return [d for d in days if d in fetched]


def billed_by(session: Session, by: ReportBy, days: Sequence[datetime]) -> dict[str, int]:
    """The bill of ``days`` by day, workspace or model (``""``: costs of no model)."""
    if not days or by not in ("day", "workspace", "model"):
        return {}
    wanted = set(days)
    group = {
        "day": col(BilledCost.day),
        "workspace": col(BilledCost.workspace_id),
        "model": col(BilledCost.model),
    }[by]
    rows = session.execute(
        select(col(BilledCost.day), group, func.sum(col(BilledCost.amount_nanos)))
        .where(col(BilledCost.day) >= days[0], col(BilledCost.day) < days[-1] + DAY)
        .group_by(col(BilledCost.day), group)
    )
    billed: dict[str, int] = defaultdict(int)
    for day, value, amount in rows:
        if day in wanted:
            billed[line_key(by, value) if by == "day" else str(value)] += int(amount)
    return dict(billed)


def billed_cost_types(session: Session, days: Sequence[datetime]) -> list[str]:
    """The cost types of billed rows without a model (code execution, …) on ``days``."""
    if not days:
        return []
    types = session.scalars(
        select(col(BilledCost.cost_type))
        .where(
            col(BilledCost.model) == NO_MODEL,
            col(BilledCost.day) >= days[0],
            col(BilledCost.day) < days[-1] + DAY,
        )
        .distinct()
    )
    return sorted(t or "other" for t in types)


def compared_by(
    session: Session, width: BucketWidth, by: ReportBy, days: Sequence[datetime]
) -> dict[str, int]:
    """The estimate of ``days`` by ``by`` without priority-tier usage: what the bill covers."""
    out: dict[str, int] = defaultdict(int)
    if by == "day":
        for day in days:
            out[line_key("day", day)] = _estimate(session, width, day, day + DAY)
        return dict(out)
    u = USAGE_ROWS
    group = u.c[_COLUMN[by]]
    for start, end in _runs(days):
        rows = session.execute(
            select(group, func.sum(u.c.cost_nanos))
            .where(*_window(width, start, end, u), u.c.service_tier != PRIORITY)
            .group_by(group)
        )
        for value, cost in rows:
            out[str(value)] += int(cost)
    return dict(out)


def priority_estimate(session: Session, width: BucketWidth, days: Sequence[datetime]) -> int:
    """The priority-tier estimate of ``days``: usage Anthropic's cost report leaves out."""
    total = 0
    for start, end in _runs(days):
        u = USAGE_ROWS
        statement = select(func.coalesce(func.sum(u.c.cost_nanos), 0)).where(
            *_window(width, start, end, u), u.c.service_tier == PRIORITY
        )
        total += int(session.execute(statement).scalar_one())
    return total


def daily_estimates(
    session: Session, width: BucketWidth, since: datetime, until: datetime
) -> dict[datetime, int]:
    """Estimated cost per UTC day of the buckets starting in ``[since, until)``."""
    rows = session.execute(
        select(USAGE.c.bucket_start, func.sum(USAGE.c.cost_nanos))
        .where(*_window(width, since, until))
        .group_by(USAGE.c.bucket_start)
    )
    days: dict[datetime, int] = defaultdict(int)
    for start, cost in rows:
        days[day_start(start)] += int(cost)
    return dict(days)


def match_models(billed: dict[str, int], used: Iterable[str]) -> dict[str, int]:
    """The bill keyed by the usage report's model ids where the two spell a model differently
    (``claude-opus-4-6`` billed, ``claude-opus-4-6-20260101`` used): a billed id goes to the
    one used id it is a snapshot or family of; anything ambiguous stays as billed."""
    used = sorted(set(used))
    matched: dict[str, int] = defaultdict(int)
    for model, amount in billed.items():
        target = model
        if model and model not in used:
            related = [u for u in used if belongs_to(u, model) or belongs_to(model, u)]
            if len(related) == 1:
                target = related[0]
        matched[target] += amount
    return dict(matched)


def balance_points(session: Session, times: Sequence[datetime]) -> list[BalancePoint]:
    """The ledger's balance just before each of ``times`` (ascending), from the starting
    balance on: earlier times are left out (the balance there is unknown)."""
    opening = opening_entry(session)
    if opening is None or not times:
        return []
    known = [t for t in times if t > opening.at]
    if not known:
        return []
    counted = ~((LEDGER.c.kind == "purchase") & (LEDGER.c.at < opening.at))
    before = session.execute(
        select(func.coalesce(func.sum(LEDGER.c.amount_nanos), 0)).where(
            counted, LEDGER.c.at < known[0]
        )
    ).scalar_one()
    changes = session.execute(
        select(LEDGER.c.at, func.sum(LEDGER.c.amount_nanos))
        .where(counted, LEDGER.c.at >= known[0], LEDGER.c.at < known[-1])
        .group_by(LEDGER.c.at)
        .order_by(LEDGER.c.at)
    ).all()
    balance, index, points = int(before), 0, []
    for moment in known:
        while index < len(changes) and changes[index][0] < moment:
            balance += int(changes[index][1])
            index += 1
        points.append(BalancePoint(moment, balance))
    return points


def credit_events(session: Session, since: datetime, until: datetime) -> list[BalanceEvent]:
    """Reloads (simulated) and purchases booked in ``[since, until)``, oldest first."""
    opening = opening_entry(session)
    rows = session.execute(
        select(LEDGER.c.at, LEDGER.c.amount_nanos, LEDGER.c.kind)
        .where(
            LEDGER.c.kind.in_(("reload", "purchase")),
            LEDGER.c.at >= since,
            LEDGER.c.at < until,
        )
        .order_by(LEDGER.c.at, LEDGER.c.id)
    )
    return [
        BalanceEvent(at, int(amount), "reload" if kind == "reload" else "purchase")
        for at, amount, kind in rows
        if opening is None or kind == "reload" or at >= opening.at
    ]


def _window(
    width: BucketWidth, since: datetime, until: datetime, rows: FromClause = USAGE
) -> tuple[ColumnElement[bool], ...]:
    return (
        rows.c.bucket_width == width,
        rows.c.bucket_start >= since,
        rows.c.bucket_start < until,
    )


def _estimate(session: Session, width: BucketWidth, start: datetime, end: datetime) -> int:
    u = USAGE_ROWS
    statement = select(func.coalesce(func.sum(u.c.cost_nanos), 0)).where(
        *_window(width, start, end, u), u.c.service_tier != PRIORITY
    )
    return int(session.execute(statement).scalar_one())


def _runs(days: Sequence[datetime]) -> list[tuple[datetime, datetime]]:
    """Consecutive days as ``[start, end)`` ranges."""
    runs: list[tuple[datetime, datetime]] = []
    for day in days:
        if runs and runs[-1][1] == day:
            runs[-1] = (runs[-1][0], day + DAY)
        else:
            runs.append((day, day + DAY))
    return runs
