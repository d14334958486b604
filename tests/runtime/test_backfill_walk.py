"""A backfill derives its reloads once, and a stop or failure between chunks still leaves
the ledger's reloads and expiries those of what was booked (against the simulator, both
databases)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, select

from service.errors import AdminAPIError
from service.runtime.cycle import Runtime
from service.settings import Settings
from service.simulator import ManualClock, SimulatorServer, Workload, WorkloadSpec
from service.store import tables
from service.store.credit_sync import ledger_terms
from service.store.engine import transaction
from tests.helpers import whole_walk
from tests.runtime.test_usage_source import FAST_RETRY, KEY, make_settings

START = datetime(2026, 2, 1, tzinfo=UTC)
NOW = datetime(2026, 3, 1, 4, tzinfo=UTC)  # February: five chunks of a week at most
USAGE_PATH = "/v1/organizations/usage_report/messages"


@pytest.fixture
def simulator() -> Iterator[SimulatorServer]:
    spec = WorkloadSpec(seed=9, start=START - timedelta(days=1), n_keys=3)
    with SimulatorServer(Workload(spec), admin_key=KEY, clock=ManualClock(NOW)) as server:
        yield server


def booked_reloads(engine: Engine) -> list[tuple[datetime, int]]:
    ledger = tables.LEDGER
    with transaction(engine) as session:
        rows = session.execute(
            select(ledger.c.at, ledger.c.amount_nanos)
            .where(ledger.c.kind == "reload")
            .order_by(ledger.c.at)
        ).all()
    return [(at, int(amount)) for at, amount in rows]


def walked_reloads(engine: Engine, runtime: Runtime) -> list[tuple[datetime, int]]:
    with transaction(engine) as session:
        terms = ledger_terms(session, runtime.settings.ledger.credit_terms())
        walk = whole_walk(session, "1h", terms, NOW)
    return [(r.at, r.granted_nanos) for r in walk.reloads]


def settings_for(simulator: SimulatorServer, db_url: str) -> Settings:
    return make_settings(
        simulator,
        db_url,
        "messages",
        CREDITWATCH_BACKFILL_FROM="2026-02-01T00Z",
        CREDITWATCH_STARTING_BALANCE="60",
        CREDITWATCH_AUTO_RELOAD_THRESHOLD="20",
        CREDITWATCH_AUTO_RELOAD_TO="60",
    )


def test_a_failure_between_chunks_leaves_the_walk_of_what_was_booked(
    simulator: SimulatorServer, db_url: str
) -> None:
    """The third week's request fails for good: the first two weeks are booked, and so are
    exactly the reloads their walk makes; the next cycle books the rest and its reloads."""
    simulator.faults.add(status=401, times=None, path_prefix=USAGE_PATH, after=2)
    with Runtime(settings_for(simulator, db_url), retry=FAST_RETRY) as runtime:
        with pytest.raises(AdminAPIError):
            runtime.cycle(lambda: NOW)
        engine = runtime.engine
        partial = booked_reloads(engine)
        assert partial, "two weeks of spend from $60 with a $20 threshold reload"
        assert partial == walked_reloads(engine, runtime)
        assert max(at for at, _ in partial) < START + timedelta(days=14)
        simulator.faults.clear()
        runtime.cycle(lambda: NOW)
        whole = booked_reloads(engine)
        assert whole == walked_reloads(engine, runtime)
        assert whole[: len(partial)] == partial
        assert len(whole) > len(partial)
