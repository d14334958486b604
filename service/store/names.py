"""Display names of API keys, workspaces and the organization, cached from the Admin API.

A refresh updates the names it lists and keeps the others: a key deleted upstream no longer
appears in ``/v1/organizations/api_keys``, but its old usage still deserves its name. The
bookkeeping of refreshes lives beside the names, under the kind ``refreshed``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.orm import Session
from sqlmodel import col

from service.store.tables import EntityName

_STAMPS = "refreshed"
_UNRESOLVED = "unresolved"


def save_names(session: Session, kind: str, names: dict[str, str], now: datetime) -> None:
    """Store the names of one kind (``api_key``, ``workspace``, ``organization``): each listed
    id gets its current name (a rename upstream shows after the refresh); others are kept."""
    statement = select(EntityName).where(col(EntityName.kind) == kind)
    stored = {row.id: row for row in session.scalars(statement)}
    for entity_id, name in names.items():
        row = stored.get(entity_id)
        if row is None:
            session.add(EntityName(kind=kind, id=entity_id, name=name, updated_at=now))
        elif row.name != name:
            row.name, row.updated_at = name, now
    session.flush()


def load_names(session: Session, kind: str) -> dict[str, str]:
    rows = session.execute(
        select(col(EntityName.id), col(EntityName.name)).where(col(EntityName.kind) == kind)
    )
    return {str(i): str(n) for i, n in rows}


@dataclass(frozen=True)
class RefreshState:
    """When names were last fetched, when a fetch was last tried, and a digest of the ids in
    usage that the last fetch could not name (so the same unknown ids do not refetch at once)."""

    refreshed_at: datetime | None = None
    attempted_at: datetime | None = None
    unresolved: frozenset[str] = frozenset()


def refresh_state(session: Session) -> RefreshState:
    stamps = load_names(session, _STAMPS)

    def moment(key: str) -> datetime | None:
        value = stamps.get(key)
        return datetime.fromisoformat(value) if value else None

    return RefreshState(
        refreshed_at=moment("names"),
        attempted_at=moment("attempted"),
        unresolved=frozenset(load_names(session, _UNRESOLVED)),
    )


def add_unresolved(session: Session, unresolved: Iterable[str], now: datetime) -> None:
    """Add ids the last fetch could not name to those asked about again hourly."""
    known = set(load_names(session, _UNRESOLVED))
    session.add_all(
        EntityName(kind=_UNRESOLVED, id=i, name="", updated_at=now)
        for i in sorted(set(unresolved) - known)
    )


def record_refresh(
    session: Session, now: datetime, *, ok: bool, unresolved: Iterable[str] = ()
) -> None:
    """Note a refresh attempt; a successful one also moves the refresh time and the digest."""
    stamps = {"attempted": now.isoformat()}
    if ok:
        stamps |= {"names": now.isoformat()}
        # The ids the lists did not name either, one row each: asked about again hourly.
        session.execute(delete(EntityName).where(col(EntityName.kind) == _UNRESOLVED))
        session.add_all(
            EntityName(kind=_UNRESOLVED, id=i, name="", updated_at=now) for i in set(unresolved)
        )
    save_names(session, _STAMPS, stamps, now)
