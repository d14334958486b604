"""The series of usage rows: each distinct grouping (model, API key, workspace, tier, context
window, geography) stored once, its id on every usage row of it (see ``tables.UsageSeries``)."""

from __future__ import annotations

from collections.abc import Collection, Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.store.bulk import insert_rows
from service.store.tables import SERIES, SERIES_FIELDS

Grouping = tuple[str, str, str, str, str, str]
"""A series' grouping in ``SERIES_FIELDS`` order, ``""`` for Anthropic's null."""

IN_BATCH = 500
"""API keys per ``IN (...)`` list when series are looked up."""


def series_ids(session: Session, groupings: Iterable[Grouping]) -> dict[Grouping, int]:
    """The id of the series of each of ``groupings``, adding the series not stored yet (in
    this transaction: flushed, never committed). May hold more series than were asked for.

    New series are numbered in the order of ``groupings``: given in the order a read brings
    them, a bucket's rows are then written in the order of the usage key's index (a B-tree
    appends faster than it inserts: a month's COPY on PostgreSQL took a fifth less)."""
    wanted = dict.fromkeys(groupings)
    if not wanted:
        return {}
    found = _stored(session, wanted)
    missing = [grouping for grouping in wanted if grouping not in found]
    if missing:
        insert_rows(session, SERIES, SERIES_FIELDS, missing)
        found.update(_stored(session, missing))
    return found


def _stored(session: Session, groupings: Collection[Grouping]) -> dict[Grouping, int]:
    """The stored series of the API keys of ``groupings``: a few hundred rows at most for the
    keys a read brings, found by the series' unique index, which leads with the key."""
    keys = sorted({grouping[1] for grouping in groupings})
    columns = [SERIES.c.id, *(SERIES.c[name] for name in SERIES_FIELDS)]
    found: dict[Grouping, int] = {}
    for start in range(0, len(keys), IN_BATCH):
        statement = select(*columns).where(SERIES.c.api_key_id.in_(keys[start : start + IN_BATCH]))
        for row in session.execute(statement):
            found[(row[1], row[2], row[3], row[4], row[5], row[6])] = int(row[0])
    return found
