"""CREDITWATCH_USAGE_SOURCE: the usage report and the Analytics API book the same ledger.

Against the simulator over real sockets, on both databases. The simulator serves both APIs from
one workload; its default workspace has a real id on the analytics endpoints only.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select

from service.admin_api.client import AdminClient
from service.admin_api.retry import RetryPolicy
from service.domain.usage import UsageRow
from service.http import build_http_client
from service.runtime.cycle import Runtime
from service.runtime.usage_source import (
    DEFAULT_WORKSPACE_SETTING,
    REFRESHED_SETTING,
    SOURCES_SETTING,
    split_by_source,
    switch_segments,
)
from service.settings import Settings, load_settings
from service.simulator import ManualClock, SimulatorServer, Workload, WorkloadSpec
from service.simulator.analytics_attribution import default_workspace_id
from service.store import tables, usage_queries
from service.store.engine import transaction
from service.store.stored_settings import stored_value
from service.store.tables import CollectionState
from tests.helpers import run_cli

KEY = "sk-ant-admin01-usage-source-test-key-0123456789"
MONTH = datetime(2026, 2, 1, tzinfo=UTC)
NEXT_MONTH = datetime(2026, 3, 1, tzinfo=UTC)
FAST_RETRY = RetryPolicy(max_retries=3, base_delay=0.001, max_delay=0.01)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

Totals = Counter[tuple[str, str, str, str]]
"""Token totals by (model, API key, workspace, token field); "" is null, as stored."""

TOKEN_FIELDS = (
    "uncached_input_tokens",
    "cache_creation_5m_tokens",
    "cache_creation_1h_tokens",
    "cache_read_tokens",
    "output_tokens",
    "web_search_requests",
)


@pytest.fixture
def workload() -> Workload:
    return Workload(WorkloadSpec(seed=5, start=MONTH - timedelta(days=1), n_keys=5))


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(MONTH + timedelta(days=14, hours=9, minutes=10))


@pytest.fixture
def simulator(workload: Workload, clock: ManualClock) -> Iterator[SimulatorServer]:
    with SimulatorServer(workload, admin_key=KEY, clock=clock) as server:
        yield server


def make_settings(simulator: SimulatorServer, db_url: str, source: str, **extra: str) -> Settings:
    env = {
        "ANTHROPIC_ADMIN_KEY": KEY,
        "ANTHROPIC_BASE_URL": simulator.base_url,
        "CREDITWATCH_DATABASE_URL": db_url,
        "CREDITWATCH_STARTING_BALANCE": "1000.00",
        "CREDITWATCH_STARTING_BALANCE_AT": "2026-02-01T00:00:00Z",
        "CREDITWATCH_HTTP_TIMEOUT": "5s",
        "CREDITWATCH_USAGE_SOURCE": source,
        **extra,
    }
    return load_settings(env, None)


def _add(totals: Totals, rows: list[tuple[str, str, str, dict[str, int]]]) -> Totals:
    for model, key, workspace, counts in rows:
        for name, value in counts.items():
            if value:
                totals[(model, key, workspace, name)] += value
    return totals


def stored_totals(engine: Engine, end: datetime) -> Totals:
    """Token totals in the usage table for buckets before ``end``, across geographies."""
    usage = tables.USAGE_ROWS
    columns = [usage.c[name] for name in TOKEN_FIELDS]
    with transaction(engine) as session:
        found = session.execute(
            select(usage.c.model, usage.c.api_key_id, usage.c.workspace_id, *columns).where(
                usage.c.bucket_start < end
            )
        ).all()
    return _add(
        Counter(),
        [
            (r[0], r[1], r[2], dict(zip(TOKEN_FIELDS, (int(v) for v in r[3:]), strict=True)))
            for r in found
        ],
    )


def report_totals(simulator: SimulatorServer, start: datetime, end: datetime) -> Totals:
    """The legacy usage report read directly: the independent expectation."""
    with build_http_client(simulator.base_url, timeout=5.0) as http:
        rows: list[UsageRow] = AdminClient(http, KEY, retry=FAST_RETRY).usage(
            start, end, bucket_width="1h"
        )
    return _add(
        Counter(),
        [
            (
                row.key.model or "",
                row.key.api_key_id or "",
                row.key.workspace_id or "",
                {name: getattr(row.counts, name) for name in TOKEN_FIELDS},
            )
            for row in rows
            if row.key.bucket_start < end
        ],
    )


def ledger_is_consistent(engine: Engine) -> None:
    """What the ledger charged for usage is what the usage rows say they charged, once."""
    with transaction(engine) as session:
        entries = session.execute(
            select(func.coalesce(func.sum(tables.LEDGER.c.amount_nanos), 0)).where(
                tables.LEDGER.c.kind == "usage"
            )
        ).scalar_one()
        assert -int(entries) == usage_queries.charged_total_nanos(session)


def test_segments_switch_at_the_first_bucket_not_collected() -> None:
    """A switch keeps what was collected with its source; an old ledger was the usage report's."""
    at = datetime(2026, 2, 10, 13, 20, tzinfo=UTC)
    boundary = datetime(2026, 2, 10, 14, tzinfo=UTC)
    assert switch_segments(None, "analytics", None, "1h") == [(EPOCH, "analytics")]
    assert switch_segments(None, "messages", at, "1h") == [(EPOCH, "messages")]
    switched = switch_segments(None, "analytics", at, "1h")
    assert switched == [(EPOCH, "messages"), (boundary, "analytics")]
    assert switch_segments(switched, "analytics", at + timedelta(days=1), "1h") == switched
    assert switch_segments(switched, "messages", at, "1h") == [(EPOCH, "messages")]
    start, end = boundary - timedelta(hours=3), boundary + timedelta(hours=2)
    assert split_by_source(switched, start, end) == [
        (start, boundary, "messages"),
        (boundary, end, "analytics"),
    ]


@pytest.mark.parametrize("source", ["messages", "analytics"])
def test_a_month_through_either_source_books_the_usage_report_totals(
    simulator: SimulatorServer, db_url: str, clock: ManualClock, workload: Workload, source: str
) -> None:
    """February read through either API: the same token totals per model, key and workspace,
    the default workspace as "" (never its analytics id), and one consistent ledger."""
    clock.now = NEXT_MONTH + timedelta(hours=4)
    settings = make_settings(simulator, db_url, source, CREDITWATCH_BACKFILL_FROM="2026-02-01T00Z")
    with Runtime(settings, retry=FAST_RETRY) as runtime:
        result = runtime.cycle(clock)
        assert result.collection.rows_fetched > 0
        paths = [r.path for r in simulator.requests]
        booked = stored_totals(runtime.engine, NEXT_MONTH)
        expected = report_totals(simulator, MONTH, NEXT_MONTH)
        assert booked == expected
        workspaces = {workspace for _, _, workspace, _ in booked}
        assert "" in workspaces
        assert default_workspace_id(workload) not in workspaces
        ledger_is_consistent(runtime.engine)
        with transaction(runtime.engine) as session:
            assert usage_queries.charged_total_nanos(session) > 0
            if source == "analytics":
                stored_default = stored_value(session, DEFAULT_WORKSPACE_SETTING)
                assert stored_default == default_workspace_id(workload)
                assert stored_value(session, REFRESHED_SETTING) is not None
                state = session.get(CollectionState, "1h")
                assert state is not None
                assert state.watermark is not None
                assert state.watermark <= clock()
    analytics_calls = [path for path in paths if "/analytics/" in path]
    legacy_calls = [path for path in paths if path.endswith("/usage_report/messages")]
    if source == "analytics":
        assert analytics_calls
        assert not legacy_calls
    else:
        assert legacy_calls
        assert not analytics_calls


def test_a_switch_mid_month_keeps_one_continuous_ledger(
    simulator: SimulatorServer, db_url: str, clock: ManualClock
) -> None:
    """The usage report for half of February, then the Analytics API on the same database:
    the totals are the usage report's for the whole month (no gap, no overlap booked twice),
    every bucket comes from one source, and the ledger charged each change once."""
    backfill = {"CREDITWATCH_BACKFILL_FROM": "2026-02-01T00Z"}
    with Runtime(make_settings(simulator, db_url, "messages", **backfill), retry=FAST_RETRY) as rt:
        for _ in range(3):
            rt.cycle(clock)
            clock.advance(timedelta(minutes=20))
        with transaction(rt.engine) as session:
            state = session.get(CollectionState, "1h")
            assert state is not None
            assert state.newest_bucket_start is not None
            boundary = state.newest_bucket_start + timedelta(hours=1)
    settings = make_settings(simulator, db_url, "analytics", **backfill)
    with Runtime(settings, retry=FAST_RETRY) as runtime:
        # Buckets just before the switch keep growing: the look-back re-reads them.
        for _ in range(12):
            runtime.cycle(clock)
            clock.advance(timedelta(minutes=20))
        clock.now = NEXT_MONTH + timedelta(hours=4)
        runtime.cycle(clock)
        engine = runtime.engine
        assert stored_totals(engine, NEXT_MONTH) == report_totals(simulator, MONTH, NEXT_MONTH)
        ledger_is_consistent(engine)
        with transaction(engine) as session:
            assert stored_value(session, SOURCES_SETTING) == (
                f'[["1970-01-01T00:00:00Z", "messages"], '
                f'["{boundary.strftime("%Y-%m-%dT%H:%M:%SZ")}", "analytics"]]'
            )
            usage = tables.USAGE_ROWS
            # The usage report books a geography; analytics rows cannot (""): one per bucket.
            geo = session.execute(
                select(usage.c.bucket_start, usage.c.inference_geo == "").distinct()
            ).all()
        sources_by_bucket: dict[datetime, set[bool]] = {}
        for bucket, analytics in geo:
            sources_by_bucket.setdefault(bucket, set()).add(bool(analytics))
        assert all(len(kinds) == 1 for kinds in sources_by_bucket.values())
        assert all(kinds == {bucket >= boundary} for bucket, kinds in sources_by_bucket.items()), (
            "buckets before the switch stay with the usage report, later ones with analytics"
        )
        assert any(bucket >= boundary for bucket in sources_by_bucket)


def test_a_backfill_before_2026_with_analytics_starts_there_with_a_warning(
    db_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The Analytics API refuses starting_at before 2026-01-01: the read is clamped, not failed."""
    clock = ManualClock(datetime(2026, 1, 2, 6, tzinfo=UTC))
    workload = Workload(WorkloadSpec(seed=2, start=datetime(2025, 12, 20, tzinfo=UTC), n_keys=2))
    with SimulatorServer(workload, admin_key=KEY, clock=clock) as simulator:
        settings = make_settings(
            simulator, db_url, "analytics", CREDITWATCH_BACKFILL_FROM="2025-12-28T00Z"
        )
        with caplog.at_level(logging.WARNING), Runtime(settings, retry=FAST_RETRY) as runtime:
            result = runtime.cycle(clock)
            assert result.collection.rows_fetched > 0
            with transaction(runtime.engine) as session:
                first = session.execute(select(func.min(tables.USAGE.c.bucket_start))).scalar_one()
                state = session.get(CollectionState, "1h")
                assert state is not None
                assert state.last_error is None
                assert state.last_success_at == clock()
            assert first == datetime(2026, 1, 1, tzinfo=UTC)
    assert any("serves no usage before 2026-01-01T00:00:00Z" in r.message for r in caplog.records)


def test_a_bad_usage_source_is_exit_78(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """check-config refuses an unknown source with EX_CONFIG, naming the variable and an example;
    a good one is shown."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ANTHROPIC_ADMIN_KEY", KEY)
    monkeypatch.setenv("CREDITWATCH_USAGE_SOURCE", "cost_report")
    code, _, err = run_cli(capsys, "check-config")
    assert code == 78
    assert "CREDITWATCH_USAGE_SOURCE: 'cost_report' is not messages" in err
    assert "example: CREDITWATCH_USAGE_SOURCE=analytics" in err
    monkeypatch.setenv("CREDITWATCH_USAGE_SOURCE", "analytics")
    code, out, _ = run_cli(capsys, "check-config")
    assert code == 0
    assert "analytics (the Usage and Cost Analytics API" in out
