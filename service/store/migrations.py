"""Alembic migrations: applied by `db upgrade`, `once` and `run`; checked by reading commands.

The migrations live in ``alembic/`` at the top of the checkout and ship inside the wheel as the
``service.migrations`` package (see ``pyproject.toml``). Upgrades hold a lock of their own, so
instances that start together on one PostgreSQL database migrate it once.
"""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import Engine

from service.errors import MigrationError, SchemaNotCurrent
from service.store.engine import read_only

MIGRATIONS_PACKAGE = "service.migrations"
# Distinct from the ledger lock: a migration must not wait behind a booking's transaction.
MIGRATION_LOCK_KEY = 0x6D69_6772_6174_65  # "migrate"
_NEWER = "a newer creditwatch migrated it; upgrade creditwatch (its migrations run forward only)"


def migrations_dir() -> Path:
    """The folder holding ``env.py`` and ``versions/``; MigrationError if it is not installed.

    Installed (a wheel, pipx), it is the ``service.migrations`` package. An editable install
    cannot map a package without ``__init__.py`` (and ``alembic/__init__.py`` would shadow the
    Alembic library for anything run from the checkout), so there it is ``alembic/`` beside
    the package.
    """
    spec = importlib.util.find_spec(MIGRATIONS_PACKAGE)
    candidates = [Path(p) for p in (spec.submodule_search_locations or [])] if spec else []
    candidates.append(Path(__file__).resolve().parents[2] / "alembic")
    for location in candidates:
        if (location / "env.py").is_file():
            return location
    raise MigrationError(
        f"the database migrations ({MIGRATIONS_PACKAGE}) are not installed with creditwatch; "
        "reinstall it from a wheel or the checkout"
    )


def alembic_config(engine: Engine) -> Config:
    config = Config()
    config.set_main_option("script_location", str(migrations_dir()))
    config.attributes["engine"] = engine
    return config


def upgrade(engine: Engine) -> None:
    """Apply every migration up to head (idempotent; concurrent upgrades migrate once).

    Raises MigrationError when the database is at a revision these migrations do not know
    (a newer creditwatch migrated it).
    """
    logging.getLogger("alembic").setLevel(logging.WARNING)
    try:
        command.upgrade(alembic_config(engine), "head")
    except CommandError as exc:
        raise MigrationError(f"cannot migrate the database: {exc}; {_NEWER}") from None


def head_revision() -> str:
    head = ScriptDirectory(str(migrations_dir())).get_current_head()
    if head is None:
        raise MigrationError("the installed migrations have no head revision")
    return head


def require_current_schema(engine: Engine) -> None:
    """Raise SchemaNotCurrent unless the database is at the newest migration. Writes nothing."""
    head = head_revision()
    with read_only(engine).connect() as connection:
        # None when there is no version table yet; a database that is down raises.
        current = MigrationContext.configure(connection).get_current_revision()
    if current == head:
        return
    if current is None:
        raise SchemaNotCurrent(
            "the database has no creditwatch schema yet: run `creditwatch db upgrade` "
            "(or `creditwatch once`) first"
        )
    scripts = ScriptDirectory(str(migrations_dir()))
    try:
        known = scripts.get_revision(current) is not None
    except CommandError:
        known = False
    if not known:
        raise SchemaNotCurrent(
            f"the database is at revision {current}, which this creditwatch does not know: {_NEWER}"
        )
    raise SchemaNotCurrent(
        f"the database is at revision {current}, this creditwatch needs {head}: "
        "run `creditwatch db upgrade`"
    )
