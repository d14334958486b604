"""``/v1/organizations/analytics/cost``: the bill by the hour, in cents, with list prices."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import httpx
import pytest

from service.simulator import ManualClock, SimulatorServer, Workload, WorkloadSpec
from service.simulator.analytics_attribution import default_workspace_id
from tests.helpers import ADMIN_KEY, COST, Params, all_pages, group_by
from tests.simulator.analytics_helpers import (
    A_COST,
    A_USAGE,
    ANALYTICS_NOW,
    ANALYTICS_START,
    BETA,
    TWO_DAYS,
    amount,
    rows_of,
)

MODELS = ("claude-sonnet-4-20250514", "claude-haiku-4-5-20251001", "claude-opus-4-6")
ADJUSTMENT = Decimal("0.97")
DAY: Params = [("starting_at", "2026-03-05T00:00:00Z"), ("ending_at", "2026-03-06T00:00:00Z")]
HOURLY: Params = [("time_bucket_width", "1h"), ("limit", "1000")]
PRICE_CLASS = ("model", "service_tier", "context_window", "inference_geo")
# Hand-copied list prices, USD per million tokens (input, output).
LIST_PRICES = {
    "claude-sonnet-4-20250514": (Decimal(3), Decimal(15)),
    "claude-haiku-4-5-20251001": (Decimal(1), Decimal(5)),
    "claude-opus-4-6": (Decimal(5), Decimal(25)),
}
SONNET_4_LONG_CONTEXT = (Decimal(6), Decimal("22.50"))
CENTS = re.compile(r"^[0-9]+(\.[0-9]+)?$")


@pytest.fixture
def billed() -> Workload:
    """Seed 33: batch, priority, long-context, US-geo Opus 4.6 and web search; a 3% discount."""
    return Workload(
        WorkloadSpec(
            seed=33,
            start=ANALYTICS_START,
            n_workspaces=2,
            n_keys=6,
            models=MODELS,
            bill_adjustment=ADJUSTMENT,
        )
    )


@pytest.fixture
def api(billed: Workload) -> Iterator[httpx.Client]:
    """A client of a simulator over ``billed`` (both APIs, with the beta header)."""
    headers = {"x-api-key": ADMIN_KEY, "anthropic-version": "2023-06-01", "anthropic-beta": BETA}
    with (
        SimulatorServer(billed, admin_key=ADMIN_KEY, clock=ManualClock(ANALYTICS_NOW)) as sim,
        httpx.Client(base_url=sim.base_url, headers=headers, timeout=30) as client,
    ):
        yield client


def hand_priced_cents(usage: dict[str, Any], group: dict[str, Any]) -> Decimal:
    """What a usage row of one price class costs at list price, in cents, priced by hand."""
    price_in, price_out = LIST_PRICES[group["model"]]
    if group["context_window"] == "200k-1M":
        price_in, price_out = SONNET_4_LONG_CONTEXT
    factor = Decimal("0.5") if group["service_tier"] == "batch" else Decimal(1)
    if group["inference_geo"] == "us" and group["model"] == "claude-opus-4-6":
        factor *= Decimal("1.1")
    cache = usage["cache_creation"]
    token_usd = (
        (
            usage["uncached_input_tokens"] * price_in
            + cache["ephemeral_5m_input_tokens"] * price_in * Decimal("1.25")
            + cache["ephemeral_1h_input_tokens"] * price_in * 2
            + usage["cache_read_input_tokens"] * price_in * Decimal("0.1")
            + usage["output_tokens"] * price_out
        )
        * factor
        / 1_000_000
    )
    search_usd = usage["server_tool_use"]["web_search_requests"] * Decimal("0.01")
    cents: Decimal = (token_usd + search_usd) * 100
    return cents


def test_list_amount_is_the_list_price_of_the_usage(api: httpx.Client) -> None:
    """Per hour and price class, ``list_amount`` is the hand-priced usage, ``amount`` 97% of it."""
    params = DAY + HOURLY + group_by(*PRICE_CLASS)
    costs = {_bucket_group(r): r["cost"] for r in rows_of(api, A_COST, params)}
    usages = [r for r in rows_of(api, A_USAGE, params) if r["group"]["service_tier"] != "priority"]
    assert len(costs) == len(usages) > 24
    for row in usages:
        cost = costs[_bucket_group(row)]
        assert Decimal(cost["list_amount"]) == hand_priced_cents(row["usage"], row["group"])
        assert Decimal(cost["amount"]) == Decimal(cost["list_amount"]) * ADJUSTMENT
        assert cost["requests"] == row["usage"]["requests"]


def _bucket_group(row: dict[str, Any]) -> tuple[Any, ...]:
    return (row["starting_at"], *(row["group"][d] for d in PRICE_CLASS))


def test_amounts_are_plain_decimal_strings_in_cents(api: httpx.Client) -> None:
    """``amount`` and ``list_amount`` are decimal strings (cents), never numbers or exponents."""
    rows = rows_of(api, A_COST, TWO_DAYS + HOURLY + group_by("model", "cost_type"))
    for row in rows:
        cost = row["cost"]
        assert cost["currency"] == "USD"
        assert isinstance(cost["amount"], str)
        assert CENTS.match(cost["amount"]), cost
        assert CENTS.match(cost["list_amount"]), cost


def test_hourly_bill_sums_to_the_legacy_daily_bill(api: httpx.Client, billed: Workload) -> None:
    """Per workspace, a day's hourly ``amount`` adds up to the legacy ``cost_report`` exactly."""
    hourly = rows_of(api, A_COST, TWO_DAYS + HOURLY + group_by("workspace_id"))
    default = default_workspace_id(billed)
    served: dict[tuple[str, str | None], Decimal] = defaultdict(Decimal)
    for row in hourly:
        workspace = row["group"]["workspace_id"]
        served[row["starting_at"][:10], None if workspace == default else workspace] += Decimal(
            row["cost"]["amount"]
        )
    legacy: dict[tuple[str, str | None], Decimal] = defaultdict(Decimal)
    for bucket in all_pages(api, COST, TWO_DAYS + group_by("workspace_id")):
        for result in bucket["results"]:
            legacy[bucket["starting_at"][:10], result["workspace_id"]] += Decimal(result["amount"])
    assert served == legacy
    assert len(legacy) == 2 * 3


def test_a_day_in_progress_matches_the_legacy_bill_so_far(api: httpx.Client) -> None:
    """Today (growing, partly invisible) costs the same through both APIs."""
    today: Params = [("starting_at", "2026-03-20T00:00:00Z"), ("ending_at", "2026-03-21T00:00:00Z")]
    [legacy] = all_pages(api, COST, today)
    hourly = rows_of(api, A_COST, today + HOURLY)
    assert amount(hourly) == sum((Decimal(r["amount"]) for r in legacy["results"]), Decimal(0))
    assert max(r["starting_at"] for r in hourly) == "2026-03-20T12:00:00Z"


def test_priority_tier_has_usage_but_no_cost_row(api: httpx.Client) -> None:
    """Priority-tier usage is served; its cost is absent, as in the legacy cost report."""
    priority: Params = [("service_tiers[]", "priority")]
    assert rows_of(api, A_USAGE, TWO_DAYS + priority)
    assert rows_of(api, A_COST, TWO_DAYS + priority) == []
    tiers = {
        r["group"]["service_tier"]
        for r in rows_of(api, A_COST, TWO_DAYS + group_by("service_tier"))
    }
    assert tiers == {"standard", "batch"}


def test_cost_type_and_token_type_fan_out(api: httpx.Client) -> None:
    """``cost_type`` splits tokens from web search; ``token_type`` alone gives token rows only."""
    [whole] = rows_of(api, A_COST, DAY)
    total = Decimal(whole["cost"]["amount"])
    assert whole["cost"]["requests"] > 0
    by_type = rows_of(api, A_COST, DAY + group_by("cost_type"))
    assert {r["group"]["cost_type"] for r in by_type} == {"tokens", "web_search"}
    assert all(r["group"]["token_type"] is None for r in by_type)
    assert amount(by_type) == total
    by_token = rows_of(api, A_COST, DAY + group_by("token_type"))
    assert {r["group"]["cost_type"] for r in by_token} == {"tokens"}
    assert len({r["group"]["token_type"] for r in by_token}) == len(by_token) >= 4
    [search] = [r for r in by_type if r["group"]["cost_type"] == "web_search"]
    assert amount(by_token) == total - Decimal(search["cost"]["amount"])
    both = rows_of(api, A_COST, DAY + group_by("cost_type", "token_type"))
    assert amount(both) == total
    assert len(both) == len(by_token) + 1
    assert all(r["cost"]["requests"] is None for r in by_type + by_token + both)


def test_fan_out_rows_do_not_count_toward_limit(api: httpx.Client) -> None:
    """With ``cost_type``, a page holds ``limit`` combinations, so ``data`` can exceed it."""
    params = DAY + HOURLY[:1] + [("limit", "3")] + group_by("model", "cost_type")
    body = api.get(A_COST, params=params).json()
    combinations = {(r["starting_at"], r["group"]["model"]) for r in body["data"]}
    assert len(combinations) == 3
    assert len(body["data"]) > 3
    everything = rows_of(api, A_COST, params)
    assert amount(everything) == amount(rows_of(api, A_COST, DAY))


def test_sums_agree_across_groupings(api: httpx.Client) -> None:
    """Any grouping of the cost rows adds up to the same amount and list amount."""
    reads = [
        rows_of(api, A_COST, TWO_DAYS + HOURLY + group_by(*dims))
        for dims in [(), ("actor", "product"), ("api_key_id", "workspace_id", "model"), ("speed",)]
    ]
    reads.append(rows_of(api, A_COST, TWO_DAYS))
    reads.append(rows_of(api, A_COST, [*TWO_DAYS, ("time_bucket_width", "1d")]))
    assert len({amount(rows) for rows in reads}) == 1
    assert len({amount(rows, "list_amount") for rows in reads}) == 1


def test_default_order_is_by_amount_highest_first(api: httpx.Client) -> None:
    """Rows rank by ``amount``, not time; ``order_by=list_amount`` and ``order=asc`` work."""
    params = TWO_DAYS + HOURLY + group_by("model")
    rows = rows_of(api, A_COST, params)
    amounts = [Decimal(r["cost"]["amount"]) for r in rows]
    assert amounts == sorted(amounts, reverse=True)
    assert [r["starting_at"] for r in rows] != sorted(r["starting_at"] for r in rows)
    ascending = rows_of(api, A_COST, [*params, ("order_by", "list_amount"), ("order", "asc")])
    lists = [Decimal(r["cost"]["list_amount"]) for r in ascending]
    assert lists == sorted(lists)
