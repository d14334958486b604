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
from typing import Any, NamedTuple

from sqlalchemy import FromClause, select, type_coerce
from sqlalchemy.orm import Session
from sqlalchemy.types import NullType

from service.domain.usage import BilledCost, TokenCounts, UsageKey, UsageRow
from service.memory import paused_gc
from service.store.bulk import binder, insert_rows, update_rows
from service.store.ledger_entries import book_charge_entries, opening_entry
from service.store.tables import SERIES_FIELDS, USAGE, USAGE_ROWS, UnknownModel
from service.store.usage_series import series_ids

COUNT_FIELDS = (
    "uncached_input_tokens",
    "cache_creation_5m_tokens",
    "cache_creation_1h_tokens",
    "cache_read_tokens",
    "output_tokens",
    "web_search_requests",
)
KEY_FIELDS = SERIES_FIELDS


class PricedCost(NamedTuple):
    """What the pricer says a row costs, in nano-dollars. A named tuple, not a frozen
    dataclass: one is made per row booked, and a frozen dataclass's ``__init__`` alone cost a
    backfill a second and a half."""

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

CHANGE_COLUMNS = (
    *COUNT_FIELDS,
    "cost_nanos",
    "charged_nanos",
    "estimated",
    "billed_nanos",
    "list_nanos",
    "updated_at",
)
"""What a booking writes of a row it changes, in this order."""
INSERT_COLUMNS = ("bucket_start", "bucket_width", "series_id", *CHANGE_COLUMNS, "first_seen_at")
"""What a booking writes of a new row, in this order."""
MERGE_COLUMNS = (*COUNT_FIELDS, "cost_nanos", "charged_nanos", "billed_nanos", "list_nanos")
"""What a booking reads of a stored row to merge a re-read into it, after its key and id
(see ``_load_existing``): its counts are ``record[_COUNTS]``."""
_COUNTS = slice(4, 4 + len(COUNT_FIELDS))


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


def merge_rows(rows: Sequence[UsageRow]) -> dict[DbKey, UsageRow]:
    """Fold rows by stored key with field-wise maximum (a page may repeat a key across
    re-reads; a null and ``""`` are one stored key); the last bill given for a key is kept."""
    merged = {_db_key(row.key): row for row in rows}
    if len(merged) == len(rows):  # the usual case: no key read twice
        return merged
    merged = {}
    for row in rows:
        db_key = _db_key(row.key)
        seen = merged.get(db_key)
        merged[db_key] = (
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
    with paused_gc():
        return _book_usage(session, rows, price, now)


def _book_usage(
    session: Session, rows: Sequence[UsageRow], price: Pricer, now: datetime
) -> BookingResult:
    merged = merge_rows(rows)
    if not merged:
        return BookingResult()
    opening = opening_entry(session)
    opening_at = opening.at if opening is not None else None
    # Every row not stored yet is inserted, and a stored row's series exists: the series of
    # all of them are the series the inserts need.
    series = series_ids(session, {db_key[2:] for db_key in merged})
    # Rows are built, and stored rows found, in the driver's form: a backfill's rows are not
    # walked a second time, and a stored row's start is not parsed back into a datetime.
    start_of = binder(session, USAGE, "bucket_start")
    flag = binder(session, USAGE, "estimated")
    stamp = binder(session, USAGE, "updated_at")(now)
    existing = _load_existing(session, merged)
    inserts: list[tuple[Any, ...]] = []
    updates: list[tuple[Any, ...]] = []
    charged_by_bucket: dict[tuple[datetime, str], int] = defaultdict(int)
    unknown: dict[str, str] = {}
    unchanged = spend = 0
    for db_key, fetched in merged.items():
        start, series_id = start_of(db_key[0]), series[db_key[2:]]
        record = existing.get((start, db_key[1], series_id)) if existing else None
        counts, billed = fetched.counts, fetched.billed
        if record is not None:
            # Counts as plain tuples: most re-read rows are unchanged, and a tuple compares in C.
            stored = record[_COUNTS]
            grown = tuple(map(max, _count_values(counts), stored))
            if grown != stored:
                # Grown past the stored counts: their bill, if any, no longer holds, so the
                # row keeps only a bill read with it (``bill_after``).
                counts = TokenCounts(*grown)
            elif billed is None or billed == billed_of(record):
                unchanged += 1
                continue
            else:  # the counts stand and a new bill came: the bill read wins
                counts = TokenCounts(*stored)
        priced = (
            price(fetched.key, counts)
            if billed is None
            else price_with_bill(price, fetched.key, counts, billed)
        )
        if priced.unknown_model:
            unknown[priced.unknown_model] = priced.priced_as or ""
        bucket_start = db_key[0]
        charged = priced.cost_nanos if _is_charged(bucket_start, opening_at) else 0
        change = (
            *_count_values(counts),
            priced.cost_nanos,
            charged,
            flag(priced.estimated),
            billed.amount_nanos if billed else None,
            billed.list_nanos if billed else None,
            stamp,
        )
        if record is None:
            inserts.append((start, db_key[1], series_id, *change, stamp))
            spend += priced.cost_nanos
            delta = charged
        else:
            updates.append((*change, record.id))
            spend += priced.cost_nanos - record.cost_nanos
            delta = charged - record.charged_nanos
        if delta:
            charged_by_bucket[(bucket_start, db_key[1])] += delta
    insert_rows(session, USAGE, INSERT_COLUMNS, inserts, bound=True)
    update_rows(session, USAGE, CHANGE_COLUMNS, updates, bound=True)
    book_charge_entries(session, charged_by_bucket, now, note="usage")
    _record_unknown_models(session, unknown, now)
    return BookingResult(
        new_rows=len(inserts),
        changed_rows=len(updates),
        unchanged_rows=unchanged,
        spend_nanos=spend,
        charged_nanos=sum(charged_by_bucket.values()),
    )


def _count_values(counts: TokenCounts) -> tuple[int, int, int, int, int, int]:
    return (
        counts.uncached_input_tokens,
        counts.cache_creation_5m_tokens,
        counts.cache_creation_1h_tokens,
        counts.cache_read_tokens,
        counts.output_tokens,
        counts.web_search_requests,
    )


StoredKey = tuple[Any, str, int]
"""A stored usage row's natural key as the driver reads it: (start, width, series id)."""


def _load_existing(session: Session, keys: Iterable[DbKey]) -> dict[StoredKey, Any]:
    """The stored rows in the span of ``keys``, by ``StoredKey``: each row is that key, its
    ``id``, then ``MERGE_COLUMNS``. The start is in the form ``binder`` gives it.

    On SQLite that is the stored text itself, read as it is: parsing it back into a datetime
    per row cost most of a re-read. Every writer (the ORM, the bulk writers, the migrations'
    text) stores one format, ``YYYY-MM-DD HH:MM:SS.ffffff``; a row written otherwise by an
    outside tool would not be found. On PostgreSQL the start is read through its type, in UTC:
    psycopg gives the session's time zone, where an hour repeated by daylight saving never
    equals the same instant in UTC.
    """
    by_width: dict[str, list[datetime]] = defaultdict(list)
    for key in keys:
        by_width[key[1]].append(key[0])
    columns = (USAGE.c.id, *(USAGE.c[name] for name in MERGE_COLUMNS))
    start = USAGE.c.bucket_start
    stored_start = (
        type_coerce(start, NullType()) if session.connection().dialect.name == "sqlite" else start
    )
    found: dict[StoredKey, Any] = {}
    for width, starts in by_width.items():
        statement = select(
            stored_start,
            USAGE.c.bucket_width,
            USAGE.c.series_id,
            *columns,
        ).where(
            USAGE.c.bucket_width == width,
            USAGE.c.bucket_start >= min(starts),
            USAGE.c.bucket_start <= max(starts),
        )
        # All at once: iterating a result fetches row by row, which costs psycopg seconds.
        found.update((record[:3], record) for record in session.execute(statement).all())
    return found


def stored_rows(
    session: Session,
    table: FromClause,
    buckets: Iterable[tuple[str, datetime]],
    key_fields: Sequence[str],
    columns: Sequence[str],
) -> dict[tuple[Any, ...], Any]:
    """The stored rows of ``table`` in the span of ``buckets`` (width, start), by their natural
    key (bucket start, width, *``key_fields``): each row is its ``id``, that key, then
    ``columns``, by position or by name."""
    by_width: dict[str, list[datetime]] = defaultdict(list)
    for width, start in buckets:
        by_width[width].append(start)
    names = ("id", "bucket_start", "bucket_width", *key_fields, *columns)
    key_end = 3 + len(key_fields)
    found: dict[tuple[Any, ...], Any] = {}
    for width, starts in by_width.items():
        statement = select(*(table.c[name] for name in names)).where(
            table.c.bucket_width == width,
            table.c.bucket_start >= min(starts),
            table.c.bucket_start <= max(starts),
        )
        found.update((record[1:key_end], record) for record in session.execute(statement).all())
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


REPRICE_COLUMNS = ("cost_nanos", "charged_nanos", "estimated", "updated_at")
"""What re-pricing writes of a row, in this order."""


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
    rows = USAGE_ROWS
    columns = [
        rows.c.id,
        rows.c.bucket_start,
        rows.c.bucket_width,
        *(rows.c[name] for name in KEY_FIELDS),
        *(rows.c[name] for name in COUNT_FIELDS),
        rows.c.cost_nanos,
        rows.c.charged_nanos,
        rows.c.estimated,
        rows.c.billed_nanos,
        rows.c.list_nanos,
    ]
    updates: list[tuple[Any, ...]] = []
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
        updates.append((priced.cost_nanos, charged, priced.estimated, now, row.id))
        spend += priced.cost_nanos - row.cost_nanos
        if charged != row.charged_nanos:
            charged_by_bucket[(row.bucket_start, row.bucket_width)] += charged - row.charged_nanos
    update_rows(session, USAGE, REPRICE_COLUMNS, updates)
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
