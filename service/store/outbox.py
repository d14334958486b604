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
from datetime import datetime, timedelta

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.exc import IntegrityError
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


@dataclass(frozen=True)
class Due:
    id: int
    channel: str | None


def due(session: Session, now: datetime, stale_before: datetime, limit: int) -> list[Due]:
    """Rows a worker may claim now, oldest first."""
    rows = session.execute(
        select(col(OutboxAlert.id), col(OutboxAlert.channel))
        .where(_claimable(now, stale_before))
        .order_by(col(OutboxAlert.id))
        .limit(limit)
    )
    return [Due(int(i), channel) for i, channel in rows if i is not None]


def claim(
    session: Session, outbox_id: int, now: datetime, stale_before: datetime, token: str
) -> bool:
    """Take one row for sending under ``token``; False when another worker took it first."""
    result = session.execute(
        update(OutboxAlert)
        .where(col(OutboxAlert.id) == outbox_id, _claimable(now, stale_before))
        .values(
            state="sending",
            claimed_at=now,
            claim_token=token,
            attempts=col(OutboxAlert.attempts) + 1,
            first_attempt_at=func.coalesce(col(OutboxAlert.first_attempt_at), now),
        )
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
    token: str,
    started_at: datetime,
    duration_ms: int,
    now: datetime,
) -> bool:
    """Record the attempt and move the row on, if this worker still holds the claim.

    False when it does not: its claim went stale and another worker took the row (which then
    decides what becomes of it). The attempt is recorded either way.
    """
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
        values.update(state="sent", sent_at=now, finished_at=now)
    elif outcome.outcome == "retry":
        values.update(state="pending", next_attempt_at=outcome.retry_at)
    else:
        values.update(state="failed", failure=outcome.failure, finished_at=now)
    result = session.execute(
        update(OutboxAlert)
        .where(
            col(OutboxAlert.id) == row.id,
            col(OutboxAlert.state) == "sending",
            col(OutboxAlert.claim_token) == token,
        )
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0)) == 1


@dataclass(frozen=True)
class ChannelHealth:
    """How a channel is doing, from its notifications since its last delivery.

    ``failing`` when, since the last notification it accepted, one was refused for good
    (``refused``), one was given up on after the maximum age (``expired``), or one has been
    retried for ``retrying_for`` or longer (``retrying``). ``since`` is when that began.
    """

    name: str
    last_delivery: str  # sent | failed | retrying | none
    failing: bool = False
    reason: str = ""  # refused | expired | retrying
    since: datetime | None = None
    error: str | None = None


def channel_health(
    session: Session, channels: Iterable[str], now: datetime, retrying_for: timedelta
) -> dict[str, ChannelHealth]:
    """Each channel's :class:`ChannelHealth` (channels with no notification: ``none``)."""
    found = {}
    for name in channels:
        found[name] = _health_of(session, name, now, retrying_for)
    return found


def _health_of(
    session: Session, name: str, now: datetime, retrying_for: timedelta
) -> ChannelHealth:
    last_sent = session.scalar(
        select(func.max(col(OutboxAlert.finished_at))).where(
            col(OutboxAlert.channel) == name, col(OutboxAlert.state) == "sent"
        )
    )
    after = [] if last_sent is None else [col(OutboxAlert.finished_at) > last_sent]
    failed = session.scalars(
        select(OutboxAlert)
        .where(
            col(OutboxAlert.channel) == name,
            col(OutboxAlert.state) == "failed",
            col(OutboxAlert.failure).in_(("permanent", "expired")),
            *after,
        )
        .order_by(col(OutboxAlert.finished_at))
        .limit(1)
    ).first()
    if failed is not None:
        reason = "refused" if failed.failure == "permanent" else "expired"
        return ChannelHealth(name, "failed", True, reason, failed.finished_at, failed.last_error)
    started = [] if last_sent is None else [col(OutboxAlert.first_attempt_at) > last_sent]
    retrying = session.scalars(
        select(OutboxAlert)
        .where(
            col(OutboxAlert.channel) == name,
            col(OutboxAlert.state).in_(("pending", "sending")),
            col(OutboxAlert.attempts) > 0,
            *started,
        )
        .order_by(col(OutboxAlert.first_attempt_at))
        .limit(1)
    ).first()
    if retrying is not None and retrying.first_attempt_at is not None:
        long = now - retrying.first_attempt_at >= retrying_for
        return ChannelHealth(
            name,
            "retrying",
            long,
            "retrying" if long else "",
            retrying.first_attempt_at,
            retrying.last_error,
        )
    return ChannelHealth(name, "none" if last_sent is None else "sent")


def orphans(
    session: Session, configured: Iterable[str], stale_before: datetime
) -> list[OutboxAlert]:
    """Unfinished notifications for a channel no longer configured (not claimed right now)."""
    return list(
        session.scalars(
            select(OutboxAlert)
            .where(
                col(OutboxAlert.channel).is_not(None),
                col(OutboxAlert.channel).not_in(list(configured)),
                or_(
                    col(OutboxAlert.state) == "pending",
                    and_(
                        col(OutboxAlert.state) == "sending",
                        col(OutboxAlert.claimed_at) < stale_before,
                    ),
                ),
            )
            .order_by(col(OutboxAlert.id))
        )
    )


def reroute(
    session: Session,
    row: OutboxAlert,
    targets: Iterable[str],
    stale_before: datetime,
    now: datetime,
) -> list[str]:
    """Give ``row``'s notification to each of ``targets`` that has no row for it yet.

    An unrouted row becomes the first target's; an orphan (its channel removed) is closed as
    ``failed``/``removed``, its attempts kept, and new rows carry it on. The row is changed
    only if it is still as read (another worker may have routed it): the update is guarded
    and each insert stands alone, so a race costs nothing. Returns the channels it went to.
    """
    assert row.id is not None
    taken = {
        str(c)
        for c in session.scalars(
            select(col(OutboxAlert.channel)).where(
                col(OutboxAlert.message_id) == row.message_id,
                col(OutboxAlert.channel).is_not(None),
            )
        )
    }
    fresh = [t for t in dict.fromkeys(targets) if t not in taken]
    if row.channel is None:
        if not fresh:
            return []
        values: dict[str, object] = {"state": "pending", "channel": fresh[0]}
        rest = fresh[1:]
    else:
        values = {
            "state": "failed",
            "failure": "removed",
            "finished_at": now,
            "last_error": f"channel {row.channel} is no longer configured",
        }
        rest = fresh
    moved = session.execute(
        update(OutboxAlert)
        .where(
            col(OutboxAlert.id) == row.id,
            or_(
                and_(col(OutboxAlert.state) == row.state, col(OutboxAlert.state) != "sending"),
                and_(
                    col(OutboxAlert.state) == "sending",
                    col(OutboxAlert.claimed_at) < stale_before,
                ),
            ),
        )
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    if int(getattr(moved, "rowcount", 0)) != 1:
        return []
    for channel in rest:
        try:
            with session.begin_nested():
                session.add(_copy(row, channel))
        except IntegrityError:
            continue  # another worker gave it this channel first
    return fresh


def _copy(row: OutboxAlert, channel: str) -> OutboxAlert:
    return OutboxAlert(
        record_id=row.record_id,
        dedup_id=row.dedup_id,
        message_id=row.message_id,
        kind=row.kind,
        rule=row.rule,
        severity=row.severity,
        title=row.title,
        payload=row.payload,
        created_at=row.created_at,
        channel=channel,
    )


def unrouted_since(session: Session, since: datetime) -> list[OutboxAlert]:
    return list(
        session.scalars(
            select(OutboxAlert)
            .where(col(OutboxAlert.state) == "unrouted", col(OutboxAlert.created_at) >= since)
            .order_by(col(OutboxAlert.id))
        )
    )


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
