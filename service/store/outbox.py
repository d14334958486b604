"""The alert outbox table: alerts are rows first, sends second."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session
from sqlmodel import col

from service.store.tables import OutboxAlert

OUTBOX_STATES = ("pending", "sending", "sent", "failed")


def outbox_counts(session: Session) -> dict[str, int]:
    """How many alerts are in each delivery state (every state listed, zeros included)."""
    counts = dict.fromkeys(OUTBOX_STATES, 0)
    for state, count in session.execute(
        select(col(OutboxAlert.state), func.count()).group_by(col(OutboxAlert.state))
    ):
        counts[str(state)] = int(count)
    return counts
