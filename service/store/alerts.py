"""The dedup memory (``alert_record``) and the notification outbox (``alert_outbox``).

Plain rows in, plain rows out: the decisions are made in :mod:`service.alerts.dedup`; this
module remembers them, in the caller's transaction.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session
from sqlmodel import col

from service.store.tables import AlertRecord, OutboxAlert


def sent_events(session: Session, identity_keys: Collection[str]) -> set[str]:
    """Which of these event identities were already alerted."""
    if not identity_keys:
        return set()
    rows = session.scalars(
        select(col(AlertRecord.identity_key)).where(
            col(AlertRecord.identity_key).in_(list(identity_keys)),
            col(AlertRecord.persistent).is_(False),
        )
    )
    return set(rows)


def group_tops(session: Session, group_keys: Collection[str]) -> dict[str, int]:
    """The highest threshold amount alerted so far in each group (a budget in a period)."""
    if not group_keys:
        return {}
    rows = session.execute(
        select(col(AlertRecord.group_key), func.max(col(AlertRecord.threshold_rank)))
        .where(col(AlertRecord.group_key).in_(list(group_keys)))
        .group_by(col(AlertRecord.group_key))
    )
    return {str(group): int(top) for group, top in rows if top is not None}


def open_conditions(session: Session) -> list[AlertRecord]:
    """Every condition alerted and not yet resolved or closed."""
    return list(
        session.scalars(
            select(AlertRecord).where(
                col(AlertRecord.persistent).is_(True), col(AlertRecord.resolved_at).is_(None)
            )
        )
    )


def last_episodes(session: Session, identity_keys: Collection[str]) -> dict[str, int]:
    if not identity_keys:
        return {}
    rows = session.execute(
        select(col(AlertRecord.identity_key), func.max(col(AlertRecord.episode)))
        .where(col(AlertRecord.identity_key).in_(list(identity_keys)))
        .group_by(col(AlertRecord.identity_key))
    )
    return {str(key): int(episode) for key, episode in rows}


def record(session: Session, row: AlertRecord) -> AlertRecord:
    """Remember a new identity (or a condition's new episode). Flushes to get its id."""
    session.add(row)
    session.flush()
    return row


def record_by_dedup_id(session: Session, dedup_id: str) -> AlertRecord | None:
    return session.scalars(select(AlertRecord).where(col(AlertRecord.dedup_id) == dedup_id)).first()


def enqueue(session: Session, row: OutboxAlert) -> OutboxAlert:
    """Put a notification in the outbox (delivered by the worker, never lost)."""
    session.add(row)
    session.flush()
    return row


def latest_payloads(session: Session, rules: Iterable[str]) -> dict[str, str]:
    """The newest notification payload of each rule (to tell how its drivers changed)."""
    wanted = list(set(rules))
    if not wanted:
        return {}
    newest = (
        select(col(OutboxAlert.rule), func.max(col(OutboxAlert.id)).label("last"))
        .where(col(OutboxAlert.rule).in_(wanted), col(OutboxAlert.kind) != "resolved")
        .group_by(col(OutboxAlert.rule))
        .subquery()
    )
    rows = session.execute(
        select(col(OutboxAlert.rule), col(OutboxAlert.payload)).join(
            newest, col(OutboxAlert.id) == newest.c.last
        )
    )
    return {str(rule): str(payload) for rule, payload in rows}


def previous_message_id(session: Session, dedup_id: str) -> str | None:
    """The message a reminder or resolved notice follows (the identity's first alert)."""
    first = session.scalars(
        select(col(OutboxAlert.message_id))
        .where(col(OutboxAlert.dedup_id) == dedup_id)
        .order_by(col(OutboxAlert.id))
    ).first()
    return str(first) if first is not None else None


def recent_notifications(
    session: Session, since: datetime, *, limit: int = 1000
) -> list[tuple[OutboxAlert, AlertRecord]]:
    """Notifications created at or after ``since``, newest first, with their records."""
    rows = session.execute(
        select(OutboxAlert, AlertRecord)
        .join(AlertRecord, col(AlertRecord.id) == col(OutboxAlert.record_id))
        .where(col(OutboxAlert.created_at) >= since)
        .order_by(col(OutboxAlert.created_at).desc(), col(OutboxAlert.id).desc())
        .limit(limit)
    )
    return [(outbox, alert) for outbox, alert in rows]


def crossed_thresholds(session: Session, group_keys: Collection[str]) -> dict[str, list[str]]:
    """The thresholds alerted so far in each group, for `status`."""
    if not group_keys:
        return {}
    rows = session.execute(
        select(col(AlertRecord.group_key), col(AlertRecord.threshold))
        .where(col(AlertRecord.group_key).in_(list(group_keys)))
        .order_by(col(AlertRecord.threshold_rank))
    )
    found: dict[str, list[str]] = {}
    for group, threshold in rows:
        found.setdefault(str(group), []).append(str(threshold))
    return found
