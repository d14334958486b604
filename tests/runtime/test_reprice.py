"""A price-book change reaches usage booked before it: re-priced, differences booked once."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from service.admin_api.retry import RetryPolicy
from service.runtime.collector import make_pricer
from service.runtime.cycle import Runtime
from service.settings import Settings, load_settings
from service.simulator import ManualClock, SimulatorServer, Workload, WorkloadSpec
from service.store import balance, usage_queries
from service.store.engine import read_transaction
from service.store.tables import LEDGER, USAGE, USAGE_ROWS, UnknownModel
from service.store.usage_booking import counts_of, key_of, price_with_bill

KEY = "sk-ant-admin01-reprice-test-key-0123456789"
MONTH = datetime(2026, 11, 1, tzinfo=UTC)
NOW = datetime(2026, 11, 3, 12, 30, tzinfo=UTC)
NEW_MODEL = "claude-nova-1-20261101"
FAST_RETRY = RetryPolicy(max_retries=1, base_delay=0.001, max_delay=0.001)
NOVA = """
[[model]]
id = "claude-nova-1"
family = "nova"
version = "1"
[[model.prices]]
effective_from = 2026-10-01
input = "{input}"
output = "{output}"
"""


@pytest.fixture
def simulator() -> Iterator[SimulatorServer]:
    spec = WorkloadSpec(
        seed=11,
        start=MONTH,
        n_keys=2,
        n_workspaces=1,
        models=("claude-haiku-4-5-20251001", NEW_MODEL),
    )
    with SimulatorServer(Workload(spec), admin_key=KEY, clock=ManualClock(NOW)) as server:
        yield server


def settings_with(simulator: SimulatorServer, db_url: str, prices: Path | None) -> Settings:
    env = {
        "ANTHROPIC_ADMIN_KEY": KEY,
        "ANTHROPIC_BASE_URL": simulator.base_url,
        "CREDITWATCH_DATABASE_URL": db_url,
        "CREDITWATCH_STARTING_BALANCE": "1000",
        "CREDITWATCH_STARTING_BALANCE_AT": MONTH.isoformat(),
    }
    if prices is not None:
        env["CREDITWATCH_PRICES_FILE"] = str(prices)
    return load_settings(env, None, now=NOW)


def ledger_state(settings: Settings) -> tuple[int, int, int, list[str]]:
    """(balance, stored cost, ledger entries, unknown models) as the ledger holds them."""
    with Runtime(settings, retry=FAST_RETRY) as runtime, read_transaction(runtime.engine) as s:
        known = balance.balance_nanos(s)
        assert known is not None
        cost = int(s.execute(select(func.sum(USAGE.c.cost_nanos))).scalar_one())
        entries = int(s.execute(select(func.count()).select_from(LEDGER)).scalar_one())
        unknown = [u.model for u in s.scalars(select(UnknownModel))]
    return known, cost, entries, unknown


def expected_cost(settings: Settings) -> int:
    """The stored rows priced from scratch with the settings' price book."""
    with Runtime(settings, retry=FAST_RETRY) as runtime, read_transaction(runtime.engine) as s:
        price = make_pricer(runtime.book)
        return sum(
            price_with_bill(price, key_of(row), counts_of(row), None).cost_nanos
            for row in s.execute(select(USAGE_ROWS))
        )


def test_a_price_file_correction_reprices_stored_usage_and_clears_the_unknown_model(
    simulator: SimulatorServer, db_url: str, tmp_path: Path
) -> None:
    """Unknown at first (estimated, listed), the model's new price reaches every stored row."""
    clock = ManualClock(NOW)
    unknown = settings_with(simulator, db_url, None)
    with Runtime(unknown, retry=FAST_RETRY) as runtime:
        runtime.cycle(clock)
    before_balance, before_cost, _, before_unknown = ledger_state(unknown)
    assert before_unknown == [NEW_MODEL]

    prices = tmp_path / "prices.toml"
    prices.write_text(NOVA.format(input="0.50", output="2.50"))
    corrected = settings_with(simulator, db_url, prices)
    with Runtime(corrected, retry=FAST_RETRY) as runtime:
        result = runtime.cycle(clock)
    assert result.collection.repriced_rows > 0
    balance_after, cost_after, entries_after, unknown_after = ledger_state(corrected)
    assert unknown_after == [], "the book knows the model now"
    assert cost_after == expected_cost(corrected)
    assert cost_after < before_cost, "nova was priced as the book's most expensive model"
    # Everything collected is after the starting balance, so the balance moves by the same.
    assert balance_after - before_balance == before_cost - cost_after

    # The same book again re-prices nothing and books nothing.
    with Runtime(corrected, retry=FAST_RETRY) as runtime:
        again = runtime.cycle(clock)
    assert again.collection.repriced_rows == 0
    assert ledger_state(corrected) == (balance_after, cost_after, entries_after, [])


def test_a_second_correction_books_only_the_new_difference(
    simulator: SimulatorServer, db_url: str, tmp_path: Path
) -> None:
    """A price raised after a first correction moves the stored cost to exactly the new price."""
    clock = ManualClock(NOW)
    prices = tmp_path / "prices.toml"
    prices.write_text(NOVA.format(input="1", output="5"))
    first = settings_with(simulator, db_url, prices)
    with Runtime(first, retry=FAST_RETRY) as runtime:
        runtime.cycle(clock)
    first_balance, first_cost, _, _ = ledger_state(first)
    prices.write_text(NOVA.format(input="2", output="10"))
    second = settings_with(simulator, db_url, prices)
    with Runtime(second, retry=FAST_RETRY) as runtime:
        runtime.cycle(clock)
    second_balance, second_cost, _, _ = ledger_state(second)
    assert second_cost == expected_cost(second)
    assert second_cost > first_cost
    assert first_balance - second_balance == second_cost - first_cost
    with Runtime(second, retry=FAST_RETRY) as runtime, read_transaction(runtime.engine) as s:
        charged = usage_queries.charged_total_nanos(s)
        month = usage_queries.period_spend_nanos(s, MONTH, NOW + timedelta(hours=1), "1h")
    assert charged == month == second_cost
