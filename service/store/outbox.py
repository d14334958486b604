"""The notification outbox: rows first, sends second. One row per notification and channel.

States: ``pending`` (due at ``next_attempt_at``), ``sending`` (claimed by a worker at
``claimed_at``), ``sent``, ``failed`` (``failure`` says permanent or expired) and ``unrouted``
(produced while no channel was configured; routed when one is, if still recent). A worker claims
a row with one atomic ``UPDATE … WHERE state = 'pending'`` and checks the row count, so two
workers on one PostgreSQL database never send the same row at once; a claim older than the
lease is taken again (the worker died between send and acknowledgement).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import col

from service.store.tables import DeliveryAttempt, OutboxAlert

OUTBOX_STATES = ("pending", "sending", "sent", "failed", "unrouted")


def outbox_counts(session: Session) -> dict[str, int]:
    """How many notifications are in each delivery state (every state listed, zeros included)."""
    counts = dict.fromkeys(OUTBOX_STATES, 0)
    for state, count in session.execute(
        select(col(OutboxAlert.state), func.count()).group_by(col(OutboxAlert.state))
    ):
        counts[str(state)] = int(count)
    return counts


def due(session: Session, now: datetime, stale_before: datetime, limit: int) -> list[int]:
    """Ids of rows a worker may claim now, oldest first."""
    rows = session.scalars(
        select(col(OutboxAlert.id))
        .where(_claimable(now, stale_before))
        .order_by(col(OutboxAlert.id))
        .limit(limit)
    )
    return [int(row) for row in rows if row is not None]


def claim(session: Session, outbox_id: int, now: datetime, stale_before: datetime) -> bool:
    """Take one row for sending; False when another worker took it first."""
    result = session.execute(
        update(OutboxAlert)
        .where(col(OutboxAlert.id) == outbox_id, _claimable(now, stale_before))
        .values(state="sending", claimed_at=now, attempts=col(OutboxAlert.attempts) + 1)
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0)) == 1


def _claimable(now: datetime, stale_before: datetime) -> ColumnElement[bool]:
    return or_(
        and_(
            col(OutboxAlert.state) == "pending",
            or_(
                col(OutboxAlert.next_attempt_at).is_(None), col(OutboxAlert.next_attempt_at) <= now
            ),
        ),
        and_(col(OutboxAlert.state) == "sending", col(OutboxAlert.claimed_at) < stale_before),
    )


@dataclass(frozen=True)
class Outcome:
    """How one attempt went: sent, retry at ``retry_at``, or failed (``failure``)."""

    outcome: str  # sent | retry | failed
    status: str | None = None
    error: str | None = None
    retry_at: datetime | None = None
    failure: str | None = None  # permanent | expired


def acknowledge(
    session: Session,
    row: OutboxAlert,
    outcome: Outcome,
    *,
    started_at: datetime,
    duration_ms: int,
    now: datetime,
) -> None:
    """Record the attempt and move the row on. Only the claim holder acknowledges."""
    assert row.id is not None  # a stored row
    session.add(
        DeliveryAttempt(
            outbox_id=row.id,
            channel=row.channel or "",
            started_at=started_at,
            duration_ms=duration_ms,
            outcome=outcome.outcome,
            status=outcome.status,
            error=outcome.error,
        )
    )
    values: dict[str, object] = {"last_status": outcome.status, "last_error": outcome.error}
    if outcome.outcome == "sent":
        values.update(state="sent", sent_at=now, last_error=None)
    elif outcome.outcome == "retry":
        values.update(state="pending", next_attempt_at=outcome.retry_at)
    else:
        values.update(state="failed", failure=outcome.failure)
    session.execute(
        update(OutboxAlert)
        .where(col(OutboxAlert.id) == row.id, col(OutboxAlert.state) == "sending")
        .values(**values)
        .execution_options(synchronize_session=False)
    )


def unrouted_since(session: Session, since: datetime) -> list[OutboxAlert]:
    return list(
        session.scalars(
            select(OutboxAlert)
            .where(col(OutboxAlert.state) == "unrouted", col(OutboxAlert.created_at) >= since)
            .order_by(col(OutboxAlert.id))
        )
    )


def last_outcomes(session: Session, channels: Iterable[str]) -> dict[str, tuple[str, str | None]]:
    """Per channel: the state and failure of its most recently finished notification."""
    wanted = list(channels)
    if not wanted:
        return {}
    newest = (
        select(col(OutboxAlert.channel), func.max(col(OutboxAlert.id)).label("last"))
        .where(
            col(OutboxAlert.channel).in_(wanted),
            col(OutboxAlert.state).in_(("sent", "failed")),
        )
        .group_by(col(OutboxAlert.channel))
        .subquery()
    )
    rows = session.execute(
        select(col(OutboxAlert.channel), col(OutboxAlert.state), col(OutboxAlert.failure)).join(
            newest, col(OutboxAlert.id) == newest.c.last
        )
    )
    return {str(channel): (str(state), failure) for channel, state, failure in rows}


def attempts_of(session: Session, outbox_ids: Iterable[int]) -> dict[int, list[DeliveryAttempt]]:
    ids = list(outbox_ids)
    found: dict[int, list[DeliveryAttempt]] = {i: [] for i in ids}
    if not ids:
        return found
    for attempt in session.scalars(
        select(DeliveryAttempt)
        .where(col(DeliveryAttempt.outbox_id).in_(ids))
        .order_by(col(DeliveryAttempt.id))
    ):
        found[attempt.outbox_id].append(attempt)
    return found
