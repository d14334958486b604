"""Low-level ledger entries shared by booking and the balance: the opening, charge entries."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import insert, select
from sqlalchemy.orm import Session
from sqlmodel import col

from service.store.tables import LEDGER, LedgerEntry
from service.store.walk_checkpoints import note_change


def opening_entry(session: Session) -> LedgerEntry | None:
    """The starting balance as the ledger holds it (None while none is set)."""
    return session.scalars(select(LedgerEntry).where(col(LedgerEntry.kind) == "opening")).first()


def book_charge_entries(
    session: Session,
    charged_by_bucket: dict[tuple[datetime, str], int],
    now: datetime,
    *,
    note: str,
) -> None:
    """One ``usage`` entry per bucket for the change in its charged cost (zero changes skipped)."""
    changed = [(key, delta) for key, delta in sorted(charged_by_bucket.items()) if delta]
    if not changed:
        return
    entries = [
        {
            "kind": "usage",
            "at": bucket_start,
            "amount_nanos": -delta,
            "bucket_width": width,
            "note": note,
            "created_at": now,
        }
        for (bucket_start, width), delta in changed
    ]
    session.execute(insert(LEDGER), entries)
    note_change(session, changed[0][0][0], now)  # the earliest bucket changed
