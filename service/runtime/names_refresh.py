"""Keeps the cached names of API keys and workspaces current, best effort.

Names are fetched once a day, and sooner when usage names an id the cache does not know (a key
created since the last fetch). At most one fetch per cycle; ids the fetch could not name either
(a deleted key, which the list no longer shows) are retried hourly, not every cycle. A failing
fetch is logged and retried after an hour: names make reports readable, they never block
collection.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Protocol

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from service.domain.usage import UsageRow
from service.errors import AdminAPIError
from service.store import names
from service.store.engine import transaction

log = logging.getLogger(__name__)

NAMES_REFRESH = timedelta(days=1)
NAMES_RETRY = timedelta(hours=1)


class NameSource(Protocol):
    def api_key_names(self) -> dict[str, str]: ...

    def workspace_names(self) -> dict[str, str]: ...

    def organization_name(self) -> str: ...


def refresh_due(state: names.RefreshState, now: datetime, unknown: frozenset[str]) -> str | None:
    """Why the names should be fetched now (None: not now). ``unknown`` holds the ids in the
    usage at hand that have no name; ids the last fetch could not name either are asked about
    again hourly, however they come and go between chunks."""
    last, tried = state.refreshed_at, state.attempted_at
    if tried is not None and (last is None or tried > last) and now - tried < NAMES_RETRY:
        return None
    if last is None or now - last >= NAMES_REFRESH:
        return "daily refresh"
    if unknown and (not unknown <= state.unresolved or now - last >= NAMES_RETRY):
        return "usage names ids without a cached name"
    return None


class NameRefresher:
    """One cycle's name refresh: asked after each chunk is fetched, fetches at most once."""

    def __init__(self, engine: Engine, client: NameSource, now: datetime) -> None:
        self.engine = engine
        self.client = client
        self.now = now
        self.asked = False
        self.fetched = False

    def refresh_if_due(self, rows: Iterable[UsageRow] = ()) -> bool:
        """Fetch the names when due; returns whether they were fetched.

        After this cycle's fetch, a later chunk's ids that still have no name are ones the
        lists did not show either: they join the ids asked about again hourly, so the next
        cycle does not take them for new ones."""
        if self.asked:
            if self.fetched:
                with transaction(self.engine) as session:
                    names.add_unresolved(session, unknown_ids(session, rows), self.now)
            return False
        with transaction(self.engine) as session:
            state = names.refresh_state(session)
            unknown = unknown_ids(session, rows)
        reason = refresh_due(state, self.now, frozenset(unknown))
        if reason is None:
            return False
        self.asked = True
        try:
            keys = self.client.api_key_names()
            workspaces = self.client.workspace_names()
            org = self.client.organization_name()
        except AdminAPIError as exc:
            log.warning("could not refresh API key and workspace names: %s", exc)
            with transaction(self.engine) as session:
                names.record_refresh(session, self.now, ok=False)
            return False
        with transaction(self.engine) as session:
            names.save_names(session, "api_key", keys, self.now)
            names.save_names(session, "workspace", workspaces, self.now)
            names.save_names(session, "organization", {"name": org}, self.now)
            still = [i for i in unknown if not _named(i, keys, workspaces)]
            names.record_refresh(session, self.now, ok=True, unresolved=still)
        self.fetched = True
        log.info(
            "names refreshed (%s): %d API keys, %d workspaces%s",
            reason,
            len(keys),
            len(workspaces),
            f"; {len(still)} id(s) in usage still without a name" if still else "",
        )
        return True


def unknown_ids(session: Session, rows: Iterable[UsageRow]) -> list[str]:
    """``api_key:ID`` and ``workspace:ID`` for each id in ``rows`` without a cached name."""
    keys: set[str] = set()
    workspaces: set[str] = set()
    for row in rows:
        if row.key.api_key_id:
            keys.add(row.key.api_key_id)
        if row.key.workspace_id:
            workspaces.add(row.key.workspace_id)
    if not keys and not workspaces:
        return []
    known_keys = names.load_names(session, "api_key")
    known_workspaces = names.load_names(session, "workspace")
    return sorted(
        [f"api_key:{k}" for k in keys if k not in known_keys]
        + [f"workspace:{w}" for w in workspaces if w not in known_workspaces]
    )


def _named(tagged: str, keys: dict[str, str], workspaces: dict[str, str]) -> bool:
    kind, _, entity_id = tagged.partition(":")
    return entity_id in (keys if kind == "api_key" else workspaces)
