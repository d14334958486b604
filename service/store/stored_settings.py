"""Named values stored with the ledger: the terms it was booked under, the price book's
fingerprint. A process whose settings differ learns so here."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from service.store.tables import StoredSetting


def stored_value(session: Session, name: str) -> str | None:
    row = session.get(StoredSetting, name)
    return row.value if row is not None else None


def store_value(session: Session, name: str, value: str, now: datetime) -> bool:
    """Set ``name`` to ``value``; True when it changed (or was new)."""
    row = session.get(StoredSetting, name)
    if row is None:
        session.add(StoredSetting(name=name, value=value, updated_at=now))
        return True
    if row.value == value:
        return False
    row.value, row.updated_at = value, now
    return True
