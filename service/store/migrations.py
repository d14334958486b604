"""Alembic migrations: applied by `db upgrade`, `once` and `run`; checked by reading commands.

The migrations live in ``alembic/`` at the top of the checkout and ship inside the wheel as the
``service.migrations`` package (see ``pyproject.toml``). Upgrades hold a lock of their own, so
instances that start together on one PostgreSQL database migrate it once.

Alembic (and Mako, which it brings) is imported only when there is something to migrate or to
explain: a database already at head is recognised by reading ``alembic_version`` with one
query against the head named in the migration files, so the daemon and the reading commands
never load it on their usual path.
"""

from __future__ import annotations

import ast
import importlib.util
import logging
import re
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Connection, Engine, inspect, text

from service.errors import MigrationError, SchemaNotCurrent
from service.store.engine import read_only

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS_PACKAGE = "service.migrations"
# Distinct from the ledger lock: a migration must not wait behind a booking's transaction.
MIGRATION_LOCK_KEY = 0x6D69_6772_6174_65  # "migrate"
# Alembic's default version table, which env.py keeps.
VERSION_TABLE = "alembic_version"
_NEWER = "a newer creditwatch migrated it; upgrade creditwatch (its migrations run forward only)"
# Which files of versions/ Alembic reads as migrations (its ScriptDirectory, sources only).
_MIGRATION_FILE = re.compile(r"(?!\.\#|__init__)(.*\.py)$")


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
    from alembic.config import Config

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
    if _at_head(engine):
        return
    from alembic import command
    from alembic.util import CommandError

    try:
        command.upgrade(alembic_config(engine), "head")
    except CommandError as exc:
        raise MigrationError(f"cannot migrate the database: {exc}; {_NEWER}") from None


def head_revision() -> str:
    from alembic.script import ScriptDirectory

    head = ScriptDirectory(str(migrations_dir())).get_current_head()
    if head is None:
        raise MigrationError("the installed migrations have no head revision")
    return head


def require_current_schema(engine: Engine) -> None:
    """Raise SchemaNotCurrent unless the database is at the newest migration. Writes nothing."""
    if _at_head(engine):
        return
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory
    from alembic.util import CommandError

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


def _at_head(engine: Engine) -> bool:
    """Whether the database is certainly at the head of the installed migrations, told
    without Alembic; False also when only Alembic can tell (it is then asked)."""
    head = head_of_files(migrations_dir() / "versions")
    if head is None:
        return False
    with read_only(engine).connect() as connection:
        # A database that is down raises here, as it would in Alembic's first connect.
        return _stored_revisions(connection) == [head]


def _stored_revisions(connection: Connection) -> list[str] | None:
    """The revisions in the version table; None when there is no version table yet."""
    if not inspect(connection).has_table(VERSION_TABLE):
        return None
    return list(connection.execute(text("SELECT version_num FROM alembic_version")).scalars())


def head_of_files(versions: Path) -> str | None:
    """The head revision of the linear history the files of ``versions`` declare, read from
    their source without running them; None unless every migration names its ``revision``
    and ``down_revision`` as plain strings (or None), with no branch labels or dependencies,
    and they form one line (Alembic is the judge of anything else)."""
    parents: dict[str, str | None] = {}
    for path in sorted(versions.iterdir()):
        if not path.is_file() or not _MIGRATION_FILE.match(path.name):
            continue
        declared = _declared(path)
        if declared is None or declared[0] in parents:
            return None
        parents[declared[0]] = declared[1]
    heads = parents.keys() - set(parents.values())
    if len(heads) != 1:
        return None
    head = next(iter(heads))
    walked: set[str] = set()
    revision: str | None = head
    while revision is not None:
        if revision in walked or revision not in parents:
            return None
        walked.add(revision)
        revision = parents[revision]
    return head if walked == parents.keys() else None


def _declared(path: Path) -> tuple[str, str | None] | None:
    """(revision, down_revision) as one migration file assigns them; None if not plainly."""
    try:
        tree = ast.parse(path.read_bytes(), filename=str(path))
    except (OSError, SyntaxError, ValueError):
        return None
    names: dict[str, object] = {}
    for statement in tree.body:
        if isinstance(statement, ast.Assign) and len(statement.targets) == 1:
            target, value = statement.targets[0], statement.value
        elif isinstance(statement, ast.AnnAssign) and statement.value is not None:
            target, value = statement.target, statement.value
        else:
            continue
        if isinstance(target, ast.Name):
            names[target.id] = value.value if isinstance(value, ast.Constant) else value
    revision, down = names.get("revision"), names.get("down_revision")
    if names.get("branch_labels") is not None or names.get("depends_on") is not None:
        return None
    if not isinstance(revision, str) or not (down is None or isinstance(down, str)):
        return None
    return revision, down
