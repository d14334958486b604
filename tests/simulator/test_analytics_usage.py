"""``/v1/organizations/analytics/usage``: the legacy report's workload, in flat rows."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest

from service.simulator import ManualClock, SimulatorServer, Workload, WorkloadSpec
from service.simulator.analytics_attribution import default_workspace_id
from tests.helpers import ADMIN_KEY, USAGE, Params, all_pages, counters, group_by
from tests.simulator.analytics_helpers import (
    A_USAGE,
    ANALYTICS_START,
    BETA,
    TWO_DAYS,
    legacy_usage_total,
    rows_of,
    usage_counters,
    usage_total,
)

FOUR_HOURS: Params = [
    ("starting_at", "2026-03-05T10:00:00Z"),
    ("ending_at", "2026-03-05T14:00:00Z"),
]
# A key and a model fix the rest of a stream (its workspace too).
STREAM = ("api_key_id", "model", "service_tier", "context_window", "inference_geo")
# Includes the hour in progress, the hours not yet visible and tomorrow (now is 03-20 12:30).
AROUND_NOW: Params = [
    ("starting_at", "2026-03-19T00:00:00Z"),
    ("ending_at", "2026-03-21T00:00:00Z"),
]


def width(name: str) -> Params:
    """The ``time_bucket_width`` pair."""
    return [("time_bucket_width", name)]


@pytest.mark.parametrize(
    ("window", "bucket", "dimensions"),
    [
        (TWO_DAYS, "1h", ()),
        (TWO_DAYS, "1h", ("actor", "product")),
        (TWO_DAYS, "1d", ("api_key_id", "workspace_id", "model", "service_tier", "speed")),
        (TWO_DAYS, None, ("actor_type", "context_window", "inference_geo")),
        (FOUR_HOURS, "1m", ("model",)),
        (AROUND_NOW, "1h", ("workspace_id", "actor")),
        (AROUND_NOW, "1d", ("product",)),
        (AROUND_NOW, None, ()),
    ],
)
def test_rows_sum_to_the_legacy_totals(
    analytics_api: httpx.Client, window: Params, bucket: str | None, dimensions: tuple[str, ...]
) -> None:
    """Over any grouping and width, analytics rows add up to the legacy report's totals."""
    params = window + group_by(*dimensions) + [("limit", "97")]
    if bucket is not None:
        params += width(bucket)
    rows = rows_of(analytics_api, A_USAGE, params)
    assert rows
    legacy = legacy_usage_total(analytics_api, [*window, ("bucket_width", bucket or "1h")])
    assert usage_total(rows) == legacy


def test_each_row_is_the_legacy_result_of_the_same_bucket_and_group(
    analytics_api: httpx.Client,
) -> None:
    """Grouped down to single streams, each hourly row is one legacy result, and back."""
    legacy: dict[tuple[Any, ...], tuple[int, ...]] = {}
    hourly: Params = [("bucket_width", "1h"), ("limit", "168"), *group_by(*STREAM)]
    for bucket in all_pages(analytics_api, USAGE, TWO_DAYS + hourly):
        for result in bucket["results"]:
            legacy[(bucket["starting_at"], *(result[d] for d in STREAM))] = counters(result)
    rows = rows_of(analytics_api, A_USAGE, TWO_DAYS + width("1h") + group_by(*STREAM) + _max())
    served = {(r["starting_at"], *(r["group"][d] for d in STREAM)): usage_counters(r) for r in rows}
    assert len(served) == len(rows)
    assert served == legacy


def _max() -> Params:
    return [("limit", "1000")]


def test_only_combinations_with_usage_appear(analytics_api: httpx.Client) -> None:
    """No all-zero rows; no rows before the workload starts or after now."""
    rows = rows_of(
        analytics_api,
        A_USAGE,
        [
            ("starting_at", "2026-02-27T00:00:00Z"),
            ("ending_at", "2026-03-03T00:00:00Z"),
            *width("1d"),
            *group_by("model", "api_key_id"),
        ],
    )
    assert {r["starting_at"] for r in rows} == {"2026-03-01T00:00:00Z", "2026-03-02T00:00:00Z"}
    assert all(r["usage"]["total_tokens"] > 0 and r["usage"]["requests"] > 0 for r in rows)
    ahead = rows_of(analytics_api, A_USAGE, AROUND_NOW + width("1h"))
    starts = {r["starting_at"] for r in ahead}
    assert "2026-03-20T12:00:00Z" in starts
    assert max(starts) == "2026-03-20T12:00:00Z"


def test_default_workspace_has_a_stable_wrkspc_id(
    analytics_api: httpx.Client, analytics_workload: Workload
) -> None:
    """The workspace the legacy report calls null has one ``wrkspc_`` id, in grouping and filter."""
    default = default_workspace_id(analytics_workload)
    assert default.startswith("wrkspc_")
    assert default == default_workspace_id(Workload(analytics_workload.spec))
    assert default not in {w.id for w in analytics_workload.workspaces}
    rows = rows_of(analytics_api, A_USAGE, TWO_DAYS + group_by("workspace_id"))
    assert {r["group"]["workspace_id"] for r in rows} == {
        default,
        *(w.id for w in analytics_workload.workspaces),
    }
    [filtered] = rows_of(analytics_api, A_USAGE, [*TWO_DAYS, ("workspace_ids[]", default)])
    legacy: dict[str | None, list[int]] = defaultdict(lambda: [0] * 6)
    for bucket in all_pages(
        analytics_api, USAGE, [*TWO_DAYS, ("bucket_width", "1h"), *group_by("workspace_id")]
    ):
        for result in bucket["results"]:
            for i, value in enumerate(counters(result)):
                legacy[result["workspace_id"]][i] += value
    assert list(usage_counters(filtered)) == legacy[None]


def test_actors_and_products_follow_the_keys(
    analytics_api: httpx.Client, analytics_workload: Workload
) -> None:
    """Each key has one actor; the Console is the owner; batch is the batch API; users code."""
    rows = rows_of(
        analytics_api,
        A_USAGE,
        TWO_DAYS + group_by("api_key_id", "actor", "actor_type", "product", "service_tier"),
    )
    actors: dict[str | None, set[str]] = defaultdict(set)
    for row in rows:
        group = row["group"]
        actor = group["actor"]
        assert actor["type"] == group["actor_type"]
        tagged = actor.get("user_id") or actor.get("service_account_id") or actor["api_key_id"]
        actors[group["api_key_id"]].add(tagged)
        if group["service_tier"] == "batch":
            assert group["product"] == "message_batches_api"
        elif group["api_key_id"] is None:
            assert group["product"] == "claude_console"
            assert actor["type"] == "user_actor"
        elif actor["type"] == "user_actor":
            assert group["product"] == "claude_code"
            assert actor["email_address"].endswith("@example.com")
        else:
            assert group["product"] == "messages_api"
        if actor["type"] == "api_actor":
            assert actor["api_key_id"] == group["api_key_id"]
    assert all(len(ids) == 1 for ids in actors.values())
    assert {r["group"]["actor_type"] for r in rows} == {
        "user_actor",
        "service_account_actor",
        "api_actor",
    }
    for key in analytics_workload.api_keys:
        if key.service_account_id is not None:
            assert actors[key.id] == {key.service_account_id}


def test_attribution_is_the_same_on_another_server(analytics_workload: Workload) -> None:
    """Two servers over equal specs name the same actors and products (nothing is random)."""
    bodies = []
    for _ in range(2):
        workload = Workload(analytics_workload.spec)
        clock = ManualClock(ANALYTICS_START + timedelta(days=10))
        with (
            SimulatorServer(workload, admin_key=ADMIN_KEY, clock=clock) as sim,
            httpx.Client(
                base_url=sim.base_url,
                headers={"x-api-key": ADMIN_KEY, "anthropic-version": "2023-06-01"}
                | {"anthropic-beta": BETA},
            ) as api,
        ):
            bodies.append(rows_of(api, A_USAGE, TWO_DAYS + group_by("actor", "product")))
    assert bodies[0] == bodies[1]


@pytest.mark.parametrize(
    ("parameter", "dimension"),
    [
        ("models[]", "model"),
        ("api_key_ids[]", "api_key_id"),
        ("workspace_ids[]", "workspace_id"),
        ("service_tiers[]", "service_tier"),
        ("context_windows[]", "context_window"),
        ("inference_geos[]", "inference_geo"),
        ("products[]", "product"),
        ("actor_types[]", "actor_type"),
        ("speeds[]", "speed"),
    ],
)
def test_a_filter_selects_what_grouping_shows(
    analytics_api: httpx.Client, parameter: str, dimension: str
) -> None:
    """Filtering on a value gives exactly that value's row of the grouped read."""
    grouped = rows_of(analytics_api, A_USAGE, TWO_DAYS + group_by(dimension))
    for row in grouped:
        value = row["group"][dimension]
        [filtered] = rows_of(analytics_api, A_USAGE, [*TWO_DAYS, (parameter, value or "")])
        assert filtered["usage"] == row["usage"]


def test_actor_ids_and_empty_api_key_filters(analytics_api: httpx.Client) -> None:
    """``actor_ids[]`` selects one identity; ``api_key_ids[]=`` is the keyless (Console) usage."""
    rows = rows_of(analytics_api, A_USAGE, TWO_DAYS + group_by("actor"))
    for row in rows:
        actor = row["group"]["actor"]
        tagged = actor.get("user_id") or actor.get("service_account_id") or actor["api_key_id"]
        [filtered] = rows_of(analytics_api, A_USAGE, [*TWO_DAYS, ("actor_ids[]", tagged)])
        assert filtered["usage"] == row["usage"]
    [console] = rows_of(
        analytics_api, A_USAGE, [*TWO_DAYS, ("api_key_ids[]", ""), *group_by("product")]
    )
    assert console["group"]["product"] == "claude_console"


@pytest.mark.parametrize(
    "params",
    [
        [("agent_ids[]", "agent_01x")],
        [("session_ids[]", "sesn_01x")],
        [("inference_geos[]", "not_available")],
        [("speeds[]", "fast")],
        [("models[]", "claude-opus-9")],
    ],
)
def test_filters_on_values_the_organization_never_has_match_nothing(
    analytics_api: httpx.Client, params: Params
) -> None:
    """Filters on absent values (managed agents, fast mode, no geo) give no rows, not errors."""
    assert rows_of(analytics_api, A_USAGE, TWO_DAYS + params) == []


def test_dimensions_the_organization_never_has_group_to_null(analytics_api: httpx.Client) -> None:
    """Grouping by ``agent_id`` or ``rbac_group_id`` splits nothing: one null-valued row."""
    [row] = rows_of(analytics_api, A_USAGE, TWO_DAYS + group_by("agent_id", "rbac_group_id"))
    assert row["group"]["agent_id"] is None
    assert row["group"]["rbac_group_id"] is None
    [whole] = rows_of(analytics_api, A_USAGE, TWO_DAYS)
    assert row["usage"] == whole["usage"]


def test_total_tokens_and_requests_add_up(analytics_api: httpx.Client) -> None:
    """``total_tokens`` is every token counter; ``requests`` agrees across groupings."""
    params = TWO_DAYS + width("1h")
    whole = rows_of(analytics_api, A_USAGE, params + _max())
    split = rows_of(analytics_api, A_USAGE, params + group_by("model", "actor") + _max())
    for row in whole + split:
        usage = row["usage"]
        assert usage["total_tokens"] == sum(usage_counters(row)[:5])
        assert usage["requests"] >= 1
    assert sum(r["usage"]["requests"] for r in whole) == sum(r["usage"]["requests"] for r in split)


def test_without_a_width_one_row_covers_the_whole_hours(analytics_api: httpx.Client) -> None:
    """No width: ``starting_at`` rounds down to the hour; ``ending_at`` defaults to now's hour."""
    [row] = rows_of(analytics_api, A_USAGE, [("starting_at", "2026-03-18T10:17:42Z")])
    assert row["starting_at"] == "2026-03-18T10:00:00Z"
    assert row["ending_at"] == "2026-03-20T12:00:00Z"
    legacy = legacy_usage_total(
        analytics_api,
        [
            ("starting_at", "2026-03-18T10:00:00Z"),
            ("ending_at", "2026-03-20T12:00:00Z"),
            ("bucket_width", "1h"),
        ],
    )
    assert usage_counters(row) == legacy


def test_buckets_snap_to_their_width(analytics_api: httpx.Client) -> None:
    """With a width, rows carry their bucket's bounds, snapped down from ``starting_at``."""
    params = [("starting_at", "2026-03-05T10:17:42Z"), ("ending_at", "2026-03-05T13:00:00Z")]
    hourly = rows_of(analytics_api, A_USAGE, params + width("1h"))
    assert sorted(r["starting_at"] for r in hourly) == [
        "2026-03-05T10:00:00Z",
        "2026-03-05T11:00:00Z",
        "2026-03-05T12:00:00Z",
    ]
    for row in hourly:
        begin = datetime.fromisoformat(row["starting_at"])
        assert datetime.fromisoformat(row["ending_at"]) - begin == timedelta(hours=1)
    [daily] = rows_of(analytics_api, A_USAGE, params + width("1d"))
    assert (daily["starting_at"], daily["ending_at"]) == (
        "2026-03-05T00:00:00Z",
        "2026-03-06T00:00:00Z",
    )


def test_a_spec_from_2025_has_nothing_to_show(clock: ManualClock) -> None:
    """Before 2026-01-01 there is no analytics data: such a start is refused, as Anthropic does."""
    workload = Workload(WorkloadSpec(seed=7))
    with (
        SimulatorServer(workload, admin_key=ADMIN_KEY, clock=clock) as sim,
        httpx.Client(
            base_url=sim.base_url,
            headers={"x-api-key": ADMIN_KEY, "anthropic-version": "2023-06-01"}
            | {"anthropic-beta": BETA},
        ) as api,
    ):
        response = api.get(A_USAGE, params=[("starting_at", "2025-08-05T00:00:00Z")])
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request_error"
