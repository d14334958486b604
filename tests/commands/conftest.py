"""Fixtures for the commands: a simulator, and a working directory whose .env points at it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from service.simulator import ManualClock, SimulatorServer, Workload, WorkloadSpec
from tests.helpers import CLI_KEY, CLI_NOW


@pytest.fixture
def simulator() -> Iterator[SimulatorServer]:
    spec = WorkloadSpec(seed=5, start=datetime(2026, 10, 25, tzinfo=UTC), n_keys=4)
    with SimulatorServer(Workload(spec), admin_key=CLI_KEY, clock=ManualClock(CLI_NOW)) as server:
        yield server


@pytest.fixture
def env(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, simulator: SimulatorServer, db_url: str
) -> Path:
    """A working directory with a .env pointing at the simulator and a fresh database."""
    monkeypatch.chdir(tmp_path)
    for name in ("ANTHROPIC_ADMIN_KEY", "CREDITWATCH_DATABASE_URL", "ANTHROPIC_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    (tmp_path / ".env").write_text(
        f"ANTHROPIC_ADMIN_KEY={CLI_KEY}\n"
        f"ANTHROPIC_BASE_URL={simulator.base_url}\n"
        f"CREDITWATCH_DATABASE_URL={db_url}\n"
        "CREDITWATCH_STARTING_BALANCE=5000\n"
        "CREDITWATCH_STARTING_BALANCE_AT=2026-11-05T00:00:00Z\n"
        "CREDITWATCH_LOG_LEVEL=DEBUG\n"
    )
    return tmp_path
