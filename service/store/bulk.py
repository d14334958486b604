"""Driver-level bulk writes: many rows inserted or updated in one round of the database's own
fast path, for booking a backfill of hundreds of thousands of usage rows.

SQLAlchemy's per-row parameter handling was most of the booking time (see `make bench`). These
functions take plain tuples in the order of ``columns`` and convert only the values whose
column type has a bind processor (times, booleans on SQLite), through the type's own processor,
so the stored form is exactly what the ORM writes. SQLite gets one ``executemany``; PostgreSQL
gets a binary ``COPY`` (into the table, or into a temporary table followed by one
``UPDATE … FROM``).
"""

from __future__ import annotations

import re
import struct
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import Connection, Table
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

Row = Sequence[Any]

COPY_UPDATE_MIN_ROWS = 500
"""Fewer changed rows than this are updated by ``executemany``, not COPY: a steady cycle
changes a few rows, and a temporary table per cycle would cost more than it saves."""

_UPDATE_TABLE = "cw_bulk_update"
_TYPE_ARGUMENTS = re.compile(r"\(.*\)")
"""``(200)`` of ``VARCHAR(200)``: psycopg names a binary type without its arguments."""


def binder(session: Session, table: Table, name: str) -> Callable[[Any], Any]:
    """What the driver is given for a value of ``table``'s column ``name``: the value through
    its type's bind processor, each distinct value converted once (an identity when the type
    has none). For rows built in that form and written with ``bound=True``, which saves a
    second pass over every row of a backfill."""
    processor = _processor(session.connection(), table, name)
    if processor is None:
        return _same
    return _Converted(processor).__getitem__


class _Converted(dict[Any, Any]):
    def __init__(self, processor: Callable[[Any], Any]) -> None:
        super().__init__()
        self.processor = processor

    def __missing__(self, value: Any) -> Any:
        converted = self[value] = self.processor(value)
        return converted


def _processor(connection: Connection, table: Table, name: str) -> Callable[[Any], Any] | None:
    dialect = connection.dialect
    processor: Callable[[Any], Any] | None = (
        table.c[name].type.dialect_impl(dialect).bind_processor(dialect)
    )
    return processor


def _same(value: Any) -> Any:
    return value


def insert_rows(
    session: Session,
    table: Table,
    columns: Sequence[str],
    rows: Sequence[Row],
    *,
    bound: bool = False,
) -> None:
    """Insert ``rows`` (tuples in the order of ``columns``) into ``table``; ``bound``: every
    value is already in the driver's form (see ``binder``)."""
    if not rows:
        return
    connection = session.connection()
    values = rows if bound else _converted(connection, table, columns, rows)
    if connection.dialect.name == "postgresql":
        _copy(connection, table, table.name, columns, values)
        return
    connection.exec_driver_sql(
        f"INSERT INTO {table.name} ({', '.join(columns)}) "  # noqa: S608 - names are our columns
        f"VALUES ({', '.join([_mark(connection)] * len(columns))})",
        values,
    )


def update_rows(
    session: Session,
    table: Table,
    columns: Sequence[str],
    rows: Sequence[Row],
    *,
    bound: bool = False,
) -> None:
    """Set ``columns`` of the rows of ``table`` whose ``id`` ends each tuple of ``rows``
    (tuples: the values in the order of ``columns``, then the id); ``bound`` as for
    ``insert_rows``."""
    if not rows:
        return
    connection = session.connection()
    values = rows if bound else _converted(connection, table, [*columns, "id"], rows)
    if connection.dialect.name == "postgresql" and len(rows) >= COPY_UPDATE_MIN_ROWS:
        _copy_update(connection, table, columns, values)
        return
    mark = _mark(connection)
    assignments = ", ".join(f"{name} = {mark}" for name in columns)
    connection.exec_driver_sql(
        f"UPDATE {table.name} SET {assignments} WHERE id = {mark}",  # noqa: S608 - our columns
        values,
    )


def _copy_update(
    connection: Connection, table: Table, columns: Sequence[str], values: Sequence[Row]
) -> None:
    dialect = connection.dialect
    names = [*columns, "id"]
    typed = ", ".join(f"{name} {table.c[name].type.compile(dialect)}" for name in names)
    # Dropped after the update; a failure aborts the transaction, whose rollback drops it (a
    # DROP then would only replace the real error with "transaction is aborted").
    connection.exec_driver_sql(f"CREATE TEMPORARY TABLE {_UPDATE_TABLE} ({typed}) ON COMMIT DROP")
    _copy(connection, table, _UPDATE_TABLE, names, values)
    assignments = ", ".join(f"{name} = changed.{name}" for name in columns)
    connection.exec_driver_sql(
        f"UPDATE {table.name} SET {assignments} "  # noqa: S608 - names are our columns
        f"FROM {_UPDATE_TABLE} AS changed WHERE {table.name}.id = changed.id"
    )
    connection.exec_driver_sql(f"DROP TABLE {_UPDATE_TABLE}")


def _copy(
    connection: Connection, table: Table, target: str, names: Sequence[str], values: Sequence[Row]
) -> None:
    """``COPY`` of ``values`` into ``target`` (``names``: columns of ``table``) through
    psycopg's own connection, in PostgreSQL's binary format: each value is sent as its column's
    type, which the server does not parse again (text COPY took half again as long)."""
    dialect = connection.dialect
    sql = f"COPY {target} ({', '.join(names)}) FROM STDIN (FORMAT BINARY)"
    types = [_TYPE_ARGUMENTS.sub("", table.c[name].type.compile(dialect)).lower() for name in names]
    try:
        driver: Any = connection.connection.driver_connection
        with driver.cursor() as cursor, cursor.copy(sql) as copy:
            copy.set_types(types)
            for value in values:
                copy.write_row(value)
    except (OverflowError, struct.error) as exc:
        # A bigint its binary type cannot hold, refused before the server sees it (psycopg's C
        # build raises OverflowError, its Python build struct.error): said as the server says
        # it, and raised as every other refused value is. An ``integer`` column is not checked
        # so (the C build wraps it): ours hold only the database's own ids.
        refused = dialect.loaded_dbapi.DataError(f"value out of range for its column: {exc}")
        raise DBAPIError(sql, None, refused) from exc
    except dialect.loaded_dbapi.Error as exc:
        # Raised as SQLAlchemy's DBAPIError, like every other statement, for one handler.
        raise DBAPIError(sql, None, exc) from exc


def _mark(connection: Connection) -> str:
    return "?" if connection.dialect.paramstyle == "qmark" else "%s"


def _converted(
    connection: Connection, table: Table, columns: Sequence[str], rows: Sequence[Row]
) -> list[tuple[Any, ...]]:
    """``rows`` with each value of a column that has a bind processor passed through it.

    Column by column: the values that need converting (times, booleans) repeat down a column
    (a bucket's start, the booking time), so each distinct value is converted once.
    """
    processors: list[tuple[int, Callable[[Any], Any]]] = []
    for index, name in enumerate(columns):
        found = _processor(connection, table, name)
        if found is not None:
            processors.append((index, found))
    if not processors:
        return [tuple(row) for row in rows]
    # Every row has a value per column; zip's strict check costs seconds with a row per argument.
    by_column = list(zip(*rows, strict=False))
    for index, processor in processors:
        values = by_column[index]
        mapping = {value: processor(value) for value in set(values) if value is not None}
        mapping[None] = None
        by_column[index] = tuple(map(mapping.__getitem__, values))
    return list(zip(*by_column, strict=True))
