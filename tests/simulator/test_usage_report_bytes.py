"""The usage report's bytes: equal to ``json.dumps`` of the plain per-row dicts, cached or not."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from service.simulator import MalformedKind, ManualClock, SimulatorServer, Workload, WorkloadSpec
from service.simulator.catalog import Stream
from service.simulator.faults import corrupt
from service.simulator.paging import plan_page
from service.simulator.usage_report import FILTERS, WIDTHS, UsageReport
from service.simulator.wire import ApiError, Query, format_timestamp, invalid
from service.simulator.workload import Counts
from tests.helpers import (
    ADMIN_KEY,
    ALL_DIMENSIONS,
    NOW,
    START,
    USAGE,
    VISIBILITY_CASES,
    Params,
    group_by,
)

EPOCH_NOW = int(NOW.timestamp())
HOUR = 3600
WORKLOAD = Workload(WorkloadSpec(seed=7, start=START, n_workspaces=2, n_keys=5))

# The report as it was written before it encoded bytes itself: dicts per row, then json.dumps.
# The query's tables are the report's own: the reference is of the body, not of the query.
_FILTERS, _WIDTHS = FILTERS, WIDTHS


def reference_body(workload: Workload, pairs: list[tuple[str, str]], now: int) -> bytes:
    """The body the dict-building report gave for this query; raises its ApiError."""
    query = Query(
        pairs,
        single={"starting_at", "ending_at", "bucket_width", "limit", "page"},
        multi={"group_by[]", *_FILTERS},
    )
    width_name = query.get("bucket_width") or "1d"
    if width_name not in _WIDTHS:
        raise invalid(f"bucket_width: Input should be '1m', '1h' or '1d', got {width_name!r}")
    width, default_limit, max_limit = _WIDTHS[width_name]
    limit = query.get_int("limit", default_limit, 1, max_limit)
    grouped = query.get_all("group_by[]")
    for dimension in grouped:
        if dimension not in ALL_DIMENSIONS:
            raise invalid(f"group_by[]: {dimension!r} is not one of {', '.join(ALL_DIMENSIONS)}")
    streams = list(workload.streams)
    for parameter, dimension in _FILTERS.items():
        wanted = set(query.get_all(parameter))
        if wanted:
            streams = [s for s in streams if getattr(s, dimension) in wanted]
    page = plan_page(query, kind="usage", width=width, limit=limit, now=now, stuck=False)
    visible: Callable[[int, int], Sequence[Counts] | None] = {
        60: workload.visible_minute,
        3600: workload.visible_hour,
        86400: workload.visible_day,
    }[width]
    data = [
        {
            "starting_at": format_timestamp(start),
            "ending_at": format_timestamp(start + width),
            "results": reference_rows(streams, set(grouped), visible(start // width, now)),
        }
        for start in page.starts
    ]
    payload = {"data": data, "has_more": page.has_more, "next_page": page.next_page}
    return json.dumps(payload, separators=(",", ":")).encode()


def reference_rows(
    streams: list[Stream], grouped: set[str], counts: Sequence[Counts] | None
) -> list[dict[str, Any]]:
    """One row per distinct value of the grouped fields, in first-seen order, zeros skipped."""
    if counts is None:
        return []
    sums: dict[tuple[str | None, ...], list[int]] = {}
    labels: dict[tuple[str | None, ...], dict[str, Any]] = {}
    for stream in streams:
        key = tuple(getattr(stream, d) if d in grouped else None for d in ALL_DIMENSIONS)
        if key not in sums:
            sums[key] = [0] * 6
            by_key = "api_key_id" in grouped
            labels[key] = {
                **dict(zip(ALL_DIMENSIONS, key, strict=True)),
                "account_id": stream.account_id if by_key else None,
                "service_account_id": stream.service_account_id if by_key else None,
            }
        sums[key] = [a + b for a, b in zip(sums[key], counts[stream.index], strict=True)]
    return [
        {
            "uncached_input_tokens": a,
            "cache_creation": {"ephemeral_1h_input_tokens": c, "ephemeral_5m_input_tokens": b},
            "cache_read_input_tokens": d,
            "output_tokens": e,
            "server_tool_use": {"web_search_requests": f},
            **labels[key],
        }
        for key, (a, b, c, d, e, f) in sums.items()
        if any((a, b, c, d, e, f))
    ]


def pairs_of(params: Params) -> list[tuple[str, str]]:
    """Query pairs with string values, as the server parses them."""
    return [(name, str(value)) for name, value in params]


def body_of(report: UsageReport, params: Params, now: int) -> bytes:
    """The report's body for ``params`` at ``now``, joined."""
    return b"".join(report.body(pairs_of(params), now, stuck=False))


KEY = WORKLOAD.streams[0].api_key_id or ""
WORKSPACE = next(s.workspace_id for s in WORKLOAD.streams if s.workspace_id)
QUERIES: list[Params] = [
    [("starting_at", "2025-08-05T00:00:00Z")],
    [("starting_at", "2025-07-29T00:00:00Z"), *group_by("model")],
    [("starting_at", "2025-08-14T00:00:00Z"), ("limit", "31"), *group_by(*ALL_DIMENSIONS)],
    [("starting_at", "2025-08-20T00:00:00Z"), ("bucket_width", "1h"), *group_by("api_key_id")],
    [
        ("starting_at", "2025-08-19T09:30:00Z"),
        ("ending_at", "2025-08-20T12:10:00+00:00"),
        ("bucket_width", "1h"),
        ("limit", "168"),
        *group_by(*ALL_DIMENSIONS),
    ],
    [("starting_at", "2025-08-20T10:50:00Z"), ("bucket_width", "1m"), ("limit", "1440")],
    [
        ("starting_at", "2025-08-20T11:00:00Z"),
        ("bucket_width", "1m"),
        ("limit", "120"),
        *group_by("workspace_id", "service_tier"),
    ],
    [
        ("starting_at", "2025-08-10T00:00:00Z"),
        ("bucket_width", "1h"),
        ("models[]", "claude-opus-4-6"),
        ("models[]", "claude-3-5-haiku-20241022"),
        *group_by("model", "context_window"),
    ],
    [
        ("starting_at", "2025-08-10T00:00:00Z"),
        ("api_key_ids[]", KEY),
        ("workspace_ids[]", WORKSPACE),
        *group_by("inference_geo"),
    ],
    [("starting_at", "2025-08-10T00:00:00Z"), ("models[]", "no-such-model")],
    [("starting_at", "2025-08-21T00:00:00Z"), ("bucket_width", "1h")],
    [("starting_at", "2025-08-19T00:00:00Z"), ("ending_at", "2025-08-19T00:00:01Z")],
]


@pytest.mark.parametrize("params", QUERIES)
@pytest.mark.parametrize("cache_bytes", [0, 1 << 24])
def test_body_matches_json_dumps_of_the_dicts(params: Params, cache_bytes: int) -> None:
    """Every query answers the bytes json.dumps gives the plain dicts, asked once or twice."""
    report = UsageReport(WORKLOAD, cache_bytes=cache_bytes)
    expected = reference_body(WORKLOAD, pairs_of(params), EPOCH_NOW)
    assert body_of(report, params, EPOCH_NOW) == expected
    assert body_of(report, params, EPOCH_NOW) == expected


ODD_MODELS = ("claude-opus-4-6", "mystery-\u00fc-100%d", 'quote"model\\')


@pytest.mark.parametrize(
    "params",
    [
        [("starting_at", "2025-08-10T00:00:00Z"), *group_by(*ALL_DIMENSIONS)],
        [("starting_at", "2025-08-10T00:00:00Z"), ("models[]", ODD_MODELS[1]), *group_by("model")],
    ],
)
def test_model_names_are_escaped_as_json_dumps_does(params: Params) -> None:
    """A model id with non-ASCII, ``%``, a quote or a backslash is written as json.dumps
    writes it (ASCII escapes), and a ``%`` in it is not a format directive."""
    workload = Workload(WorkloadSpec(seed=7, start=START, n_keys=3, models=ODD_MODELS))
    body = body_of(UsageReport(workload), params, EPOCH_NOW)
    assert body == reference_body(workload, pairs_of(params), EPOCH_NOW)
    assert b"\\u00fc-100%d" in body


def test_every_page_of_a_walk_matches() -> None:
    """Following the cursor, each page (cursor included) equals the reference's."""
    report = UsageReport(WORKLOAD)
    params: Params = [
        ("starting_at", "2025-08-18T00:00:00Z"),
        ("bucket_width", "1h"),
        ("limit", "7"),
        *group_by("api_key_id", "model"),
    ]
    pages = 0
    page: str | None = None
    while True:
        query = params + ([("page", page)] if page else [])
        body = body_of(report, query, EPOCH_NOW)
        assert body == reference_body(WORKLOAD, pairs_of(query), EPOCH_NOW)
        pages += 1
        page = json.loads(body)["next_page"]
        if page is None:
            break
    assert pages == -(-(2 * 24 + 13) // 7)


@pytest.mark.parametrize(
    "params",
    [
        [("starting_at", "2025-08-05T00:00:00Z"), ("bucket_width", "1w")],
        [("starting_at", "2025-08-05T00:00:00Z"), ("limit", "32")],
        [("starting_at", "2025-08-05T00:00:00Z"), ("group_by[]", "colour")],
        [("starting_at", "2025-08-05T00:00:00Z"), ("page", "page_garbage")],
        [("starting_at", "yesterday")],
        [("ending_at", "2025-08-05T00:00:00Z")],
        [("starting_at", "2025-08-05T00:00:00Z"), ("colour", "red")],
    ],
)
def test_bad_queries_raise_the_same_error(params: Params) -> None:
    """A query the reference refuses is refused with the same status and message."""
    with pytest.raises(ApiError) as expected:
        reference_body(WORKLOAD, pairs_of(params), EPOCH_NOW)
    with pytest.raises(ApiError) as raised:
        body_of(UsageReport(WORKLOAD), params, EPOCH_NOW)
    assert (raised.value.status, raised.value.message) == (
        expected.value.status,
        expected.value.message,
    )


def test_growing_buckets_are_never_served_from_the_cache() -> None:
    """As the clock walks through and past the newest hours and minutes, every answer is the
    reference's, and the cache holds exactly the buckets asked for whose counts are final."""
    report = UsageReport(WORKLOAD)
    hours: Params = [
        ("starting_at", "2025-08-20T10:00:00Z"),
        ("bucket_width", "1h"),
        *group_by(*ALL_DIMENSIONS),
    ]
    minutes: Params = [("starting_at", "2025-08-20T12:00:00Z"), ("bucket_width", "1m")]
    noon = int(datetime(2025, 8, 20, 12, tzinfo=UTC).timestamp())
    for step in range(0, 200, 3):
        now = noon + step * 60
        for query in (hours, minutes):
            assert body_of(report, query, now) == reference_body(WORKLOAD, pairs_of(query), now)
        asked = [(s, HOUR) for s in range(noon - 2 * HOUR, now + 1, HOUR)]
        asked += [(s, 60) for s in range(noon, min(now + 1, noon + HOUR), 60)]
        final = [bucket for bucket in asked if now >= WORKLOAD.final_from(*bucket)]
        assert len(report.cache) == len(final)
    assert 0 < len(final) < len(asked)


@pytest.mark.parametrize(("delay", "growth"), VISIBILITY_CASES)
@pytest.mark.parametrize(
    ("width", "start"),
    [
        ("1m", "2025-08-19T15:07:00Z"),
        ("1h", "2025-08-19T15:00:00Z"),
        ("1d", "2025-08-18T00:00:00Z"),
    ],
)
def test_a_bucket_one_second_before_final_is_not_kept(
    width: str, start: str, delay: timedelta, growth: timedelta
) -> None:
    """Asked one second before its counts are final and again at that second, a bucket
    answers the reference both times: what was still growing (or invisible) was not cached."""
    spec = WorkloadSpec(
        seed=7, start=START, n_workspaces=2, n_keys=5, visibility_delay=delay, growth_window=growth
    )
    workload = Workload(spec)
    report = UsageReport(workload)
    params: Params = [("starting_at", start), ("bucket_width", width), ("limit", "1")]
    begin = int(datetime.fromisoformat(start).timestamp())
    final = workload.final_from(begin, {"1m": 60, "1h": HOUR, "1d": 24 * HOUR}[width])
    moments = (final - 1, final, final + 1)
    answers = [body_of(report, params, now) for now in moments]
    assert answers == [reference_body(workload, pairs_of(params), now) for now in moments]
    assert answers[0] != answers[1] == answers[2]
    assert len(report.cache) == 1


def test_cache_holds_only_final_buckets() -> None:
    """A page over growing hours leaves only the final ones in the cache."""
    report = UsageReport(WORKLOAD)
    params: Params = [("starting_at", "2025-08-20T08:00:00Z"), ("bucket_width", "1h")]
    body_of(report, params, EPOCH_NOW)
    starts = range(int(datetime(2025, 8, 20, 8, tzinfo=UTC).timestamp()), EPOCH_NOW, HOUR)
    final = [s for s in starts if WORKLOAD.final_from(s, HOUR) <= EPOCH_NOW]
    assert 0 < len(final) < len(starts)
    assert len(report.cache) == len(final)


def test_a_cache_too_small_for_a_page_still_answers_right() -> None:
    """With room for two buckets, a page of many gives the same bytes, twice."""
    params: Params = [("starting_at", "2025-08-10T00:00:00Z"), ("bucket_width", "1h")]
    expected = reference_body(WORKLOAD, pairs_of(params), EPOCH_NOW)
    one_bucket = len(json.dumps(json.loads(expected)["data"][0], separators=(",", ":")))
    report = UsageReport(WORKLOAD, cache_bytes=2 * one_bucket + 50)
    assert body_of(report, params, EPOCH_NOW) == body_of(report, params, EPOCH_NOW) == expected
    assert report.cache.size <= report.cache.max_bytes


SHARED = UsageReport(WORKLOAD, cache_bytes=1 << 22)


@settings(max_examples=120, deadline=None)
@given(
    width=st.sampled_from(["1m", "1h", "1d"]),
    first=st.integers(-30, 24 * 60),
    limit=st.integers(1, 31),
    dimensions=st.sets(st.sampled_from(ALL_DIMENSIONS)),
    model=st.sampled_from([None, "claude-opus-4-6", "claude-haiku-4-5-20251001"]),
    minutes_to_now=st.integers(-90, 24 * 60),
)
def test_any_query_at_any_now_matches(
    width: str,
    first: int,
    limit: int,
    dimensions: set[str],
    model: str | None,
    minutes_to_now: int,
) -> None:
    """One report serving queries at clocks that jump back and forth answers every one as the
    reference does: nothing cached at one now is wrong at another."""
    step = {"1m": 60, "1h": 600, "1d": 3600}[width]
    began = datetime(2025, 8, 19, 12, tzinfo=UTC)
    start = began + timedelta(seconds=first * step)
    now = int((began + timedelta(minutes=minutes_to_now)).timestamp())
    params: Params = [
        ("starting_at", start.isoformat()),
        ("bucket_width", width),
        ("limit", str(limit)),
        *group_by(*sorted(dimensions)),
        *([("models[]", model)] if model else []),
    ]
    assert body_of(SHARED, params, now) == reference_body(WORKLOAD, pairs_of(params), now)


def test_http_body_matches_and_the_clock_moves_it() -> None:
    """Over a real socket the body is the reference's, before and after the clock advances."""
    clock = ManualClock(NOW)
    params: Params = [
        ("starting_at", "2025-08-13T00:00:00Z"),
        ("bucket_width", "1h"),
        ("limit", "168"),
        *group_by(*ALL_DIMENSIONS),
    ]
    headers = {"x-api-key": ADMIN_KEY, "anthropic-version": "2023-06-01"}
    with (
        SimulatorServer(WORKLOAD, admin_key=ADMIN_KEY, clock=clock) as sim,
        httpx.Client(base_url=sim.base_url, headers=headers, timeout=30) as api,
    ):
        for _ in range(3):
            response = api.get(USAGE, params=params)
            assert response.status_code == 200
            assert response.headers["content-length"] == str(len(response.content))
            now = sim.now_seconds()
            assert response.content == reference_body(WORKLOAD, pairs_of(params), now)
            clock.advance(timedelta(minutes=17))


@pytest.mark.parametrize("kind", ["missing_data", "string_int", "negative_tokens", "bad_timestamp"])
def test_malformed_faults_break_the_same_document(kind: MalformedKind) -> None:
    """A malformed fault on the usage report breaks the document the reference answers."""
    params: Params = [("starting_at", "2025-08-18T00:00:00Z"), *group_by("model")]
    headers = {"x-api-key": ADMIN_KEY, "anthropic-version": "2023-06-01"}
    with (
        SimulatorServer(WORKLOAD, admin_key=ADMIN_KEY, clock=ManualClock(NOW)) as sim,
        httpx.Client(base_url=sim.base_url, headers=headers, timeout=30) as api,
    ):
        sim.faults.add_malformed(kind, path_prefix=USAGE)
        response = api.get(USAGE, params=params)
    document = json.loads(reference_body(WORKLOAD, pairs_of(params), EPOCH_NOW))
    assert response.content == corrupt(document, kind)
