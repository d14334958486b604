"""Alembic environment: migrates the engine creditwatch passes in, or CREDITWATCH_DATABASE_URL."""

from __future__ import annotations

import os

from alembic import context
from sqlalchemy import Engine
from sqlmodel import SQLModel

import service.models  # noqa: F401  # registers the tables on SQLModel.metadata
from service.db import make_engine

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
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()
        connection.commit()


run_migrations()
