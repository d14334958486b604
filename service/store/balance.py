"""The balance's stated facts: the starting balance (opening entry) and credit purchases.

The balance is the sum of the ledger entries: the opening, purchases, usage charges (negative),
bill adjustments (:mod:`service.store.bills`) and the walk's derived reloads and expiries.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, case, func, literal, select, update
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import col

from service.domain.timefmt import rfc3339
from service.errors import LedgerError
from service.store.bills import unbook_adjustments_before
from service.store.ledger_entries import book_charge_entries, opening_entry
from service.store.tables import LEDGER, USAGE, LedgerEntry
from service.store.walk_checkpoints import note_change


def ensure_opening(
    session: Session, amount_nanos: int | None, at: datetime | None, now: datetime
) -> bool:
    """Make the opening entry match the settings; re-charge usage if its time moved.

    Returns True when anything changed. Without a starting balance nothing is charged and the
    balance is unknown.
    """
    current = opening_entry(session)
    if current is not None and amount_nanos is not None and at is not None:
        if current.amount_nanos == amount_nanos and current.at == at:
            return False
        moved = current.at != at
        current.amount_nanos = amount_nanos
        current.at = at
        current.note = "starting balance (changed in settings)"
        session.flush()
        if moved:
            rebase_charges(session, at, now)
        return True
    if current is None and amount_nanos is not None and at is not None:
        session.add(
            LedgerEntry(
                kind="opening",
                at=at,
                amount_nanos=amount_nanos,
                note="starting balance",
                created_at=now,
            )
        )
        session.flush()
        rebase_charges(session, at, now)
        return True
    if current is not None:
        session.delete(current)
        session.flush()
        rebase_charges(session, None, now)
        return True
    return False


def rebase_charges(session: Session, opening_at: datetime | None, now: datetime) -> None:
    """Charge exactly the usage at or after ``opening_at`` (none when None), booking differences."""
    target: ColumnElement[int] = (
        literal(0, BigInteger)
        if opening_at is None
        else case((USAGE.c.bucket_start >= opening_at, USAGE.c.cost_nanos), else_=0)
    )
    diff = target - USAGE.c.charged_nanos
    per_bucket = session.execute(
        select(USAGE.c.bucket_start, USAGE.c.bucket_width, func.sum(diff))
        .where(diff != 0)
        .group_by(USAGE.c.bucket_start, USAGE.c.bucket_width)
    ).all()
    charged = {(start, width): int(total) for start, width, total in per_bucket}
    book_charge_entries(session, charged, now, note="re-charged: starting balance time changed")
    session.execute(update(USAGE).where(diff != 0).values(charged_nanos=target))
    # A day that now begins before the starting balance is not adjusted to its bill either.
    unbook_adjustments_before(session, opening_at, now)


def add_purchase(
    session: Session,
    amount_nanos: int,
    at: datetime,
    note: str,
    now: datetime,
    *,
    expires_at: datetime | None = None,
) -> LedgerEntry:
    """Record a credit purchase. Raises LedgerError for a non-positive amount or an early date."""
    if amount_nanos <= 0:
        raise LedgerError("a purchase must be a positive amount")
    opening = opening_entry(session)
    if opening is not None and at < opening.at:
        raise LedgerError(
            f"purchase at {rfc3339(at)} is before the starting balance time "
            f"{rfc3339(opening.at)}, which already includes it"
        )
    if expires_at is not None and expires_at <= at:
        raise LedgerError("a purchase must expire after it is made")
    entry = LedgerEntry(
        kind="purchase",
        at=at,
        amount_nanos=amount_nanos,
        note=note,
        created_at=now,
        expires_at=expires_at,
    )
    session.add(entry)
    note_change(session, at, now)
    session.flush()
    return entry


def purchases(session: Session) -> list[LedgerEntry]:
    statement = select(LedgerEntry).where(col(LedgerEntry.kind).in_(("opening", "purchase")))
    return list(session.scalars(statement.order_by(col(LedgerEntry.at), col(LedgerEntry.id))))


def balance_nanos(session: Session) -> int | None:
    """The credit balance now, or None while no starting balance is set.

    A purchase dated before the starting balance time is part of that balance already (the
    time may have been moved past it after the purchase was recorded), so it is not added again.
    """
    opening = opening_entry(session)
    if opening is None:
        return None
    counted = ~((LEDGER.c.kind == "purchase") & (LEDGER.c.at < opening.at))
    total = session.execute(
        select(func.coalesce(func.sum(LEDGER.c.amount_nanos), 0)).where(counted)
    ).scalar_one()
    return int(total)
