"""Fixtures: a small seeded workload, a manual clock, a live simulator and an httpx client."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from service.simulator import ManualClock, SimulatorServer, Workload, WorkloadSpec

START = datetime(2025, 8, 1, tzinfo=UTC)
NOW = datetime(2025, 8, 20, 12, 30, tzinfo=UTC)
ADMIN_KEY = "sk-ant-admin01-test-key"
FORBIDDEN_KEY = "sk-ant-admin01-no-permission"
USAGE = "/v1/organizations/usage_report/messages"
COST = "/v1/organizations/cost_report"
ALL_DIMENSIONS = (
    "api_key_id",
    "workspace_id",
    "model",
    "service_tier",
    "context_window",
    "inference_geo",
)

Params = list[tuple[str, str | int | float | bool | None]]
"""Query pairs, typed as httpx accepts them."""


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


def get_json(api: httpx.Client, path: str, params: Params) -> dict[str, Any]:
    """GET and return the JSON body, asserting a 200."""
    response = api.get(path, params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def all_pages(api: httpx.Client, path: str, params: Params) -> list[dict[str, Any]]:
    """Every bucket of a report, following ``next_page`` to the end."""
    buckets: list[dict[str, Any]] = []
    page: str | None = None
    for _ in range(1000):
        body = get_json(api, path, params + ([("page", page)] if page else []))
        buckets.extend(body["data"])
        if not body["has_more"]:
            assert body["next_page"] is None
            return buckets
        page = body["next_page"]
    raise AssertionError("paging did not end")


def group_by(*dimensions: str) -> Params:
    """``group_by[]`` query pairs."""
    return [("group_by[]", d) for d in dimensions]


def counters(result: dict[str, Any]) -> tuple[int, int, int, int, int, int]:
    """The six usage counters of a result row, in a fixed order."""
    return (
        result["uncached_input_tokens"],
        result["cache_creation"]["ephemeral_5m_input_tokens"],
        result["cache_creation"]["ephemeral_1h_input_tokens"],
        result["cache_read_input_tokens"],
        result["output_tokens"],
        result["server_tool_use"]["web_search_requests"],
    )


def total(results: list[dict[str, Any]]) -> tuple[int, ...]:
    """Counter-wise sum of result rows."""
    sums = [0] * 6
    for result in results:
        for i, value in enumerate(counters(result)):
            sums[i] += value
    return tuple(sums)
