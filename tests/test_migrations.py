"""Migrations are a deploy step: an empty database upgrades to head and matches the models."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine
from sqlmodel import SQLModel

from service.db import alembic_config, upgrade


def test_upgrade_reaches_head_and_autogenerate_finds_nothing(engine: Engine) -> None:
    """After `db upgrade`, autogenerate sees no difference between models and schema."""
    head = ScriptDirectory.from_config(alembic_config(engine)).get_current_head()
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert context.get_current_revision() == head
        assert compare_metadata(context, SQLModel.metadata) == []


def test_upgrade_is_idempotent(engine: Engine) -> None:
    """Running the upgrade again (every `once` does) changes nothing and does not fail."""
    upgrade(engine)
    with engine.connect() as connection:
        assert compare_metadata(MigrationContext.configure(connection), SQLModel.metadata) == []
