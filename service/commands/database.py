"""How commands open the ledger: writers migrate it, readers only check it and take no lock."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import cast

from sqlalchemy import Engine

from service.domain.usage import BucketWidth
from service.errors import LedgerError
from service.settings import Settings
from service.store.engine import make_engine, read_transaction, sqlite_path
from service.store.migrations import require_current_schema, upgrade
from service.store.usage_queries import usage_widths

log = logging.getLogger("creditwatch")


@contextmanager
def ledger_for_writing(settings: Settings) -> Iterator[Engine]:
    """An engine on the ledger migrated to head (created when it does not exist), disposed after."""
    engine = make_engine(settings.ledger.database_url)
    try:
        upgrade(engine)
        yield engine
    finally:
        engine.dispose()


@contextmanager
def ledger_for_reading(settings: Settings) -> Iterator[Engine]:
    """An engine on an existing ledger at the current schema, disposed afterwards.

    Reading commands never write: they do not migrate (SchemaNotCurrent says to run
    `creditwatch db upgrade`), and a SQLite file that does not exist is an error rather than
    an empty ledger (a typo in the path should not answer "no usage").
    """
    path = sqlite_path(settings.ledger.database_url)
    if path is not None and not path.exists():
        raise LedgerError(f"no ledger at {path} yet: run `creditwatch once` first")
    engine = make_engine(settings.ledger.database_url, reading=True)
    try:
        require_current_schema(engine)
        yield engine
    finally:
        engine.dispose()


def as_stored(engine: Engine, settings: Settings) -> Settings:
    """``settings`` with the bucket width the database holds: reading it at another width
    would find no usage (`once` and the daemon refuse the mismatch; reads adapt)."""
    with read_transaction(engine) as session:
        widths = usage_widths(session)
    width = settings.collection.bucket_width
    if len(widths) == 1 and widths[0] != width:
        log.warning(
            "the database holds %s buckets; reading it as such, not as CREDITWATCH_BUCKET_WIDTH=%s",
            widths[0],
            width,
        )
        stored = cast(BucketWidth, widths[0])  # the database only ever holds valid widths
        collection = dataclasses.replace(settings.collection, bucket_width=stored)
        return dataclasses.replace(settings, collection=collection)
    return settings
