"""``/v1/organizations/cost_report``: cents, grouping, and agreement with the usage report."""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest

from service.simulator import ManualClock, SimulatorServer, Workload, WorkloadSpec
from tests.helpers import ADMIN_KEY, ALL_DIMENSIONS, COST, START, USAGE, Params, get_json, group_by

MODELS = ("claude-sonnet-4-20250514", "claude-haiku-4-5-20251001", "claude-opus-4-6")
DAY: Params = [("starting_at", "2025-08-05T00:00:00Z"), ("ending_at", "2025-08-06T00:00:00Z")]
# Hand-copied list prices, USD per million tokens (input, output).
LIST_PRICES = {
    "claude-sonnet-4-20250514": (Decimal(3), Decimal(15)),
    "claude-haiku-4-5-20251001": (Decimal(1), Decimal(5)),
    "claude-opus-4-6": (Decimal(5), Decimal(25)),
}
SONNET_4_LONG_CONTEXT = (Decimal(6), Decimal("22.50"))


def spec(**overrides: Any) -> WorkloadSpec:
    """Seed 33 has batch, priority, long-context and US-geo Opus 4.6 streams and web search."""
    return WorkloadSpec(seed=33, start=START, n_workspaces=2, n_keys=6, models=MODELS, **overrides)


@pytest.fixture
def workload() -> Workload:
    """The small three-model workload used for hand pricing."""
    return Workload(spec())


def hand_priced_cents(row: dict[str, Any]) -> Decimal:
    """What a usage row costs, in cents, priced by hand from the public price list."""
    price_in, price_out = LIST_PRICES[row["model"]]
    if row["context_window"] == "200k-1M":
        price_in, price_out = SONNET_4_LONG_CONTEXT
    factor = Decimal("0.5") if row["service_tier"] == "batch" else Decimal(1)
    if row["inference_geo"] == "us" and row["model"] == "claude-opus-4-6":
        factor *= Decimal("1.1")
    cache = row["cache_creation"]
    token_usd = (
        (
            row["uncached_input_tokens"] * price_in
            + cache["ephemeral_5m_input_tokens"] * price_in * Decimal("1.25")
            + cache["ephemeral_1h_input_tokens"] * price_in * 2
            + row["cache_read_input_tokens"] * price_in * Decimal("0.1")
            + row["output_tokens"] * price_out
        )
        * factor
        / 1_000_000
    )
    search_usd = row["server_tool_use"]["web_search_requests"] * Decimal("0.01")
    cents: Decimal = (token_usd + search_usd) * 100
    return cents


def usage_rows(api: httpx.Client) -> list[dict[str, Any]]:
    """The finished day's usage, grouped by every dimension."""
    body = get_json(api, USAGE, DAY + group_by(*ALL_DIMENSIONS))
    rows: list[dict[str, Any]] = body["data"][0]["results"]
    return rows


def test_workload_covers_every_pricing_shape(api: httpx.Client) -> None:
    """The hand-priced day includes batch, priority, long context, US geo and web search."""
    rows = usage_rows(api)
    assert {r["service_tier"] for r in rows} == {"standard", "batch", "priority"}
    assert any(r["context_window"] == "200k-1M" for r in rows)
    assert any(r["inference_geo"] == "us" and r["model"] == "claude-opus-4-6" for r in rows)
    assert any(r["server_tool_use"]["web_search_requests"] for r in rows)


def test_day_total_matches_hand_priced_usage(api: httpx.Client) -> None:
    """A finished day's bill in cents equals its non-priority usage priced by hand, exactly."""
    expected = sum(
        (hand_priced_cents(r) for r in usage_rows(api) if r["service_tier"] != "priority"),
        Decimal(0),
    )
    [result] = get_json(api, COST, DAY)["data"][0]["results"]
    assert Decimal(result["amount"]) == expected
    assert result["currency"] == "USD"
    for field in ("cost_type", "description", "model", "token_type", "workspace_id"):
        assert result[field] is None


def test_priority_tier_is_not_in_the_bill(api: httpx.Client) -> None:
    """Priority usage exists but the bill is smaller than pricing all usage."""
    rows = usage_rows(api)
    everything = sum((hand_priced_cents(r) for r in rows), Decimal(0))
    [result] = get_json(api, COST, DAY)["data"][0]["results"]
    assert Decimal(result["amount"]) < everything


def test_amount_is_a_decimal_string_in_cents(api: httpx.Client) -> None:
    """Every ``amount`` is a plain decimal string, never a JSON number or exponent form."""
    body = get_json(api, COST, DAY + group_by("description", "workspace_id"))
    for result in body["data"][0]["results"]:
        assert isinstance(result["amount"], str)
        assert re.fullmatch(r"\d+(\.\d+)?", result["amount"]), result["amount"]


def test_group_by_description_splits_by_model_and_token_type(api: httpx.Client) -> None:
    """Description rows name model, cost and token type, and sum per model to the hand price."""
    rows = get_json(api, COST, DAY + group_by("description"))["data"][0]["results"]
    token_types = {r["token_type"] for r in rows if r["cost_type"] == "tokens"}
    assert token_types == {
        "uncached_input_tokens",
        "output_tokens",
        "cache_read_input_tokens",
        "cache_creation.ephemeral_5m_input_tokens",
        "cache_creation.ephemeral_1h_input_tokens",
    }
    searches = [r for r in rows if r["cost_type"] == "web_search"]
    assert searches
    assert all(r["token_type"] is None for r in searches)
    assert all(r["workspace_id"] is None and r["description"] for r in rows)
    usage = [r for r in usage_rows(api) if r["service_tier"] != "priority"]
    for model in MODELS:
        billed = sum((Decimal(r["amount"]) for r in rows if r["model"] == model), Decimal(0))
        expected = sum((hand_priced_cents(r) for r in usage if r["model"] == model), Decimal(0))
        assert billed == expected


def test_group_by_workspace_sums_to_the_total(api: httpx.Client, workload: Workload) -> None:
    """Per-workspace amounts (default workspace as null) add up to the ungrouped total."""
    rows = get_json(api, COST, DAY + group_by("workspace_id"))["data"][0]["results"]
    assert {r["workspace_id"] for r in rows} == {None, *(w.id for w in workload.workspaces)}
    [whole] = get_json(api, COST, DAY)["data"][0]["results"]
    assert sum((Decimal(r["amount"]) for r in rows), Decimal(0)) == Decimal(whole["amount"])


def test_bill_adjustment_scales_the_bill_not_the_usage(clock: ManualClock) -> None:
    """``bill_adjustment`` multiplies billed amounts exactly and leaves usage alone."""
    amounts = []
    usage = []
    for adjustment in (Decimal(1), Decimal("1.07")):
        workload = Workload(spec(bill_adjustment=adjustment))
        with (
            SimulatorServer(workload, admin_key=ADMIN_KEY, clock=clock) as sim,
            httpx.Client(
                base_url=sim.base_url,
                headers={"x-api-key": ADMIN_KEY, "anthropic-version": "2023-06-01"},
            ) as api,
        ):
            amounts.append(Decimal(get_json(api, COST, DAY)["data"][0]["results"][0]["amount"]))
            usage.append(get_json(api, USAGE, DAY)["data"][0]["results"])
    assert amounts[1] == amounts[0] * Decimal("1.07")
    assert usage[0] == usage[1]


def test_day_in_progress_is_partial_then_final(api: httpx.Client, clock: ManualClock) -> None:
    """Today's cost grows as the day goes on and is final an hour after midnight."""
    today: Params = [("starting_at", "2025-08-20T00:00:00Z"), ("ending_at", "2025-08-21T00:00:00Z")]
    seen = []
    for _ in range(4):
        [result] = get_json(api, COST, today)["data"][0]["results"]
        seen.append(Decimal(result["amount"]))
        clock.advance(timedelta(hours=6))
    assert seen == sorted(seen)
    assert seen[0] < seen[-1]
    clock.advance(timedelta(days=2))
    assert Decimal(get_json(api, COST, today)["data"][0]["results"][0]["amount"]) == seen[-1]


def test_cost_paging_by_day(api: httpx.Client) -> None:
    """Seven days per page by default; cursors walk to today and stop."""
    first = get_json(api, COST, [("starting_at", "2025-08-01T00:00:00Z")])
    assert len(first["data"]) == 7
    assert first["has_more"] is True
    second = get_json(
        api, COST, [("starting_at", "2025-08-01T00:00:00Z"), ("page", first["next_page"])]
    )
    assert second["data"][0]["starting_at"] == "2025-08-08T00:00:00Z"


@pytest.mark.parametrize(
    "params",
    [
        [("bucket_width", "1h")],
        [("limit", "32")],
        [("group_by[]", "model")],
        [("group_by[]", "api_key_id")],
        [("models[]", "claude-opus-4-6")],
    ],
    ids=["hourly", "limit", "group-model", "group-key", "filter"],
)
def test_cost_report_rejects_what_it_does_not_support(api: httpx.Client, params: Params) -> None:
    """Only 1d buckets, limit <= 31 and grouping by workspace/description are accepted."""
    response = api.get(COST, params=[("starting_at", "2025-08-01T00:00:00Z"), *params])
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request_error"
