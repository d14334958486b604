"""Names of keys and workspaces: fetched daily and for new ids, renames shown, never blocking."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import delete
from sqlmodel import col

from service.admin_api.retry import RetryPolicy
from service.runtime.cycle import Runtime
from service.runtime.facts import Names, budget_facts
from service.runtime.names_refresh import NAMES_RETRY, refresh_due
from service.runtime.status import budgets_status
from service.settings import Settings, load_settings
from service.simulator import ManualClock, SimulatorServer, Workload, WorkloadSpec
from service.store.engine import transaction
from service.store.names import RefreshState, load_names
from service.store.tables import EntityName

KEY = "sk-ant-admin01-names-test-key-0123456789abcdef"
NOW = datetime(2026, 11, 4, 12, 30, tzinfo=UTC)
FAST_RETRY = RetryPolicy(max_retries=1, base_delay=0.001, max_delay=0.001)
KEYS_PATH = "/v1/organizations/api_keys"
T = datetime(2026, 11, 4, tzinfo=UTC)
H = timedelta(hours=1)
DAILY, NEW_IDS = "daily refresh", "usage names ids without a cached name"


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(NOW)


@pytest.fixture
def simulator(clock: ManualClock) -> Iterator[SimulatorServer]:
    spec = WorkloadSpec(seed=3, start=NOW - timedelta(days=2), n_keys=5, n_workspaces=2)
    with SimulatorServer(Workload(spec), admin_key=KEY, clock=clock) as server:
        yield server


def settings_for(simulator: SimulatorServer, db_url: str, **extra: str) -> Settings:
    env = {
        "ANTHROPIC_ADMIN_KEY": KEY,
        "ANTHROPIC_BASE_URL": simulator.base_url,
        "CREDITWATCH_DATABASE_URL": db_url,
        "CREDITWATCH_HTTP_TIMEOUT": "5s",
    }
    return load_settings(env | extra, None)


def busy_key(simulator: SimulatorServer) -> str:
    """A key with usage (some catalog keys may have none)."""
    return next(s.api_key_id for s in simulator.workload.streams if s.api_key_id)


def busy_workspace(simulator: SimulatorServer) -> str:
    return next(s.workspace_id for s in simulator.workload.streams if s.workspace_id)


def name_fetches(simulator: SimulatorServer) -> int:
    return sum(r.path == KEYS_PATH for r in simulator.requests)


def stored(runtime: Runtime, kind: str) -> dict[str, str]:
    with transaction(runtime.engine) as session:
        return load_names(session, kind)


NONE: frozenset[str] = frozenset()
A, B, AB = frozenset({"a"}), frozenset({"b"}), frozenset({"a", "b"})


@pytest.mark.parametrize(
    ("state", "now", "unknown", "due"),
    [
        (RefreshState(), T, NONE, DAILY),
        (RefreshState(refreshed_at=T), T + 23 * H, NONE, None),
        (RefreshState(refreshed_at=T), T + 24 * H, NONE, DAILY),
        (RefreshState(refreshed_at=T), T + H / 6, A, NEW_IDS),
        # Ids the last fetch could not name: again after an hour, not every cycle, whichever
        # of them a chunk holds.
        (RefreshState(refreshed_at=T, unresolved=AB), T + H / 6, A, None),
        (RefreshState(refreshed_at=T, unresolved=AB), T + H / 6, B, None),
        (RefreshState(refreshed_at=T, unresolved=AB), T + H, A, NEW_IDS),
        (RefreshState(refreshed_at=T, unresolved=AB), T + H / 6, frozenset({"a", "c"}), NEW_IDS),
        # A failed fetch waits an hour, whatever is due.
        (RefreshState(refreshed_at=T - 48 * H, attempted_at=T), T + H / 2, A, None),
        (RefreshState(attempted_at=T), T + H, NONE, DAILY),
        (RefreshState(refreshed_at=T, attempted_at=T), T + H / 6, A, NEW_IDS),
    ],
)
def test_when_names_are_due(
    state: RefreshState, now: datetime, unknown: frozenset[str], due: str
) -> None:
    """Daily, or for ids without a name (hourly while the list does not name them either)."""
    assert refresh_due(state, now, unknown) == due


def test_a_rename_upstream_shows_after_the_daily_refresh(
    simulator: SimulatorServer, db_url: str, clock: ManualClock
) -> None:
    """Names are fetched once a day, not every cycle; a renamed key shows its new name then."""
    key, workspace = busy_key(simulator), busy_workspace(simulator)
    with Runtime(settings_for(simulator, db_url), retry=FAST_RETRY) as runtime:
        runtime.cycle(clock)
        assert name_fetches(simulator) == 1
        old = stored(runtime, "api_key")[key]
        simulator.directory.renamed |= {key: "Renamed key", workspace: "Renamed workspace"}
        for _ in range(3):
            clock.advance(timedelta(hours=7))
            runtime.cycle(clock)
        assert name_fetches(simulator) == 1
        assert stored(runtime, "api_key")[key] == old
        clock.advance(timedelta(hours=3, minutes=1))
        runtime.cycle(clock)
        assert name_fetches(simulator) == 2
        assert stored(runtime, "api_key")[key] == "Renamed key"
        assert stored(runtime, "workspace")[workspace] == "Renamed workspace"


def test_a_new_key_in_usage_fetches_names_in_the_same_cycle(
    simulator: SimulatorServer, db_url: str, clock: ManualClock
) -> None:
    """An id without a name (a key created since the last fetch) fetches the names at once,
    once per cycle, and the cycle's budget facts and drivers already use the new name."""
    key = busy_key(simulator)
    extra = {"CREDITWATCH_BUDGET_KEYED": "limit=100000 period=month api_key='Deploy bot'"}
    settings = settings_for(simulator, db_url, **extra)
    with Runtime(settings, retry=FAST_RETRY) as runtime:
        runtime.cycle(clock)
        with transaction(runtime.engine) as session:
            # As if the key was created after that fetch, and named "Deploy bot" in the Console.
            session.execute(delete(EntityName).where(col(EntityName.id) == key))
            assert budget_facts(session, settings, clock())[0].spent_nanos == 0
        simulator.directory.renamed[key] = "Deploy bot"
        clock.advance(timedelta(minutes=10))
        runtime.cycle(clock)
        assert name_fetches(simulator) == 2
        assert stored(runtime, "api_key")[key] == "Deploy bot"
        with transaction(runtime.engine) as session:
            assert Names(session).of("api_key", key) == "Deploy bot"
            assert budget_facts(session, settings, clock())[0].spent_nanos > 0
        clock.advance(timedelta(minutes=10))
        runtime.cycle(clock)
        assert name_fetches(simulator) == 2, "every id has a name again: nothing to fetch"


def test_an_id_the_list_does_not_show_is_retried_hourly(
    simulator: SimulatorServer, db_url: str, clock: ManualClock
) -> None:
    """A key missing from the list keeps its id (never invented) and is asked about hourly."""
    key = busy_key(simulator)
    simulator.directory.unlisted.add(key)
    with Runtime(settings_for(simulator, db_url), retry=FAST_RETRY) as runtime:
        runtime.cycle(clock)
        fetched = name_fetches(simulator)
        assert key not in stored(runtime, "api_key")
        with transaction(runtime.engine) as session:
            assert Names(session).of("api_key", key) == key
        clock.advance(timedelta(minutes=10))
        runtime.cycle(clock)
        assert key not in stored(runtime, "api_key")
        simulator.directory.unlisted.clear()
        clock.advance(timedelta(minutes=10))
        runtime.cycle(clock)
        assert name_fetches(simulator) == fetched, "the same unnamed id: not every cycle"
        clock.advance(NAMES_RETRY)
        runtime.cycle(clock)
        assert key in stored(runtime, "api_key")
        assert name_fetches(simulator) == fetched + 1


def test_a_key_no_longer_listed_keeps_its_name(
    simulator: SimulatorServer, db_url: str, clock: ManualClock
) -> None:
    """A deleted key vanishes from the list; its old usage still shows its last known name."""
    key = busy_key(simulator)
    with Runtime(settings_for(simulator, db_url), retry=FAST_RETRY) as runtime:
        runtime.cycle(clock)
        name = stored(runtime, "api_key")[key]
        simulator.directory.unlisted.add(key)
        clock.advance(timedelta(days=1, minutes=5))
        runtime.cycle(clock)
        assert name_fetches(simulator) == 2
        assert stored(runtime, "api_key")[key] == name


def test_a_failing_name_list_never_blocks_collection(
    simulator: SimulatorServer, db_url: str, clock: ManualClock
) -> None:
    """The names endpoint failing: usage is booked, ids shown as ids, retried after an hour."""
    simulator.faults.add(status=500, times=None, path_prefix=KEYS_PATH)
    with Runtime(settings_for(simulator, db_url), retry=FAST_RETRY) as runtime:
        result = runtime.cycle(clock)
        assert result.collection.booking.new_rows > 0
        tries = name_fetches(simulator)
        assert tries >= 1
        clock.advance(timedelta(minutes=10))
        runtime.cycle(clock)
        assert name_fetches(simulator) == tries, "a failed fetch waits an hour"
        simulator.faults.clear()
        clock.advance(NAMES_RETRY)
        runtime.cycle(clock)
        assert stored(runtime, "api_key")


def test_a_budget_scoped_by_a_name_renamed_upstream_is_flagged(
    simulator: SimulatorServer, db_url: str, clock: ManualClock
) -> None:
    """After a rename the old name matches nothing: `status` says so instead of a silent $0."""
    workspace = busy_workspace(simulator)
    with Runtime(settings_for(simulator, db_url), retry=FAST_RETRY) as runtime:
        runtime.cycle(clock)
        old = stored(runtime, "workspace")[workspace]
        simulator.directory.renamed[workspace] = "Renamed workspace"
        clock.advance(timedelta(days=1))
        runtime.cycle(clock)
        scoped = {
            "CREDITWATCH_BUDGET_OLD": f"limit=100000 workspace='{old}'",
            "CREDITWATCH_BUDGET_NEW": "limit=100000 workspace='Renamed workspace'",
        }
        settings = settings_for(simulator, db_url, **scoped)
        with transaction(runtime.engine) as session:
            shown = {b["name"]: b for b in budgets_status(session, settings, clock())}
    assert shown["old"]["scope_unknown"] == [f"workspace={old}"]
    assert shown["old"]["spent_usd"] == "0.00"
    assert shown["new"]["scope_unknown"] == []
    assert shown["new"]["spent_usd"] != "0.00"
