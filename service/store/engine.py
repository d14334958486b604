"""Engines and transactions. SQLite runs in WAL mode with a busy timeout.

Writing transactions (:func:`transaction`) hold the ledger's write lock from their first
statement: ``BEGIN IMMEDIATE`` on SQLite, a transaction-scoped advisory lock on PostgreSQL.
Booking reads a row, then writes the difference; without the lock, a `once` run beside the
daemon could book the same growth twice. Reading transactions (:func:`read_transaction`) take no
lock and cannot write: `status` answers while a booking is in progress.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from service.errors import ConfigError

SQLITE_BUSY_TIMEOUT_MS = 30_000
# Any constant works; it only has to be the same for every creditwatch process on the database.
LEDGER_LOCK_KEY = 0x6372_6564_6974  # "credit"
_READ_ONLY = "creditwatch_read_only"


def make_engine(url: str, *, reading: bool = False) -> Engine:
    """An engine for ``url``; for SQLite, creates the file's folder and sets WAL and timeouts.

    A ``reading`` engine (the reading commands) creates nothing and writes nothing: no folder,
    no journal-mode change, and SQLite's ``query_only`` on every connection. Raises ConfigError
    when the folder of a SQLite file cannot be created.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        path = sqlite_path(url)
        if path is not None and not reading:
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise ConfigError(
                    "CREDITWATCH_DATABASE_URL",
                    f"cannot create the folder {str(path.parent)!r} "
                    f"({exc.strerror or type(exc).__name__})",
                    "sqlite:////var/lib/creditwatch/creditwatch.db",
                ) from None
        engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000})
        event.listen(engine, "connect", _sqlite_reader_pragmas if reading else _sqlite_pragmas)
        # pysqlite's own BEGIN is deferred (it takes no lock until the first write); emit ours.
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    if parsed.get_backend_name() == "postgresql" and parsed.drivername == "postgresql":
        # Plain postgresql:// would pick psycopg2, which is not a dependency; psycopg 3 is.
        url = parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
    engine = create_engine(url, pool_pre_ping=True)
    event.listen(engine, "connect", _postgres_utc)
    return engine


def sqlite_path(url: str) -> Path | None:
    """The file of a SQLite URL (None for other databases and in-memory SQLite)."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _postgres_utc(dbapi_connection: Any, _record: Any) -> None:
    """Every session in UTC, whatever the server's or the role's ``TimeZone``: psycopg reads a
    ``timestamptz`` in the session's zone, and an hour that daylight saving repeats would not
    compare equal to its UTC instant (a stored bucket would not be found again); SQL's date
    arithmetic then counts UTC days, as SQLite's naive-UTC text does."""
    autocommit = dbapi_connection.autocommit
    dbapi_connection.autocommit = True
    dbapi_connection.execute("SET TIME ZONE 'UTC'")
    dbapi_connection.autocommit = autocommit


def _sqlite_reader_pragmas(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA query_only=ON")
    cursor.close()


def _sqlite_begin(connection: Connection) -> None:
    if connection.get_execution_options().get(_READ_ONLY):
        # Deferred: in WAL mode a reader sees the last commit and never waits for the writer.
        connection.exec_driver_sql("BEGIN")
    else:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


@contextmanager
def transaction(engine: Engine, *, ledger_lock: bool = True) -> Iterator[Session]:
    """A writing session; commits at the end, rolls back on error.

    With ``ledger_lock`` (the default) it holds the ledger's lock, as booking must. The outbox
    worker's short claim and acknowledgement transactions do without it on PostgreSQL (an atomic
    ``UPDATE … WHERE state = …`` is their lock), so a long booking never holds up delivery.
    SQLite has one writer at a time whatever is asked.
    """
    with Session(engine, expire_on_commit=False) as session, session.begin():
        if ledger_lock and engine.dialect.name == "postgresql":
            session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": LEDGER_LOCK_KEY})
        yield session


def read_only(engine: Engine) -> Engine:
    """``engine`` for reading: its transactions take no write lock (SQLite begins deferred)."""
    return engine.execution_options(**{_READ_ONLY: True})


@contextmanager
def read_transaction(engine: Engine) -> Iterator[Session]:
    """A reading session: no lock, one consistent snapshot, and nothing it does is kept."""
    with Session(read_only(engine), expire_on_commit=False) as session, session.begin():
        if engine.dialect.name == "postgresql":
            # One snapshot for every query of the command, and writes refused outright.
            session.execute(text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY"))
        yield session
        session.rollback()
