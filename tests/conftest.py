"""Shared fixtures: a fresh database per test on SQLite and, when configured, on PostgreSQL.

PostgreSQL tests need CW_TEST_POSTGRES_URL; with CW_REQUIRE_POSTGRES=1 (CI) a
missing or unreachable server fails the run instead of skipping.
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url

from service.store.engine import make_engine
from service.store.migrations import upgrade

# Property tests check values, never speed (speed is `make bench`'s): hypothesis's per-example
# deadline only turned a loaded CI machine into failures.
settings.register_profile("creditwatch", deadline=None)
settings.load_profile("creditwatch")

POSTGRES_URL = os.environ.get("CW_TEST_POSTGRES_URL", "")
REQUIRE_POSTGRES = os.environ.get("CW_REQUIRE_POSTGRES") == "1"


def _postgres_schema_url(base: str, schema: str) -> str:
    url = make_url(base)
    url = url.set(drivername="postgresql+psycopg")
    url = url.update_query_dict({"options": f"-csearch_path={schema}"})
    return url.render_as_string(hide_password=False)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A URL of an empty database: a new SQLite file, or a new PostgreSQL schema."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'creditwatch.db'}"
        return
    if not POSTGRES_URL:
        if REQUIRE_POSTGRES:
            pytest.fail("CW_REQUIRE_POSTGRES=1 but CW_TEST_POSTGRES_URL is unset")
        pytest.skip("CW_TEST_POSTGRES_URL is not set")
    schema = f"t_{uuid.uuid4().hex[:16]}"
    admin = create_engine(_postgres_schema_url(POSTGRES_URL, "public"))
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield _postgres_schema_url(POSTGRES_URL, schema)
    finally:
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    """An engine on a fresh database migrated to head."""
    created = make_engine(db_url)
    upgrade(created)
    yield created
    created.dispose()


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """Put the root logger back as it was: the code under test reconfigures logging."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
