"""The ledger: usage rows booked once by natural key, and the balance as a sum of entries.

Booking rules (DESIGN §2 step 3):
- a usage row is identified by its natural key; a re-read merges field-wise by maximum, because
  Anthropic's buckets only grow and a smaller re-read is a stale one;
- a row's cost is charged to the balance only when its bucket starts at or after the starting
  balance's time; earlier usage is stored (budgets count it) but not charged;
- each booking writes, per bucket, one ``usage`` entry holding the sum of the changes in the
  charged cost of that bucket's rows, so re-reading unchanged data books nothing.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import (
    BigInteger,
    Table,
    bindparam,
    case,
    delete,
    func,
    insert,
    literal,
    select,
    update,
)
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import SQLModel, col

from service.errors import LedgerError
from service.models import EntityName, LedgerEntry, UnknownModel, UsageRecord
from service.usage import BucketWidth, TokenCounts, UsageKey, UsageRow

USAGE: Table = SQLModel.metadata.tables[UsageRecord.__tablename__]
LEDGER: Table = SQLModel.metadata.tables[LedgerEntry.__tablename__]

COUNT_FIELDS = (
    "uncached_input_tokens",
    "cache_creation_5m_tokens",
    "cache_creation_1h_tokens",
    "cache_read_tokens",
    "output_tokens",
    "web_search_requests",
)
KEY_FIELDS = (
    "model",
    "api_key_id",
    "workspace_id",
    "service_tier",
    "context_window",
    "inference_geo",
)


@dataclass(frozen=True, slots=True)
class PricedCost:
    """What the pricer says a row costs, in nano-dollars."""

    cost_nanos: int
    estimated: bool
    unknown_model: str | None = None
    priced_as: str | None = None


Pricer = Callable[[UsageKey, TokenCounts], PricedCost]


@dataclass(frozen=True, slots=True)
class BookingResult:
    new_rows: int = 0
    changed_rows: int = 0
    unchanged_rows: int = 0
    spend_nanos: int = 0
    charged_nanos: int = 0


DbKey = tuple[datetime, str, str, str, str, str, str, str]


def _db_key(key: UsageKey) -> DbKey:
    return (
        key.bucket_start,
        key.bucket_width,
        key.model or "",
        key.api_key_id or "",
        key.workspace_id or "",
        key.service_tier or "",
        key.context_window or "",
        key.inference_geo or "",
    )


def _counts_of(record: Any) -> TokenCounts:
    return TokenCounts(*(int(getattr(record, name)) for name in COUNT_FIELDS))


def _is_charged(bucket_start: datetime, opening_at: datetime | None) -> bool:
    return opening_at is not None and bucket_start >= opening_at


def merge_rows(rows: Iterable[UsageRow]) -> dict[UsageKey, TokenCounts]:
    """Fold rows by key with field-wise maximum (a page may repeat a key across re-reads)."""
    merged: dict[UsageKey, TokenCounts] = {}
    for row in rows:
        seen = merged.get(row.key)
        merged[row.key] = row.counts if seen is None else seen.merge_max(row.counts)
    return merged


def book_usage(
    session: Session,
    rows: Sequence[UsageRow],
    price: Pricer,
    *,
    opening_at: datetime | None,
    now: datetime,
) -> BookingResult:
    """Upsert ``rows`` and book the change in charged cost per bucket. Flushes; never commits."""
    merged = merge_rows(rows)
    if not merged:
        return BookingResult()
    existing = _load_existing(session, merged.keys())
    inserts: list[dict[str, Any]] = []
    updates: list[dict[str, Any]] = []
    charged_by_bucket: dict[tuple[datetime, str], int] = defaultdict(int)
    unknown: dict[str, str] = {}
    unchanged = spend = 0
    for key, fetched in merged.items():
        db_key = _db_key(key)
        record = existing.get(db_key)
        counts = fetched if record is None else _counts_of(record).merge_max(fetched)
        if record is not None and counts == _counts_of(record):
            unchanged += 1
            continue
        priced = price(key, counts)
        if priced.unknown_model:
            unknown[priced.unknown_model] = priced.priced_as or ""
        charged = priced.cost_nanos if _is_charged(key.bucket_start, opening_at) else 0
        values = {name: getattr(counts, name) for name in COUNT_FIELDS}
        values.update(
            cost_nanos=priced.cost_nanos,
            charged_nanos=charged,
            estimated=priced.estimated,
            updated_at=now,
        )
        if record is None:
            values.update(zip(("bucket_start", "bucket_width", *KEY_FIELDS), db_key, strict=True))
            values["first_seen_at"] = now
            inserts.append(values)
            spend += priced.cost_nanos
            delta = charged
        else:
            values["_id"] = record.id
            updates.append(values)
            spend += priced.cost_nanos - record.cost_nanos
            delta = charged - record.charged_nanos
        if delta:
            charged_by_bucket[(key.bucket_start, key.bucket_width)] += delta
    if inserts:
        _insert_rows(session, USAGE, inserts)
    if updates:
        columns = [*COUNT_FIELDS, "cost_nanos", "charged_nanos", "estimated", "updated_at"]
        statement = (
            update(USAGE)
            .where(USAGE.c.id == bindparam("_id"))
            .values({name: bindparam(name) for name in columns})
        )
        session.connection().execute(statement, updates)
    _book_usage_entries(session, charged_by_bucket, now, note="usage")
    _record_unknown_models(session, unknown, now)
    return BookingResult(
        new_rows=len(inserts),
        changed_rows=len(updates),
        unchanged_rows=unchanged,
        spend_nanos=spend,
        charged_nanos=sum(charged_by_bucket.values()),
    )


def _insert_rows(session: Session, table: Table, rows: list[dict[str, Any]]) -> None:
    """A plain DBAPI ``executemany`` of ``rows``, values converted by the columns' own types.

    A first backfill inserts hundreds of thousands of rows; SQLAlchemy's per-row parameter
    handling was half of the booking time (see `make bench`). The columns' public bind
    processors keep the stored form identical to what the ORM writes.
    """
    connection = session.connection()
    dialect = connection.dialect
    columns = list(rows[0])
    converters = [
        table.c[name].type.dialect_impl(dialect).bind_processor(dialect) for name in columns
    ]
    cache: dict[tuple[int, Any], Any] = {}

    def convert(index: int, value: Any) -> Any:
        processor = converters[index]
        if processor is None or value is None:
            return value
        key = (index, value)
        if key not in cache:
            cache[key] = processor(value)
        return cache[key]

    values = [tuple(convert(i, row[name]) for i, name in enumerate(columns)) for row in rows]
    if dialect.name == "postgresql":
        # COPY is PostgreSQL's bulk path; psycopg adapts the converted values the same way.
        copy_sql = f"COPY {table.name} ({', '.join(columns)}) FROM STDIN"
        try:
            driver: Any = connection.connection.driver_connection  # psycopg's own connection
            with driver.cursor() as cursor, cursor.copy(copy_sql) as copy:
                for value in values:
                    copy.write_row(value)
        except dialect.loaded_dbapi.Error as exc:
            # Raised as SQLAlchemy's DBAPIError, like every other statement, for one handler.
            raise DBAPIError(copy_sql, None, exc) from exc
        return
    mark = "?" if dialect.paramstyle == "qmark" else "%s"
    statement = (
        f"INSERT INTO {table.name} ({', '.join(columns)}) "  # noqa: S608 - names are our columns
        f"VALUES ({', '.join([mark] * len(columns))})"
    )
    connection.exec_driver_sql(statement, values)


def _load_existing(session: Session, keys: Iterable[UsageKey]) -> dict[DbKey, Any]:
    by_width: dict[str, list[datetime]] = defaultdict(list)
    for key in keys:
        by_width[key.bucket_width].append(key.bucket_start)
    found: dict[DbKey, Any] = {}
    for width, starts in by_width.items():
        statement = select(USAGE).where(
            USAGE.c.bucket_width == width,
            USAGE.c.bucket_start >= min(starts),
            USAGE.c.bucket_start <= max(starts),
        )
        for record in session.execute(statement):
            db_key = (
                record.bucket_start,
                record.bucket_width,
                *(getattr(record, name) for name in KEY_FIELDS),
            )
            found[cast(DbKey, db_key)] = record
    return found


def _book_usage_entries(
    session: Session,
    charged_by_bucket: dict[tuple[datetime, str], int],
    now: datetime,
    *,
    note: str,
) -> None:
    entries = [
        {
            "kind": "usage",
            "at": bucket_start,
            "amount_nanos": -delta,
            "bucket_width": width,
            "note": note,
            "created_at": now,
        }
        for (bucket_start, width), delta in sorted(charged_by_bucket.items())
        if delta
    ]
    if entries:
        session.execute(insert(LEDGER), entries)


def _record_unknown_models(session: Session, unknown: dict[str, str], now: datetime) -> None:
    for model, priced_as in unknown.items():
        row = session.get(UnknownModel, model)
        if row is None:
            session.add(
                UnknownModel(model=model, priced_as=priced_as, first_seen_at=now, last_seen_at=now)
            )
        else:
            row.last_seen_at = now
            row.priced_as = priced_as
    session.flush()


def opening_entry(session: Session) -> LedgerEntry | None:
    return session.scalars(select(LedgerEntry).where(col(LedgerEntry.kind) == "opening")).first()


def ensure_opening(
    session: Session, amount_nanos: int | None, at: datetime | None, now: datetime
) -> bool:
    """Make the opening entry match the settings; re-charge usage if its time moved.

    Returns True when anything changed. Without a starting balance nothing is charged and the
    balance is unknown.
    """
    current = opening_entry(session)
    if current is not None and amount_nanos is not None and at is not None:
        if current.amount_nanos == amount_nanos and current.at == at:
            return False
        moved = current.at != at
        current.amount_nanos = amount_nanos
        current.at = at
        current.note = "starting balance (changed in settings)"
        session.flush()
        if moved:
            rebase_charges(session, at, now)
        return True
    if current is None and amount_nanos is not None and at is not None:
        session.add(
            LedgerEntry(
                kind="opening",
                at=at,
                amount_nanos=amount_nanos,
                note="starting balance",
                created_at=now,
            )
        )
        session.flush()
        rebase_charges(session, at, now)
        return True
    if current is not None:
        session.delete(current)
        session.flush()
        rebase_charges(session, None, now)
        return True
    return False


def rebase_charges(session: Session, opening_at: datetime | None, now: datetime) -> None:
    """Charge exactly the usage at or after ``opening_at`` (none when None), booking differences."""
    target: ColumnElement[int] = (
        literal(0, BigInteger)
        if opening_at is None
        else case((USAGE.c.bucket_start >= opening_at, USAGE.c.cost_nanos), else_=0)
    )
    diff = target - USAGE.c.charged_nanos
    per_bucket = session.execute(
        select(USAGE.c.bucket_start, USAGE.c.bucket_width, func.sum(diff))
        .where(diff != 0)
        .group_by(USAGE.c.bucket_start, USAGE.c.bucket_width)
    ).all()
    charged = {(start, width): int(total) for start, width, total in per_bucket}
    _book_usage_entries(session, charged, now, note="re-charged: starting balance time changed")
    session.execute(update(USAGE).where(diff != 0).values(charged_nanos=target))


def add_purchase(
    session: Session,
    amount_nanos: int,
    at: datetime,
    note: str,
    now: datetime,
    *,
    expires_at: datetime | None = None,
) -> LedgerEntry:
    """Record a credit purchase. Raises LedgerError for a non-positive amount or an early date."""
    if amount_nanos <= 0:
        raise LedgerError("a purchase must be a positive amount")
    opening = opening_entry(session)
    if opening is not None and at < opening.at:
        raise LedgerError(
            f"purchase at {at.isoformat()} is before the starting balance time "
            f"{opening.at.isoformat()}, which already includes it"
        )
    if expires_at is not None and expires_at <= at:
        raise LedgerError("a purchase must expire after it is made")
    entry = LedgerEntry(
        kind="purchase",
        at=at,
        amount_nanos=amount_nanos,
        note=note,
        created_at=now,
        expires_at=expires_at,
    )
    session.add(entry)
    session.flush()
    return entry


def purchases(session: Session) -> list[LedgerEntry]:
    statement = select(LedgerEntry).where(col(LedgerEntry.kind).in_(("opening", "purchase")))
    return list(session.scalars(statement.order_by(col(LedgerEntry.at), col(LedgerEntry.id))))


def balance_nanos(session: Session) -> int | None:
    """The credit balance now, or None while no starting balance is set.

    A purchase dated before the starting balance time is part of that balance already (the
    time may have been moved past it after the purchase was recorded), so it is not added again.
    """
    opening = opening_entry(session)
    if opening is None:
        return None
    counted = ~((LEDGER.c.kind == "purchase") & (LEDGER.c.at < opening.at))
    total = session.execute(
        select(func.coalesce(func.sum(LEDGER.c.amount_nanos), 0)).where(counted)
    ).scalar_one()
    return int(total)


def period_spend_nanos(session: Session, start: datetime, end: datetime, width: BucketWidth) -> int:
    """Priced cost of usage in buckets starting in ``[start, end)``, charged or not."""
    statement = select(func.coalesce(func.sum(USAGE.c.cost_nanos), 0)).where(
        USAGE.c.bucket_width == width,
        USAGE.c.bucket_start >= start,
        USAGE.c.bucket_start < end,
    )
    return int(session.execute(statement).scalar_one())


def charged_total_nanos(session: Session) -> int:
    return int(
        session.execute(select(func.coalesce(func.sum(USAGE.c.charged_nanos), 0))).scalar_one()
    )


def usage_widths(session: Session) -> list[str]:
    return [str(w) for w in session.scalars(select(USAGE.c.bucket_width).distinct())]


def save_names(session: Session, kind: str, names: dict[str, str], now: datetime) -> None:
    """Replace the stored names of one kind: ``api_key``, ``workspace`` or ``organization``."""
    session.execute(delete(EntityName).where(col(EntityName.kind) == kind))
    session.add_all(EntityName(kind=kind, id=i, name=n, updated_at=now) for i, n in names.items())
    session.flush()


def load_names(session: Session, kind: str) -> dict[str, str]:
    rows = session.execute(
        select(col(EntityName.id), col(EntityName.name)).where(col(EntityName.kind) == kind)
    )
    return {str(i): str(n) for i, n in rows}
