"""``/v1/organizations/usage_report/messages`` over real sockets."""

from __future__ import annotations

import base64
import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from service.simulator import ManualClock, Workload
from tests.helpers import (
    ALL_DIMENSIONS,
    COST,
    USAGE,
    Params,
    all_pages,
    counters,
    get_json,
    group_by,
)
from tests.helpers import total as total_of

DAY_PARAMS: Params = [
    ("starting_at", "2025-08-05T00:00:00Z"),
    ("ending_at", "2025-08-06T00:00:00Z"),
]


def starts(buckets: list[dict[str, Any]]) -> list[str]:
    """The ``starting_at`` of each bucket."""
    return [b["starting_at"] for b in buckets]


@pytest.mark.parametrize(
    ("width", "starting_at", "first"),
    [
        ("1d", "2025-08-03T10:17:42Z", "2025-08-03T00:00:00Z"),
        ("1h", "2025-08-03T10:17:42Z", "2025-08-03T10:00:00Z"),
        ("1m", "2025-08-03T10:17:42.5Z", "2025-08-03T10:17:00Z"),
        ("1h", "2025-08-03T12:17:42+02:00", "2025-08-03T10:00:00Z"),
    ],
)
def test_starting_at_snaps_down_to_bucket_start(
    api: httpx.Client, width: str, starting_at: str, first: str
) -> None:
    """``starting_at`` selects the UTC bucket containing it; buckets are contiguous."""
    body = get_json(api, USAGE, [("starting_at", starting_at), ("bucket_width", width)])
    assert body["data"][0]["starting_at"] == first
    step = {"1d": timedelta(days=1), "1h": timedelta(hours=1), "1m": timedelta(minutes=1)}[width]
    for bucket in body["data"]:
        begin = datetime.fromisoformat(bucket["starting_at"])
        assert datetime.fromisoformat(bucket["ending_at"]) - begin == step
        assert bucket["starting_at"].endswith("Z")


def test_bucket_width_defaults_to_1d_with_7_buckets(api: httpx.Client) -> None:
    """Without bucket_width and limit, a page is 7 daily buckets."""
    body = get_json(api, USAGE, [("starting_at", "2025-08-01T00:00:00Z")])
    assert starts(body["data"])[-1] == "2025-08-07T00:00:00Z"
    assert len(body["data"]) == 7
    assert body["has_more"] is True
    assert body["next_page"].startswith("page_")


@pytest.mark.parametrize(("width", "expected"), [("1m", 60), ("1h", 24), ("1d", 7)])
def test_default_limits(api: httpx.Client, width: str, expected: int) -> None:
    """Default page sizes: 60 minutes, 24 hours, 7 days."""
    body = get_json(api, USAGE, [("starting_at", "2025-08-02T00:00:00Z"), ("bucket_width", width)])
    assert len(body["data"]) == expected


def test_empty_buckets_before_usage_begins(api: httpx.Client) -> None:
    """Days before the workload starts are present with ``results: []``."""
    body = get_json(api, USAGE, [("starting_at", "2025-07-30T00:00:00Z"), ("limit", "4")])
    assert [bool(b["results"]) for b in body["data"]] == [False, False, True, True]


def test_paging_reaches_every_bucket_exactly_once(api: httpx.Client) -> None:
    """Following opaque cursors yields each hourly bucket once, in order, then stops."""
    params: Params = [
        ("starting_at", "2025-08-01T00:00:00Z"),
        ("ending_at", "2025-08-04T05:00:00Z"),
        ("bucket_width", "1h"),
        ("limit", "7"),
    ]
    buckets = all_pages(api, USAGE, params)
    begin = datetime(2025, 8, 1, tzinfo=UTC)
    expected = [(begin + timedelta(hours=h)).strftime("%Y-%m-%dT%H:%M:%SZ") for h in range(77)]
    assert starts(buckets) == expected


def test_ending_at_returns_buckets_that_start_before_it(api: httpx.Client) -> None:
    """``ending_at`` is exclusive: a bucket starting exactly at it is not returned."""
    base: Params = [("starting_at", "2025-08-01T00:00:00Z")]
    exact = get_json(api, USAGE, [*base, ("ending_at", "2025-08-03T00:00:00Z")])
    assert starts(exact["data"]) == ["2025-08-01T00:00:00Z", "2025-08-02T00:00:00Z"]
    assert exact["has_more"] is False
    assert exact["next_page"] is None
    past = get_json(api, USAGE, [*base, ("ending_at", "2025-08-03T00:00:01Z")])
    assert len(past["data"]) == 3


def test_buckets_stop_at_the_one_containing_now(api: httpx.Client, clock: ManualClock) -> None:
    """No bucket starts after now; the current one is included and grows later."""
    params: Params = [("starting_at", "2025-08-20T00:00:00Z"), ("bucket_width", "1h")]
    body = get_json(api, USAGE, [*params, ("ending_at", "2025-08-25T00:00:00Z")])
    assert starts(body["data"])[-1] == "2025-08-20T12:00:00Z"
    assert body["has_more"] is False
    clock.advance(timedelta(hours=2))
    assert starts(get_json(api, USAGE, params)["data"])[-1] == "2025-08-20T14:00:00Z"


def test_future_start_gives_no_buckets(api: httpx.Client) -> None:
    """A query entirely after now returns no data and no next page."""
    body = get_json(api, USAGE, [("starting_at", "2025-09-01T00:00:00Z")])
    assert body == {"data": [], "has_more": False, "next_page": None}


def test_results_carry_every_field_with_nulls_when_ungrouped(api: httpx.Client) -> None:
    """Ungrouped: one row per bucket, all grouping fields and 2026 extras present and null."""
    body = get_json(api, USAGE, DAY_PARAMS)
    [result] = body["data"][0]["results"]
    for field in (*ALL_DIMENSIONS, "account_id", "service_account_id"):
        assert result[field] is None
    assert all(isinstance(value, int) and value >= 0 for value in counters(result))


def test_group_by_sums_over_ungrouped_dimensions(api: httpx.Client) -> None:
    """Totals agree between full grouping, per-model grouping and no grouping."""
    everything = get_json(api, USAGE, DAY_PARAMS + group_by(*ALL_DIMENSIONS))["data"][0]
    by_model = get_json(api, USAGE, DAY_PARAMS + group_by("model"))["data"][0]["results"]
    ungrouped = get_json(api, USAGE, DAY_PARAMS)["data"][0]["results"]
    assert total_of(everything["results"]) == total_of(by_model) == total_of(ungrouped)
    for row in by_model:
        assert row["api_key_id"] is None
        assert row["workspace_id"] is None
        same_model = [r for r in everything["results"] if r["model"] == row["model"]]
        assert total_of(same_model) == counters(row)


def test_full_grouping_gives_one_row_per_key_and_model(api: httpx.Client) -> None:
    """Grouped by all six, (api key or Console, model) is unique, Console and default ws show."""
    rows = get_json(api, USAGE, DAY_PARAMS + group_by(*ALL_DIMENSIONS))["data"][0]["results"]
    pairs = [(r["api_key_id"], r["model"]) for r in rows]
    assert len(pairs) == len(set(pairs)) == 6 * 6
    console = [r for r in rows if r["api_key_id"] is None]
    assert console
    assert all(r["workspace_id"] is None and r["account_id"] for r in console)
    assert any(r["api_key_id"] is not None and r["workspace_id"] is None for r in rows)
    assert all(r["service_tier"] and r["context_window"] and r["inference_geo"] for r in rows)


def test_group_by_workspace_keeps_default_as_null(api: httpx.Client, workload: Workload) -> None:
    """Grouping by workspace gives the named workspaces plus one null (default) row."""
    rows = get_json(api, USAGE, DAY_PARAMS + group_by("workspace_id"))["data"][0]["results"]
    assert {r["workspace_id"] for r in rows} == {None, *(w.id for w in workload.workspaces)}


@pytest.mark.parametrize(
    ("parameter", "dimension"),
    [
        ("models[]", "model"),
        ("api_key_ids[]", "api_key_id"),
        ("workspace_ids[]", "workspace_id"),
        ("service_tiers[]", "service_tier"),
        ("context_window[]", "context_window"),
        ("inference_geos[]", "inference_geo"),
    ],
)
def test_filters_select_matching_rows(api: httpx.Client, parameter: str, dimension: str) -> None:
    """A filter keeps only matching rows, and its ungrouped total equals theirs."""
    grouped = get_json(api, USAGE, DAY_PARAMS + group_by(*ALL_DIMENSIONS))["data"][0]["results"]
    wanted = next(r[dimension] for r in grouped if r[dimension] is not None)
    filtered = [*DAY_PARAMS, (parameter, wanted)]
    rows = get_json(api, USAGE, filtered + group_by(*ALL_DIMENSIONS))["data"][0]["results"]
    assert rows
    assert all(r[dimension] == wanted for r in rows)
    assert total_of(rows) == total_of([r for r in grouped if r[dimension] == wanted])
    [single] = get_json(api, USAGE, filtered)["data"][0]["results"]
    assert counters(single) == total_of(rows)


def test_repeated_filter_values_are_a_union(api: httpx.Client, workload: Workload) -> None:
    """Two ``models[]`` values select both models."""
    models = list(workload.spec.models[:2])
    params = DAY_PARAMS + [("models[]", m) for m in models] + group_by("model")
    rows = get_json(api, USAGE, params)["data"][0]["results"]
    assert sorted(r["model"] for r in rows) == sorted(models)


@pytest.mark.parametrize(
    ("width", "limit", "status"),
    [
        ("1m", "1440", 200),
        ("1m", "1441", 400),
        ("1h", "168", 200),
        ("1h", "169", 400),
        ("1d", "31", 200),
        ("1d", "32", 400),
        ("1d", "0", 400),
        ("1d", "seven", 400),
    ],
)
def test_limit_bounds(api: httpx.Client, width: str, limit: str, status: int) -> None:
    """``limit`` above the width's maximum, below 1 or not an integer is a 400."""
    params: Params = [
        ("starting_at", "2025-08-01T00:00:00Z"),
        ("bucket_width", width),
        ("limit", limit),
    ]
    response = api.get(USAGE, params=params)
    assert response.status_code == status
    if status == 400:
        assert response.json()["error"]["type"] == "invalid_request_error"


@pytest.mark.parametrize(
    "params",
    [
        [("bucket_width", "1d")],
        [("starting_at", "2025-08-01")],
        [("starting_at", "2025-08-01T00:00:00")],
        [("starting_at", "yesterday")],
        [("starting_at", "2025-08-02T00:00:00Z"), ("ending_at", "2025-08-01T00:00:00Z")],
        [("starting_at", "2025-08-01T00:00:00Z"), ("bucket_width", "2h")],
        [("starting_at", "2025-08-01T00:00:00Z"), ("group_by[]", "speed")],
        [("starting_at", "2025-08-01T00:00:00Z"), ("group_by", "model")],
        [("starting_at", "2025-08-01T00:00:00Z"), ("models", "claude-opus-4-6")],
        [("starting_at", "2025-08-01T00:00:00Z"), ("starting_at", "2025-08-02T00:00:00Z")],
    ],
    ids=[
        "no-start",
        "date-only",
        "naive",
        "not-a-time",
        "end-before-start",
        "bad-width",
        "unknown-group",
        "group-without-brackets",
        "filter-without-brackets",
        "repeated-start",
    ],
)
def test_bad_queries_are_400(api: httpx.Client, params: Params) -> None:
    """Malformed or unknown query parameters get a 400 invalid_request_error."""
    response = api.get(USAGE, params=params)
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request_error"


def test_cursor_is_opaque_and_tamper_evident(api: httpx.Client) -> None:
    """Garbled, edited or foreign cursors are rejected with 400."""
    params: Params = [("starting_at", "2025-08-01T00:00:00Z"), ("limit", "2")]
    token = get_json(api, USAGE, params)["next_page"]
    assert token.startswith("page_")
    decoded = base64.b64decode(token[5:]).decode()
    edited = "page_" + base64.b64encode(decoded.replace("|17", "|18").encode()).decode()
    hourly = get_json(api, USAGE, [*params, ("bucket_width", "1h")])["next_page"]
    cost = get_json(api, COST, params)["next_page"]
    for bad in ("page_garbage!", "nonsense", edited, hourly, cost):
        response = api.get(USAGE, params=[*params, ("page", bad)])
        assert response.status_code == 400, bad


def test_widths_agree_once_final(api: httpx.Client) -> None:
    """A finished day's 1d totals equal the sum of its 24 hours and of its 1440 minutes."""
    day = get_json(api, USAGE, DAY_PARAMS + group_by("model"))["data"][0]["results"]
    hours = get_json(api, USAGE, [*DAY_PARAMS, ("bucket_width", "1h"), *group_by("model")])
    minutes = get_json(
        api, USAGE, [*DAY_PARAMS, ("bucket_width", "1m"), ("limit", "1440"), *group_by("model")]
    )
    assert len(hours["data"]) == 24
    assert len(minutes["data"]) == 1440
    for row in day:
        model = row["model"]
        hourly = [r for b in hours["data"] for r in b["results"] if r["model"] == model]
        minutely = [r for b in minutes["data"] for r in b["results"] if r["model"] == model]
        assert total_of(hourly) == total_of(minutely) == counters(row)


def test_current_hour_grows_monotonically_then_freezes(
    api: httpx.Client, clock: ManualClock
) -> None:
    """The newest hour is empty at first, grows as now advances, and is final 1 h after it ends."""
    hour_start = datetime(2025, 8, 20, 13, tzinfo=UTC)
    clock.now = hour_start + timedelta(minutes=2)
    params: Params = [
        ("starting_at", "2025-08-20T13:00:00Z"),
        ("ending_at", "2025-08-20T14:00:00Z"),
        ("bucket_width", "1h"),
        *group_by(*ALL_DIMENSIONS),
    ]
    assert get_json(api, USAGE, params)["data"][0]["results"] == []
    seen: list[dict[tuple[Any, ...], tuple[int, ...]]] = []
    while clock.now < hour_start + timedelta(hours=2, minutes=30):
        clock.advance(timedelta(minutes=9))
        rows = get_json(api, USAGE, params)["data"][0]["results"]
        seen.append({(r["api_key_id"], r["model"]): counters(r) for r in rows})
    for before, after in itertools.pairwise(seen):
        for key, old in before.items():
            assert all(o <= n for o, n in zip(old, after[key], strict=True))
    assert total_of_map(seen[0]) < total_of_map(seen[5])
    final = [s for s in seen if s == seen[-1]]
    assert len(final) >= 3  # unchanged for the last half hour


def total_of_map(rows: dict[tuple[Any, ...], tuple[int, ...]]) -> int:
    """Sum of every counter of every row."""
    return sum(sum(counts) for counts in rows.values())
