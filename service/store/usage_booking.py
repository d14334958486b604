"""Booking usage: rows upserted once by natural key, the change in charged cost per bucket.

Booking rules (DESIGN §2 step 3):
- a usage row is identified by its natural key; a re-read merges field-wise by maximum, because
  Anthropic's buckets only grow and a smaller re-read is a stale one;
- a row's cost is charged to the balance only when its bucket starts at or after the starting
  balance's time; earlier usage is stored (budgets count it) but not charged;
- each booking writes, per bucket, one ``usage`` entry holding the sum of the changes in the
  charged cost of that bucket's rows, so re-reading unchanged data books nothing;
- a row that comes with its bill (the Analytics API's hourly cost) costs the bill, not the
  price book's estimate: the switch from estimate to bill books only the difference. A re-read
  without a bill keeps the stored one while the counts stand; counts that grew past their bill
  are estimated again until the bill catches up.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import (
    Table,
    bindparam,
    select,
    update,
)
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from service.domain.usage import BilledCost, TokenCounts, UsageKey, UsageRow
from service.store.ledger_entries import book_charge_entries, opening_entry
from service.store.tables import USAGE, UnknownModel

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


# Rows re-priced per fetch when the price book changes: memory stays flat on a year of data.
REPRICE_BATCH = 5_000

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


def counts_of(record: Any) -> TokenCounts:
    """The token counts of a stored usage row."""
    return TokenCounts(*(int(getattr(record, name)) for name in COUNT_FIELDS))


def key_of(record: Any) -> UsageKey:
    """The natural key of a stored usage row, with ``""`` read back as Anthropic's null."""
    grouping = [getattr(record, name) or None for name in KEY_FIELDS]
    return UsageKey(record.bucket_start, record.bucket_width, *grouping)


def _is_charged(bucket_start: datetime, opening_at: datetime | None) -> bool:
    return opening_at is not None and bucket_start >= opening_at


def merge_rows(rows: Iterable[UsageRow]) -> dict[UsageKey, UsageRow]:
    """Fold rows by key with field-wise maximum (a page may repeat a key across re-reads); the
    last bill given for a key is the one kept."""
    merged: dict[UsageKey, UsageRow] = {}
    for row in rows:
        seen = merged.get(row.key)
        merged[row.key] = (
            row
            if seen is None
            else UsageRow(row.key, seen.counts.merge_max(row.counts), row.billed or seen.billed)
        )
    return merged


def billed_of(record: Any) -> BilledCost | None:
    """The bill stored with a usage row, if any."""
    if record.billed_nanos is None:
        return None
    return BilledCost(int(record.billed_nanos), int(record.list_nanos or 0))


def price_with_bill(
    price: Pricer, key: UsageKey, counts: TokenCounts, billed: BilledCost | None
) -> PricedCost:
    """The bill when there is one (exact, not an estimate), else the price book's estimate.
    An unknown model is still reported: the bill has a price for it, the book does not."""
    priced = price(key, counts)
    if billed is None:
        return priced
    return PricedCost(billed.amount_nanos, False, priced.unknown_model, priced.priced_as)


def bill_after(fetched: BilledCost | None, record: Any, counts: TokenCounts) -> BilledCost | None:
    """The bill a row has after a read that brought ``fetched`` (see the module docstring)."""
    if fetched is not None or record is None:
        return fetched
    return billed_of(record) if counts == counts_of(record) else None


def book_usage(
    session: Session, rows: Sequence[UsageRow], price: Pricer, *, now: datetime
) -> BookingResult:
    """Upsert ``rows`` and book the change in charged cost per bucket. Flushes; never commits.

    What is charged follows the starting balance stored in this same transaction, whatever the
    calling process was configured with: another process may have moved it since.
    """
    merged = merge_rows(rows)
    if not merged:
        return BookingResult()
    opening = opening_entry(session)
    opening_at = opening.at if opening is not None else None
    existing = _load_existing(session, merged.keys())
    inserts: list[dict[str, Any]] = []
    updates: list[dict[str, Any]] = []
    charged_by_bucket: dict[tuple[datetime, str], int] = defaultdict(int)
    unknown: dict[str, str] = {}
    unchanged = spend = 0
    for key, fetched in merged.items():
        db_key = _db_key(key)
        record = existing.get(db_key)
        counts = fetched.counts if record is None else counts_of(record).merge_max(fetched.counts)
        billed = bill_after(fetched.billed, record, counts)
        if record is not None and counts == counts_of(record) and billed == billed_of(record):
            unchanged += 1
            continue
        priced = price_with_bill(price, key, counts, billed)
        if priced.unknown_model:
            unknown[priced.unknown_model] = priced.priced_as or ""
        charged = priced.cost_nanos if _is_charged(key.bucket_start, opening_at) else 0
        values: dict[str, Any] = {name: getattr(counts, name) for name in COUNT_FIELDS}
        values.update(
            cost_nanos=priced.cost_nanos,
            charged_nanos=charged,
            estimated=priced.estimated,
            billed_nanos=billed.amount_nanos if billed else None,
            list_nanos=billed.list_nanos if billed else None,
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
        columns = [
            *COUNT_FIELDS,
            "cost_nanos",
            "charged_nanos",
            "estimated",
            "billed_nanos",
            "list_nanos",
            "updated_at",
        ]
        statement = (
            update(USAGE)
            .where(USAGE.c.id == bindparam("_id"))
            .values({name: bindparam(name) for name in columns})
        )
        session.connection().execute(statement, updates)
    book_charge_entries(session, charged_by_bucket, now, note="usage")
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
    spans = [(key.bucket_width, key.bucket_start) for key in keys]
    return cast("dict[DbKey, Any]", stored_rows(session, USAGE, spans, KEY_FIELDS))


def stored_rows(
    session: Session,
    table: Table,
    buckets: Iterable[tuple[str, datetime]],
    key_fields: Sequence[str],
) -> dict[tuple[Any, ...], Any]:
    """The stored rows of ``table`` in the span of ``buckets`` (width, start), by their natural
    key: (bucket start, width, *``key_fields``)."""
    by_width: dict[str, list[datetime]] = defaultdict(list)
    for width, start in buckets:
        by_width[width].append(start)
    found: dict[tuple[Any, ...], Any] = {}
    for width, starts in by_width.items():
        statement = select(table).where(
            table.c.bucket_width == width,
            table.c.bucket_start >= min(starts),
            table.c.bucket_start <= max(starts),
        )
        for record in session.execute(statement):
            key = (record.bucket_start, record.bucket_width)
            found[(*key, *(getattr(record, name) for name in key_fields))] = record
    return found


def _record_unknown_models(
    session: Session, unknown: dict[str, str], now: datetime, *, seen: bool = True
) -> None:
    """Add or refresh unknown models; ``seen`` marks them as just seen in fetched usage."""
    for model, priced_as in unknown.items():
        row = session.get(UnknownModel, model)
        if row is None:
            session.add(
                UnknownModel(model=model, priced_as=priced_as, first_seen_at=now, last_seen_at=now)
            )
            continue
        row.priced_as = priced_as
        if seen:
            row.last_seen_at = now
    session.flush()


@dataclass(frozen=True, slots=True)
class RepriceResult:
    changed_rows: int = 0
    spend_nanos: int = 0
    charged_nanos: int = 0


def reprice_usage(session: Session, price: Pricer, *, now: datetime) -> RepriceResult:
    """Price every stored row again (the price book changed) and book only the differences.

    The list of unknown models is rebuilt from the pass: a model the book now knows leaves it.
    Flushes; never commits.
    """
    opening = opening_entry(session)
    opening_at = opening.at if opening is not None else None
    columns = [
        USAGE.c.id,
        USAGE.c.bucket_start,
        USAGE.c.bucket_width,
        *(USAGE.c[name] for name in KEY_FIELDS),
        *(USAGE.c[name] for name in COUNT_FIELDS),
        USAGE.c.cost_nanos,
        USAGE.c.charged_nanos,
        USAGE.c.estimated,
        USAGE.c.billed_nanos,
        USAGE.c.list_nanos,
    ]
    updates: list[dict[str, Any]] = []
    charged_by_bucket: dict[tuple[datetime, str], int] = defaultdict(int)
    unknown: dict[str, str] = {}
    spend = 0
    for row in session.execute(select(*columns).execution_options(yield_per=REPRICE_BATCH)):
        priced = price_with_bill(price, key_of(row), counts_of(row), billed_of(row))
        if priced.unknown_model:
            unknown[priced.unknown_model] = priced.priced_as or ""
        charged = priced.cost_nanos if _is_charged(row.bucket_start, opening_at) else 0
        if (priced.cost_nanos, charged, bool(priced.estimated)) == (
            row.cost_nanos,
            row.charged_nanos,
            bool(row.estimated),
        ):
            continue
        updates.append(
            {
                "_id": row.id,
                "cost_nanos": priced.cost_nanos,
                "charged_nanos": charged,
                "estimated": priced.estimated,
                "updated_at": now,
            }
        )
        spend += priced.cost_nanos - row.cost_nanos
        if charged != row.charged_nanos:
            charged_by_bucket[(row.bucket_start, row.bucket_width)] += charged - row.charged_nanos
    if updates:
        statement = (
            update(USAGE)
            .where(USAGE.c.id == bindparam("_id"))
            .values({name: bindparam(name) for name in updates[0] if name != "_id"})
        )
        session.connection().execute(statement, updates)
    book_charge_entries(session, charged_by_bucket, now, note="re-priced: the price book changed")
    _replace_unknown_models(session, unknown, now)
    return RepriceResult(
        changed_rows=len(updates),
        spend_nanos=spend,
        charged_nanos=sum(charged_by_bucket.values()),
    )


def _replace_unknown_models(session: Session, unknown: dict[str, str], now: datetime) -> None:
    known_now = [row for row in session.scalars(select(UnknownModel)) if row.model not in unknown]
    for row in known_now:
        session.delete(row)
    _record_unknown_models(session, unknown, now, seen=False)
