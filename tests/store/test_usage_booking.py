"""Ledger booking on real SQLite and PostgreSQL: upsert by natural key, differences only."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, event, func, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session
from sqlmodel import col

from service.domain.usage import BilledCost, TokenCounts, UsageKey, UsageRow
from service.errors import LedgerError
from service.pricing import PriceBook
from service.runtime.collector import make_pricer
from service.store import balance as balances
from service.store import bulk, tables, usage_booking, usage_queries
from service.store.engine import make_engine, transaction
from service.store.tables import (
    LedgerEntry,
    UnknownModel,
    UsageRecord,
    UsageSeries,
)
from tests.helpers import empty_ledger, flat_price

T0 = datetime(2026, 11, 1, tzinfo=UTC)
BOOK = PriceBook.load()
HOUR = timedelta(hours=1)


def key(
    hour: int,
    model: str = "claude-haiku-4-5",
    api_key: str | None = "apikey_a",
    workspace: str | None = "wrkspc_a",
) -> UsageKey:
    return UsageKey(
        T0 + hour * HOUR, "1h", model, api_key, workspace, "standard", "0-200k", "global"
    )


def row(hour: int, tokens: int, **kw: str | None) -> UsageRow:
    return UsageRow(key(hour, **kw), TokenCounts(uncached_input_tokens=tokens))  # type: ignore[arg-type]


def replace_key(key: UsageKey, **changes: Any) -> UsageKey:
    return msgspec.structs.replace(key, **changes)


def book(
    engine: Engine, rows: list[UsageRow], opening_at: datetime | None = T0
) -> usage_booking.BookingResult:
    with transaction(engine) as session:
        return usage_booking.book_usage(session, rows, flat_price, now=T0 + 100 * HOUR)


def open_balance(engine: Engine, usd_nanos: int = 100 * 10**9, at: datetime = T0) -> None:
    with transaction(engine) as session:
        balances.ensure_opening(session, usd_nanos, at, T0)


def balance(engine: Engine) -> int | None:
    with transaction(engine) as session:
        return balances.balance_nanos(session)


def entry_count(session: Session) -> int:
    return int(session.execute(select(func.count()).select_from(tables.LEDGER)).scalar_one())


def test_new_rows_are_charged_per_bucket(engine: Engine) -> None:
    """New rows book one usage entry per bucket with the sum of their costs."""
    open_balance(engine)
    result = book(engine, [row(0, 10), row(0, 5, api_key="apikey_b"), row(1, 20)])
    assert (result.new_rows, result.changed_rows, result.charged_nanos) == (3, 0, 35_000)
    assert balance(engine) == 100 * 10**9 - 35_000
    with transaction(engine) as session:
        usage = session.scalars(select(LedgerEntry).where(col(LedgerEntry.kind) == "usage")).all()
        assert sorted((e.at, e.amount_nanos) for e in usage) == [
            (T0, -15_000),
            (T0 + HOUR, -20_000),
        ]


def test_rows_of_interleaved_buckets_and_widths_charge_each_its_own_bucket(
    engine: Engine,
) -> None:
    """Booking finds a bucket's rates and charging once per run of its rows: rows that come back
    and forth between buckets and widths, across the starting balance, still charge each
    bucket its own cost, and a start in another zone is the same instant."""
    open_balance(engine, at=T0 + HOUR)
    berlin = timezone(timedelta(hours=1))
    rows = [
        row(1, 10),
        row(0, 1),
        row(1, 20, api_key="apikey_b"),
        UsageRow(replace_key(key(1), bucket_width="1d"), TokenCounts(uncached_input_tokens=300)),
        row(0, 2, api_key="apikey_b"),
        UsageRow(
            replace_key(
                key(2, api_key="apikey_c"), bucket_start=(T0 + 2 * HOUR).astimezone(berlin)
            ),
            TokenCounts(uncached_input_tokens=40),
        ),
        row(2, 50),
    ]
    result = book(engine, rows)
    assert (result.new_rows, result.spend_nanos, result.charged_nanos) == (7, 423_000, 420_000)
    with transaction(engine) as session:
        usage = session.scalars(select(LedgerEntry).where(col(LedgerEntry.kind) == "usage")).all()
        assert sorted((e.at, e.amount_nanos) for e in usage) == [
            (T0 + HOUR, -300_000),
            (T0 + HOUR, -30_000),
            (T0 + 2 * HOUR, -90_000),
        ]
    assert book(engine, rows).unchanged_rows == 7


def test_a_null_and_an_empty_string_in_one_read_are_one_stored_row(engine: Engine) -> None:
    """Anthropic's null and ``""`` are one stored key: read together, and with a key read
    twice, they fold by field-wise maximum into one row charged once."""
    open_balance(engine)
    result = book(
        engine,
        [
            row(0, 5, workspace=None),
            row(0, 9, api_key="apikey_b"),
            row(0, 7, workspace=""),
            row(0, 3, api_key="apikey_b"),
        ],
    )
    assert (result.new_rows, result.charged_nanos) == (2, 16_000)
    with transaction(engine) as session:
        u = tables.USAGE_ROWS
        stored = session.execute(
            select(u.c.api_key_id, u.c.workspace_id, u.c.uncached_input_tokens).order_by(
                u.c.api_key_id
            )
        ).all()
    assert [tuple(r) for r in stored] == [("apikey_a", "", 7), ("apikey_b", "wrkspc_a", 9)]
    again = book(engine, [row(0, 7, workspace=None), row(0, 8, workspace="")])
    assert (again.new_rows, again.changed_rows, again.unchanged_rows) == (0, 1, 0)
    assert again.charged_nanos == 1_000


@pytest.mark.parametrize("tiers", [(None, ""), ("", None)])
def test_a_null_and_an_empty_string_are_priced_as_one_key_in_any_order(
    engine: Engine, tiers: tuple[str | None, str | None]
) -> None:
    """The price book prices a null service tier as standard and ``""`` as a tier without a
    public price: rows of one series read with either, in either order, are priced as the
    stored key reads back (the null), so none is estimated, as re-pricing would leave them."""
    open_balance(engine)

    def tiered(hour: int, tier: str | None) -> UsageRow:
        return UsageRow(
            replace_key(key(hour), service_tier=tier), TokenCounts(uncached_input_tokens=1000)
        )

    with transaction(engine) as session:
        usage_booking.book_usage(
            session,
            [tiered(hour, tier) for hour, tier in enumerate(tiers)],
            make_pricer(BOOK),
            now=T0 + 100 * HOUR,
        )
    with transaction(engine) as session:
        u = tables.USAGE_ROWS
        flags = session.execute(select(u.c.estimated).order_by(u.c.bucket_start)).scalars()
        assert list(flags) == [False, False]


def test_refetching_unchanged_data_books_nothing(engine: Engine) -> None:
    """Re-reading identical rows writes no row and no ledger entry."""
    open_balance(engine)
    book(engine, [row(0, 10), row(1, 20)])
    with transaction(engine) as session:
        before = entry_count(session)
    again = book(engine, [row(0, 10), row(1, 20)])
    assert (again.new_rows, again.changed_rows, again.unchanged_rows) == (0, 0, 2)
    with transaction(engine) as session:
        assert entry_count(session) == before


def test_growing_bucket_books_only_the_difference(engine: Engine) -> None:
    """A bucket that grows from 10 to 25 tokens books 10 then 15, never 35."""
    open_balance(engine)
    book(engine, [row(0, 10)])
    grown = book(engine, [row(0, 25)])
    assert (grown.changed_rows, grown.charged_nanos, grown.spend_nanos) == (1, 15_000, 15_000)
    assert balance(engine) == 100 * 10**9 - 25_000


def test_stale_smaller_reread_is_ignored(engine: Engine) -> None:
    """A re-read with smaller numbers than already seen changes nothing (buckets only grow)."""
    open_balance(engine)
    book(engine, [row(0, 25)])
    stale = book(engine, [row(0, 10)])
    assert (stale.changed_rows, stale.unchanged_rows) == (0, 1)
    assert balance(engine) == 100 * 10**9 - 25_000


def test_usage_before_starting_balance_is_stored_not_charged(engine: Engine) -> None:
    """Buckets before the starting balance time count as spend but are not charged."""
    open_balance(engine, at=T0 + 2 * HOUR)
    result = book(
        engine, [row(0, 10), row(1, 10), row(2, 10), row(3, 10)], opening_at=T0 + 2 * HOUR
    )
    assert (result.spend_nanos, result.charged_nanos) == (40_000, 20_000)
    with transaction(engine) as session:
        assert usage_queries.period_spend_nanos(session, T0, T0 + 24 * HOUR, "1h") == 40_000
        assert usage_queries.charged_total_nanos(session) == 20_000


def test_nulls_for_default_workspace_and_console_are_distinct_keys(engine: Engine) -> None:
    """api_key_id=None (Console) and workspace_id=None (default workspace) are their own rows."""
    open_balance(engine)
    book(engine, [row(0, 1, api_key=None, workspace=None), row(0, 2, workspace=None), row(0, 4)])
    again = book(engine, [row(0, 1, api_key=None, workspace=None)])
    assert again.unchanged_rows == 1
    with transaction(engine) as session:
        u = tables.USAGE_ROWS
        stored = session.execute(select(u).order_by(u.c.uncached_input_tokens)).all()
        assert [(r.api_key_id, r.workspace_id) for r in stored] == [
            ("", ""),
            ("apikey_a", ""),
            ("apikey_a", "wrkspc_a"),
        ]


def test_moving_the_starting_balance_time_recharges_usage(engine: Engine) -> None:
    """Changing CREDITWATCH_STARTING_BALANCE_AT re-charges exactly the usage after the new time."""
    open_balance(engine, at=T0 + 2 * HOUR)
    book(engine, [row(h, 10) for h in range(4)], opening_at=T0 + 2 * HOUR)
    assert balance(engine) == 100 * 10**9 - 20_000
    with transaction(engine) as session:
        assert balances.ensure_opening(session, 100 * 10**9, T0, T0)
    assert balance(engine) == 100 * 10**9 - 40_000
    with transaction(engine) as session:
        assert not balances.ensure_opening(session, 100 * 10**9, T0, T0)
        assert usage_queries.charged_total_nanos(session) == 40_000
        assert balances.ensure_opening(session, None, None, T0)
        assert balances.balance_nanos(session) is None
        assert usage_queries.charged_total_nanos(session) == 0


def test_purchases_add_to_the_balance_and_early_ones_are_refused(engine: Engine) -> None:
    """A purchase raises the balance; one dated before the starting balance would double-count."""
    open_balance(engine, at=T0 + HOUR)
    with transaction(engine) as session:
        balances.add_purchase(session, 50 * 10**9, T0 + 2 * HOUR, "PO-7", T0)
    assert balance(engine) == 150 * 10**9
    with transaction(engine) as session, pytest.raises(LedgerError, match="before the starting"):
        balances.add_purchase(session, 10**9, T0, "", T0)
    with transaction(engine) as session, pytest.raises(LedgerError, match="positive"):
        balances.add_purchase(session, 0, T0 + 3 * HOUR, "", T0)
    with transaction(engine) as session:
        assert [e.kind for e in balances.purchases(session)] == ["opening", "purchase"]


def test_unknown_models_are_recorded(engine: Engine) -> None:
    """A row the pricer flags as an unknown model is remembered for the health rules."""
    open_balance(engine)
    book(engine, [row(0, 10, model="mystery-1")])
    with transaction(engine) as session:
        unknown = session.scalars(select(UnknownModel)).all()
        assert [(u.model, u.priced_as) for u in unknown] == [("mystery-1", "claude-opus-4")]


def test_amounts_beyond_32_bits_are_exact(engine: Engine) -> None:
    """Nano-dollar sums far past 2**31 stay exact on both databases."""
    open_balance(engine, usd_nanos=5_000_000 * 10**9)
    book(engine, [row(h, 3_000_000_000) for h in range(5)])
    assert balance(engine) == 5_000_000 * 10**9 - 5 * 3_000_000_000 * 1000


readings = st.lists(
    st.tuples(st.integers(0, 3), st.integers(0, 2), st.integers(0, 10**9)), min_size=1, max_size=25
)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(readings=readings, order=st.randoms(use_true_random=False))
def test_any_order_of_growing_rereads_books_the_final_data_once(
    engine: Engine, readings: list[tuple[int, int, int]], order: object
) -> None:
    """Any sequence of growing re-reads, in any order, books the same ledger as the final data."""
    empty_ledger(engine)
    open_balance(engine)
    # Each reading is a snapshot of (hour, key) at some size; the final data is the largest.
    snapshots = [row(hour, size, api_key=f"apikey_{k}") for hour, k, size in readings]
    final: dict[UsageKey, UsageRow] = {}
    for snapshot in snapshots:
        best = final.get(snapshot.key)
        if (
            best is None
            or snapshot.counts.uncached_input_tokens > best.counts.uncached_input_tokens
        ):
            final[snapshot.key] = snapshot
    shuffled = list(snapshots)
    order.shuffle(shuffled)  # type: ignore[attr-defined]
    for start in range(0, len(shuffled), 4):
        book(engine, shuffled[start : start + 4])
    expected_cost = sum(
        usage_booking.price_with_bill(flat_price, k, r.counts, None).cost_nanos
        for k, r in final.items()
    )
    with transaction(engine) as session:
        assert usage_queries.charged_total_nanos(session) == expected_cost
        assert balances.balance_nanos(session) == 100 * 10**9 - expected_cost
        stored = {
            (r.bucket_start, r.api_key_id): r.uncached_input_tokens
            for r in session.execute(select(tables.USAGE_ROWS))
        }
    assert stored == {
        (k.bucket_start, k.api_key_id): r.counts.uncached_input_tokens for k, r in final.items()
    }


def test_concurrent_bookings_charge_the_same_growth_once(engine: Engine, db_url: str) -> None:
    """The daemon and a `once` booking the same growth at the same moment charge it once."""
    open_balance(engine)
    book(engine, [row(0, 10)])
    other = make_engine(db_url)
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def grow(target: Engine) -> None:
        try:
            barrier.wait(timeout=10)
            book(target, [row(0, 25), row(1, 5)])
        except BaseException as exc:  # noqa: BLE001 - reported to the test thread below
            errors.append(exc)

    threads = [threading.Thread(target=grow, args=(e,)) for e in (engine, other)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    other.dispose()
    assert errors == []
    with transaction(engine) as session:
        assert usage_queries.charged_total_nanos(session) == 30_000
        assert balances.balance_nanos(session) == 100 * 10**9 - 30_000


MODELS = ("claude-sonnet-4-5-20250929", "claude-haiku-4-5", "claude-opus-4-6", "claude-next-9")
counts = st.builds(
    TokenCounts,
    st.integers(0, 10**7),
    st.integers(0, 10**6),
    st.integers(0, 10**6),
    st.integers(0, 10**7),
    st.integers(0, 10**6),
    st.integers(0, 50),
)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    finals=st.dictionaries(
        st.tuples(
            st.integers(0, 3), st.sampled_from(MODELS), st.sampled_from(("standard", "batch"))
        ),
        counts,
        min_size=1,
        max_size=8,
    ),
    fractions=st.lists(st.integers(0, 100), min_size=6, max_size=30),
    order=st.randoms(use_true_random=False),
)
def test_growing_rereads_of_every_field_book_the_real_price_of_the_final_data(
    engine: Engine,
    finals: dict[tuple[int, str, str], TokenCounts],
    fractions: list[int],
    order: object,
) -> None:
    """With the real price book, partial re-reads of all six counters end at the final price."""
    empty_ledger(engine)
    open_balance(engine)
    price = make_pricer(BOOK)
    snapshots: list[UsageRow] = []
    keys = {}
    for index, ((hour, model, tier), final) in enumerate(finals.items()):
        key = UsageKey(T0 + hour * HOUR, "1h", model, "k", None, tier, "0-200k", "global")
        keys[key] = final
        snapshots.append(UsageRow(key, final))
        for step in range(3):
            share = fractions[(index * 3 + step) % len(fractions)]
            partial = TokenCounts(*(value * share // 100 for value in _fields(final)))
            snapshots.append(UsageRow(key, partial))
    order.shuffle(snapshots)  # type: ignore[attr-defined]
    for start in range(0, len(snapshots), 5):
        with transaction(engine) as session:
            usage_booking.book_usage(session, snapshots[start : start + 5], price, now=T0)
    expected = sum(
        usage_booking.price_with_bill(price, k, c, None).cost_nanos for k, c in keys.items()
    )
    with transaction(engine) as session:
        assert usage_queries.charged_total_nanos(session) == expected
        assert balances.balance_nanos(session) == 100 * 10**9 - expected
        entries = session.execute(
            select(func.coalesce(func.sum(tables.LEDGER.c.amount_nanos), 0)).where(
                tables.LEDGER.c.kind == "usage"
            )
        ).scalar_one()
        assert entries == -expected


def _fields(c: TokenCounts) -> tuple[int, ...]:
    return (
        c.uncached_input_tokens,
        c.cache_creation_5m_tokens,
        c.cache_creation_1h_tokens,
        c.cache_read_tokens,
        c.output_tokens,
        c.web_search_requests,
    )


def test_bulk_insert_errors_surface_as_sqlalchemy_errors(engine: Engine, db_url: str) -> None:
    """A row PostgreSQL's COPY refuses raises DBAPIError, which the CLI turns into one line."""
    if db_url.startswith("sqlite"):
        pytest.skip("SQLite does not enforce column lengths; the COPY path is PostgreSQL's")
    open_balance(engine)
    with pytest.raises(DBAPIError):
        book(engine, [row(0, 1, model="m" * 201)])


def billed_row(hour: int, tokens: int, bill: int | None, listed: int | None = None) -> UsageRow:
    billed = None if bill is None else BilledCost(bill, bill if listed is None else listed)
    return UsageRow(key(hour), TokenCounts(uncached_input_tokens=tokens), billed)


def stored(engine: Engine) -> tuple[int, int, bool, int | None, int | None]:
    with transaction(engine) as session:
        record = session.scalars(select(UsageRecord)).one()
        return (
            record.cost_nanos,
            record.charged_nanos,
            record.estimated,
            record.billed_nanos,
            record.list_nanos,
        )


def test_a_bill_replaces_the_estimate_and_books_only_the_difference(engine: Engine) -> None:
    """Estimated first (no bill yet), then the bill: one entry each, summing to the bill; a
    re-read that brings the same bill, or none, changes nothing."""
    open_balance(engine)
    book(engine, [billed_row(0, 10, None)])  # flat_price: 1,000 nanos a token
    assert stored(engine) == (10_000, 10_000, False, None, None)
    result = book(engine, [billed_row(0, 10, 8_500, 10_000)])
    assert (result.changed_rows, result.charged_nanos) == (1, -1_500)
    assert stored(engine) == (8_500, 8_500, False, 8_500, 10_000)
    assert book(engine, [billed_row(0, 10, 8_500, 10_000)]).unchanged_rows == 1
    assert book(engine, [billed_row(0, 10, None)]).unchanged_rows == 1
    assert stored(engine)[3] == 8_500
    assert balance(engine) == 100 * 10**9 - 8_500
    with transaction(engine) as session:
        entries = session.scalars(select(LedgerEntry).where(col(LedgerEntry.kind) == "usage"))
        assert sorted(e.amount_nanos for e in entries) == [-10_000, 1_500]


def test_new_rows_with_and_without_their_bill_in_one_read_are_stored_as_each_came(
    engine: Engine,
) -> None:
    """A first read that brings some rows with their bill and some without: each billed row
    costs its bill, exactly, and keeps it; the others are estimated with no bill stored."""
    open_balance(engine)
    result = book(
        engine,
        [
            billed_row(0, 10, 8_500, 10_000),
            UsageRow(key(0, api_key="apikey_b"), TokenCounts(uncached_input_tokens=3)),
            UsageRow(key(1), TokenCounts(output_tokens=2), BilledCost(1_900, 2_000)),
        ],
    )
    assert (result.new_rows, result.charged_nanos) == (3, 8_500 + 3_000 + 1_900)
    with transaction(engine) as session:
        u = tables.USAGE_ROWS
        stored_rows = session.execute(
            select(u.c.api_key_id, u.c.bucket_start, u.c.cost_nanos, u.c.billed_nanos)
            .add_columns(u.c.list_nanos)
            .order_by(u.c.bucket_start, u.c.api_key_id)
        ).all()
    assert [tuple(r) for r in stored_rows] == [
        ("apikey_a", T0, 8_500, 8_500, 10_000),
        ("apikey_b", T0, 3_000, None, None),
        ("apikey_a", T0 + HOUR, 1_900, 1_900, 2_000),
    ]


def test_counts_that_grow_past_their_bill_are_estimated_until_the_next(engine: Engine) -> None:
    """A bucket that grew after its bill is estimated again, then billed again: the ledger
    always charges what the row costs now, and re-prices never touch a bill."""
    open_balance(engine)
    book(engine, [billed_row(0, 10, 9_000)])
    book(engine, [billed_row(0, 12, None)])
    assert stored(engine)[:4] == (12_000, 12_000, False, None)
    book(engine, [billed_row(0, 12, 10_800)])
    assert stored(engine)[:4] == (10_800, 10_800, False, 10_800)
    with transaction(engine) as session:
        repriced = usage_booking.reprice_usage(session, flat_price, now=T0 + 200 * HOUR)
    assert repriced.changed_rows == 0
    assert balance(engine) == 100 * 10**9 - 10_800


def test_a_bill_without_usage_in_the_read_keeps_the_stored_counts(engine: Engine) -> None:
    """A cost row whose group's usage was read before comes with zero counts: the counts stay
    (field-wise maximum), the bill is charged."""
    open_balance(engine)
    book(engine, [billed_row(0, 10, None)])
    book(engine, [billed_row(0, 0, 7_000)])
    assert stored(engine)[:4] == (7_000, 7_000, False, 7_000)
    with transaction(engine) as session:
        record = session.scalars(select(UsageRecord)).one()
        assert record.uncached_input_tokens == 10


def stored_rows_by_key(engine: Engine) -> dict[UsageKey, tuple[object, ...]]:
    with transaction(engine) as session:
        return {
            usage_booking.key_of(r): (
                *_fields(usage_booking.counts_of(r)),
                r.cost_nanos,
                r.charged_nanos,
                r.estimated,
                r.billed_nanos,
                r.list_nanos,
                r.updated_at,
            )
            for r in session.execute(select(tables.USAGE_ROWS))
        }


def test_a_bulk_re_read_updates_every_changed_row_through_the_driver_path(
    engine: Engine,
) -> None:
    """Enough changed rows to take the bulk update path (COPY into a temporary table and one
    UPDATE … FROM on PostgreSQL): each row ends as one-by-one bookings leave it, and the
    balance moves by the difference only; a second bulk update in the same transaction works."""
    n = usage_booking_rows = 2 * bulk.COPY_UPDATE_MIN_ROWS
    first = [row(i % 48, 10, api_key=f"apikey_{i}") for i in range(n)]
    open_balance(engine)
    book(engine, first)
    grown = [
        UsageRow(r.key, TokenCounts(uncached_input_tokens=10 + i % 3, output_tokens=i % 2))
        for i, r in enumerate(first)
    ]
    billed = [
        UsageRow(r.key, r.counts, BilledCost(9_000 + i, 12_000 + i) if i % 5 else None)
        for i, r in enumerate(grown)
    ]
    later = T0 + 200 * HOUR
    with transaction(engine) as session:
        result = usage_booking.book_usage(session, grown, flat_price, now=later)
        again = usage_booking.book_usage(session, billed, flat_price, now=later)
    changed = sum(1 for i in range(n) if i % 3 or i % 2)
    assert (result.changed_rows, result.unchanged_rows) == (changed, n - changed)
    assert again.changed_rows == n - len(range(0, n, 5)) >= bulk.COPY_UPDATE_MIN_ROWS
    assert result.changed_rows >= bulk.COPY_UPDATE_MIN_ROWS
    bulk_state = stored_rows_by_key(engine)
    # The same readings booked one row per call on a fresh ledger: the small-update path.
    empty_ledger(engine)
    open_balance(engine)
    book(engine, first)
    for r in [*grown, *billed]:
        with transaction(engine) as session:
            usage_booking.book_usage(session, [r], flat_price, now=later)
    assert stored_rows_by_key(engine) == bulk_state
    assert len(bulk_state) == usage_booking_rows
    expected = sum(
        (
            r.billed.amount_nanos
            if r.billed
            else usage_booking.price_with_bill(flat_price, r.key, r.counts, None).cost_nanos
        )
        for r in billed
    )
    assert balance(engine) == 100 * 10**9 - expected


def test_a_failing_bulk_update_names_its_own_cause(engine: Engine, db_url: str) -> None:
    """A value PostgreSQL refuses in the bulk update path (COPY into a temporary table) raises
    its own error, not "the transaction is aborted" from cleaning up after it."""
    if db_url.startswith("sqlite"):
        pytest.skip("the COPY update path is PostgreSQL's")
    n = bulk.COPY_UPDATE_MIN_ROWS
    first = [row(i % 24, 10, api_key=f"apikey_{i}") for i in range(n)]
    open_balance(engine)
    book(engine, first)
    too_large = [UsageRow(r.key, r.counts, BilledCost(2**63, 2**63)) for r in first]
    with pytest.raises(DBAPIError) as failure:
        book(engine, too_large)
    assert "out of range" in str(failure.value.orig)
    assert balance(engine) == 100 * 10**9 - n * 10_000


def test_booked_rows_are_stored_exactly_as_the_orm_stores_them(engine: Engine) -> None:
    """Booking writes rows already in the driver's form (``bulk.binder``): the stored text of
    times and flags is byte for byte what the ORM writes for the same values, a bucket given
    at another offset included, so queries and the ORM read both alike."""
    open_balance(engine)
    elsewhere = timezone(timedelta(hours=2))
    start = (T0 + 3 * HOUR).astimezone(elsewhere)
    booked = UsageRow(
        UsageKey(start, "1h", "claude-haiku-4-5", "apikey_b", None, None, None, None),
        TokenCounts(uncached_input_tokens=7),
    )
    book(engine, [booked])
    with transaction(engine) as session:
        series = UsageSeries(model="claude-haiku-4-5", api_key_id="apikey_orm")
        session.add(series)
        session.flush()
        assert series.id is not None
        session.add(
            UsageRecord(
                bucket_start=start,
                bucket_width="1h",
                series_id=series.id,
                estimated=False,
                first_seen_at=T0 + 100 * HOUR,
                updated_at=T0 + 100 * HOUR,
            )
        )
    with engine.connect() as connection:
        raw = connection.exec_driver_sql(
            "SELECT s.api_key_id, u.bucket_start, u.estimated, u.first_seen_at, u.updated_at "
            "FROM usage AS u JOIN usage_series AS s ON s.id = u.series_id"
        ).all()
    by_key = {r[0]: tuple(r[1:]) for r in raw}
    assert by_key["apikey_b"] == by_key["apikey_orm"]
    assert len(by_key) == 2


@pytest.mark.parametrize("event_name", ["connect", "checkout"])
def test_a_re_read_across_daylight_saving_finds_its_rows_in_any_session_time_zone(
    engine: Engine, db_url: str, event_name: str
) -> None:
    """PostgreSQL answers times in the session's zone: the hours around Berlin's autumn change,
    2026-10-25 00:00–02:00 UTC, one of them told twice in local time, are still found by a
    re-read and book nothing new, whether the zone came with the new session (``initdb`` sets
    the host's, a role may set its own: before the engine's own listener) or was set after the
    engine set UTC (a pooler handing over a server connection, a ``SET``: at checkout)."""
    if not db_url.startswith("postgresql"):
        pytest.skip("a session's time zone is PostgreSQL's")
    open_balance(engine)
    start = datetime(2026, 10, 24, 23, tzinfo=UTC)
    rows = [
        UsageRow(
            UsageKey(
                start + i * HOUR, "1h", "claude-haiku-4-5", "apikey_a", None, None, None, None
            ),
            TokenCounts(uncached_input_tokens=10 + i),
        )
        for i in range(4)
    ]
    book(engine, rows)
    berlin = make_engine(db_url)

    @event.listens_for(berlin, event_name, insert=True)
    def _berlin(dbapi_connection: Any, *_: Any) -> None:
        dbapi_connection.execute("SET TIME ZONE 'Europe/Berlin'")
        dbapi_connection.commit()

    try:
        again = book(berlin, rows)
    finally:
        berlin.dispose()
    assert (again.new_rows, again.changed_rows, again.unchanged_rows) == (0, 0, 4)
