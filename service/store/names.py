"""Display names of API keys, workspaces and the organization, cached from the Admin API."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.orm import Session
from sqlmodel import col

from service.store.tables import EntityName


def save_names(session: Session, kind: str, names: dict[str, str], now: datetime) -> None:
    """Replace the stored names of one kind: ``api_key``, ``workspace`` or ``organization``."""
    session.execute(delete(EntityName).where(col(EntityName.kind) == kind))
    session.add_all(EntityName(kind=kind, id=i, name=n, updated_at=now) for i, n in names.items())
    session.flush()


def load_names(session: Session, kind: str) -> dict[str, str]:
    rows = session.execute(
        select(col(EntityName.id), col(EntityName.name)).where(col(EntityName.kind) == kind)
    )
    return {str(i): str(n) for i, n in rows}
