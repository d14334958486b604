"""The scripted bill: price changes from a date, code execution, revisions, priority-tier days."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest

from service.simulator import ManualClock, SimulatorServer, Workload, WorkloadSpec
from service.simulator.workload import BillPriceChange, BillRevision, CodeExecution
from tests.helpers import ADMIN_KEY, ALL_DIMENSIONS, COST, START, USAGE, Params, get_json, group_by

MODELS = ("claude-sonnet-4-20250514", "claude-haiku-4-5-20251001", "claude-opus-4-6")
DAY = timedelta(days=1)
CHANGE = datetime(2025, 8, 6, tzinfo=UTC)
NOW = datetime(2025, 8, 10, 12, tzinfo=UTC)


def spec(**overrides: Any) -> WorkloadSpec:
    """Seed 33: batch, priority, long-context and US-geo streams over three models."""
    return WorkloadSpec(seed=33, start=START, n_workspaces=2, n_keys=6, models=MODELS, **overrides)


@contextmanager
def serve(workload: Workload, clock: ManualClock) -> Iterator[httpx.Client]:
    """A simulator over ``workload`` and a client of it."""
    with (
        SimulatorServer(workload, admin_key=ADMIN_KEY, clock=clock) as sim,
        httpx.Client(
            base_url=sim.base_url,
            headers={"x-api-key": ADMIN_KEY, "anthropic-version": "2023-06-01"},
        ) as api,
    ):
        yield api


def day_params(day: datetime) -> Params:
    return [
        ("starting_at", f"{day:%Y-%m-%dT%H:%M:%SZ}"),
        ("ending_at", f"{day + DAY:%Y-%m-%dT%H:%M:%SZ}"),
    ]


def bill(api: httpx.Client, day: datetime) -> list[dict[str, Any]]:
    body = get_json(api, COST, day_params(day) + group_by("workspace_id", "description"))
    rows: list[dict[str, Any]] = body["data"][0]["results"]
    return rows


def amounts(rows: list[dict[str, Any]], **match: object) -> Decimal:
    return sum(
        (Decimal(r["amount"]) for r in rows if all(r[k] == v for k, v in match.items())),
        Decimal(0),
    )


@pytest.fixture
def plain() -> Iterator[httpx.Client]:
    """The unscripted workload, as the reference."""
    with serve(Workload(spec()), ManualClock(NOW)) as api:
        yield api


def test_a_price_change_applies_from_its_date_to_its_model_and_token_type(
    plain: httpx.Client,
) -> None:
    """Opus output billed 1.25x from 08-06: the day before and every other line are unchanged."""
    change = BillPriceChange(CHANGE, "claude-opus-4-6", Decimal("1.25"), "output_tokens")
    with serve(Workload(spec(bill_price_changes=(change,))), ManualClock(NOW)) as scripted:
        for day, factor in ((CHANGE - DAY, Decimal(1)), (CHANGE, Decimal("1.25"))):
            before, after = bill(plain, day), bill(scripted, day)
            opus = {"model": "claude-opus-4-6", "token_type": "output_tokens"}
            assert amounts(after, **opus) == amounts(before, **opus) * factor
            assert amounts(after) - amounts(after, **opus) == amounts(before) - amounts(
                before, **opus
            )


def test_code_execution_is_billed_only_in_the_cost_report(plain: httpx.Client) -> None:
    """$2 a day from 08-06 in the first workspace; partial today; absent from usage."""
    workload = Workload(
        spec(code_execution=(CodeExecution(Decimal(2), workspace=0, start=CHANGE),))
    )
    clock = ManualClock(NOW)
    with serve(workload, clock) as api:
        rows = [r for r in bill(api, CHANGE) if r["cost_type"] == "code_execution"]
        assert rows == [
            {
                "amount": "200",
                "currency": "USD",
                "workspace_id": workload.workspaces[0].id,
                "cost_type": "code_execution",
                "description": "Code Execution Usage",
                "model": None,
                "token_type": None,
                "service_tier": None,
                "context_window": None,
                "inference_geo": None,
            }
        ]
        assert not [r for r in bill(api, CHANGE - DAY) if r["cost_type"] == "code_execution"]
        today = [r for r in bill(api, NOW.replace(hour=0)) if r["cost_type"] == "code_execution"]
        assert Decimal(today[0]["amount"]) == 100, "half of today has passed"
        usage = get_json(api, USAGE, day_params(CHANGE) + group_by(*ALL_DIMENSIONS))
        assert usage == get_json(plain, USAGE, day_params(CHANGE) + group_by(*ALL_DIMENSIONS))


def test_a_revised_bill_changes_only_after_its_delay(plain: httpx.Client) -> None:
    """08-06's bill grows 2% once two days have passed since it ended, and no other day."""
    revision = BillRevision(CHANGE, Decimal("1.02"), after=2 * DAY)
    clock = ManualClock(CHANGE + 3 * DAY - timedelta(seconds=1))
    with serve(Workload(spec(bill_revisions=(revision,))), clock) as api:
        assert amounts(bill(api, CHANGE)) == amounts(bill(plain, CHANGE))
        clock.advance(timedelta(seconds=1))
        assert amounts(bill(api, CHANGE)) == amounts(bill(plain, CHANGE)) * Decimal("1.02")
        assert amounts(bill(api, CHANGE + DAY)) == amounts(bill(plain, CHANGE + DAY))


def test_priority_days_confine_priority_tier_usage(plain: httpx.Client) -> None:
    """With priority_days, priority-tier usage shows on those days only; the bill never has it."""
    with serve(Workload(spec(priority_days=(CHANGE,))), ManualClock(NOW)) as api:
        for day, expected in ((CHANGE - DAY, False), (CHANGE, True)):
            usage = get_json(api, USAGE, day_params(day) + group_by(*ALL_DIMENSIONS))
            tiers = {r["service_tier"] for r in usage["data"][0]["results"]}
            assert ("priority" in tiers) is expected
        assert amounts(bill(api, CHANGE)) == amounts(bill(plain, CHANGE))
        assert all(r["service_tier"] != "priority" for r in bill(api, CHANGE))
