"""The official ``anthropic`` SDK as an independent reader of the simulated Analytics API."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import anthropic
import httpx
import pytest
from anthropic.types.beta.organization.analytics import (
    BetaAnalyticsCostItem,
    BetaAnalyticsUsageItem,
)
from pydantic import BaseModel

from service.simulator import SimulatorServer
from tests.helpers import ADMIN_KEY, COST, Params, all_pages, group_by
from tests.simulator.analytics_helpers import (
    A_COST,
    A_USAGE,
    TWO_DAYS,
    legacy_usage_total,
    rows_of,
)

AN_HOUR: Params = [
    ("starting_at", "2026-03-05T10:00:00Z"),
    ("ending_at", "2026-03-05T11:00:00Z"),
]
AROUND_NOW: Params = [
    ("starting_at", "2026-03-19T00:00:00Z"),
    ("ending_at", "2026-03-21T00:00:00Z"),
]
READS: list[tuple[Params, str | None, tuple[str, ...]]] = [
    (TWO_DAYS, None, ()),
    (TWO_DAYS, "1d", ("actor", "product", "workspace_id")),
    (TWO_DAYS, "1h", ("api_key_id", "model", "service_tier", "context_window", "inference_geo")),
    (AN_HOUR, "1m", ("actor_type", "speed", "model")),
    (AROUND_NOW, "1h", ("actor", "agent_id", "session_id")),
]
COMPONENTS = [(), ("cost_type",), ("token_type",), ("cost_type", "token_type")]


def assert_known_to(model: BaseModel, raw: dict[str, Any]) -> None:
    """Every field we send is one the SDK model declares, every required one is there, and
    nested objects (the actor, cache_creation, …) hold to the same, recursively."""
    fields = type(model).model_fields
    assert set(raw) <= set(fields), set(raw) - set(fields)
    assert {name for name, info in fields.items() if info.is_required()} <= set(raw)
    assert not model.model_extra
    for name, value in raw.items():
        nested = getattr(model, name)
        if isinstance(nested, BaseModel):
            assert isinstance(value, dict)
            assert_known_to(nested, value)


def params_of(window: Params, width: str | None, dimensions: tuple[str, ...]) -> Params:
    """A read's query: the window, the width if any, the grouping and a small limit."""
    extra: Params = [("time_bucket_width", width)] if width else []
    return window + extra + group_by(*dimensions) + [("limit", "37")]


@pytest.mark.parametrize(("window", "width", "dimensions"), READS)
def test_every_usage_row_validates_with_the_sdk_model(
    analytics_api: httpx.Client, window: Params, width: str | None, dimensions: tuple[str, ...]
) -> None:
    """Each usage row, over several groupings, widths and pages, is a BetaAnalyticsUsageItem."""
    rows = rows_of(analytics_api, A_USAGE, params_of(window, width, dimensions))
    assert len(rows) > 0
    for row in rows:
        item = BetaAnalyticsUsageItem.model_validate(row)
        assert_known_to(item, row)
        assert item.starting_at.utcoffset() is not None
        assert item.usage.total_tokens > 0


@pytest.mark.parametrize("components", COMPONENTS)
@pytest.mark.parametrize(("window", "width", "dimensions"), READS)
def test_every_cost_row_validates_with_the_sdk_model(
    analytics_api: httpx.Client,
    window: Params,
    width: str | None,
    dimensions: tuple[str, ...],
    components: tuple[str, ...],
) -> None:
    """Each cost row, with and without the cost components, is a BetaAnalyticsCostItem."""
    params = params_of(window, width, dimensions) + group_by(*components)
    rows = rows_of(analytics_api, A_COST, params)
    assert len(rows) > 0
    for row in rows:
        item = BetaAnalyticsCostItem.model_validate(row)
        assert_known_to(item, row)
        assert Decimal(item.cost.amount) > 0
        assert Decimal(item.cost.list_amount) >= Decimal(item.cost.amount)


@pytest.fixture
def client(analytics_sim: SimulatorServer) -> Iterator[anthropic.Anthropic]:
    """The SDK's own client, pointed at the simulator with the admin key, no retries."""
    with anthropic.Anthropic(
        api_key=ADMIN_KEY, base_url=analytics_sim.base_url, max_retries=0
    ) as sdk:
        yield sdk


def test_the_sdk_client_pages_usage_to_the_legacy_totals(
    client: anthropic.Anthropic, analytics_api: httpx.Client, analytics_sim: SimulatorServer
) -> None:
    """The SDK pages through hourly usage by actor and model; it sums to the legacy totals."""
    pager = client.beta.organization.analytics.usage.list(
        starting_at="2026-03-05T00:00:00Z",
        ending_at="2026-03-07T00:00:00Z",
        time_bucket_width="1h",
        group_by=["actor", "model"],
        limit=100,
    )
    assert pager.data_refreshed_at is not None
    sums = [0] * 6
    seen = set()
    count = 0
    for item in pager:
        count += 1
        usage = item.usage
        for i, value in enumerate(
            (
                usage.uncached_input_tokens,
                usage.cache_creation.ephemeral_5m_input_tokens,
                usage.cache_creation.ephemeral_1h_input_tokens,
                usage.cache_read_input_tokens,
                usage.output_tokens,
                usage.server_tool_use.web_search_requests,
            )
        ):
            sums[i] += value
        seen.add((item.starting_at, item.group.model, repr(item.group.actor)))
    pages = [r for r in analytics_sim.requests if r.path == A_USAGE]
    assert len(pages) > 3
    assert all(r.headers["authorization"] == "<redacted>" for r in pages)
    assert count == len(seen) > 300
    legacy = legacy_usage_total(analytics_api, [*TWO_DAYS, ("bucket_width", "1h")])
    assert tuple(sums) == legacy


def test_the_sdk_client_reads_the_bill(
    client: anthropic.Anthropic, analytics_api: httpx.Client
) -> None:
    """The SDK's hourly cost by workspace and cost type adds up to the legacy daily bill."""
    billed = Decimal(0)
    for item in client.beta.organization.analytics.cost.list(
        starting_at="2026-03-05T00:00:00Z",
        ending_at="2026-03-07T00:00:00Z",
        time_bucket_width="1h",
        group_by=["workspace_id", "cost_type"],
        limit=20,
    ):
        assert item.cost.currency == "USD"
        assert item.group.workspace_id is not None
        assert item.group.workspace_id.startswith("wrkspc_")
        billed += Decimal(item.cost.amount)
    legacy = Decimal(0)
    for bucket in all_pages(analytics_api, COST, TWO_DAYS):
        legacy += sum((Decimal(r["amount"]) for r in bucket["results"]), Decimal(0))
    assert billed == legacy


def test_the_sdk_raises_its_own_error_for_a_bad_query(client: anthropic.Anthropic) -> None:
    """A refused query reaches the SDK as a BadRequestError with Anthropic's error body."""
    with pytest.raises(anthropic.BadRequestError) as raised:
        client.beta.organization.analytics.usage.list(
            starting_at="2026-03-01T00:00:00Z",
            ending_at="2026-03-05T00:00:00Z",
            time_bucket_width="1m",
        )
    assert "24 hours" in str(raised.value)
