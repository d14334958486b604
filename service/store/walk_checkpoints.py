"""Checkpoints of the balance walk, so a cycle's cost does not grow with history.

A checkpoint at ``at`` is the walk's state with every event before ``at`` applied
(:class:`~service.domain.credit_walk.WalkCheckpoint`). A walk resumed from it reads only the
charges and lots from ``at`` on. It stays true while nothing the walk read before ``at``
changes:

- the starting balance, the credit terms and the bucket width: its ``basis``, a fingerprint
  of them; a checkpoint of another basis is never used;
- the charges and lots before ``at``: every writer of a usage charge, a bill adjustment or a
  purchase notes the earliest instant it touched (:func:`note_change`) in its own
  transaction, so the note commits with the write or not at all. A checkpoint after a noted
  instant is stale. Reading commands skip stale ones; the booking walk
  (:func:`service.store.credit_sync.sync_credits`) deletes them with the notes it read
  (:func:`settle_changes`; a note committed meanwhile stays for the next one) and stores the
  checkpoints it took (:func:`store_checkpoints`).

The plan (:func:`checkpoint_plan`) is every hour boundary of the last 12 hours and every
midnight of the last 8 days. The look-back's re-reads (3 h by default) touch only the newest
hours, so a cycle resumes from just before them; a bill adjustment of a past day (booked at
23:00 of that day, a day or two later) makes one cycle resume from that day's midnight.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, or_, select
from sqlalchemy.orm import Session
from sqlmodel import col

from service.domain.credit_terms import CreditTerms
from service.domain.credit_walk import Lot, LotKind, WalkCheckpoint
from service.domain.periods import day_start
from service.store.tables import WALK_CHECKPOINT, LedgerEntry, WalkChange, WalkCheckpointRecord

log = logging.getLogger(__name__)

PLAN_HOURS = 12
PLAN_DAYS = 8
_VERSION = 1
_LOT_KINDS: dict[str, LotKind] = {"opening": "opening", "purchase": "purchase", "reload": "reload"}
_HOUR = timedelta(hours=1)


def walk_basis(opening: LedgerEntry, terms: CreditTerms, width: str) -> str:
    """The fingerprint of what a walk's state depends on besides its charges and lots."""
    text = json.dumps(
        [_VERSION, width, opening.at.isoformat(), opening.amount_nanos, terms.to_json()],
        separators=(",", ":"),
    )
    return hashlib.sha256(text.encode()).hexdigest()


def checkpoint_plan(now: datetime) -> list[datetime]:
    """The instants to keep checkpoints at: recent hour boundaries and recent midnights."""
    hour = now.replace(minute=0, second=0, microsecond=0)
    hours = [hour - k * _HOUR for k in range(PLAN_HOURS)]
    midnight = day_start(now)
    days = [midnight - timedelta(days=k) for k in range(PLAN_DAYS)]
    return sorted(set(hours + days))


def note_change(session: Session, at: datetime, now: datetime) -> None:
    """A charge or a lot at ``at`` (or later) was written: checkpoints after ``at`` are stale."""
    session.add(WalkChange(at=at, created_at=now))


def _earliest_change(session: Session) -> datetime | None:
    earliest: datetime | None = session.execute(select(func.min(col(WalkChange.at)))).scalar_one()
    return earliest


def usable_checkpoint(
    session: Session, width: str, basis: str, now: datetime
) -> WalkCheckpoint | None:
    """The newest checkpoint still true for a walk to ``now``, or None (walk from the start)."""
    limit = now
    earliest = _earliest_change(session)
    if earliest is not None:
        limit = min(limit, earliest)
    rows = session.execute(
        select(col(WalkCheckpointRecord.at), col(WalkCheckpointRecord.state))
        .where(
            col(WalkCheckpointRecord.bucket_width) == width,
            col(WalkCheckpointRecord.basis) == basis,
            col(WalkCheckpointRecord.at) <= limit,
        )
        .order_by(col(WalkCheckpointRecord.at).desc())
        .limit(1)
    ).all()
    for at, state in rows:
        checkpoint = decode_checkpoint(state)
        if checkpoint is not None and checkpoint.at == at:
            return checkpoint
        log.warning("ignoring an unreadable walk checkpoint at %s", at.isoformat())
    return None


def settle_changes(session: Session, width: str, basis: str) -> None:
    """Drop the checkpoints the noted changes (or another basis) made stale, and the notes."""
    notes = session.execute(select(col(WalkChange.id), col(WalkChange.at))).all()
    stale = [
        col(WalkCheckpointRecord.bucket_width) != width,
        col(WalkCheckpointRecord.basis) != basis,
    ]
    if notes:
        stale.append(col(WalkCheckpointRecord.at) > min(at for _, at in notes))
    session.execute(delete(WalkCheckpointRecord).where(or_(*stale)))
    if notes:
        session.execute(delete(WalkChange).where(col(WalkChange.id).in_([i for i, _ in notes])))


def forget_checkpoints(session: Session) -> None:
    session.execute(delete(WalkCheckpointRecord))
    session.execute(delete(WalkChange))


def store_checkpoints(
    session: Session,
    width: str,
    basis: str,
    checkpoints: Iterable[WalkCheckpoint],
    now: datetime,
) -> None:
    """Keep the checkpoints the walk took that are not stored yet; forget the ones the plan no
    longer holds."""
    plan = checkpoint_plan(now)
    session.execute(
        delete(WalkCheckpointRecord).where(
            col(WalkCheckpointRecord.bucket_width) == width,
            col(WalkCheckpointRecord.at).not_in(plan),
        )
    )
    rows = [
        {
            "bucket_width": width,
            "at": checkpoint.at,
            "basis": basis,
            "state": encode_checkpoint(checkpoint),
            "created_at": now,
        }
        for checkpoint in checkpoints
        if checkpoint.at in plan
    ]
    if not rows:
        return
    table = WALK_CHECKPOINT
    # Another process's walk may store the same instant meanwhile: same facts, same state.
    # Each dialect imported when used: the PostgreSQL one is 2.4 MiB a SQLite ledger never needs.
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects import postgresql

        statement: Any = postgresql.insert(table).on_conflict_do_nothing()
    else:
        from sqlalchemy.dialects import sqlite

        statement = sqlite.insert(table).on_conflict_do_nothing()
    session.execute(statement, rows)


def encode_checkpoint(checkpoint: WalkCheckpoint) -> str:
    c = checkpoint
    return json.dumps(
        {
            "v": _VERSION,
            "at": c.at.isoformat(),
            "lots": [
                [
                    lot.key,
                    lot.kind,
                    _time_text(lot.at),
                    lot.amount_nanos,
                    _time_text(lot.expires_at),
                ]
                for lot in c.lots
            ],
            "remaining": [list(item) for item in c.remaining],
            "cursor": c.cursor,
            "scattered": c.scattered,
            "deficit": c.deficit_nanos,
            "pending_reload_at": _time_text(c.pending_reload_at),
            "blocked_month": list(c.blocked_month) if c.blocked_month else None,
            "reloaded": [[year, month, nanos] for (year, month), nanos in c.reloaded_by_month],
            "lowest": c.lowest_nanos,
            "lowest_at": _time_text(c.lowest_at),
            "first_zero_at": _time_text(c.first_zero_at),
            "zero_seconds": c.zero_seconds,
        },
        separators=(",", ":"),
    )


def decode_checkpoint(text: str) -> WalkCheckpoint | None:
    """The checkpoint ``text`` holds; None when it is not one this version wrote."""
    try:
        data = json.loads(text)
        if data.get("v") != _VERSION:
            return None
        blocked = data["blocked_month"]
        return WalkCheckpoint(
            at=datetime.fromisoformat(data["at"]),
            lots=tuple(_lot(*item) for item in data["lots"]),
            remaining=tuple((str(key), int(n)) for key, n in data["remaining"]),
            cursor=int(data["cursor"]),
            scattered=bool(data["scattered"]),
            deficit_nanos=int(data["deficit"]),
            pending_reload_at=_time(data["pending_reload_at"]),
            blocked_month=(int(blocked[0]), int(blocked[1])) if blocked else None,
            reloaded_by_month=tuple(((int(y), int(m)), int(n)) for y, m, n in data["reloaded"]),
            lowest_nanos=int(data["lowest"]),
            lowest_at=_time(data["lowest_at"]),
            first_zero_at=_time(data["first_zero_at"]),
            zero_seconds=float(data["zero_seconds"]),
        )
    except (ValueError, KeyError, TypeError, IndexError):
        return None


def _lot_item(lot: Lot) -> list[object]:
    return [lot.key, lot.kind, lot.at.isoformat(), lot.amount_nanos, lot.expires_at.isoformat()]


def _lot(key: str, kind: str, at: str, amount: int, expires_at: str) -> Lot:
    return Lot(
        str(key),
        _LOT_KINDS[kind],
        datetime.fromisoformat(at),
        int(amount),
        datetime.fromisoformat(expires_at),
    )


def _time_text(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def _time(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text is not None else None


def stored_instants(session: Session, width: str) -> Sequence[datetime]:
    """The instants checkpoints are stored at, oldest first (for `status` and the tests)."""
    return list(
        session.scalars(
            select(col(WalkCheckpointRecord.at))
            .where(col(WalkCheckpointRecord.bucket_width) == width)
            .order_by(col(WalkCheckpointRecord.at))
        )
    )
