"""The Admin API client reading the Usage and Cost Analytics API (beta) from the simulator over
real sockets: windows, paging, the beta header, strict pages, and agreement with the legacy
reports read through the same client."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, get_args

import pytest
from msgspec.structs import astuple

from service.admin_api.analytics import (
    ANALYTICS_BETA,
    ANALYTICS_COST_PATH,
    ANALYTICS_USAGE_PATH,
    analytics_windows,
    combine_pages,
)
from service.admin_api.analytics_wire import (
    AnalyticsGroup,
    AnalyticsPage,
    AnalyticsUsageRow,
    parse_analytics_cost_page,
    parse_analytics_usage_page,
)
from service.admin_api.client import AdminClient
from service.admin_api.retry import RetryPolicy
from service.admin_api.wire import Invalid
from service.domain.money import usd_to_nanos
from service.domain.usage import TokenCounts
from service.errors import AdminAPIError, MalformedResponse
from service.http import build_http_client
from service.simulator import ManualClock, SimulatorServer, Workload, WorkloadSpec
from service.simulator.faults import MalformedKind
from tests.helpers import changed

ADMIN_KEY = "sk-ant-admin01-analytics-test-key"
START = datetime(2026, 3, 1, tzinfo=UTC)
MONTH_END = datetime(2026, 3, 31, tzinfo=UTC)
NOW = datetime(2026, 3, 31, 12, 30, tzinfo=UTC)
TWO_DAYS = (datetime(2026, 3, 5, tzinfo=UTC), datetime(2026, 3, 7, tzinfo=UTC))
FAST_RETRY = RetryPolicy(max_retries=3, base_delay=0.001, max_delay=0.01)
ANALYTICS = "/v1/organizations/analytics/"


@dataclass
class Live:
    sim: SimulatorServer
    client: AdminClient
    sleeps: list[float]

    def windows(self, path: str) -> list[tuple[str, str]]:
        """(starting_at, ending_at) of each first-page request to ``path``, in order."""
        return [
            (q["starting_at"][0], q["ending_at"][0])
            for q in self.analytics_requests(path)
            if "page" not in q
        ]

    def analytics_requests(self, path: str = ANALYTICS) -> list[dict[str, list[str]]]:
        """The query of every analytics request the simulator saw, as name → values."""
        queries = []
        for request in self.sim.requests:
            if request.path.startswith(path):
                query: dict[str, list[str]] = defaultdict(list)
                for name, value in request.query:
                    query[name].append(value)
                queries.append(dict(query))
        return queries


@pytest.fixture
def live() -> Iterator[Live]:
    """A simulator of March 2026 (seed 7, five keys), an AdminClient over real sockets."""
    workload = Workload(WorkloadSpec(seed=7, start=START, n_workspaces=2, n_keys=5))
    with (
        SimulatorServer(workload, admin_key=ADMIN_KEY, clock=ManualClock(NOW)) as sim,
        build_http_client(sim.base_url) as http,
    ):
        sleeps: list[float] = []
        yield Live(sim, AdminClient(http, ADMIN_KEY, retry=FAST_RETRY, sleep=sleeps.append), sleeps)


def total(counts: list[TokenCounts]) -> tuple[int, ...]:
    """Field-wise sum of token counts."""
    return tuple(sum(column) for column in zip(*(astuple(c) for c in counts), strict=True))


@pytest.mark.parametrize(
    "group_by",
    [
        ("model", "api_key_id", "workspace_id", "service_tier", "context_window"),
        ("actor", "product"),
        ("model",),
        (),
    ],
)
def test_month_of_hourly_usage_totals_equal_the_legacy_report(
    live: Live, group_by: tuple[str, ...]
) -> None:
    """A month of hourly analytics rows sums to the legacy usage report's totals, any grouping."""
    read = live.client.analytics_usage(START, MONTH_END, "1h", group_by)
    legacy = live.client.usage(START, MONTH_END, bucket_width="1h")
    assert read.rows
    assert total([r.counts for r in read.rows]) == total([r.counts for r in legacy])
    assert all(r.total_tokens == sum(astuple(r.counts)[:5]) for r in read.rows)


def test_daily_usage_totals_equal_the_legacy_report(live: Live) -> None:
    """Daily buckets agree with the legacy daily report too."""
    read = live.client.analytics_usage(START, MONTH_END, "1d", ("workspace_id",))
    legacy = live.client.usage(START, MONTH_END, bucket_width="1d")
    assert total([r.counts for r in read.rows]) == total([r.counts for r in legacy])


def test_hourly_cost_sums_to_the_legacy_cost_report_per_day(live: Live) -> None:
    """Hourly billed amounts add up, day by day, exactly to the legacy cost report (no scripts)."""
    read = live.client.analytics_cost(START, MONTH_END, "1h", ("workspace_id", "model"))
    legacy = live.client.cost_report(START, MONTH_END)
    analytics_days: dict[datetime, Decimal] = defaultdict(Decimal)
    for row in read.rows:
        day = row.starting_at.replace(hour=0)
        analytics_days[day] += row.amount_usd
        assert row.currency == "USD"
        assert row.amount_usd == row.list_amount_usd  # no bill adjustment in this workload
    legacy_days: dict[datetime, Decimal] = defaultdict(Decimal)
    for cost in legacy:
        legacy_days[cost.day_start] += cost.amount_usd
    assert analytics_days == legacy_days
    assert len(legacy_days) == 30
    assert usd_to_nanos(sum(analytics_days.values(), Decimal(0))) == usd_to_nanos(
        sum(legacy_days.values(), Decimal(0))
    )


def test_cost_amounts_are_cents_converted_exactly(live: Live) -> None:
    """Each amount is the wire's cents over 100, and nanos round it half to even."""
    start, end = TWO_DAYS
    read = live.client.analytics_cost(start, end, "1h", ("model", "cost_type", "token_type"))
    (request,) = live.analytics_requests(ANALYTICS_COST_PATH)
    assert request["group_by[]"] == ["model", "cost_type", "token_type"]
    assert read.rows
    for row in read.rows:
        assert row.amount_nanos == usd_to_nanos(row.amount_usd)
        assert row.group.cost_type in {"tokens", "web_search"}
    assert {r.group.token_type for r in read.rows} >= {"output_tokens", "uncached_input_tokens"}


def test_forty_days_hourly_are_read_in_two_requests(live: Live) -> None:
    """A 40-day hourly read is split at 31 days: two requests, contiguous, each with the beta."""
    start = datetime(2026, 2, 19, tzinfo=UTC)
    read = live.client.analytics_usage(start, start + timedelta(days=40), "1h", ())
    queries = live.analytics_requests(ANALYTICS_USAGE_PATH)
    assert live.windows(ANALYTICS_USAGE_PATH) == [
        ("2026-02-19T00:00:00Z", "2026-03-22T00:00:00Z"),
        ("2026-03-22T00:00:00Z", "2026-03-31T00:00:00Z"),
    ]
    assert len(queries) == 2  # an hourly row per bucket: each window fits one page
    assert all(q["time_bucket_width"] == ["1h"] and q["limit"] == ["1000"] for q in queries)
    legacy = live.client.usage(start, start + timedelta(days=40), bucket_width="1h")
    assert total([r.counts for r in read.rows]) == total([r.counts for r in legacy])


def test_thirty_hours_by_the_minute_are_read_in_two_requests(live: Live) -> None:
    """At 1m a request spans at most 24 hours: 30 hours take two."""
    start = datetime(2026, 3, 10, 6, tzinfo=UTC)
    read = live.client.analytics_usage(start, start + timedelta(hours=30), "1m", ("model",))
    assert live.windows(ANALYTICS_USAGE_PATH) == [
        ("2026-03-10T06:00:00Z", "2026-03-11T06:00:00Z"),
        ("2026-03-11T06:00:00Z", "2026-03-11T12:00:00Z"),
    ]
    legacy = live.client.usage(start, start + timedelta(hours=30), bucket_width="1m")
    assert total([r.counts for r in read.rows]) == total([r.counts for r in legacy])


def test_small_pages_are_all_followed_with_the_beta_header(live: Live) -> None:
    """With 50 rows a page every page is read, rows equal one big page, each request carries
    the beta header, the admin key and the cursor of the page before."""
    start, end = TWO_DAYS
    big = live.client.analytics_usage(start, end, "1h")
    live.sim.requests.clear()
    small = live.client.analytics_usage(start, end, "1h", page_size=50)
    assert sorted(small.rows, key=repr) == sorted(big.rows, key=repr)
    requests = [r for r in live.sim.requests if r.path == ANALYTICS_USAGE_PATH]
    assert len(requests) == -(-len(big.rows) // 50) > 5
    for request in requests:
        assert request.headers["anthropic-beta"] == ANALYTICS_BETA
        assert request.headers["anthropic-version"] == "2023-06-01"
        assert request.headers["x-api-key"] == "<redacted>"  # sent, and redacted when recorded
        assert ("limit", "50") in request.query
    assert sum(1 for r in requests if any(k == "page" for k, _ in r.query)) == len(requests) - 1


def test_cost_requests_carry_the_beta_header(live: Live) -> None:
    """The cost endpoint gets the beta header too (the simulator refuses a request without)."""
    start, end = TWO_DAYS
    live.client.analytics_cost(start, end, "1d", ("workspace_id",), page_size=5)
    requests = [r for r in live.sim.requests if r.path == ANALYTICS_COST_PATH]
    assert len(requests) > 1
    assert all(r.headers["anthropic-beta"] == ANALYTICS_BETA for r in requests)


def test_data_refreshed_at_is_the_read_watermark(live: Live) -> None:
    """``data_refreshed_at`` comes back: the simulator's now minus its visibility delay."""
    read = live.client.analytics_usage(NOW - timedelta(hours=6), NOW, "1h")
    delay = live.sim.workload.spec.visibility_delay
    assert read.data_refreshed_at == NOW - delay


def test_five_dimensions_plus_cost_components_are_accepted(live: Live) -> None:
    """On the cost endpoint cost_type and token_type do not count toward the five."""
    start, end = TWO_DAYS
    group_by = ("model", "api_key_id", "workspace_id", "service_tier", "context_window")
    read = live.client.analytics_cost(start, end, "1d", (*group_by, "cost_type", "token_type"))
    assert read.rows


@pytest.mark.parametrize(
    ("endpoint", "group_by", "error"),
    [
        ("usage", ("agent_id",), ValueError),
        ("usage", ("model", "api_key_id", "workspace_id", "speed", "product", "actor"), ValueError),
        ("usage", ("cost_type",), ValueError),
        ("usage", ("model", "model"), ValueError),
        ("cost", ("description",), ValueError),
        ("cost", "model", TypeError),
    ],
)
def test_invalid_group_by_is_refused_before_any_request(
    live: Live, endpoint: str, group_by: Any, error: type[Exception]
) -> None:
    """A grouping the API would answer 400 to (or the row cannot hold) fails with no request."""
    read = live.client.analytics_usage if endpoint == "usage" else live.client.analytics_cost
    start, end = TWO_DAYS
    with pytest.raises(error, match="group_by"):
        read(start, end, "1h", group_by)
    assert live.sim.requests == []


@pytest.mark.parametrize(
    ("start", "end", "width", "match"),
    [
        (datetime(2026, 3, 5), datetime(2026, 3, 6, tzinfo=UTC), "1h", "aware"),  # noqa: DTZ001
        (TWO_DAYS[1], TWO_DAYS[0], "1h", "after"),
        (TWO_DAYS[0], TWO_DAYS[1], "5m", "time_bucket_width"),
    ],
)
def test_bad_windows_are_refused_before_any_request(
    live: Live, start: datetime, end: datetime, width: Any, match: str
) -> None:
    """Naive times, an empty range and an unknown width raise ValueError, nothing is sent."""
    with pytest.raises(ValueError, match=match):
        live.client.analytics_usage(start, end, width)
    assert live.sim.requests == []


def test_a_window_starts_on_its_bucket() -> None:
    """A start inside a bucket is snapped down, so windows never split a bucket."""
    start = datetime(2026, 3, 1, 7, 45, tzinfo=UTC)
    windows = analytics_windows(start, start + timedelta(days=40), "1d")
    assert windows[0] == (datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 4, 1, tzinfo=UTC))
    assert windows[1] == (datetime(2026, 4, 1, tzinfo=UTC), start + timedelta(days=40))


@pytest.mark.parametrize("endpoint", ["usage", "cost"])
@pytest.mark.parametrize("kind", get_args(MalformedKind))
def test_malformed_pages_are_rejected(live: Live, endpoint: str, kind: MalformedKind) -> None:
    """Every malformed fault the simulator scripts rejects the read with MalformedResponse."""
    live.sim.faults.add_malformed(kind, path_prefix=ANALYTICS)
    read = live.client.analytics_usage if endpoint == "usage" else live.client.analytics_cost
    start, end = TWO_DAYS
    with pytest.raises(MalformedResponse, match=f"analytics {endpoint} page 1") as caught:
        read(start, end, "1h", ("model",))
    assert caught.value.transient is False


def test_a_stuck_cursor_is_stopped(live: Live) -> None:
    """``has_more`` with a cursor that repeats stops the read with an error."""
    live.sim.faults.add_stuck_cursor(path_prefix=ANALYTICS)
    start, end = TWO_DAYS
    with pytest.raises(AdminAPIError, match="cursor did not advance"):
        live.client.analytics_usage(start, end, "1h", page_size=10)
    assert len(live.analytics_requests()) == 2


def test_the_page_budget_stops_an_endless_read(live: Live) -> None:
    """More pages than ``max_pages`` in one window stops the read."""
    http = build_http_client(live.sim.base_url)
    client = AdminClient(http, ADMIN_KEY, retry=FAST_RETRY, max_pages=3)
    start, end = TWO_DAYS
    with http, pytest.raises(AdminAPIError, match="more than 3 pages"):
        client.analytics_usage(start, end, "1h", page_size=10)
    assert len(live.analytics_requests()) == 3


def test_429_with_retry_after_is_waited_out(live: Live) -> None:
    """A 429 on the second page waits its ``retry-after`` and the read completes."""
    start, end = TWO_DAYS
    expected = live.client.analytics_usage(start, end, "1h", page_size=100)
    live.sim.faults.add(status=429, retry_after="2", path_prefix=ANALYTICS, after=1)
    read = live.client.analytics_usage(start, end, "1h", page_size=100)
    assert read == expected
    assert len(live.sleeps) == 1
    assert live.sleeps[0] >= 2


def test_retry_after_beyond_the_cap_gives_up(live: Live) -> None:
    """A ``retry-after`` over the cap is a transient failure at once (no long sleep)."""
    live.sim.faults.add(status=429, retry_after="3600", path_prefix=ANALYTICS)
    start, end = TWO_DAYS
    with pytest.raises(AdminAPIError, match="retry-after") as caught:
        live.client.analytics_cost(start, end, "1h")
    assert caught.value.transient is True
    assert live.sleeps == []


# Pages built by hand: the shapes the simulator never sends.

ROW: dict[str, Any] = {
    "starting_at": "2026-03-05T00:00:00Z",
    "ending_at": "2026-03-05T01:00:00Z",
    "group": {
        "model": "claude-opus-4-6",
        "workspace_id": "wrkspc_default",
        "api_key_id": None,
        "actor": {
            "type": "user_actor",
            "user_id": "user_01",
            "email_address": "ada@example.com",
            "name": "Ada",
            "deleted": False,
        },
        "some_future_dimension": "x",
    },
    "usage": {
        "uncached_input_tokens": 10,
        "cache_creation": {"ephemeral_5m_input_tokens": 1, "ephemeral_1h_input_tokens": 2},
        "cache_read_input_tokens": 3,
        "output_tokens": 4,
        "server_tool_use": {"web_search_requests": 5},
        "total_tokens": 20,
        "requests": None,
        "new_counter": 7,
    },
    "cost": {
        "amount": "123.78912",
        "list_amount": "150",
        "currency": "USD",
        "requests": 3,
        "new_field": True,
    },
}


def body(*rows: dict[str, Any], refreshed: str | None = "2026-03-05T02:00:00Z") -> dict[str, Any]:
    """A one-page answer holding ``rows``."""
    return {
        "data": list(rows),
        "has_more": False,
        "next_page": None,
        "data_refreshed_at": refreshed,
    }


def test_a_usage_row_reads_every_field_and_ignores_new_ones() -> None:
    """Dimensions, the actor, the six counts, total_tokens and a null requests are read."""
    (row,) = parse_analytics_usage_page(body(ROW)).rows
    assert row.group.model == "claude-opus-4-6"
    assert row.group.api_key_id is None
    assert row.group.actor is not None
    assert (row.group.actor.type, row.group.actor.id) == ("user_actor", "user_01")
    assert row.group.actor.email_address == "ada@example.com"
    assert row.counts == TokenCounts(10, 1, 2, 3, 4, 5)
    assert (row.total_tokens, row.requests) == (20, None)


def test_a_cost_row_converts_cents_to_exact_usd() -> None:
    """``"123.78912"`` cents is $1.2378912, 1,237,891,200 nano-dollars; list 150 is $1.50."""
    page = parse_analytics_cost_page(body(ROW))
    (row,) = page.rows
    assert row.amount_usd == Decimal("1.2378912")
    assert row.amount_nanos == 1_237_891_200
    assert (row.list_amount_usd, row.list_amount_nanos) == (Decimal("1.5"), 1_500_000_000)
    assert row.requests == 3
    assert page.data_refreshed_at == datetime(2026, 3, 5, 2, tzinfo=UTC)


def broken(path: str, value: object) -> dict[str, Any]:
    """``ROW`` with the value at dotted ``path`` replaced (or removed when ``value`` is ...)."""
    return changed(ROW, path, value)


@pytest.mark.parametrize(
    ("path", "value", "where"),
    [
        ("cost.currency", "EUR", "data[0].cost.currency"),
        ("cost.amount", "-0.5", "data[0].cost.amount"),
        ("cost.list_amount", "n/a", "data[0].cost.list_amount"),
        ("cost.list_amount", ..., "data[0].cost.list_amount"),
        ("cost.requests", -1, "data[0].cost.requests"),
        ("cost", ..., "data[0].cost"),
        ("group", ..., "data[0].group"),
        ("group.workspace_id", 5, "data[0].group.workspace_id"),
        ("group.actor", {"type": "api_actor"}, "data[0].group.actor.api_key_id"),
        ("ending_at", "2026-03-05T00:00:00Z", "data[0]"),
        ("starting_at", "2026-03-05T00:00:00", "data[0].starting_at"),
    ],
)
def test_a_malformed_cost_row_names_where(path: str, value: object, where: str) -> None:
    """A value out of shape on a cost row raises Invalid at its place."""
    with pytest.raises(Invalid) as caught:
        parse_analytics_cost_page(body(broken(path, value)))
    assert caught.value.where == where


@pytest.mark.parametrize(
    ("path", "value", "where"),
    [
        ("usage.total_tokens", ..., "data[0].usage.total_tokens"),
        ("usage.requests", "1", "data[0].usage.requests"),
        ("usage.cache_creation", None, "data[0].usage.cache_creation"),
        ("usage.output_tokens", 1.5, "data[0].usage.output_tokens"),
        ("usage.uncached_input_tokens", True, "data[0].usage.uncached_input_tokens"),
        ("usage", [], "data[0].usage"),
    ],
)
def test_a_malformed_usage_row_names_where(path: str, value: object, where: str) -> None:
    """A value out of shape on a usage row raises Invalid at its place."""
    with pytest.raises(Invalid) as caught:
        parse_analytics_usage_page(body(broken(path, value)))
    assert caught.value.where == where


def test_a_bad_watermark_or_a_repeated_row_rejects_the_page() -> None:
    """A non-timestamp ``data_refreshed_at`` and two rows with one key are both malformed."""
    with pytest.raises(Invalid, match="data_refreshed_at"):
        parse_analytics_usage_page(body(ROW, refreshed="soon"))
    with pytest.raises(Invalid, match="second row"):
        parse_analytics_usage_page(body(ROW, ROW))
    assert parse_analytics_usage_page(body(ROW, refreshed=None)).data_refreshed_at is None


def usage_page(refreshed: datetime | None, *rows: AnalyticsUsageRow) -> AnalyticsPage[Any]:
    """A parsed page with ``rows``."""
    return AnalyticsPage(rows, False, None, refreshed)


def test_the_watermark_is_the_earliest_page_and_repeats_are_transient() -> None:
    """The read's freshness is its least fresh page; a row on two pages is a transient error."""
    (row,) = parse_analytics_usage_page(body(ROW)).rows
    other = AnalyticsUsageRow(
        row.starting_at, row.ending_at, AnalyticsGroup(model="m"), row.counts, 20, None
    )
    early, late = datetime(2026, 3, 5, 1, tzinfo=UTC), datetime(2026, 3, 5, 2, tzinfo=UTC)
    read = combine_pages([usage_page(late, row), usage_page(None), usage_page(early, other)], "x")
    assert read.data_refreshed_at == early
    assert read.rows == (row, other)
    with pytest.raises(AdminAPIError, match="later page") as caught:
        combine_pages([usage_page(late, row), usage_page(early, row)], "x")
    assert caught.value.transient is True
