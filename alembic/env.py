"""Alembic environment: migrates the engine creditwatch passes in, or CREDITWATCH_DATABASE_URL.

Every upgrade runs in one transaction that holds a lock of its own first (PostgreSQL: a
transaction-scoped advisory lock; SQLite: the write lock of BEGIN IMMEDIATE), so two instances
starting together migrate once: the second waits, then finds the schema at head. Alembic treats
SQLite's DDL as non-transactional and would commit each revision on its own, after reading the
current revision once; ``transactional_ddl=True`` keeps the whole upgrade under the lock.
"""

from __future__ import annotations

import os

from alembic import context
from sqlalchemy import Engine, text
from sqlmodel import SQLModel

import service.store.tables  # noqa: F401  # registers the tables on SQLModel.metadata
from service.store.engine import make_engine
from service.store.migrations import MIGRATION_LOCK_KEY

target_metadata = SQLModel.metadata


def run_migrations() -> None:
    engine: Engine | None = context.config.attributes.get("engine")
    if engine is None:
        engine = make_engine(os.environ.get("CREDITWATCH_DATABASE_URL", "sqlite:///creditwatch.db"))
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=connection.dialect.name == "sqlite",
            transactional_ddl=True,
            compare_type=True,
        )
        with context.begin_transaction():
            if connection.dialect.name == "postgresql":
                connection.execute(
                    text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY}
                )
            context.run_migrations()
        connection.commit()


run_migrations()
