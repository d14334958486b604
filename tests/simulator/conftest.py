"""Fixtures: a small seeded workload, a manual clock, a live simulator and an httpx client."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from service.simulator import ManualClock, SimulatorServer, Workload, WorkloadSpec
from tests.helpers import ADMIN_KEY, FORBIDDEN_KEY, NOW, START
from tests.simulator.analytics_helpers import ANALYTICS_NOW, ANALYTICS_START, BETA


@pytest.fixture
def workload() -> Workload:
    """Five keys over two named workspaces plus the default one, six models."""
    return Workload(WorkloadSpec(seed=7, start=START, n_workspaces=2, n_keys=5))


@pytest.fixture
def clock() -> ManualClock:
    """Simulated now: mid-day on 2025-08-20, a Wednesday."""
    return ManualClock(NOW)


@pytest.fixture
def sim(workload: Workload, clock: ManualClock) -> Iterator[SimulatorServer]:
    """A running simulator over ``workload`` that reads ``clock``."""
    with SimulatorServer(
        workload, admin_key=ADMIN_KEY, forbidden_key=FORBIDDEN_KEY, clock=clock
    ) as server:
        yield server


@pytest.fixture
def api(sim: SimulatorServer) -> Iterator[httpx.Client]:
    """An httpx client authenticated as the admin key."""
    headers = {"x-api-key": ADMIN_KEY, "anthropic-version": "2023-06-01"}
    with httpx.Client(base_url=sim.base_url, headers=headers, timeout=10) as client:
        yield client


@pytest.fixture
def analytics_workload() -> Workload:
    """The same shape of organization, in 2026, where the Analytics API has data."""
    return Workload(WorkloadSpec(seed=7, start=ANALYTICS_START, n_workspaces=2, n_keys=5))


@pytest.fixture
def analytics_clock() -> ManualClock:
    """Simulated now: mid-day on 2026-03-20, a Friday."""
    return ManualClock(ANALYTICS_NOW)


@pytest.fixture
def analytics_sim(
    analytics_workload: Workload, analytics_clock: ManualClock
) -> Iterator[SimulatorServer]:
    """A running simulator over ``analytics_workload`` that reads ``analytics_clock``."""
    with SimulatorServer(
        analytics_workload, admin_key=ADMIN_KEY, forbidden_key=FORBIDDEN_KEY, clock=analytics_clock
    ) as server:
        yield server


@pytest.fixture
def analytics_api(analytics_sim: SimulatorServer) -> Iterator[httpx.Client]:
    """An httpx client with the admin key, the version and the analytics beta header."""
    headers = {"x-api-key": ADMIN_KEY, "anthropic-version": "2023-06-01", "anthropic-beta": BETA}
    with httpx.Client(base_url=analytics_sim.base_url, headers=headers, timeout=30) as client:
        yield client
