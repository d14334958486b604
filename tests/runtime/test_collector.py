"""Collection end to end: client and simulator over real sockets, into both databases."""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, func, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from service.admin_api.analytics import AnalyticsRead
from service.admin_api.analytics_wire import AnalyticsCostRow, AnalyticsGroup, AnalyticsUsageRow
from service.admin_api.retry import RetryPolicy
from service.domain.money import usd_to_nanos
from service.domain.periods import floor_to_bucket
from service.domain.usage import BucketWidth, TokenCounts, UsagePage
from service.errors import AdminAPIAuthError, AdminAPIError
from service.pricing import PriceBook
from service.runtime.collector import (
    CHUNK_BUCKETS,
    CHUNK_ROWS,
    FIRST_CHUNK_BUCKETS,
    ChunkWindows,
    UsageSource,
    collect,
)
from service.runtime.cycle import Runtime
from service.settings import Settings, load_settings
from service.simulator import ManualClock, SimulatorServer, Workload, WorkloadSpec
from service.store import balance, tables, usage_queries
from service.store.engine import make_engine, transaction
from service.store.migrations import upgrade
from service.store.tables import USAGE_ROWS, CollectionState

KEY = "sk-ant-admin01-collector-test-key-0123456789"
MONTH = datetime(2026, 11, 1, tzinfo=UTC)
NOW = datetime(2026, 11, 4, 12, 30, tzinfo=UTC)
FAST_RETRY = RetryPolicy(max_retries=3, base_delay=0.001, max_delay=0.01)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(NOW)


@pytest.fixture
def simulator(clock: ManualClock) -> Iterator[SimulatorServer]:
    spec = WorkloadSpec(seed=3, start=MONTH - timedelta(days=2), n_keys=6, n_workspaces=2)
    with SimulatorServer(
        Workload(spec), admin_key=KEY, forbidden_key="sk-ant-admin01-readonly-x", clock=clock
    ) as server:
        yield server


def make_settings(simulator: SimulatorServer, db_url: str, **extra: str) -> Settings:
    env = {
        "ANTHROPIC_ADMIN_KEY": KEY,
        "ANTHROPIC_BASE_URL": simulator.base_url,
        "CREDITWATCH_DATABASE_URL": db_url,
        "CREDITWATCH_STARTING_BALANCE": "1000.00",
        "CREDITWATCH_STARTING_BALANCE_AT": "2026-11-02T00:00:00Z",
        "CREDITWATCH_HTTP_TIMEOUT": "5s",
    }
    env.update(extra)
    return load_settings(env, None)


def snapshot(engine: Engine) -> dict[str, Any]:
    """Everything booking can change, to compare before and after."""
    with transaction(engine) as session:
        state = session.get(CollectionState, "1h")
        return {
            "rows": _count(session, tables.USAGE),
            "entries": _count(session, tables.LEDGER),
            "balance": balance.balance_nanos(session),
            "charged": usage_queries.charged_total_nanos(session),
            "watermark": state.watermark if state else None,
        }


def _count(session: Session, table: Any) -> int:
    return int(session.execute(select(func.count()).select_from(table)).scalar_one())


def test_first_cycle_backfills_the_month_and_charges_from_the_starting_balance(
    simulator: SimulatorServer, db_url: str, clock: ManualClock
) -> None:
    """The first cycle reads from the month start; only usage after the balance time is charged."""
    settings = make_settings(simulator, db_url)
    with Runtime(settings, retry=FAST_RETRY) as runtime:
        result = runtime.cycle(clock)
        assert result.collection.window_start == MONTH
        assert result.collection.rows_fetched > 0
        with transaction(runtime.engine) as session:
            first_bucket = session.execute(
                select(func.min(tables.USAGE.c.bucket_start))
            ).scalar_one()
            spend = usage_queries.period_spend_nanos(session, MONTH, NOW, "1h")
            before = usage_queries.period_spend_nanos(
                session, MONTH, MONTH + timedelta(days=1), "1h"
            )
            assert first_bucket == MONTH
            assert usage_queries.charged_total_nanos(session) == spend - before
            assert balance.balance_nanos(session) == usd_to_nanos(Decimal(1000)) - (spend - before)
            assert before > 0
    requests = [r for r in simulator.requests if r.path.endswith("/messages")]
    assert requests
    assert all(r.headers.get("user-agent", "").startswith("creditwatch/") for r in requests)


def test_growing_buckets_book_the_same_ledger_as_one_read_of_the_final_data(
    simulator: SimulatorServer, db_url: str, clock: ManualClock, tmp_path: Any
) -> None:
    """Cycles every few minutes while buckets grow end where one late read of final data ends."""
    settings = make_settings(simulator, db_url)
    with Runtime(settings, retry=FAST_RETRY) as runtime:
        grew = 0
        for _ in range(8):
            result = runtime.cycle(clock)
            grew += result.collection.booking.changed_rows
            clock.advance(timedelta(minutes=20))
        clock.advance(timedelta(hours=3))
        runtime.cycle(clock)
        incremental = snapshot(runtime.engine)
        with transaction(runtime.engine) as session:
            spend = usage_queries.period_spend_nanos(session, MONTH, clock(), "1h")
    assert grew > 0, "the simulator's current buckets should have grown between cycles"
    fresh = make_settings(simulator, f"sqlite:///{tmp_path / 'fresh.db'}")
    with Runtime(fresh, retry=FAST_RETRY) as runtime:
        runtime.cycle(clock)
        once = snapshot(runtime.engine)
        with transaction(runtime.engine) as session:
            assert usage_queries.period_spend_nanos(session, MONTH, clock(), "1h") == spend
    assert (incremental["rows"], incremental["balance"], incremental["charged"]) == (
        once["rows"],
        once["balance"],
        once["charged"],
    )


def test_rereading_the_same_data_changes_nothing(
    simulator: SimulatorServer, db_url: str, clock: ManualClock
) -> None:
    """Two cycles at the same simulated moment: the second books no row and no entry."""
    settings = make_settings(simulator, db_url)
    with Runtime(settings, retry=FAST_RETRY) as runtime:
        runtime.cycle(clock)
        before = snapshot(runtime.engine)
        again = runtime.cycle(clock)
        assert again.collection.booking.new_rows == again.collection.booking.changed_rows == 0
        assert snapshot(runtime.engine) == before


@pytest.mark.parametrize(
    "kind", ["non_json", "missing_data", "string_int", "negative_tokens", "bad_timestamp"]
)
def test_malformed_page_leaves_the_ledger_untouched(
    simulator: SimulatorServer, db_url: str, clock: ManualClock, kind: Any
) -> None:
    """A bad page is rejected whole: no row, entry or watermark moves; the failure is recorded."""
    settings = make_settings(simulator, db_url)
    with Runtime(settings, retry=FAST_RETRY) as runtime:
        runtime.cycle(clock)
        clock.advance(timedelta(minutes=30))
        before = snapshot(runtime.engine)
        simulator.faults.add_malformed(kind)
        with pytest.raises(AdminAPIError):
            runtime.cycle(clock)
        assert snapshot(runtime.engine) == before
        with transaction(runtime.engine) as session:
            state = session.get(CollectionState, "1h")
            assert state is not None
            assert state.failing_since == clock()
            assert state.last_error
        recovered = runtime.cycle(clock)
        assert recovered.collection.booking.changed_rows + recovered.collection.booking.new_rows > 0
        with transaction(runtime.engine) as session:
            state = session.get(CollectionState, "1h")
            assert state is not None
            assert (state.failing_since, state.last_success_at) == (None, clock())


@pytest.mark.parametrize("status", [429, 500, 504, 529])
def test_transient_errors_are_retried_within_the_cycle(
    simulator: SimulatorServer, db_url: str, clock: ManualClock, status: int
) -> None:
    """Two transient failures in a row do not fail the cycle."""
    simulator.faults.add(
        status=status,
        times=2,
        path_prefix="/v1/organizations/usage_report",
        retry_after="0" if status == 429 else None,
    )
    with Runtime(make_settings(simulator, db_url), retry=FAST_RETRY) as runtime:
        assert runtime.cycle(clock).collection.rows_fetched > 0


def test_persistent_outage_fails_the_cycle_and_the_next_resumes_from_the_watermark(
    simulator: SimulatorServer, db_url: str, clock: ManualClock
) -> None:
    """After retries run out the cycle fails; the next one reads from the old watermark."""
    with Runtime(make_settings(simulator, db_url), retry=FAST_RETRY) as runtime:
        runtime.cycle(clock)
        watermark = snapshot(runtime.engine)["watermark"]
        clock.advance(timedelta(hours=2))
        simulator.faults.add(status=529, times=None, path_prefix="/v1/organizations/usage_report")
        with pytest.raises(AdminAPIError) as caught:
            runtime.cycle(clock)
        assert caught.value.transient
        simulator.faults.clear()
        resumed = runtime.cycle(clock)
        assert resumed.collection.window_start == floor_to_bucket(
            watermark - timedelta(hours=3), "1h"
        )


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ("sk-ant-admin01-wrong-key-999999", "ANTHROPIC_ADMIN_KEY"),
        ("sk-ant-admin01-readonly-x", "ANTHROPIC_ADMIN_KEY"),
    ],
)
def test_auth_errors_fail_at_once_naming_the_variable(
    simulator: SimulatorServer,
    db_url: str,
    clock: ManualClock,
    key: str,
    message: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """401 and 403 are not retried and say which variable to fix, without the key."""
    caplog.set_level(logging.DEBUG)
    settings = make_settings(simulator, db_url, ANTHROPIC_ADMIN_KEY=key)
    with Runtime(settings, retry=FAST_RETRY) as runtime, pytest.raises(AdminAPIAuthError) as caught:
        runtime.cycle(clock)
    assert message in str(caught.value)
    assert key not in str(caught.value)
    assert key not in caplog.text
    usage_calls = [r for r in simulator.requests if r.path.endswith("/messages")]
    assert len(usage_calls) == 1


def test_names_and_nulls_reach_the_report(
    simulator: SimulatorServer, db_url: str, clock: ManualClock
) -> None:
    """Default-workspace and Console usage are kept as such; key and workspace names are stored."""
    from service.store.report_queries import usage_lines

    settings = make_settings(simulator, db_url)
    with Runtime(settings, retry=FAST_RETRY) as runtime:
        runtime.cycle(clock)
        with transaction(runtime.engine) as session:
            by_key = usage_lines(session, "1h", "api_key", MONTH, clock())
            by_ws = usage_lines(session, "1h", "workspace", MONTH, clock())
            stored_keys = set(session.scalars(select(USAGE_ROWS.c.api_key_id)))
    assert "" in stored_keys
    assert any(r.key == "" and r.name == "Console (no API key)" for r in by_key)
    assert any(r.key == "" and r.name == "Default workspace" for r in by_ws)
    assert all(r.name for r in by_key), "every API key should have a name from the Admin API"
    assert all(r.name for r in by_ws)


def test_changing_bucket_width_on_an_existing_database_is_refused(
    simulator: SimulatorServer, db_url: str, clock: ManualClock
) -> None:
    """Switching 1h to 1d would count the same usage twice; it is a configuration error."""
    from service.errors import ConfigError

    with Runtime(make_settings(simulator, db_url), retry=FAST_RETRY) as runtime:
        runtime.cycle(clock)
    daily = make_settings(simulator, db_url, CREDITWATCH_BUCKET_WIDTH="1d")
    with Runtime(daily, retry=FAST_RETRY) as runtime, pytest.raises(ConfigError) as caught:
        runtime.cycle(clock)
    assert caught.value.variable == "CREDITWATCH_BUCKET_WIDTH"


def test_estimate_agrees_with_the_simulated_bill(
    simulator: SimulatorServer, db_url: str, clock: ManualClock
) -> None:
    """Two independent price readings agree: the ledger's daily cost equals the cost report's."""
    settings = make_settings(simulator, db_url)
    with Runtime(settings, retry=FAST_RETRY) as runtime:
        runtime.cycle(clock)
        bill = runtime.client.cost_report(MONTH, MONTH + timedelta(days=3))
        with transaction(runtime.engine) as session:
            for day in range(3):
                start = MONTH + timedelta(days=day)
                billed = sum((r.amount_usd for r in bill if r.day_start == start), Decimal(0))
                ours = _unestimated_spend(session, start, start + timedelta(days=1))
                assert abs(usd_to_nanos(billed) - ours) <= 1000, (day, billed, ours)


def _unestimated_spend(session: Session, start: datetime, end: datetime) -> int:
    u = tables.USAGE_ROWS
    statement = select(func.coalesce(func.sum(u.c.cost_nanos), 0)).where(
        u.c.bucket_start >= start, u.c.bucket_start < end, u.c.service_tier != "priority"
    )
    return int(session.execute(statement).scalar_one())


def test_sqlite_and_postgres_would_book_identical_amounts(
    simulator: SimulatorServer, db_url: str, clock: ManualClock, tmp_path: Any
) -> None:
    """The same data on PostgreSQL and on a reference SQLite file gives identical nano-dollars."""
    if db_url.startswith("sqlite"):
        pytest.skip("compares PostgreSQL with SQLite; the PostgreSQL run is the test")
    reference = make_settings(simulator, f"sqlite:///{tmp_path / 'reference.db'}")
    with Runtime(reference, retry=FAST_RETRY) as runtime:
        runtime.cycle(clock)
        expected = snapshot(runtime.engine)
    with Runtime(make_settings(simulator, db_url), retry=FAST_RETRY) as runtime:
        runtime.cycle(clock)
        assert snapshot(runtime.engine) == expected


def test_engine_factory_accepts_plain_postgresql_urls() -> None:
    """postgresql:// (no driver) uses psycopg 3, the driver creditwatch ships with."""
    engine = make_engine("postgresql://user@127.0.0.1:1/x")
    assert engine.dialect.driver == "psycopg"
    engine.dispose()


def test_failure_halfway_through_a_backfill_keeps_the_finished_chunks(db_url: str) -> None:
    """A month backfill failing in its third chunk keeps two; the next run resumes after them.

    The first chunk is a day; one key's rows per hour let the second span a whole week."""
    clock = ManualClock(datetime(2026, 11, 25, 6, tzinfo=UTC))
    spec = WorkloadSpec(seed=4, start=MONTH, n_keys=1, n_workspaces=1)
    usage_path = "/v1/organizations/usage_report"
    with SimulatorServer(Workload(spec), admin_key=KEY, clock=clock) as sim:
        settings = make_settings(sim, db_url, CREDITWATCH_STARTING_BALANCE_AT=MONTH.isoformat())
        # The third chunk's request and every retry of it fail.
        sim.faults.add(status=500, times=None, path_prefix=usage_path, after=2)
        with Runtime(settings, retry=FAST_RETRY) as runtime:
            with pytest.raises(AdminAPIError):
                runtime.cycle(clock)
            partial = snapshot(runtime.engine)
            assert partial["watermark"] == MONTH + timedelta(days=8)
            sim.faults.clear()
            resumed = runtime.cycle(clock)
            done = snapshot(runtime.engine)
    assert resumed.collection.window_start == MONTH + timedelta(days=8) - timedelta(hours=3)
    assert done["watermark"] == clock()
    assert done["rows"] > partial["rows"]


def test_moving_the_starting_balance_earlier_collects_what_was_never_fetched(
    simulator: SimulatorServer, db_url: str, clock: ManualClock
) -> None:
    """A starting balance dated before the first stored bucket makes the next cycle reach back."""
    late = make_settings(
        simulator,
        db_url,
        CREDITWATCH_BACKFILL_FROM="2026-11-03T00:00:00Z",
        CREDITWATCH_STARTING_BALANCE_AT="2026-11-03T00:00:00Z",
    )
    with Runtime(late, retry=FAST_RETRY) as runtime:
        assert runtime.cycle(clock).collection.window_start == MONTH + timedelta(days=2)
    moved = make_settings(simulator, db_url, CREDITWATCH_STARTING_BALANCE_AT=MONTH.isoformat())
    with Runtime(moved, retry=FAST_RETRY) as runtime:
        result = runtime.cycle(clock)
        assert result.collection.window_start == MONTH
        with transaction(runtime.engine) as session:
            first = session.execute(select(func.min(tables.USAGE.c.bucket_start))).scalar_one()
            assert first == MONTH
            assert usage_queries.charged_total_nanos(session) == usage_queries.period_spend_nanos(
                session, MONTH, clock(), "1h"
            )


FAILING_INSERT = {
    "sqlite": [
        "CREATE TRIGGER refuse_usage BEFORE INSERT ON usage "
        "BEGIN SELECT RAISE(ABORT, 'disk quota exceeded'); END"
    ],
    "postgresql": [
        "CREATE FUNCTION refuse_usage() RETURNS trigger AS $$ BEGIN "
        "RAISE EXCEPTION 'disk quota exceeded'; END $$ LANGUAGE plpgsql",
        "CREATE TRIGGER refuse_usage BEFORE INSERT ON usage "
        "FOR EACH ROW EXECUTE FUNCTION refuse_usage()",
    ],
}


def test_a_database_failure_while_booking_is_a_collection_failure(
    simulator: SimulatorServer, db_url: str, clock: ManualClock
) -> None:
    """The database refusing the booking is recorded like an API outage, and clears after."""
    settings = make_settings(simulator, db_url)
    with Runtime(settings, retry=FAST_RETRY) as runtime:
        dialect = runtime.engine.dialect.name
        with runtime.engine.begin() as connection:
            for statement in FAILING_INSERT[dialect]:
                connection.exec_driver_sql(statement)
        with pytest.raises(DBAPIError):
            runtime.cycle(clock)
        with transaction(runtime.engine) as session:
            state = session.get(CollectionState, "1h")
            assert state is not None
            assert state.failing_since == NOW
            assert state.last_success_at is None
            assert state.last_error is not None
            assert state.last_error.startswith("database error:")
            assert "disk quota exceeded" in state.last_error
            assert _count(session, tables.USAGE) == 0
        with runtime.engine.begin() as connection:
            connection.exec_driver_sql(
                "DROP TRIGGER refuse_usage" + (" ON usage" if dialect == "postgresql" else "")
            )
        runtime.cycle(clock)
        with transaction(runtime.engine) as session:
            state = session.get(CollectionState, "1h")
            assert state is not None
            assert (state.failing_since, state.last_error) == (None, None)
            assert state.last_success_at == NOW


class MovesTheOpening:
    """An Admin API client beside which another process moves the starting balance."""

    def __init__(self, client: UsageSource, engine: Engine, moved_to: datetime) -> None:
        self.client, self.engine, self.moved_to = client, engine, moved_to

    def usage_pages(
        self, starting_at: datetime, ending_at: datetime | None = None, *, bucket_width: BucketWidth
    ) -> Iterator[UsagePage]:
        pages = list(self.client.usage_pages(starting_at, ending_at, bucket_width=bucket_width))
        with transaction(self.engine) as session:  # `once` with other settings, meanwhile
            balance.ensure_opening(session, usd_to_nanos(Decimal(1000)), self.moved_to, NOW)
        return iter(pages)

    def api_key_names(self) -> dict[str, str]:
        return self.client.api_key_names()

    def workspace_names(self) -> dict[str, str]:
        return self.client.workspace_names()

    def organization_name(self) -> str:
        return self.client.organization_name()


def test_booking_charges_by_the_opening_stored_in_its_transaction(
    simulator: SimulatorServer, db_url: str, clock: ManualClock
) -> None:
    """A starting balance moved by another process mid-cycle decides what this booking charges."""
    settings = make_settings(simulator, db_url)  # starting balance at 2026-11-02T00:00Z
    moved_to = datetime(2026, 11, 3, tzinfo=UTC)
    with Runtime(settings, retry=FAST_RETRY) as runtime:
        source = MovesTheOpening(runtime.client, runtime.engine, moved_to)
        collect(runtime.engine, source, runtime.book, settings, clock)
        with transaction(runtime.engine) as session:
            charged = usage_queries.charged_total_nanos(session)
            since_moved = usage_queries.period_spend_nanos(session, moved_to, NOW, "1h")
            opening = balance.balance_nanos(session)
    assert charged == since_moved > 0
    assert opening == usd_to_nanos(Decimal(1000)) - since_moved


@settings(deadline=None)  # pure arithmetic; a loaded machine must not fail it on time
@given(
    hours=st.integers(1, 24 * 62),
    per_bucket=st.lists(st.integers(0, 50_000), min_size=1, max_size=80),
)
def test_chunks_cover_the_window_and_hold_a_bounded_number_of_rows(
    hours: int, per_bucket: list[int]
) -> None:
    """Chunks tile the window without gap or overlap; after the first, each spans as many
    buckets as hold about CHUNK_ROWS rows at the last chunk's rows per bucket (at least one
    bucket, at most a week)."""
    start = MONTH
    end = MONTH + timedelta(hours=hours)
    windows = ChunkWindows(start, end, "1h")
    seen: list[tuple[datetime, datetime]] = []
    for index, (lo, hi) in enumerate(windows):
        seen.append((lo, hi))
        spanned = (hi - lo) // timedelta(hours=1)
        if index == 0:
            assert spanned == min(FIRST_CHUNK_BUCKETS["1h"], hours)
        else:
            rate = per_bucket[(index - 1) % len(per_bucket)]
            wanted = max(1, min(CHUNK_BUCKETS["1h"], CHUNK_ROWS // max(1, rate)))
            assert spanned == wanted or hi == end
            assert spanned * max(1, rate) <= max(CHUNK_ROWS, rate)
        windows.held(per_bucket[index % len(per_bucket)] * spanned, lo, hi)
    assert seen[0][0] == start
    assert seen[-1][1] == end
    assert all(a[1] == b[0] for a, b in itertools.pairwise(seen))


class LaggingAnalytics:
    """An Analytics API whose data is complete up to ``lag`` before now: it serves no bucket
    after its ``data_refreshed_at``, and says so."""

    def __init__(self, clock: ManualClock, lag: timedelta) -> None:
        self.clock, self.lag = clock, lag

    def analytics_usage(
        self,
        starting_at: datetime,
        ending_at: datetime,
        width: BucketWidth = "1h",
        group_by: tuple[str, ...] = (),
        *,
        page_size: int = 1000,
    ) -> AnalyticsRead[AnalyticsUsageRow]:
        refreshed = self.clock() - self.lag
        rows, at = [], starting_at
        while at < min(ending_at, refreshed):
            counts = TokenCounts(output_tokens=1000)
            rows.append(
                AnalyticsUsageRow(
                    at, at + MINUTE, AnalyticsGroup(model="claude-haiku-4-5"), counts, 1000, 1
                )
            )
            at += MINUTE
        return AnalyticsRead(tuple(rows), refreshed)

    def analytics_cost(
        self,
        starting_at: datetime,
        ending_at: datetime,
        width: BucketWidth = "1h",
        group_by: tuple[str, ...] = (),
        *,
        page_size: int = 1000,
    ) -> AnalyticsRead[AnalyticsCostRow]:
        return AnalyticsRead((), self.clock() - self.lag)

    def usage_pages(
        self, starting_at: datetime, ending_at: datetime | None = None, *, bucket_width: BucketWidth
    ) -> Iterator[UsagePage]:
        return iter(())

    def api_key_names(self) -> dict[str, str]:
        return {}

    def workspace_names(self) -> dict[str, str]:
        return {}

    def organization_name(self) -> str:
        return "org"


MINUTE = timedelta(minutes=1)


def test_a_lagging_analytics_api_never_leaves_a_bucket_unread(db_url: str) -> None:
    """Data fresh only up to an hour ago, a 15-minute look-back, a poll every 5 minutes: a
    collection split into chunks never carries the watermark past ``data_refreshed_at``, so
    every minute is read once it is fresh (a later chunk's start once did, leaving gaps)."""
    clock = ManualClock(datetime(2026, 11, 4, 12, tzinfo=UTC))
    settings = load_settings(
        {
            "ANTHROPIC_ADMIN_KEY": KEY,
            "CREDITWATCH_DATABASE_URL": db_url,
            "CREDITWATCH_STARTING_BALANCE": "1000",
            "CREDITWATCH_STARTING_BALANCE_AT": "2026-11-04T00:00:00Z",
            "CREDITWATCH_BUCKET_WIDTH": "1m",
            "CREDITWATCH_LOOKBACK": "15m",
            "CREDITWATCH_USAGE_SOURCE": "analytics",
            "CREDITWATCH_BACKFILL_FROM": "2026-11-04T10:00:00Z",
        },
        None,
    )
    engine = make_engine(db_url)
    upgrade(engine)
    api = LaggingAnalytics(clock, timedelta(hours=1))
    try:
        for _ in range(12):
            collect(engine, api, PriceBook.load(), settings, clock)
            clock.advance(timedelta(minutes=5))
        api.lag = timedelta(0)
        collect(engine, api, PriceBook.load(), settings, clock)
        with transaction(engine) as session:
            starts = set(session.scalars(select(tables.USAGE.c.bucket_start)))
    finally:
        engine.dispose()
    first = datetime(2026, 11, 4, 10, tzinfo=UTC)
    expected = {first + i * MINUTE for i in range((clock() - first) // MINUTE)}
    assert sorted(expected - starts) == []
