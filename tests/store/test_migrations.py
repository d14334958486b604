"""Migrations are a deploy step: an empty database upgrades to head and matches the models."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, text
from sqlmodel import SQLModel

import service.store.tables  # noqa: F401  # registers the tables on SQLModel.metadata
from service.store.engine import make_engine
from service.store.migrations import alembic_config, head_revision, migrations_dir, upgrade


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


def test_upgrade_from_0002_backfills_where_collection_started(db_url: str) -> None:
    """A database collected before 0003 learns its collection start from its oldest bucket."""
    engine = make_engine(db_url)
    config = alembic_config(engine)
    command.upgrade(config, "0002")
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO usage (bucket_start, bucket_width, model, api_key_id, workspace_id, "
                "service_tier, context_window, inference_geo, uncached_input_tokens, "
                "cache_creation_5m_tokens, cache_creation_1h_tokens, cache_read_tokens, "
                "output_tokens, web_search_requests, cost_nanos, charged_nanos, estimated, "
                "first_seen_at, updated_at) VALUES (:start, '1h', 'm', '', '', '', '', '', "
                "1, 0, 0, 0, 0, 0, 1000, 0, false, :start, :start)"
            ),
            {"start": "2026-10-05 03:00:00.000000"},
        )
        connection.execute(text("INSERT INTO collection_state (bucket_width) VALUES ('1h')"))
    upgrade(engine)
    with engine.connect() as connection:
        started = connection.execute(
            text("SELECT collected_from FROM collection_state")
        ).scalar_one()
    engine.dispose()
    assert str(started).startswith("2026-10-05 03:00:00")


@pytest.mark.parametrize("trial", range(3))
def test_instances_migrating_together_migrate_once(db_url: str, tmp_path: Path, trial: int) -> None:
    """Three processes upgrading one empty database at once all succeed; the schema is at head."""
    environment = {
        "PATH": "/usr/bin:/bin",
        "ANTHROPIC_ADMIN_KEY": "sk-ant-admin01-migration-race",
        "CREDITWATCH_DATABASE_URL": db_url,
    }
    upgrades = [
        subprocess.Popen(
            [sys.executable, "-m", "service", "db", "upgrade"],
            cwd=tmp_path,
            env=environment,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    outcomes = [(process.wait(timeout=120), *process.communicate()) for process in upgrades]
    assert [code for code, _, _ in outcomes] == [0, 0, 0], [err for _, _, err in outcomes]
    engine = make_engine(db_url)
    with engine.connect() as connection:
        context = MigrationContext.configure(connection)
        assert context.get_current_revision() == head_revision()
        assert compare_metadata(context, SQLModel.metadata) == []
    engine.dispose()


def test_the_migrations_are_found_beside_the_package() -> None:
    """From the checkout (editable install) the migrations are alembic/ with its versions."""
    assert (migrations_dir() / "env.py").is_file()
    assert (migrations_dir() / "versions").is_dir()
