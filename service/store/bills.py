"""The bill in the ledger: cost report rows per day, and the adjustments reconcile books.

- ``billed_cost`` holds the cost report's rows per UTC day as last fetched (a re-fetch replaces
  the day's rows; an empty answer keeps them: a bill does not vanish).
- One ``adjustment`` ledger entry per booking, per day and workspace, for the *change* in the
  adjustment the day needs (a revised bill or a re-priced estimate books only its difference);
  ``bill_adjustment.adjusted_nanos`` is their sum. Entries sit at the start of the day's last
  hour (:func:`service.domain.billing.adjustment_at`); like usage charges, an amount the bill
  adds is negative in the ledger.
- A day that no longer begins at or after the starting balance (its time moved) has its
  adjustments taken back (:func:`unbook_adjustments_before`).
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func, insert, select
from sqlalchemy.orm import Session
from sqlmodel import col

from service.domain.billing import (
    ADJUSTMENT_OFFSET,
    DAY,
    BilledLine,
    DayUsage,
    adjustment_at,
    first_adjustable_day,
)
from service.domain.money import usd_text, usd_to_nanos
from service.domain.usage import CostRow, TokenCounts
from service.store.tables import LEDGER, USAGE, USAGE_ROWS, BillAdjustment, BilledCost
from service.store.usage_queries import ScopedSpend
from service.store.walk_checkpoints import note_change

ADJUSTMENT = "adjustment"
BILL_ADJUSTMENT = "(bill adjustment)"
"""The API key and model of budget spend rows that are bill adjustments (the bill names
neither a key nor, for the adjustment as a whole, a model)."""

_NATURAL_KEY = (
    "workspace_id",
    "description",
    "cost_type",
    "model",
    "token_type",
    "service_tier",
    "context_window",
    "inference_geo",
)

# Bills get revised: every reconcile re-checks this many of the last finished days, and the
# drift rule looks at as many of the newest reconciled ones.
RECHECK_DAYS = 3


def replace_bill(session: Session, day: datetime, rows: Sequence[CostRow], now: datetime) -> bool:
    """Store ``rows`` as the bill of ``day``; False (and nothing changed) when there are none."""
    if not rows:
        return False
    amounts: dict[tuple[str, ...], int] = defaultdict(int)
    for row in rows:
        key = tuple(getattr(row, name) or "" for name in _NATURAL_KEY)
        amounts[key] += usd_to_nanos(row.amount_usd)
    session.execute(delete(BilledCost).where(col(BilledCost.day) == day))
    values = [
        {**dict(zip(_NATURAL_KEY, key, strict=True)), "day": day, "amount_nanos": amount}
        for key, amount in amounts.items()
    ]
    for value in values:
        value["fetched_at"] = now
    session.execute(insert(BilledCost), values)
    return True


def billed_lines(session: Session, day: datetime) -> list[BilledLine] | None:
    """The stored bill of ``day`` as lines; None when none was ever fetched."""
    rows = session.execute(
        select(
            col(BilledCost.workspace_id),
            col(BilledCost.model),
            col(BilledCost.token_type),
            col(BilledCost.cost_type),
            col(BilledCost.description),
            col(BilledCost.amount_nanos),
        ).where(col(BilledCost.day) == day)
    ).all()
    if not rows:
        return None
    return [
        BilledLine(workspace, model, token_type or cost_type or description or "other", amount)
        for workspace, model, token_type, cost_type, description, amount in rows
    ]


def day_usage(session: Session, width: str, day: datetime) -> list[DayUsage]:
    """The day's usage summed per workspace, model, tier, context window and geo."""
    u = USAGE_ROWS
    groups = (u.c.workspace_id, u.c.model, u.c.service_tier, u.c.context_window, u.c.inference_geo)
    counters = (
        u.c.uncached_input_tokens,
        u.c.cache_creation_5m_tokens,
        u.c.cache_creation_1h_tokens,
        u.c.cache_read_tokens,
        u.c.output_tokens,
        u.c.web_search_requests,
    )
    statement = (
        select(
            *groups,
            *(func.sum(c) for c in counters),
            func.sum(u.c.cost_nanos),
            func.sum(u.c.charged_nanos),
        )
        .where(u.c.bucket_width == width, u.c.bucket_start >= day, u.c.bucket_start < day + DAY)
        .group_by(*groups)
    )
    found = []
    for row in session.execute(statement):
        workspace, model, tier, window, geo, *sums, cost, charged = row
        counts = TokenCounts(*(int(value) for value in sums))
        found.append(DayUsage(workspace, model, tier, window, geo, counts, int(cost), int(charged)))
    return found


def adjustments_of(session: Session, day: datetime) -> dict[str, BillAdjustment]:
    """The day's adjustment rows by workspace."""
    rows = session.scalars(select(BillAdjustment).where(col(BillAdjustment.day) == day))
    return {row.workspace_id: row for row in rows}


@dataclass(frozen=True, slots=True)
class Comparison:
    """What to record for one day and workspace (the comparison, in the store's terms)."""

    workspace_id: str
    billed_nanos: int
    estimated_nanos: int
    priority_nanos: int
    breakdown: tuple[tuple[str, str, int, int], ...] = ()


def book_adjustment(session: Session, day: datetime, compared: Comparison, now: datetime) -> int:
    """Record the comparison and book the change in the day's adjustment; returns the change.

    The adjustment wanted is billed − estimated; only its difference from what was booked
    before is written, as one ``adjustment`` entry. Flushes; never commits.
    """
    row = session.get(BillAdjustment, (day, compared.workspace_id))
    booked = row.adjusted_nanos if row is not None else 0
    wanted = compared.billed_nanos - compared.estimated_nanos
    change = wanted - booked
    if change:
        session.execute(
            insert(LEDGER),
            [
                {
                    "kind": ADJUSTMENT,
                    "at": adjustment_at(day),
                    "amount_nanos": -change,
                    "note": _note(day, compared, change, first=row is None),
                    "created_at": now,
                }
            ],
        )
        note_change(session, adjustment_at(day), now)
    breakdown = json.dumps([list(line) for line in compared.breakdown], separators=(",", ":"))
    if row is None:
        row = BillAdjustment(day=day, workspace_id=compared.workspace_id)
        session.add(row)
    row.billed_nanos = compared.billed_nanos
    row.estimated_nanos = compared.estimated_nanos
    row.priority_nanos = compared.priority_nanos
    row.adjusted_nanos = wanted
    row.breakdown = breakdown
    row.checked_at = now
    session.flush()
    return change


def _note(day: datetime, compared: Comparison, change: int, *, first: bool) -> str:
    workspace = compared.workspace_id or "default workspace"
    why = "bill" if first else "bill re-checked"
    return (
        f"{why} {day:%Y-%m-%d} {workspace}: billed {usd_text(compared.billed_nanos)}, "
        f"estimated {usd_text(compared.estimated_nanos)}, adjustment {usd_text(change)}"
    )


def unbook_adjustments_before(session: Session, opening_at: datetime | None, now: datetime) -> int:
    """Take back the adjustments of days that no longer begin at or after the starting balance
    (every day when there is none): one entry per day and workspace, the row removed.
    Returns how many were taken back."""
    statement = select(BillAdjustment)
    if opening_at is not None:
        statement = statement.where(col(BillAdjustment.day) < first_adjustable_day(opening_at))
    taken = 0
    for row in list(session.scalars(statement)):
        if row.adjusted_nanos:
            session.execute(
                insert(LEDGER),
                [
                    {
                        "kind": ADJUSTMENT,
                        "at": adjustment_at(row.day),
                        "amount_nanos": row.adjusted_nanos,
                        "note": f"bill {row.day:%Y-%m-%d} {row.workspace_id or 'default workspace'}"
                        ": adjustment taken back (the day is before the starting balance now)",
                        "created_at": now,
                    }
                ],
            )
            note_change(session, adjustment_at(row.day), now)
        session.delete(row)
        taken += 1
    session.flush()
    return taken


def reconciled_days(session: Session) -> set[datetime]:
    return set(session.scalars(select(col(BillAdjustment.day)).distinct()))


def days_touched_since(
    session: Session, width: str, since: datetime, first_day: datetime
) -> set[datetime]:
    """UTC days from ``first_day`` with usage rows written or re-priced after ``since``."""
    starts = session.scalars(
        select(USAGE.c.bucket_start)
        .where(
            USAGE.c.bucket_width == width,
            USAGE.c.updated_at > since,
            USAGE.c.bucket_start >= first_day,
        )
        .distinct()
    )
    return {start.replace(hour=0, minute=0, second=0, microsecond=0) for start in starts}


def adjustment_charges(
    session: Session, since: datetime | None = None, until: datetime | None = None
) -> list[tuple[datetime, int]]:
    """The adjustments as charges for the walk: (when, nano-USD), positive when the bill is above
    the estimate, in time order."""
    statement = select(LEDGER.c.at, func.sum(LEDGER.c.amount_nanos)).where(
        LEDGER.c.kind == ADJUSTMENT
    )
    if since is not None:
        statement = statement.where(LEDGER.c.at >= since)
    if until is not None:
        statement = statement.where(LEDGER.c.at < until)
    rows = session.execute(statement.group_by(LEDGER.c.at).order_by(LEDGER.c.at))
    return [(at, -int(total)) for at, total in rows if int(total)]


def adjustment_spend(
    session: Session, start: datetime, end: datetime, *, cut: datetime | None = None
) -> list[ScopedSpend]:
    """Adjustments booked in ``[start, end)`` per workspace, as budget spend rows (API key and
    model :data:`BILL_ADJUSTMENT`); ``before_nanos`` is the part booked before ``cut``."""
    first, last = start - ADJUSTMENT_OFFSET, end - ADJUSTMENT_OFFSET
    rows = session.execute(
        select(
            col(BillAdjustment.day),
            col(BillAdjustment.workspace_id),
            col(BillAdjustment.adjusted_nanos),
        )
        .where(col(BillAdjustment.day) >= first, col(BillAdjustment.day) < last)
        .where(col(BillAdjustment.adjusted_nanos) != 0)
    )
    total: dict[str, int] = defaultdict(int)
    before: dict[str, int] = defaultdict(int)
    for day, workspace, adjusted in rows:
        total[workspace] += adjusted
        if cut is None or adjustment_at(day) < cut:
            before[workspace] += adjusted
    return [
        ScopedSpend(workspace, BILL_ADJUSTMENT, BILL_ADJUSTMENT, amount, before[workspace])
        for workspace, amount in sorted(total.items())
    ]


@dataclass(frozen=True)
class ReconciledDay:
    """The newest adjusted day, summed over its workspaces, with its lines merged."""

    day: datetime
    billed_nanos: int
    estimated_nanos: int
    priority_nanos: int
    adjusted_nanos: int
    checked_at: datetime
    lines: tuple[tuple[str, str, int, int], ...]


def recent_reconciled_days(session: Session, days: int) -> list[ReconciledDay]:
    """The newest ``days`` UTC days (counted back from the newest reconciled one) that have
    an adjustment row, oldest first."""
    newest = session.execute(select(func.max(col(BillAdjustment.day)))).scalar_one()
    if newest is None:
        return []
    since = newest - timedelta(days=days - 1)
    found = sorted(
        set(
            session.scalars(
                select(col(BillAdjustment.day)).where(col(BillAdjustment.day) >= since).distinct()
            )
        )
    )
    return [merged_day(day, adjustments_of(session, day).values()) for day in found]


def latest_reconciled_day(session: Session) -> ReconciledDay | None:
    newest = session.execute(select(func.max(col(BillAdjustment.day)))).scalar_one()
    if newest is None:
        return None
    return merged_day(newest, adjustments_of(session, newest).values())


def merged_day(day: datetime, rows: Iterable[BillAdjustment]) -> ReconciledDay:
    rows = list(rows)
    lines: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    for row in rows:
        for model, kind, billed, estimated in json.loads(row.breakdown):
            line = lines[(str(model), str(kind))]
            line[0] += int(billed)
            line[1] += int(estimated)
    return ReconciledDay(
        day=day,
        billed_nanos=sum(r.billed_nanos for r in rows),
        estimated_nanos=sum(r.estimated_nanos for r in rows),
        priority_nanos=sum(r.priority_nanos for r in rows),
        adjusted_nanos=sum(r.adjusted_nanos for r in rows),
        checked_at=max(r.checked_at for r in rows),
        lines=tuple((model, kind, b, e) for (model, kind), (b, e) in sorted(lines.items())),
    )


def adjustments_total_nanos(session: Session) -> int:
    """The sum of every adjustment booked (positive: the bill is above the estimate)."""
    total = session.execute(
        select(func.coalesce(func.sum(LEDGER.c.amount_nanos), 0)).where(LEDGER.c.kind == ADJUSTMENT)
    ).scalar_one()
    return -int(total)


def day_window(start: datetime, end: datetime) -> list[datetime]:
    """The UTC midnights in ``[start, end)`` (both midnights)."""
    days = []
    day = start
    while day < end:
        days.append(day)
        day += timedelta(days=1)
    return days
