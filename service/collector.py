"""One collection: fetch usage since the watermark (minus the look-back), price it, book it.

Each chunk of at most one page-limit of buckets is fetched completely (every page, validated)
before anything is written, then booked with its watermark in one transaction: a bad page or a
crash leaves the ledger exactly as it was before that chunk.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Protocol

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from service import ledger
from service.config import Settings
from service.credit_ledger import sync_credits
from service.db import transaction
from service.errors import AdminAPIError, ConfigError
from service.models import CollectionState
from service.money import usd_to_nanos
from service.pricing import PriceBook
from service.usage import BUCKET_SECONDS, BucketWidth, TokenCounts, UsageKey, UsageRow

log = logging.getLogger(__name__)

# Buckets per request at the API's maximum page size (DESIGN §1): one chunk is one full page.
CHUNK_BUCKETS: dict[str, int] = {"1m": 1440, "1h": 168, "1d": 31}
NAMES_REFRESH = timedelta(hours=1)

Clock = Callable[[], datetime]


class UsageSource(Protocol):
    """What collection needs from the Admin API client."""

    def usage(
        self, starting_at: datetime, ending_at: datetime | None = None, *, bucket_width: BucketWidth
    ) -> list[UsageRow]: ...

    def api_key_names(self) -> dict[str, str]: ...

    def workspace_names(self) -> dict[str, str]: ...

    def organization_name(self) -> str: ...


@dataclass
class CollectionResult:
    window_start: datetime
    window_end: datetime
    chunks: int = 0
    rows_fetched: int = 0
    booking: ledger.BookingResult = field(default_factory=ledger.BookingResult)
    seconds: float = 0.0

    def add(self, rows: int, booked: ledger.BookingResult) -> None:
        self.chunks += 1
        self.rows_fetched += rows
        b = self.booking
        self.booking = ledger.BookingResult(
            new_rows=b.new_rows + booked.new_rows,
            changed_rows=b.changed_rows + booked.changed_rows,
            unchanged_rows=b.unchanged_rows + booked.unchanged_rows,
            spend_nanos=b.spend_nanos + booked.spend_nanos,
            charged_nanos=b.charged_nanos + booked.charged_nanos,
        )


def floor_to_bucket(moment: datetime, width: BucketWidth) -> datetime:
    seconds = BUCKET_SECONDS[width]
    epoch = int(moment.timestamp())
    return datetime.fromtimestamp(epoch - epoch % seconds, tz=UTC)


def month_start(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def first_collection_start(settings: Settings, now: datetime) -> datetime:
    """The first run backfills from the earlier of the starting balance time and the month start."""
    if settings.backfill_from is not None:
        return settings.backfill_from
    start = month_start(now)
    if settings.starting_balance_at is not None:
        start = min(start, settings.starting_balance_at)
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
        start = min(state.watermark, now) - settings.lookback
        if state.collected_from is not None and wanted < state.collected_from:
            log.info("collecting from %s: the settings ask for data before what is stored", wanted)
            start = wanted
    return floor_to_bucket(min(start, now), settings.bucket_width), now


def chunks(
    start: datetime, end: datetime, width: BucketWidth
) -> Iterator[tuple[datetime, datetime]]:
    step = timedelta(seconds=BUCKET_SECONDS[width] * CHUNK_BUCKETS[width])
    while start < end:
        yield start, min(start + step, end)
        start += step


def make_pricer(book: PriceBook) -> ledger.Pricer:
    def price(key: UsageKey, counts: TokenCounts) -> ledger.PricedCost:
        priced = book.price(key, counts)
        return ledger.PricedCost(
            cost_nanos=usd_to_nanos(priced.cost_usd),
            estimated=priced.estimated,
            unknown_model=(key.model or "(no model)") if priced.unknown_model else None,
            priced_as=priced.priced_as,
        )

    return price


def _state(session: Session, width: BucketWidth) -> CollectionState:
    state = session.get(CollectionState, width)
    if state is None:
        state = CollectionState(bucket_width=width)
        session.add(state)
    return state


def check_bucket_width(session: Session, width: BucketWidth) -> None:
    """Refuse to mix bucket widths: the same usage would be booked twice."""
    other = [w for w in ledger.usage_widths(session) if w != width]
    if other:
        raise ConfigError(
            "CREDITWATCH_BUCKET_WIDTH",
            f"the database already holds {other[0]} buckets; switching to {width} would count "
            "the same usage twice (set it back, or start a new database)",
            other[0],
        )


def sync_opening(engine: Engine, settings: Settings, now: datetime) -> None:
    amount = settings.starting_balance
    with transaction(engine) as session:
        check_bucket_width(session, settings.bucket_width)
        if ledger.ensure_opening(
            session,
            usd_to_nanos(amount) if amount is not None else None,
            settings.starting_balance_at,
            now,
        ):
            log.info("starting balance set from settings; usage re-charged from its time")
        # Reload and expiry settings may have changed since the last run.
        sync_credits(session, settings, now)


def collect(
    engine: Engine,
    client: UsageSource,
    book: PriceBook,
    settings: Settings,
    clock: Clock,
) -> CollectionResult:
    """Fetch and book everything from the watermark (minus look-back) to now.

    Raises AdminAPIError when the API fails after retries; the failure is recorded first.
    """
    began = time.monotonic()
    now = clock()
    width = settings.bucket_width
    sync_opening(engine, settings, now)
    with transaction(engine) as session:
        state = _state(session, width)
        state.last_attempt_at = now
        start, end = collection_window(settings, state, now)
    result = CollectionResult(window_start=start, window_end=end)
    price = make_pricer(book)
    try:
        for chunk_start, chunk_end in chunks(start, end, width):
            rows = client.usage(chunk_start, chunk_end, bucket_width=width)
            with transaction(engine) as session:
                booked = ledger.book_usage(
                    session, rows, price, opening_at=settings.starting_balance_at, now=now
                )
                sync_credits(session, settings, now)
                state = _state(session, width)
                state.watermark = chunk_end
                if state.collected_from is None or chunk_start < state.collected_from:
                    state.collected_from = chunk_start
            result.add(len(rows), booked)
    except AdminAPIError as exc:
        _record_failure(engine, width, now, str(exc))
        raise
    with transaction(engine) as session:
        state = _state(session, width)
        state.last_success_at = now
        state.failing_since = None
        state.last_error = None
    refresh_names(engine, client, now)
    result.seconds = time.monotonic() - began
    return result


def _record_failure(engine: Engine, width: BucketWidth, now: datetime, error: str) -> None:
    with transaction(engine) as session:
        state = _state(session, width)
        state.failing_since = state.failing_since or now
        state.last_error = error.splitlines()[0][:500] if error else "unknown error"


def refresh_names(engine: Engine, client: UsageSource, now: datetime) -> None:
    """Best effort, at most hourly: names make reports readable but never block collection."""
    with transaction(engine) as session:
        stamps = ledger.load_names(session, "refreshed")
    last = stamps.get("names")
    if last is not None and now - datetime.fromisoformat(last) < NAMES_REFRESH:
        return
    try:
        keys = client.api_key_names()
        workspaces = client.workspace_names()
        org = client.organization_name()
    except AdminAPIError as exc:
        log.warning("could not refresh API key and workspace names: %s", exc)
        return
    with transaction(engine) as session:
        ledger.save_names(session, "api_key", keys, now)
        ledger.save_names(session, "workspace", workspaces, now)
        ledger.save_names(session, "organization", {"name": org}, now)
        ledger.save_names(session, "refreshed", {"names": now.isoformat()}, now)
