"""The Analytics API's wire: beta header, auth, validation, row paging, snapshots and faults."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import httpx
import pytest

from service.simulator import ManualClock, SimulatorServer
from tests.helpers import ADMIN_KEY, FORBIDDEN_KEY, Params, get_json, group_by
from tests.simulator.analytics_helpers import A_COST, A_USAGE, BETA, TWO_DAYS, rows_of

HOURLY: Params = [*TWO_DAYS, ("time_bucket_width", "1h")]


def assert_error(response: httpx.Response, status: int, error_type: str) -> None:
    """Anthropic's error JSON with ``status`` and ``error_type``."""
    assert response.status_code == status, response.text
    body = response.json()
    assert body["type"] == "error"
    assert body["error"]["type"] == error_type
    assert body["request_id"] == response.headers["request-id"]


@pytest.mark.parametrize("path", [A_USAGE, A_COST])
@pytest.mark.parametrize("beta", [None, "", "files-api-2025-04-14", "analytics-usage-cost-2025"])
def test_the_beta_header_is_required(
    analytics_sim: SimulatorServer, path: str, beta: str | None
) -> None:
    """Without ``anthropic-beta: analytics-usage-cost-2026-08-24`` both endpoints answer 400."""
    headers = {"x-api-key": ADMIN_KEY, "anthropic-version": "2023-06-01"}
    if beta is not None:
        headers["anthropic-beta"] = beta
    response = httpx.get(analytics_sim.base_url + path, params=TWO_DAYS, headers=headers)
    assert_error(response, 400, "invalid_request_error")
    assert BETA in response.json()["error"]["message"]


def test_the_beta_may_be_one_of_several(analytics_sim: SimulatorServer) -> None:
    """A comma-separated ``anthropic-beta`` list that includes the analytics beta is accepted."""
    headers = {
        "x-api-key": ADMIN_KEY,
        "anthropic-version": "2023-06-01",
        "anthropic-beta": f"files-api-2025-04-14, {BETA}",
    }
    response = httpx.get(analytics_sim.base_url + A_USAGE, params=TWO_DAYS, headers=headers)
    assert response.status_code == 200


@pytest.mark.parametrize(
    ("authorization", "status"),
    [
        (f"Bearer {ADMIN_KEY}", 200),
        (f"bearer {ADMIN_KEY}", 200),
        (f"Bearer {FORBIDDEN_KEY}", 403),
        ("Bearer sk-ant-admin01-wrong", 401),
        (f"Basic {ADMIN_KEY}", 401),
        ("Bearer", 401),
    ],
)
def test_the_admin_key_works_as_a_bearer_token(
    analytics_sim: SimulatorServer, authorization: str, status: int
) -> None:
    """``Authorization: Bearer <admin key>`` (the SDK's way) authenticates like ``x-api-key``."""
    headers = {
        "authorization": authorization,
        "anthropic-version": "2023-06-01",
        "anthropic-beta": BETA,
    }
    for path in (A_USAGE, "/v1/organizations/usage_report/messages"):
        params = TWO_DAYS if path == A_USAGE else TWO_DAYS[:1]
        response = httpx.get(analytics_sim.base_url + path, params=params, headers=headers)
        assert response.status_code == status, response.text
    assert all(r.headers["authorization"] == "<redacted>" for r in analytics_sim.requests)


def test_the_sdk_api_version_is_accepted(analytics_sim: SimulatorServer) -> None:
    """``anthropic-version: 2026-10-21``, which the official SDK sends, is a valid version."""
    headers = {"x-api-key": ADMIN_KEY, "anthropic-version": "2026-10-21", "anthropic-beta": BETA}
    response = httpx.get(analytics_sim.base_url + A_COST, params=TWO_DAYS, headers=headers)
    assert response.status_code == 200


SIX = group_by("api_key_id", "workspace_id", "model", "service_tier", "context_window", "actor")


@pytest.mark.parametrize(
    ("path", "params", "fragment"),
    [
        (A_USAGE, TWO_DAYS + SIX, "at most 5"),
        (A_COST, TWO_DAYS + SIX, "at most 5"),
        (A_USAGE, TWO_DAYS + group_by("description"), "group_by[]"),
        (A_USAGE, TWO_DAYS + group_by("cost_type"), "group_by[]"),
        (A_USAGE, [("ending_at", "2026-03-07T00:00:00Z")], "starting_at"),
        (A_USAGE, [("starting_at", "2025-12-31T23:00:00Z")], "2026-01-01"),
        (A_USAGE, [("starting_at", "2026-03-05")], "starting_at"),
        (A_USAGE, [("starting_at", "2026-03-05T00:00:00")], "starting_at"),
        (A_USAGE, [*TWO_DAYS[:1], ("time_bucket_width", "1h")], "ending_at"),
        (
            A_USAGE,
            [("starting_at", "2026-03-01T00:00:00Z"), ("ending_at", "2026-04-01T00:00:01Z")],
            "31 days",
        ),
        (
            A_COST,
            [("starting_at", "2026-03-01T00:00:00Z"), ("ending_at", "2026-04-02T00:00:00Z")],
            "31 days",
        ),
        (A_USAGE, [*TWO_DAYS, ("time_bucket_width", "1m")], "24 hours"),
        (
            A_USAGE,
            [("starting_at", "2026-03-05T00:00:00Z"), ("ending_at", "2026-03-05T00:00:00Z")],
            "after",
        ),
        (A_USAGE, [*TWO_DAYS, ("time_bucket_width", "1w")], "time_bucket_width"),
        (A_USAGE, [*TWO_DAYS, ("bucket_width", "1d")], "bucket_width"),
        (A_USAGE, [*TWO_DAYS, ("limit", "0")], "limit"),
        (A_USAGE, [*TWO_DAYS, ("limit", "1001")], "limit"),
        (A_USAGE, [*TWO_DAYS, ("order_by", "amount")], "order_by"),
        (A_COST, [*TWO_DAYS, ("order_by", "total_tokens")], "order_by"),
        (A_USAGE, [*TWO_DAYS, ("order", "up")], "order"),
        (A_USAGE, [*TWO_DAYS, ("service_tiers[]", "premium")], "service_tiers[]"),
        (A_USAGE, [*TWO_DAYS, ("products[]", "claude_api")], "products[]"),
        (A_USAGE, [*TWO_DAYS, ("context_window[]", "0-200k")], "context_window[]"),
        (A_USAGE, [*TWO_DAYS, ("exclude_deleted_users", "true")], "actor"),
        (A_USAGE, [*TWO_DAYS, ("page", "page_bm9wZQ==")], "page"),
        (A_USAGE, [*TWO_DAYS, ("page", "garbage")], "page"),
    ],
)
def test_bad_queries_are_400(
    analytics_api: httpx.Client, path: str, params: Params, fragment: str
) -> None:
    """Queries Anthropic refuses get a 400 ``invalid_request_error`` naming the parameter."""
    response = analytics_api.get(path, params=params)
    assert_error(response, 400, "invalid_request_error")
    assert fragment in response.json()["error"]["message"]


def test_starting_at_must_be_within_365_days(
    analytics_api: httpx.Client, analytics_clock: ManualClock
) -> None:
    """A year and a day later, the same ``starting_at`` is refused."""
    assert analytics_api.get(A_USAGE, params=TWO_DAYS).status_code == 200
    analytics_clock.advance(timedelta(days=366))
    response = analytics_api.get(A_USAGE, params=TWO_DAYS)
    assert_error(response, 400, "invalid_request_error")
    assert "365 days" in response.json()["error"]["message"]


def test_limits_at_their_edges(analytics_api: httpx.Client) -> None:
    """31 days, 24 hours at ``1m``, 5 dimensions (plus both cost components) are accepted."""
    month: Params = [("starting_at", "2026-02-15T00:00:00Z"), ("ending_at", "2026-03-18T00:00:00Z")]
    assert analytics_api.get(A_USAGE, params=month).status_code == 200
    day: Params = [("starting_at", "2026-03-05T00:00:00Z"), ("ending_at", "2026-03-06T00:00:00Z")]
    minutes = [*day, ("time_bucket_width", "1m"), ("limit", "1000")]
    assert analytics_api.get(A_USAGE, params=minutes).status_code == 200
    five = group_by("api_key_id", "workspace_id", "model", "service_tier", "actor")
    assert analytics_api.get(A_USAGE, params=TWO_DAYS + five).status_code == 200
    components = five + group_by("cost_type", "token_type")
    assert analytics_api.get(A_COST, params=TWO_DAYS + components).status_code == 200


def row_key(row: dict[str, Any]) -> str:
    """A row's identity: its bucket and group."""
    return json.dumps([row["starting_at"], row["group"]], sort_keys=True)


@pytest.mark.parametrize(
    ("path", "order"),
    [
        (A_USAGE, []),
        (A_USAGE, [("order_by", "time")]),
        (A_USAGE, [("order_by", "requests"), ("order", "asc")]),
        (A_USAGE, [("order_by", "output_tokens")]),
        (A_USAGE, [("order_by", "uncached_input_tokens"), ("order", "asc")]),
        (A_COST, []),
        (A_COST, [("order_by", "list_amount"), ("order", "asc")]),
        (A_COST, [("order_by", "time"), ("order", "asc")]),
    ],
)
def test_pages_hold_limit_rows_and_every_row_once(
    analytics_api: httpx.Client, path: str, order: Params
) -> None:
    """Paging by 7 gives the one-page read's rows, in its order, none twice, ≤ 7 per page."""
    params = HOURLY + group_by("product") + order
    [whole] = [get_json(analytics_api, path, [*params, ("limit", "1000")])]
    assert whole["has_more"] is False
    pages = []
    page: str | None = None
    while True:
        body = get_json(
            analytics_api, path, params + [("limit", "7")] + ([("page", page)] if page else [])
        )
        pages.append(body["data"])
        if not body["has_more"]:
            break
        page = body["next_page"]
    assert all(len(p) == 7 for p in pages[:-1])
    assert 1 <= len(pages[-1]) <= 7
    paged = [row for p in pages for row in p]
    assert paged == whole["data"]
    assert len({row_key(r) for r in paged}) == len(paged) > 7 * 3


def test_default_order_is_by_total_tokens_not_time(analytics_api: httpx.Client) -> None:
    """Rows come highest ``total_tokens`` first; ``order_by=time`` is newest bucket first."""
    rows = rows_of(analytics_api, A_USAGE, [*HOURLY, ("limit", "1000")])
    tokens = [r["usage"]["total_tokens"] for r in rows]
    assert tokens == sorted(tokens, reverse=True)
    assert [r["starting_at"] for r in rows] != sorted(
        (r["starting_at"] for r in rows), reverse=True
    )
    by_time = rows_of(
        analytics_api,
        A_USAGE,
        HOURLY + group_by("model") + [("order_by", "time"), ("limit", "1000")],
    )
    starts = [r["starting_at"] for r in by_time]
    assert starts == sorted(starts, reverse=True)
    for start in set(starts):
        in_bucket = [r["usage"]["total_tokens"] for r in by_time if r["starting_at"] == start]
        assert in_bucket == sorted(in_bucket, reverse=True)


def test_a_paged_read_is_one_snapshot_while_buckets_grow(
    analytics_api: httpx.Client, analytics_clock: ManualClock
) -> None:
    """Later pages answer at the first page's instant: rows neither move nor repeat."""
    today: Params = [
        ("starting_at", "2026-03-20T00:00:00Z"),
        ("ending_at", "2026-03-21T00:00:00Z"),
        ("time_bucket_width", "1h"),
        *group_by("model"),
    ]
    whole = get_json(analytics_api, A_USAGE, [*today, ("limit", "1000")])
    first = get_json(analytics_api, A_USAGE, [*today, ("limit", "5")])
    analytics_clock.advance(timedelta(minutes=40))
    rows, page = list(first["data"]), first["next_page"]
    while page is not None:
        body = get_json(analytics_api, A_USAGE, [*today, ("limit", "5"), ("page", page)])
        assert body["data_refreshed_at"] == first["data_refreshed_at"]
        rows.extend(body["data"])
        page = body["next_page"]
    assert rows == whole["data"]
    later = get_json(analytics_api, A_USAGE, [*today, ("limit", "1000")])
    assert later["data_refreshed_at"] > whole["data_refreshed_at"]
    assert sum(r["usage"]["total_tokens"] for r in later["data"]) > sum(
        r["usage"]["total_tokens"] for r in whole["data"]
    )


def test_data_refreshed_at_is_now_less_the_visibility_delay(analytics_api: httpx.Client) -> None:
    """``data_refreshed_at`` is five minutes (the workload's visibility delay) before now."""
    for path in (A_USAGE, A_COST):
        assert get_json(analytics_api, path, TWO_DAYS)["data_refreshed_at"] == (
            "2026-03-20T12:25:00Z"
        )


def test_a_cursor_belongs_to_its_query(analytics_api: httpx.Client) -> None:
    """A ``next_page`` from one query or endpoint is refused by another."""
    token = get_json(analytics_api, A_USAGE, [*HOURLY, ("limit", "3")])["next_page"]
    resized = [*HOURLY, ("limit", "9"), ("page", token)]
    assert analytics_api.get(A_USAGE, params=resized).status_code == 200
    for path, other in [(A_USAGE, HOURLY + group_by("model")), (A_COST, HOURLY)]:
        response = analytics_api.get(path, params=[*other, ("page", token)])
        assert_error(response, 400, "invalid_request_error")


def test_status_faults_hit_the_analytics_paths(
    analytics_api: httpx.Client, analytics_sim: SimulatorServer
) -> None:
    """A 429 with retry-after scoped to the analytics paths leaves the legacy report alone."""
    analytics_sim.faults.add(
        status=429, times=2, path_prefix="/v1/organizations/analytics/", retry_after="2"
    )
    legacy = analytics_api.get("/v1/organizations/usage_report/messages", params=TWO_DAYS[:1])
    assert legacy.status_code == 200
    first = analytics_api.get(A_COST, params=TWO_DAYS)
    assert_error(first, 429, "rate_limit_error")
    assert first.headers["retry-after"] == "2"
    assert_error(analytics_api.get(A_USAGE, params=TWO_DAYS), 429, "rate_limit_error")
    assert analytics_api.get(A_USAGE, params=TWO_DAYS).status_code == 200


def test_a_stuck_cursor_repeats_its_page(
    analytics_api: httpx.Client, analytics_sim: SimulatorServer
) -> None:
    """Under a stuck-cursor fault, ``next_page`` names the same page forever."""
    analytics_sim.faults.add_stuck_cursor(path_prefix=A_USAGE)
    params = [*HOURLY, ("limit", "4")]
    first = get_json(analytics_api, A_USAGE, params)
    again = get_json(analytics_api, A_USAGE, [*params, ("page", first["next_page"])])
    assert again["has_more"] is True
    assert again["data"] == first["data"]
    assert again["next_page"] == first["next_page"]


@pytest.mark.parametrize("path", [A_USAGE, A_COST])
def test_malformed_faults_break_an_analytics_row(
    analytics_api: httpx.Client, analytics_sim: SimulatorServer, path: str
) -> None:
    """``string_int`` and ``bad_timestamp`` break the first flat row of either endpoint."""
    analytics_sim.faults.add_malformed("string_int", path_prefix=path)
    row = get_json(analytics_api, path, TWO_DAYS)["data"][0]
    if path == A_USAGE:
        assert isinstance(row["usage"]["output_tokens"], str)
    else:
        assert row["cost"]["amount"] == "n/a"
    analytics_sim.faults.add_malformed("bad_timestamp", path_prefix=path)
    empty: Params = [("starting_at", "2026-03-01T00:00:00Z"), ("ending_at", "2026-03-01T00:30:00Z")]
    [fabricated] = get_json(analytics_api, path, empty)["data"]
    assert fabricated["starting_at"] == "yesterday"
