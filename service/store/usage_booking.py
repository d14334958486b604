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
from datetime import UTC, date, datetime
from operator import attrgetter
from typing import Any, NamedTuple, cast

from msgspec.structs import astuple
from sqlalchemy import FromClause, select, type_coerce
from sqlalchemy.orm import Session
from sqlalchemy.types import NullType

from service.domain.usage import BilledCost, TokenCounts, UsageKey, UsageRow
from service.memory import paused_gc
from service.store.bulk import binder, insert_rows, update_rows
from service.store.ledger_entries import book_charge_entries, opening_entry
from service.store.tables import SERIES_FIELDS, USAGE, USAGE_ROWS, UnknownModel
from service.store.usage_series import Grouping, series_ids

COUNT_FIELDS = (
    "uncached_input_tokens",
    "cache_creation_5m_tokens",
    "cache_creation_1h_tokens",
    "cache_read_tokens",
    "output_tokens",
    "web_search_requests",
)
KEY_FIELDS = SERIES_FIELDS


class Rate(NamedTuple):
    """What a pricer says the rows of one key cost: ``nanos`` of their counts (their values in
    ``COUNT_FIELDS`` order), in nano-dollars. A named tuple: booking asks for one per series
    and day, and prices each row with ``nanos`` alone."""

    nanos: Callable[[Sequence[int]], int]
    estimated: bool
    unknown_model: str | None = None
    priced_as: str | None = None


Pricer = Callable[[UsageKey], Rate]
"""The rate of a usage row's key. It may depend on the key's grouping and on the UTC date of
its bucket, never on the hour: a booking asks once per series and day."""


class PricedCost(NamedTuple):
    """What one row costs, in nano-dollars, and why (``price_with_bill``)."""

    cost_nanos: int
    estimated: bool
    unknown_model: str | None = None
    priced_as: str | None = None


@dataclass(frozen=True, slots=True)
class BookingResult:
    new_rows: int = 0
    changed_rows: int = 0
    unchanged_rows: int = 0
    spend_nanos: int = 0
    charged_nanos: int = 0


# Rows re-priced per fetch when the price book changes: memory stays flat on a year of data.
REPRICE_BATCH = 5_000

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
INSERT_COLUMNS = (
    "bucket_start",
    "bucket_width",
    "series_id",
    *COUNT_FIELDS,
    "cost_nanos",
    "charged_nanos",
    "estimated",
    "updated_at",
    "first_seen_at",
)
"""What a booking writes of a new row without a bill, in this order: its bill's columns are
left to their default, null (binding two nulls per row cost SQLite a quarter more time)."""
BILLED_INSERT_COLUMNS = (*INSERT_COLUMNS, "billed_nanos", "list_nanos")
"""What a booking writes of a new row with its bill, in this order."""
MERGE_COLUMNS = (*COUNT_FIELDS, "cost_nanos", "charged_nanos", "billed_nanos", "list_nanos")
"""What a booking reads of a stored row to merge a re-read into it, after its key and id
(see ``_load_existing``): its counts are ``record[_COUNTS]``."""
_COUNTS = slice(4, 4 + len(COUNT_FIELDS))

StoredKey = tuple[Any, str, int]
"""A usage row's natural key as the driver holds it: (start, width, series id), the start in
the form ``binder`` gives it."""


def counts_of(record: Any) -> TokenCounts:
    """The token counts of a stored usage row."""
    return TokenCounts(*(int(getattr(record, name)) for name in COUNT_FIELDS))


def key_of(record: Any) -> UsageKey:
    """The natural key of a stored usage row, with ``""`` read back as Anthropic's null."""
    grouping = [getattr(record, name) or None for name in KEY_FIELDS]
    return UsageKey(record.bucket_start, record.bucket_width, *grouping)


def _is_charged(bucket_start: datetime, opening_at: datetime | None) -> bool:
    return opening_at is not None and bucket_start >= opening_at


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
    rate = price(key)
    if billed is None:
        return PricedCost(rate.nanos(astuple(counts)), *rate[1:])
    return PricedCost(billed.amount_nanos, False, rate.unknown_model, rate.priced_as)


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
    if not rows:
        return BookingResult()
    opening = opening_entry(session)
    with paused_gc():
        return _book_usage(session, rows, price, now, opening.at if opening else None)


def _book_usage(
    session: Session,
    rows: Sequence[UsageRow],
    price: Pricer,
    now: datetime,
    opening_at: datetime | None,
) -> BookingResult:
    read = _read(session, rows)
    existing = _load_existing(session, read)
    flag = binder(session, USAGE, "estimated")
    stamp = binder(session, USAGE, "updated_at")(now)
    inserts: list[tuple[Any, ...]] = []
    billed_inserts: list[tuple[Any, ...]] = []
    updates: list[tuple[Any, ...]] = []
    charged_by_bucket: dict[tuple[datetime, str], int] = defaultdict(int)
    rates = _Rates(price, flag)
    series = read.series
    unchanged = spend = 0
    # What holds for a whole bucket is found when the bucket changes: a read's rows come
    # bucket by bucket, and the rows of a bucket share its start (``binder`` gives one object).
    bucket_start: Any = None
    bucket_width: Any = None
    for stored_key, fetched in zip(read.keys, read.rows, strict=True):
        record = existing.get(stored_key) if existing else None
        values, billed = astuple(fetched.counts), fetched.billed
        if record is not None:
            after = _re_read(record, values, billed)
            if after is None:
                unchanged += 1
                continue
            values = after
        start, width, index = stored_key
        if start is not bucket_start or width is not bucket_width:
            bucket_start, bucket_width, moment = start, width, fetched.key.bucket_start
            day_rates, bucket_key = rates.on(moment), (moment, width)
            charging = opening_at is not None and moment >= opening_at
        nanos, estimated = day_rates.get(index) or rates.ask(day_rates, index, fetched.key)
        if billed is None:
            cost = nanos(values)
            billed_nanos = list_nanos = None
        else:
            cost, estimated = billed.amount_nanos, flag(False)
            billed_nanos, list_nanos = billed.amount_nanos, billed.list_nanos
        charged = cost if charging else 0
        if record is None:
            new = (start, width, series[index], *values, cost, charged, estimated, stamp, stamp)
            if billed is None:
                inserts.append(new)
            else:
                billed_inserts.append((*new, billed_nanos, list_nanos))
            spend += cost
            delta = charged
        else:
            updates.append(
                (*values, cost, charged, estimated, billed_nanos, list_nanos, stamp, record.id)
            )
            spend += cost - record.cost_nanos
            delta = charged - record.charged_nanos
        if delta:
            charged_by_bucket[bucket_key] += delta
    _write(session, (inserts, billed_inserts, updates), charged_by_bucket, rates.unknown, now)
    return BookingResult(
        new_rows=len(inserts) + len(billed_inserts),
        changed_rows=len(updates),
        unchanged_rows=unchanged,
        spend_nanos=spend,
        charged_nanos=sum(charged_by_bucket.values()),
    )


def _write(
    session: Session,
    rows: tuple[list[tuple[Any, ...]], list[tuple[Any, ...]], list[tuple[Any, ...]]],
    charged_by_bucket: dict[tuple[datetime, str], int],
    unknown: dict[str, str],
    now: datetime,
) -> None:
    """Write a booking: its ``rows`` (new rows, new rows with their bill, changed rows: tuples
    in the order of ``INSERT_COLUMNS``, ``BILLED_INSERT_COLUMNS`` and ``CHANGE_COLUMNS`` then
    the id, in the driver's form), their charges and the unknown models."""
    inserts, billed_inserts, updates = rows
    insert_rows(session, USAGE, INSERT_COLUMNS, inserts, bound=True)
    insert_rows(session, USAGE, BILLED_INSERT_COLUMNS, billed_inserts, bound=True)
    update_rows(session, USAGE, CHANGE_COLUMNS, updates, bound=True)
    book_charge_entries(session, charged_by_bucket, now, note="usage")
    _record_unknown_models(session, unknown, now)


def _re_read(
    record: Any, values: tuple[int, ...], billed: BilledCost | None
) -> tuple[int, ...] | None:
    """The counts a stored row has after a re-read brought ``values`` and ``billed``, or None
    when the re-read changes nothing. Counts as plain tuples: most re-read rows are unchanged,
    and a tuple compares in C."""
    stored: tuple[int, ...] = record[_COUNTS]
    if values != stored:
        grown = tuple(map(max, values, stored))
        if grown != stored:
            # Grown past the stored counts: their bill, if any, no longer holds, so the row
            # keeps only a bill read with it (``bill_after``).
            return grown
    if billed is None or billed == billed_of(record):
        return None
    return stored  # the counts stand and a new bill came: the bill read wins


class _Rates(dict[date, dict[int, tuple[Callable[[Sequence[int]], int], Any]]]):
    """A booking's rates by UTC day and series, each asked of the pricer once: a rate's
    ``nanos`` and its ``estimated`` flag in the driver's form. And the unknown models among
    them (model: the model priced as)."""

    def __init__(self, price: Pricer, flag: Callable[[bool], Any]) -> None:
        super().__init__()
        self.price, self.flag = price, flag
        self.unknown: dict[str, str] = {}

    def on(self, start: datetime) -> dict[int, tuple[Callable[[Sequence[int]], int], Any]]:
        """The rates known on the UTC day of ``start``, by the series' index in the read."""
        day = (start if start.tzinfo is UTC else start.astimezone(UTC)).date()
        return self.setdefault(day, {})

    def ask(
        self,
        rates: dict[int, tuple[Callable[[Sequence[int]], int], Any]],
        index: int,
        key: UsageKey,
    ) -> tuple[Callable[[Sequence[int]], int], Any]:
        """The pricer's rate for ``key``, kept in ``rates`` (those of its day) for its series.
        The pricer is given the key as it is read back once stored (``key_of``): a null and
        ``""`` share a series, and one of them is asked for both, as re-pricing asks."""
        rate = self.price(_as_read_back(key))
        if rate.unknown_model:
            self.unknown[rate.unknown_model] = rate.priced_as or ""
        found = rates[index] = (rate.nanos, self.flag(rate.estimated))
        return found


def _as_read_back(key: UsageKey) -> UsageKey:
    """``key`` with ``""`` as Anthropic's null, as ``key_of`` reads a stored key back."""
    grouping = astuple(key)[2:]
    if "" not in grouping:
        return key
    return UsageKey(key.bucket_start, key.bucket_width, *(value or None for value in grouping))


class _Read(NamedTuple):
    """The rows of a booking by stored key, each key read once."""

    keys: list[StoredKey]
    """(start in the driver's form, width, index of its series in ``series``), per row."""
    rows: Sequence[UsageRow]
    series: list[int]
    """The ids of the read's series."""


_KEY_OF = attrgetter("key")


class _Index(dict[Any, int]):
    """Each key given its index, in order of first sight."""

    def __missing__(self, key: Any) -> int:
        index = self[key] = len(self)
        return index


def _read(session: Session, rows: Sequence[UsageRow]) -> _Read:
    """``rows`` keyed as stored, their series stored. Rows are keyed in the driver's form, and
    stored rows found in it: a backfill's rows are not walked a second time to convert them,
    nor a stored row's start parsed back into a datetime.

    A read may repeat a key (pages across re-reads; a null and ``""`` are one stored key): the
    rows of one key are folded by field-wise maximum, the last bill given for it kept."""
    start_of = binder(session, USAGE, "bucket_start")
    groupings = _Index()
    keys: list[StoredKey] = [
        (start_of(key[0]), key[1], groupings[key[2:]]) for key in map(astuple, map(_KEY_OF, rows))
    ]
    stored = cast(
        "list[Grouping]", [tuple(value or "" for value in grouping) for grouping in groupings]
    )
    ids = series_ids(session, stored)
    series = [ids[grouping] for grouping in stored]
    if len(set(series)) != len(series):
        # A null and "" of one field in one read: one series, keyed by its first index.
        first = _first_index(series)
        keys = [(start, width, first[series[index]]) for start, width, index in keys]
    read = _Read(keys, rows, series)
    if len(set(keys)) == len(keys):  # the usual case: no key read twice
        return read
    merged: dict[StoredKey, UsageRow] = {}
    for key, row in zip(keys, rows, strict=True):
        seen = merged.get(key)
        merged[key] = (
            row
            if seen is None
            else UsageRow(row.key, seen.counts.merge_max(row.counts), row.billed or seen.billed)
        )
    return _Read(list(merged), list(merged.values()), series)


def _first_index(series: list[int]) -> dict[int, int]:
    """Each series id's first index in ``series``."""
    return {series_id: index for index, series_id in reversed(list(enumerate(series)))}


def _load_existing(session: Session, read: _Read) -> dict[StoredKey, Any]:
    """The stored rows in the span of ``read``, by ``StoredKey`` (the index of their series in
    the read; -1 for a series it does not have): each row is that key, its ``id``, then
    ``MERGE_COLUMNS``.

    The start is read as the driver gives it, not through its column's type. On SQLite that
    is the stored text itself: parsing it back into a datetime per row cost most of a
    re-read. Every writer (the ORM, the bulk writers, the migrations' text) stores one format,
    ``YYYY-MM-DD HH:MM:SS.ffffff``; a row written otherwise by an outside tool would not be
    found. On PostgreSQL it is psycopg's aware datetime, in the session's time zone, which the
    engine sets to UTC (``engine.make_engine``); should anything have set another since (a
    pooler handing over a server connection, a ``SET``), the start is read through its type,
    in UTC: a daylight-saving hour told in local time would never equal its UTC key.
    """
    by_width: dict[str, list[Any]] = defaultdict(list)
    for start, width, _ in read.keys:
        by_width[width].append(start)
    index_of = _first_index(read.series)
    columns = (USAGE.c.id, *(USAGE.c[name] for name in MERGE_COLUMNS))
    start = USAGE.c.bucket_start
    stored_start = type_coerce(start, NullType()) if _reads_utc(session) else start
    found: dict[StoredKey, Any] = {}
    for width, starts in by_width.items():
        statement = select(
            stored_start,
            USAGE.c.bucket_width,
            USAGE.c.series_id,
            *columns,
        ).where(
            USAGE.c.bucket_width == width,
            start >= type_coerce(min(starts), NullType()),
            start <= type_coerce(max(starts), NullType()),
        )
        # All at once: iterating a result fetches row by row, which costs psycopg seconds.
        found.update(
            ((record[0], record[1], index_of.get(record[2], -1)), record)
            for record in session.execute(statement).all()
        )
    return found


def _reads_utc(session: Session) -> bool:
    """Whether the driver gives a stored time as its ``binder`` form: always on SQLite (the
    stored text), on PostgreSQL when the session's time zone is UTC (psycopg keeps the zone
    the server last reported: no query is sent)."""
    connection = session.connection()
    if connection.dialect.name == "sqlite":
        return True
    driver: Any = connection.connection.driver_connection
    return bool(driver.info.timezone is UTC)


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
