"""One collection: fetch usage since the watermark (minus the look-back), price it, book it.

Each chunk of at most one page-limit of buckets is fetched completely (every page, validated)
before anything is written, then booked with its watermark in one transaction: a bad page or a
crash leaves the ledger exactly as it was before that chunk. A failure of the API *or* of the
database is recorded as a collection failure, so the health rules see a database outage too.
The credit walk (reloads, expiries) is derived once per collection, with its last chunk, or
when it stops or fails between chunks: each walk reads the whole ledger, and a backfill of
many chunks would read it once per chunk.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from service.domain.credit_terms import CreditTerms
from service.domain.credit_walk import WalkResult
from service.domain.periods import floor_to_bucket, month_start
from service.domain.timefmt import rfc3339
from service.domain.usage import (
    BUCKET_SECONDS,
    BucketWidth,
    UsageKey,
    UsagePage,
)
from service.errors import AdminAPIError
from service.pricing import PriceBook
from service.runtime.failures import database_reason, log_failure
from service.runtime.names_refresh import NameRefresher
from service.runtime.usage_source import REFRESHED_SETTING, FetchedUsage, UsageFetcher
from service.settings import Settings
from service.store.attribution import book_attribution, reprice_attribution
from service.store.balance import ensure_opening
from service.store.collection_state import (
    check_bucket_width,
    collection_state,
    record_failure,
    record_success,
)
from service.store.credit_sync import sync_credits
from service.store.engine import transaction
from service.store.stored_settings import store_value, stored_value
from service.store.tables import CollectionState
from service.store.usage_booking import BookingResult, Pricer, Rate, book_usage, reprice_usage
from service.store.usage_queries import first_bucket_start

log = logging.getLogger(__name__)

# Buckets per request at the API's maximum page size (DESIGN §1): one chunk is one full page.
CHUNK_BUCKETS: dict[str, int] = {"1m": 1440, "1h": 168, "1d": 31}
"""The most buckets one chunk (one read, one transaction) spans: a day of minutes, a week of
hours, a month of days."""
FIRST_CHUNK_BUCKETS: dict[str, int] = {"1m": 60, "1h": 24, "1d": 7}
"""A collection's first chunk, before it knows how many rows a bucket holds."""
CHUNK_ROWS = 20_000
"""About how many usage rows a chunk holds: each next chunk spans as many buckets as the last
one's rows per bucket allow, so a backfill of hundreds of keys holds a bounded batch in
memory, never a week of hundreds of thousands of rows."""
PRICE_BOOK_SETTING = "price_book"

Clock = Callable[[], datetime]


class UsageSource(Protocol):
    """What collection needs from the Admin API client (with ``CREDITWATCH_USAGE_SOURCE=analytics``
    also ``analytics_usage``: see ``service.runtime.usage_source``)."""

    def usage_pages(
        self, starting_at: datetime, ending_at: datetime | None = None, *, bucket_width: BucketWidth
    ) -> Iterator[UsagePage]: ...

    def api_key_names(self) -> dict[str, str]: ...

    def workspace_names(self) -> dict[str, str]: ...

    def organization_name(self) -> str: ...


@dataclass
class CollectionResult:
    window_start: datetime
    window_end: datetime
    chunks: int = 0
    interrupted: bool = False  # stopped between chunks (the daemon is stopping)
    rows_fetched: int = 0
    booking: BookingResult = field(default_factory=BookingResult)
    repriced_rows: int = 0
    seconds: float = 0.0

    def add(self, rows: int, booked: BookingResult) -> None:
        self.chunks += 1
        self.rows_fetched += rows
        b = self.booking
        self.booking = BookingResult(
            new_rows=b.new_rows + booked.new_rows,
            changed_rows=b.changed_rows + booked.changed_rows,
            unchanged_rows=b.unchanged_rows + booked.unchanged_rows,
            spend_nanos=b.spend_nanos + booked.spend_nanos,
            charged_nanos=b.charged_nanos + booked.charged_nanos,
        )


def first_collection_start(settings: Settings, now: datetime) -> datetime:
    """The first run backfills from the earlier of the starting balance time and the month start."""
    if settings.collection.backfill_from is not None:
        return settings.collection.backfill_from
    start = month_start(now)
    if settings.ledger.starting_balance_at is not None:
        start = min(start, settings.ledger.starting_balance_at)
    return start


def collection_window(
    settings: Settings, state: CollectionState, now: datetime
) -> tuple[datetime, datetime]:
    """``[start, end)`` to fetch: from the watermark minus the look-back, snapped, up to now.

    When the settings now ask for data from before what was ever collected (a starting balance
    time moved earlier, an earlier backfill), the window reaches back to it.
    """
    wanted = first_collection_start(settings, now)
    if state.watermark is None:
        start = wanted
    else:
        start = min(state.watermark, now) - settings.collection.lookback
        if state.collected_from is not None and wanted < state.collected_from:
            log.info("collecting from %s: the settings ask for data before what is stored", wanted)
            start = wanted
    return floor_to_bucket(min(start, now), settings.collection.bucket_width), now


class ChunkWindows:
    """The windows ``[start, end)`` of a collection, one chunk each: the first spans
    ``FIRST_CHUNK_BUCKETS``, each next one as many buckets as hold about ``CHUNK_ROWS`` rows at
    the rows per bucket of the chunk before it (``held``), at most ``CHUNK_BUCKETS``."""

    def __init__(self, start: datetime, end: datetime, width: BucketWidth) -> None:
        self.start, self.end, self.width = start, end, width
        self.bucket = timedelta(seconds=BUCKET_SECONDS[width])
        self.size = FIRST_CHUNK_BUCKETS[width]

    def __iter__(self) -> Iterator[tuple[datetime, datetime]]:
        start = self.start
        while start < self.end:
            end = min(start + self.size * self.bucket, self.end)
            yield start, end
            start = end

    def held(self, rows: int, start: datetime, end: datetime) -> None:
        """The chunk ``[start, end)`` held ``rows`` rows: size the next one by it."""
        spanned = max(1, -(-(end - start) // self.bucket))
        per_bucket = max(1, -(-rows // spanned))
        self.size = max(1, min(CHUNK_BUCKETS[self.width], CHUNK_ROWS // per_bucket))


def make_pricer(book: PriceBook) -> Pricer:
    """The booking's pricer: ``book``'s exact cost, rounded to whole nano-dollars."""

    def price(key: UsageKey) -> Rate:
        rates = book.rates_of(key)
        return Rate(
            rates.nanos_of,
            rates.estimated,
            (key.model or "(no model)") if rates.unknown_model else None,
            rates.priced_as,
        )

    return price


def apply_settings(engine: Engine, settings: Settings, book: PriceBook, now: datetime) -> int:
    """Bring the ledger in line with the settings before a cycle books anything.

    The starting balance, the credit terms and the price book: a price correction reaches
    usage booked before it (only differences are booked). Returns the rows re-priced.
    """
    width = settings.collection.bucket_width
    repriced = 0
    with transaction(engine) as session:
        check_bucket_width(session, width)
        if ensure_opening(
            session,
            settings.ledger.starting_balance_nanos,
            settings.ledger.starting_balance_at,
            now,
        ):
            log.info("starting balance set from settings; usage re-charged from its time")
        if stored_value(session, PRICE_BOOK_SETTING) != book.fingerprint:
            if first_bucket_start(session, width) is not None:
                result = reprice_usage(session, make_pricer(book), now=now)
                repriced = result.changed_rows
                reprice_attribution(session, make_pricer(book), now=now)
                log.info(
                    "the price book changed: %d stored rows re-priced, spend %+d nano-USD",
                    result.changed_rows,
                    result.spend_nanos,
                )
            store_value(session, PRICE_BOOK_SETTING, book.fingerprint, now)
        # Reload and expiry settings may have changed since the last run.
        sync_credits(session, width, settings.ledger.credit_terms(), now)
    return repriced


AfterBooking = Callable[[Session, WalkResult | None, datetime], None]
"""Runs in the transaction that books the last chunk (or records a failure): the rules."""


def collect(
    engine: Engine,
    client: UsageSource,
    book: PriceBook,
    settings: Settings,
    clock: Clock,
    *,
    after_booking: AfterBooking | None = None,
    should_stop: Callable[[], bool] = lambda: False,
) -> CollectionResult:
    """Fetch and book everything from the watermark (minus look-back) to now.

    ``after_booking`` runs in the transaction of the last chunk, after the success is recorded,
    so what it writes (alerts) commits with the booking or not at all. Raises AdminAPIError
    when the API fails after retries and SQLAlchemyError when the database does; either
    failure is recorded first, with ``after_booking`` in the same transaction (when the
    database still takes it). ``should_stop`` is asked between chunks: a stopping daemon ends
    after the chunk it is booking (committed, the watermark moved) and the next run goes on
    from there; the rules then wait for that run.
    """
    began = time.monotonic()
    now = clock()
    width = settings.collection.bucket_width
    terms = settings.ledger.credit_terms()
    try:
        repriced = apply_settings(engine, settings, book, now)
        with transaction(engine) as session:
            state = collection_state(session, width)
            state.last_attempt_at = now
            start, end = collection_window(settings, state, now)
        names = NameRefresher(engine, client, now)
        fetcher = UsageFetcher(engine, client, settings.collection.usage_source, width, now)
        result = CollectionResult(window_start=start, window_end=end, repriced_rows=repriced)
        price = make_pricer(book)
        windows = ChunkWindows(start, end, width)
        number = 0
        for number, (chunk_start, chunk_end) in enumerate(windows, start=1):
            if number > 1 and should_stop():
                result.interrupted = True
                # The walk of what was booked, as the last chunk would have derived it.
                with transaction(engine) as session:
                    sync_credits(session, width, terms, now)
                break
            fetched = fetcher.fetch(chunk_start, chunk_end)
            rows = fetched.rows
            # Before booking: the rules that run with the last chunk name a new key already.
            names.refresh_if_due(rows)
            last = chunk_end == end
            with transaction(engine) as session:
                booked = book_usage(session, rows, price, now=now)
                book_attribution(session, fetched.attributed, price, now=now)
                # A backfill derives reloads and expiries once, with its last chunk, not once
                # per chunk (each walk reads the whole ledger): a stop or a failure between
                # chunks derives them then.
                walked = sync_credits(session, width, terms, now) if last else None
                _advance(
                    session,
                    width,
                    chunk_start=chunk_start,
                    chunk_end=chunk_end,
                    fetched=fetched,
                    now=now,
                )
                if last:
                    record_success(session, width, now)
                    _after(after_booking, session, walked, now)
            result.add(len(rows), booked)
            windows.held(len(rows) + len(fetched.attributed), chunk_start, chunk_end)
        if number == 0:
            names.refresh_if_due()
            with transaction(engine) as session:
                record_success(session, width, now)
                _after(after_booking, session, None, now)
    except AdminAPIError as exc:
        _note_failure(engine, width, now, str(exc), after_booking, terms=terms)
        raise
    except SQLAlchemyError as exc:
        error = f"database error: {database_reason(exc)}"
        _note_failure(engine, width, now, error, after_booking, terms=terms)
        raise
    result.seconds = time.monotonic() - began
    return result


def _advance(
    session: Session,
    width: BucketWidth,
    *,
    chunk_start: datetime,
    chunk_end: datetime,
    fetched: FetchedUsage,
    now: datetime,
) -> None:
    """Move the collection state past a booked chunk."""
    state = collection_state(session, width)
    state.watermark = chunk_end
    if fetched.refreshed_at is not None:
        # The Analytics API says how fresh its data is: the next read starts (minus the
        # look-back) no later than that, however far this one reached.
        # Not past it even when this chunk starts after it: a later chunk of one collection
        # must not carry the watermark beyond buckets that were read before they were fresh.
        state.watermark = min(chunk_end, fetched.refreshed_at)
        store_value(session, REFRESHED_SETTING, rfc3339(fetched.refreshed_at), now)
    if state.collected_from is None or chunk_start < state.collected_from:
        state.collected_from = chunk_start
    newest = fetched.newest_bucket
    if newest is not None and (
        state.newest_bucket_start is None or newest > state.newest_bucket_start
    ):
        state.newest_bucket_start = newest


def _after(
    after_booking: AfterBooking | None,
    session: Session,
    walked: WalkResult | None,
    now: datetime,
) -> None:
    """``after_booking`` in a savepoint: a bug in the rules must not lose the booking."""
    if after_booking is None:
        return
    try:
        with session.begin_nested():
            after_booking(session, walked, now)
    except Exception as exc:  # noqa: BLE001 - logged in one line; the booking still commits
        log_failure(log, "evaluating the alert rules failed", exc)


def _note_failure(
    engine: Engine,
    width: BucketWidth,
    now: datetime,
    error: str,
    after_booking: AfterBooking | None,
    *,
    terms: CreditTerms,
) -> None:
    """Record the failure, derive the walk of the chunks booked before it, run the rules."""
    try:
        with transaction(engine) as session:
            record_failure(session, width, now, error)
            walked = None
            try:
                with session.begin_nested():
                    walked = sync_credits(session, width, terms, now)
            except SQLAlchemyError as exc:
                log.warning("could not derive reloads after the failure: %s", database_reason(exc))
            _after(after_booking, session, walked, now)
    except SQLAlchemyError as exc:
        # The database itself is down: the failure is logged, and recorded once it is back.
        log.warning("could not record the collection failure: %s", database_reason(exc))
