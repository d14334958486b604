"""The Admin API client against scripted answers (httpx.MockTransport): wire format, paging,
retries, validation and secrecy of the admin key."""

from __future__ import annotations

import gc
import json
import logging
import weakref
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from email.utils import format_datetime
from typing import Any

import httpx
import pytest

from service import __version__
from service.admin_api.client import ALL_GROUP_BY, AdminClient
from service.admin_api.retry import RetryPolicy
from service.domain.usage import TokenCounts, UsagePage, UsageRow
from service.errors import AdminAPIAuthError, AdminAPIError, MalformedResponse
from service.http import build_http_client, quiet_http_loggers

ADMIN_KEY = "sk-ant-admin01-SECRETtestkey-0123456789abcdef"
BASE_URL = "https://api.anthropic.test"
START = datetime(2025, 8, 1, tzinfo=UTC)

# Verbatim copies of tests/data/anthropic-examples (Anthropic's API reference, 2025 and 2026),
# embedded so that the tests need nothing outside the repository.
USAGE_2025 = """{
  "data": [
    {
      "starting_at": "2025-08-01T00:00:00Z",
      "ending_at": "2025-08-02T00:00:00Z",
      "results": [
        {
          "uncached_input_tokens": 1500,
          "cache_creation": {
            "ephemeral_1h_input_tokens": 1000,
            "ephemeral_5m_input_tokens": 500
          },
          "cache_read_input_tokens": 200,
          "output_tokens": 500,
          "server_tool_use": {
            "web_search_requests": 10
          },
          "api_key_id": "apikey_01Rj2N8SVvo6BePZj99NhmiT",
          "workspace_id": "wrkspc_01JwQvzr7rXLA5AGx3HKfFUJ",
          "model": "claude-sonnet-4-20250514",
          "service_tier": "standard",
          "context_window": "0-200k"
        }
      ]
    }
  ],
  "has_more": true,
  "next_page": "page_MjAyNS0wNS0xNFQwMDowMDowMFo="
}"""

USAGE_2026 = """{
  "data": [
    {
      "ending_at": "2025-08-02T00:00:00Z",
      "results": [
        {
          "account_id": "user_01WCz1FkmYMm4gnmykNKUu3Q",
          "api_key_id": "apikey_01Rj2N8SVvo6BePZj99NhmiT",
          "cache_creation": {
            "ephemeral_1h_input_tokens": 1000,
            "ephemeral_5m_input_tokens": 500
          },
          "cache_read_input_tokens": 200,
          "context_window": "0-200k",
          "inference_geo": "global",
          "model": "claude-opus-4-6",
          "output_tokens": 500,
          "server_tool_use": {
            "web_search_requests": 10
          },
          "service_account_id": "svac_01Hk3R9TWxq7CfQak00OiVw4",
          "service_tier": "standard",
          "uncached_input_tokens": 1500,
          "workspace_id": "wrkspc_01JwQvzr7rXLA5AGx3HKfFUJ"
        }
      ],
      "starting_at": "2025-08-01T00:00:00Z"
    }
  ],
  "has_more": true,
  "next_page": "page_MjAyNS0wNS0xNFQwMDowMDowMFo="
}"""

COST_2026 = """{
  "data": [
    {
      "ending_at": "2025-08-02T00:00:00Z",
      "results": [
        {
          "amount": "123.78912",
          "context_window": "0-200k",
          "cost_type": "tokens",
          "currency": "USD",
          "description": "Claude Sonnet 4 Usage - Input Tokens",
          "inference_geo": "global",
          "model": "claude-opus-4-6",
          "service_tier": "standard",
          "token_type": "uncached_input_tokens",
          "workspace_id": "wrkspc_01JwQvzr7rXLA5AGx3HKfFUJ"
        }
      ],
      "starting_at": "2025-08-01T00:00:00Z"
    }
  ],
  "has_more": true,
  "next_page": "page_MjAyNS0wNS0xNFQwMDowMDowMFo="
}"""

ERROR_404 = """{
  "type": "error",
  "error": {
    "type": "not_found_error",
    "message": "The requested resource could not be found."
  },
  "request_id": "req_011CSHoEeqs5C35K2UUqR7Fy"
}"""

LAST_PAGE: dict[str, Any] = {"data": [], "has_more": False, "next_page": None}

Answer = httpx.Response | type[httpx.RequestError] | Callable[[httpx.Request], httpx.Response]


class ScriptedAPI:
    """A MockTransport handler that answers from a script and records every request."""

    def __init__(self, *answers: Answer) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if not self.answers:
            raise AssertionError(f"unexpected extra request {request.url}")
        answer = self.answers.pop(0)
        if isinstance(answer, httpx.Response):
            # A fresh copy, so that one scripted answer can be returned many times.
            return httpx.Response(
                answer.status_code, headers=answer.headers, content=answer.content
            )
        if isinstance(answer, type):
            raise answer("scripted transport failure", request=request)
        return answer(request)


def page(body: dict[str, Any] | str, status: int = 200, **headers: str) -> httpx.Response:
    content = body if isinstance(body, str) else json.dumps(body)
    return httpx.Response(status, content=content.encode(), headers=headers)


def error(status: int, error_type: str, message: str, **headers: str) -> httpx.Response:
    body = {
        "type": "error",
        "error": {"type": error_type, "message": message},
        "request_id": f"req_{status}",
    }
    return page(body, status, **headers)


def usage_result(**overrides: Any) -> dict[str, Any]:
    result: dict[str, Any] = {
        "uncached_input_tokens": 10,
        "cache_creation": {"ephemeral_5m_input_tokens": 1, "ephemeral_1h_input_tokens": 2},
        "cache_read_input_tokens": 3,
        "output_tokens": 4,
        "server_tool_use": {"web_search_requests": 0},
        "api_key_id": "apikey_a",
        "workspace_id": "wrkspc_a",
        "model": "claude-haiku-4-5",
        "service_tier": "standard",
        "context_window": "0-200k",
        "inference_geo": "global",
    }
    result.update(overrides)
    return result


def usage_page(
    *results: dict[str, Any],
    start: datetime = START,
    has_more: bool = False,
    cursor: str | None = None,
) -> dict[str, Any]:
    end = start + timedelta(hours=1)
    bucket = {
        "starting_at": start.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "ending_at": end.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "results": list(results),
    }
    return {"data": [bucket], "has_more": has_more, "next_page": cursor}


class Harness:
    def __init__(self, api: ScriptedAPI, client: AdminClient, sleeps: list[float]) -> None:
        self.api = api
        self.client = client
        self.sleeps = sleeps


def harness(*answers: Answer, retry: RetryPolicy | None = None, max_pages: int = 50) -> Harness:
    api = ScriptedAPI(*answers)
    http = build_http_client(BASE_URL, transport=httpx.MockTransport(api))
    sleeps: list[float] = []
    client = AdminClient(
        http, ADMIN_KEY, retry=retry or RetryPolicy(), sleep=sleeps.append, max_pages=max_pages
    )
    return Harness(api, client, sleeps)


def collect(pages: Iterator[UsagePage]) -> tuple[list[UsagePage], Exception | None]:
    """Drain an iterator, returning what it yielded and the error that stopped it."""
    got: list[UsagePage] = []
    try:
        for item in pages:
            got.append(item)
    except AdminAPIError as exc:
        return got, exc
    return got, None


def ts(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def test_usage_example_2025_parses_to_domain_rows() -> None:
    """The 2025 reference usage page becomes one UsageRow with every count and grouping."""
    h = harness(page(USAGE_2025), page(LAST_PAGE))
    pages = list(h.client.usage_pages(START, bucket_width="1d"))
    first = pages[0]
    assert first.has_more is True
    assert first.next_page == "page_MjAyNS0wNS0xNFQwMDowMDowMFo="
    assert first.bucket_starts == (ts("2025-08-01T00:00:00"),)
    (row,) = first.rows
    assert row.counts == TokenCounts(
        uncached_input_tokens=1500,
        cache_creation_5m_tokens=500,
        cache_creation_1h_tokens=1000,
        cache_read_tokens=200,
        output_tokens=500,
        web_search_requests=10,
    )
    assert row.key.bucket_start == ts("2025-08-01T00:00:00")
    assert row.key.bucket_start.tzinfo is UTC
    assert row.key.bucket_width == "1d"
    assert row.key.model == "claude-sonnet-4-20250514"
    assert row.key.api_key_id == "apikey_01Rj2N8SVvo6BePZj99NhmiT"
    assert row.key.workspace_id == "wrkspc_01JwQvzr7rXLA5AGx3HKfFUJ"
    assert row.key.service_tier == "standard"
    assert row.key.context_window == "0-200k"
    assert row.key.inference_geo is None  # absent in 2025 results
    assert pages[1].rows == ()


def test_usage_example_2026_ignores_new_fields() -> None:
    """The 2026 reference page (account_id, service_account_id, inference_geo) parses."""
    h = harness(page(USAGE_2026), page(LAST_PAGE))
    rows = h.client.usage(START)
    (row,) = rows
    assert row.key.model == "claude-opus-4-6"
    assert row.key.inference_geo == "global"
    assert row.counts.uncached_input_tokens == 1500
    assert row.counts.web_search_requests == 10


def test_cost_example_converts_cents_to_dollars_exactly() -> None:
    """The reference cost amount "123.78912" (cents) is Decimal("1.2378912") dollars."""
    h = harness(page(COST_2026), page(LAST_PAGE))
    (row,) = h.client.cost_report(START)
    assert row.amount_usd == Decimal("1.2378912")
    assert isinstance(row.amount_usd, Decimal)
    assert row.currency == "USD"
    assert row.day_start == ts("2025-08-01T00:00:00")
    assert row.cost_type == "tokens"
    assert row.token_type == "uncached_input_tokens"
    assert row.workspace_id == "wrkspc_01JwQvzr7rXLA5AGx3HKfFUJ"
    assert row.inference_geo == "global"


def test_cost_model_comes_from_model_not_description() -> None:
    """The reference row's description says Sonnet 4 but its model is claude-opus-4-6."""
    h = harness(page(COST_2026), page(LAST_PAGE))
    (row,) = h.client.cost_report(START)
    assert row.model == "claude-opus-4-6"
    assert row.description == "Claude Sonnet 4 Usage - Input Tokens"


def test_reference_error_example_is_a_permanent_404() -> None:
    """The reference error body as a 404 raises a permanent AdminAPIError with its details."""
    h = harness(page(ERROR_404, 404))
    with pytest.raises(AdminAPIError) as caught:
        h.client.usage(START)
    err = caught.value
    assert type(err) is AdminAPIError
    assert err.transient is False
    assert err.status == 404
    assert err.error_type == "not_found_error"
    assert err.request_id == "req_011CSHoEeqs5C35K2UUqR7Fy"
    message = str(err)
    assert "404" in message
    assert "The requested resource could not be found." in message
    assert "req_011CSHoEeqs5C35K2UUqR7Fy" in message
    assert "\n" not in message
    assert len(h.api.requests) == 1


@pytest.mark.parametrize(
    ("amount", "usd"),
    [
        ("123.78912", Decimal("1.2378912")),
        ("0", Decimal("0")),
        ("100", Decimal("1")),
        ("0.000001", Decimal("0.00000001")),
        (250, Decimal("2.5")),
    ],
)
def test_cost_amount_strings_and_integers_are_exact(amount: object, usd: Decimal) -> None:
    """Cent amounts, as strings or JSON integers, divide by 100 with no rounding."""
    body = json.loads(COST_2026)
    body["has_more"] = False
    body["data"][0]["results"][0]["amount"] = amount
    (row,) = harness(page(body)).client.cost_report(START)
    assert row.amount_usd == usd


def test_cost_amount_json_number_is_read_without_float() -> None:
    """A JSON number amount keeps all its digits (no binary float on the way)."""
    text = COST_2026.replace('"123.78912"', "123.789120000000000000001").replace(
        '"has_more": true', '"has_more": false'
    )
    (row,) = harness(page(text)).client.cost_report(START)
    assert row.amount_usd == Decimal("1.23789120000000000000001")


def test_null_groupings_are_preserved() -> None:
    """workspace_id null (default workspace) and api_key_id null (Console) stay None."""
    body = usage_page(usage_result(workspace_id=None, api_key_id=None))
    (row,) = harness(page(body)).client.usage(START)
    assert row.key.workspace_id is None
    assert row.key.api_key_id is None
    assert row.key.model == "claude-haiku-4-5"


def test_absent_nested_objects_count_as_zero() -> None:
    """A result without cache_creation or server_tool_use has zero of those counts."""
    result = usage_result()
    del result["cache_creation"]
    del result["server_tool_use"]
    (row,) = harness(page(usage_page(result))).client.usage(START)
    assert row.counts.cache_creation_5m_tokens == 0
    assert row.counts.cache_creation_1h_tokens == 0
    assert row.counts.web_search_requests == 0
    assert row.counts.uncached_input_tokens == 10


def test_unknown_fields_are_ignored_at_every_level() -> None:
    """Fields Anthropic may add later, at any depth, change nothing."""
    result = usage_result(speed="fast", account_id="user_1", future={"x": [1, 2]})
    result["cache_creation"]["ephemeral_24h_input_tokens"] = 99
    result["server_tool_use"]["web_fetch_requests"] = 5
    body = usage_page(result)
    body["data"][0]["bucket_kind"] = "full"
    body["warnings"] = ["new"]
    (row,) = harness(page(body)).client.usage(START)
    assert row.counts == TokenCounts(10, 1, 2, 3, 4, 0)


def test_empty_buckets_are_reported_with_no_rows() -> None:
    """A bucket with results [] contributes its start but no rows."""
    body = usage_page()
    (got,) = list(harness(page(body)).client.usage_pages(START))
    assert got.rows == ()
    assert got.bucket_starts == (START,)


def test_paging_passes_cursor_verbatim_and_stops() -> None:
    """Each next_page is sent back unchanged as page=, and paging stops at has_more false."""
    cursors = ["page_MjAyNS0wNS0xNFQwMDowMDowMFo=", "page_a+b/c==&x=1"]
    h = harness(
        page(usage_page(usage_result(), has_more=True, cursor=cursors[0])),
        page(
            usage_page(
                usage_result(), start=START + timedelta(hours=1), has_more=True, cursor=cursors[1]
            )
        ),
        page(usage_page(usage_result(), start=START + timedelta(hours=2), cursor="ignored")),
    )
    rows = h.client.usage(START)
    assert [row.key.bucket_start.hour for row in rows] == [0, 1, 2]
    sent = [request.url.params.get("page") for request in h.api.requests]
    assert sent == [None, *cursors]


@pytest.mark.parametrize(
    ("second", "max_pages", "yielded"),
    [
        pytest.param(usage_page(has_more=True, cursor=None), 50, 1, id="has-more-without-cursor"),
        pytest.param(usage_page(has_more=True, cursor="c1"), 50, 1, id="cursor-repeats"),
        pytest.param(usage_page(has_more=True, cursor="c2"), 2, 2, id="more-than-max-pages"),
    ],
)
def test_stuck_cursor_is_a_permanent_error(
    second: dict[str, Any], max_pages: int, yielded: int
) -> None:
    """A cursor that does not advance stops paging (permanent); its page is not yielded."""
    h = harness(
        page(usage_page(usage_result(), has_more=True, cursor="c1")),
        page(second),
        page(usage_page(has_more=True, cursor="c3")),
        max_pages=max_pages,
    )
    got, err = collect(h.client.usage_pages(START))
    assert isinstance(err, AdminAPIError)
    assert not isinstance(err, MalformedResponse)
    assert err.transient is False
    assert "did not advance" in str(err)
    assert len(got) == yielded
    assert len(h.api.requests) == 2


def test_page_after_a_good_one_can_fail_alone() -> None:
    """A malformed second page raises after the first page was yielded; nothing of it is."""
    bad = usage_page(usage_result(), usage_result(output_tokens=-1))
    h = harness(page(usage_page(usage_result(), has_more=True, cursor="c1")), page(bad))
    got, err = collect(h.client.usage_pages(START))
    assert len(got) == 1
    assert isinstance(err, MalformedResponse)
    assert "usage report page 2" in str(err)


@pytest.mark.parametrize(("width", "limit"), [("1m", "1440"), ("1h", "168"), ("1d", "31")])
def test_usage_request_format(width: Any, limit: str) -> None:
    """Headers, RFC 3339 times, limit = max for the width, repeated group_by[] and filters."""
    h = harness(page(LAST_PAGE))
    h.client.usage(
        datetime(2026, 3, 1, 12, 30, 15, 999, tzinfo=UTC),
        datetime(2026, 3, 2, tzinfo=timezone(timedelta(hours=2))),
        bucket_width=width,
        api_key_ids=("apikey_1", "apikey_2"),
        workspace_ids=("wrkspc_1",),
        models=("claude-opus-4-6",),
        service_tiers=("batch", "standard"),
    )
    (request,) = h.api.requests
    assert request.method == "GET"
    assert request.url.path == "/v1/organizations/usage_report/messages"
    assert request.headers["x-api-key"] == ADMIN_KEY
    assert request.headers["anthropic-version"] == "2023-06-01"
    assert request.headers["user-agent"] == f"creditwatch/{__version__}"
    params = request.url.params
    assert params["starting_at"] == "2026-03-01T12:30:15Z"
    assert params["ending_at"] == "2026-03-01T22:00:00Z"
    assert params["bucket_width"] == width
    assert params["limit"] == limit
    assert params.get_list("group_by[]") == list(ALL_GROUP_BY)
    assert params.get_list("api_key_ids[]") == ["apikey_1", "apikey_2"]
    assert params.get_list("workspace_ids[]") == ["wrkspc_1"]
    assert params.get_list("models[]") == ["claude-opus-4-6"]
    assert params.get_list("service_tiers[]") == ["batch", "standard"]
    assert "page" not in params
    assert "group_by%5B%5D=api_key_id&group_by%5B%5D=workspace_id" in str(request.url)


def test_cost_request_format() -> None:
    """Cost report asks for 1d buckets, limit 31, grouped by workspace and description."""
    h = harness(page(LAST_PAGE))
    h.client.cost_report(START)
    (request,) = h.api.requests
    assert request.url.path == "/v1/organizations/cost_report"
    params = request.url.params
    assert params["bucket_width"] == "1d"
    assert params["limit"] == "31"
    assert params.get_list("group_by[]") == ["workspace_id", "description"]
    assert params["starting_at"] == "2025-08-01T00:00:00Z"
    assert "ending_at" not in params


@pytest.mark.parametrize(
    "call",
    [
        pytest.param(lambda c: c.usage(datetime(2025, 8, 1)), id="usage-naive-start"),  # noqa: DTZ001
        pytest.param(
            lambda c: c.usage(START, datetime(2025, 8, 2)),  # noqa: DTZ001
            id="usage-naive-end",
        ),
        pytest.param(lambda c: c.cost_report(datetime(2025, 8, 1)), id="cost-naive"),  # noqa: DTZ001
        pytest.param(lambda c: c.usage(START, START), id="empty-range"),
        pytest.param(lambda c: c.usage(START, bucket_width="5m"), id="bad-width"),
        pytest.param(lambda c: c.usage(START, group_by=("speed",)), id="unmodelled-group"),
        pytest.param(lambda c: c.cost_report(START, group_by=("model",)), id="bad-cost-group"),
    ],
)
def test_bad_arguments_raise_value_error_before_any_request(
    call: Callable[[AdminClient], object],
) -> None:
    """Naive datetimes, empty ranges and unsupported options are refused locally."""
    h = harness()
    with pytest.raises(ValueError):  # noqa: PT011 - each case has its own message
        call(h.client)
    assert h.api.requests == []


def test_a_bare_string_filter_is_refused() -> None:
    """models="claude-x" would send one value per character, so it is a TypeError."""
    with pytest.raises(TypeError, match="not a string"):
        harness().client.usage(START, models="claude-opus-4-6")


TRANSIENT_ANSWERS = [
    pytest.param(error(429, "rate_limit_error", "slow down"), id="429"),
    pytest.param(error(500, "api_error", "internal"), id="500"),
    pytest.param(page("<html>bad gateway</html>", 502), id="502-html"),
    pytest.param(page("", 503), id="503-empty"),
    pytest.param(error(504, "timeout_error", "gateway timeout"), id="504"),
    pytest.param(error(529, "overloaded_error", "Overloaded"), id="529"),
    pytest.param(httpx.ConnectError, id="connect-error"),
    pytest.param(httpx.ConnectTimeout, id="connect-timeout"),
    pytest.param(httpx.ReadTimeout, id="read-timeout"),
    pytest.param(httpx.RemoteProtocolError, id="remote-protocol-error"),
]


@pytest.mark.parametrize("failure", TRANSIENT_ANSWERS)
def test_transient_failures_are_retried_then_succeed(failure: Answer) -> None:
    """One transient failure (status, timeout or connection error) is retried once."""
    h = harness(failure, failure, page(usage_page(usage_result())))
    rows = h.client.usage(START)
    assert len(rows) == 1
    assert len(h.api.requests) == 3
    assert len(h.sleeps) == 2


@pytest.mark.parametrize("failure", TRANSIENT_ANSWERS)
def test_exhausted_retries_raise_a_transient_error(failure: Answer) -> None:
    """After max_retries, the last failure is raised as a one-line transient AdminAPIError."""
    h = harness(*[failure] * 4, retry=RetryPolicy(max_retries=3))
    with pytest.raises(AdminAPIError) as caught:
        h.client.usage(START)
    err = caught.value
    assert err.transient is True
    assert not isinstance(err, AdminAPIAuthError | MalformedResponse)
    assert len(h.api.requests) == 4
    assert len(h.sleeps) == 3
    message = str(err)
    assert "\n" not in message
    assert "/v1/organizations/usage_report/messages" in message
    assert "gave up after 4 attempts" in message


def test_exhausted_message_names_status_type_message_and_request_id() -> None:
    """The give-up message carries Anthropic's status, error type, message and request id."""
    h = harness(*[error(529, "overloaded_error", "Overloaded")] * 2, retry=RetryPolicy(1))
    with pytest.raises(AdminAPIError) as caught:
        h.client.usage(START)
    assert caught.value.status == 529
    assert caught.value.error_type == "overloaded_error"
    assert caught.value.request_id == "req_529"
    for part in ("529", "overloaded_error", "Overloaded", "req_529"):
        assert part in str(caught.value)


def test_backoff_is_capped_exponential_with_full_jitter() -> None:
    """Without retry-after, delay n lies in [0, min(max_delay, base * 2**n)]."""
    policy = RetryPolicy(max_retries=6, base_delay=1.0, max_delay=5.0)
    h = harness(*[page("", 503)] * 6, page(LAST_PAGE), retry=policy)
    h.client.usage(START)
    assert len(h.sleeps) == 6
    for n, delay in enumerate(h.sleeps):
        assert 0.0 <= delay <= min(5.0, 2.0**n)


def http_date(seconds_from_now: float) -> str:
    return format_datetime(datetime.now(UTC) + timedelta(seconds=seconds_from_now), usegmt=True)


@pytest.mark.parametrize(
    ("header", "at_least"),
    [
        pytest.param("7", 7.0, id="seconds"),
        pytest.param("2.5", 2.5, id="fractional-seconds"),
        pytest.param("http-date+30s", 28.0, id="http-date"),
        pytest.param("60", 60.0, id="exactly-the-cap"),
    ],
)
def test_retry_after_is_honoured_up_to_the_cap(header: str, at_least: float) -> None:
    """A 429's retry-after (seconds or HTTP-date) sets a delay ≥ it and ≤ the cap."""
    if header == "http-date+30s":
        header = http_date(30)  # whole seconds: the delay is within (29, 30]
    h = harness(
        error(429, "rate_limit_error", "slow down", **{"retry-after": header}),
        page(LAST_PAGE),
    )
    h.client.usage(START)
    (delay,) = h.sleeps
    assert at_least <= delay <= RetryPolicy().retry_after_cap


def test_retry_after_beyond_the_cap_gives_up_at_once() -> None:
    """A retry-after longer than the cap is not slept on: transient error, no retry."""
    h = harness(error(429, "rate_limit_error", "spend limit", **{"retry-after": "3600"}))
    with pytest.raises(AdminAPIError) as caught:
        h.client.usage(START)
    assert caught.value.transient is True
    assert caught.value.status == 429
    assert "exceeds the 60s cap" in str(caught.value)
    assert h.sleeps == []
    assert len(h.api.requests) == 1


@pytest.mark.parametrize("header", ["soon", "", "-5", "nan"])
def test_unusable_retry_after_falls_back_to_backoff(header: str) -> None:
    """A retry-after that is not a time is ignored, never a crash or a negative sleep."""
    h = harness(error(429, "rate_limit_error", "x", **{"retry-after": header}), page(LAST_PAGE))
    h.client.usage(START)
    (delay,) = h.sleeps
    assert 0.0 <= delay <= RetryPolicy().max_delay


@pytest.mark.parametrize(
    ("status", "error_type", "expected", "hint"),
    [
        (400, "invalid_request_error", AdminAPIError, "invalid_request_error"),
        (401, "authentication_error", AdminAPIAuthError, "rejected the admin key"),
        (403, "permission_error", AdminAPIAuthError, "lacks admin permission"),
        (404, "not_found_error", AdminAPIError, "not_found_error"),
        (301, None, AdminAPIError, "redirect"),
    ],
)
def test_permanent_errors_are_not_retried(
    status: int, error_type: str | None, expected: type[AdminAPIError], hint: str
) -> None:
    """400/401/403/404 (and redirects) fail after exactly one request."""
    answer = (
        error(status, error_type, "no")
        if error_type
        else page("", status, location="https://elsewhere.test/")
    )
    h = harness(answer)
    with pytest.raises(AdminAPIError) as caught:
        h.client.usage(START)
    err = caught.value
    assert type(err) is expected
    assert err.transient is False
    assert err.status == status
    assert hint in str(err)
    if status in (401, 403):
        assert "ANTHROPIC_ADMIN_KEY" in str(err)
    assert len(h.api.requests) == 1
    assert h.sleeps == []


def test_error_without_json_body_is_described_by_status() -> None:
    """A 404 with a plain-text body still gives a clear permanent error."""
    h = harness(page("Not Found", 404, **{"request-id": "req_hdr"}))
    with pytest.raises(AdminAPIError) as caught:
        h.client.organization_name()
    assert "404 Not Found" in str(caught.value)
    assert caught.value.request_id == "req_hdr"
    assert caught.value.error_type is None


def _mutated(mutate: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    good = usage_result()
    body = usage_page(good, good | {"model": "claude-opus-4-6"})
    body["data"].append(usage_page(usage_result(), start=START + timedelta(hours=1))["data"][0])
    mutate(body)
    return body


def _set_result(key: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def mutate(body: dict[str, Any]) -> None:
        body["data"][1]["results"][0][key] = value

    return mutate


def _set(path: tuple[Any, ...], value: Any) -> Callable[[dict[str, Any]], None]:
    def mutate(body: dict[str, Any]) -> None:
        target: Any = body
        for step in path[:-1]:
            target = target[step]
        target[path[-1]] = value

    return mutate


def _delete(path: tuple[Any, ...]) -> Callable[[dict[str, Any]], None]:
    def mutate(body: dict[str, Any]) -> None:
        target: Any = body
        for step in path[:-1]:
            target = target[step]
        del target[path[-1]]

    return mutate


MALFORMED = [
    pytest.param(_set(("data",), {"a": 1}), "body.data", id="data-not-list"),
    pytest.param(_delete(("data",)), "body.data: missing", id="data-missing"),
    pytest.param(_set(("has_more",), "false"), "body.has_more", id="has-more-string"),
    pytest.param(_delete(("has_more",)), "body.has_more: missing", id="has-more-missing"),
    pytest.param(_set(("next_page",), 7), "body.next_page", id="next-page-number"),
    pytest.param(_set(("data", 1), []), "data[1]", id="bucket-not-object"),
    pytest.param(_delete(("data", 1, "starting_at")), "data[1].starting_at", id="start-missing"),
    pytest.param(
        _set(("data", 1, "starting_at"), "2025-08-01T01:00:00"), "no UTC offset", id="start-naive"
    ),
    pytest.param(
        _set(("data", 1, "ending_at"), "yesterday"), "data[1].ending_at", id="end-garbage"
    ),
    pytest.param(_set(("data", 1, "ending_at"), 1754000000), "data[1].ending_at", id="end-number"),
    pytest.param(
        _set(("data", 1, "ending_at"), "2025-08-01T00:00:00Z"), "not after", id="end-before-start"
    ),
    pytest.param(_set(("data", 1, "results"), None), "data[1].results", id="results-null"),
    pytest.param(_set(("data", 1, "results"), [5]), "data[1].results[0]", id="result-number"),
    pytest.param(_set_result("output_tokens", -1), "output_tokens", id="negative-count"),
    pytest.param(_set_result("output_tokens", 1.5), "output_tokens", id="float-count"),
    pytest.param(_set_result("output_tokens", 4.0), "output_tokens", id="integral-float-count"),
    pytest.param(_set_result("output_tokens", "4"), "output_tokens", id="string-count"),
    pytest.param(_set_result("output_tokens", True), "output_tokens", id="bool-count"),
    pytest.param(_set_result("output_tokens", None), "output_tokens", id="null-count"),
    pytest.param(
        _delete(("data", 1, "results", 0, "uncached_input_tokens")),
        "uncached_input_tokens: missing",
        id="count-missing",
    ),
    pytest.param(_set_result("cache_creation", None), "cache_creation", id="nested-null"),
    pytest.param(_set_result("server_tool_use", [1]), "server_tool_use", id="nested-array"),
    pytest.param(
        _set_result("cache_creation", {"ephemeral_5m_input_tokens": "1"}),
        "ephemeral_5m_input_tokens",
        id="nested-string",
    ),
    pytest.param(_set_result("model", 42), "results[0].model", id="group-number"),
    pytest.param(_set_result("workspace_id", {"id": "w"}), "workspace_id", id="group-object"),
    pytest.param(
        _set(("data", 0, "results", 1), usage_result()), "same bucket", id="duplicate-key"
    ),
]


@pytest.mark.parametrize(("mutate", "complaint"), MALFORMED)
def test_malformed_page_is_rejected_whole(
    mutate: Callable[[dict[str, Any]], None], complaint: str
) -> None:
    """A page with one bad value raises MalformedResponse naming it; nothing is yielded."""
    h = harness(page(_mutated(mutate)))
    got, err = collect(h.client.usage_pages(START))
    assert got == []
    assert isinstance(err, MalformedResponse)
    assert err.transient is False
    assert complaint in str(err)
    assert "usage report page 1" in str(err)
    assert len(h.api.requests) == 1


def test_unmutated_malformed_fixture_is_valid() -> None:
    """The page the malformed cases start from is itself accepted (the cases are real)."""
    (got,) = list(harness(page(_mutated(lambda body: None))).client.usage_pages(START))
    assert len(got.rows) == 3


@pytest.mark.parametrize(
    "body",
    [
        pytest.param("<html>maintenance</html>", id="html"),
        pytest.param("", id="empty"),
        pytest.param('{"data": [', id="truncated"),
        pytest.param('{"data": [], "has_more": NaN, "next_page": null}', id="nan"),
        pytest.param("[]", id="array"),
        pytest.param("null", id="null"),
    ],
)
def test_non_json_or_non_object_body_is_malformed(body: str) -> None:
    """A 200 whose body is not a JSON object raises MalformedResponse, not a crash."""
    h = harness(page(body))
    got, err = collect(h.client.usage_pages(START))
    assert got == []
    assert isinstance(err, MalformedResponse)
    assert len(h.api.requests) == 1


@pytest.mark.parametrize(
    ("amount", "complaint"),
    [
        pytest.param("abc", "not a decimal", id="word"),
        pytest.param("NaN", "not a finite", id="nan-string"),
        pytest.param("Infinity", "not a finite", id="infinity-string"),
        pytest.param("", "not a decimal", id="empty"),
        pytest.param(None, "expected a decimal string", id="null"),
        pytest.param(True, "expected a decimal string", id="bool"),
        pytest.param({"value": "1"}, "expected a decimal string", id="object"),
    ],
)
def test_invalid_cost_amount_is_malformed(amount: object, complaint: str) -> None:
    """An amount that is not a finite decimal rejects the cost page."""
    body = json.loads(COST_2026)
    body["data"][0]["results"][0]["amount"] = amount
    h = harness(page(body))
    with pytest.raises(MalformedResponse, match=complaint) as caught:
        h.client.cost_report(START)
    assert "cost report page 1" in str(caught.value)
    assert "amount" in str(caught.value)


def test_api_key_names_follow_after_id_cursor() -> None:
    """API key names are paged with limit=1000 and after_id=last_id while has_more."""
    h = harness(
        page(
            {
                "data": [{"id": "apikey_1", "name": "prod", "status": "active"}],
                "has_more": True,
                "first_id": "apikey_1",
                "last_id": "apikey_1",
            }
        ),
        page(
            {
                "data": [{"id": "apikey_2", "name": "dev"}],
                "has_more": False,
                "first_id": "apikey_2",
                "last_id": "apikey_2",
            }
        ),
    )
    assert h.client.api_key_names() == {"apikey_1": "prod", "apikey_2": "dev"}
    first, second = h.api.requests
    assert first.url.path == "/v1/organizations/api_keys"
    assert first.url.params["limit"] == "1000"
    assert "after_id" not in first.url.params
    assert second.url.params["after_id"] == "apikey_1"
    assert second.headers["x-api-key"] == ADMIN_KEY


def test_workspace_names_include_archived_ones() -> None:
    """Workspace names include archived workspaces, since old usage still names them."""
    h = harness(
        page(
            {
                "data": [{"id": "wrkspc_1", "name": "Research", "archived_at": None}],
                "has_more": False,
                "first_id": None,
                "last_id": None,
            }
        )
    )
    assert h.client.workspace_names() == {"wrkspc_1": "Research"}
    (request,) = h.api.requests
    assert request.url.path == "/v1/organizations/workspaces"
    assert request.url.params["include_archived"] == "true"
    assert request.url.params["limit"] == "1000"


@pytest.mark.parametrize("last_id", [None, "apikey_1"])
def test_names_stuck_cursor_is_detected(last_id: str | None) -> None:
    """has_more with a missing or repeated last_id stops with a permanent error."""
    listing = {"data": [{"id": "apikey_1", "name": "a"}], "has_more": True, "last_id": "apikey_1"}
    h = harness(page(listing), page(listing | {"last_id": last_id}))
    with pytest.raises(AdminAPIError, match="did not advance") as caught:
        h.client.api_key_names()
    assert caught.value.transient is False


def test_names_page_with_bad_item_is_malformed() -> None:
    """A listed key whose name is not a string rejects the page."""
    h = harness(page({"data": [{"id": "apikey_1", "name": 3}], "has_more": False}))
    with pytest.raises(MalformedResponse, match=r"data\[0\]\.name"):
        h.client.api_key_names()


def test_organization_name() -> None:
    """The organization name comes from /v1/organizations/me."""
    h = harness(page({"id": "org_1", "type": "organization", "name": "Acme"}))
    assert h.client.organization_name() == "Acme"
    assert h.api.requests[0].url.path == "/v1/organizations/me"


def test_admin_key_absent_from_errors_logs_and_repr(caplog: pytest.LogCaptureFixture) -> None:
    """Neither messages (even echoing the key), log records nor repr show the admin key."""
    caplog.set_level(logging.DEBUG)
    h = harness(
        error(529, "overloaded_error", f"overloaded for {ADMIN_KEY}"),
        httpx.ConnectError,
        page(usage_page(usage_result())),
    )
    h.client.usage(START)
    h.api.answers = [error(401, "authentication_error", f"invalid x-api-key {ADMIN_KEY}")]
    with pytest.raises(AdminAPIAuthError) as caught:
        h.client.usage(START)
    assert "<redacted>" in str(caught.value)
    texts = [str(caught.value), repr(caught.value), caplog.text, repr(h.client)]
    for text in texts:
        assert ADMIN_KEY not in text
        assert "SECRETtestkey" not in text
    retry_logs = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(retry_logs) == 2
    assert all("usage_report/messages" in r.getMessage() for r in retry_logs)
    assert all("starting_at" not in r.getMessage() for r in retry_logs)


@pytest.mark.parametrize("key", ["", "sk-ant-admin01-with space", "sk-ant\n", "sk-ant-é"])
def test_unusable_admin_key_is_refused_without_echoing_it(key: str) -> None:
    """A key that cannot be a header value is a ValueError whose message omits it."""
    http = build_http_client(BASE_URL, transport=httpx.MockTransport(ScriptedAPI()))
    with pytest.raises(ValueError, match="admin key") as caught:
        AdminClient(http, key)
    if key:
        assert key not in str(caught.value)


def test_http_client_factory_settings() -> None:
    """The factory sets base URL, timeouts (connect 10 s), User-Agent and no redirects."""
    client = build_http_client(BASE_URL, timeout=20.0, headers={"X-Extra": "1"})
    assert client.base_url.host == "api.anthropic.test"
    assert client.timeout == httpx.Timeout(20.0, connect=10.0)
    assert client.headers["user-agent"] == f"creditwatch/{__version__}"
    assert client.headers["x-extra"] == "1"
    assert client.follow_redirects is False
    client.close()


def test_http_loggers_are_quietened() -> None:
    """httpx and httpcore log at WARNING and above only (their INFO lines carry URLs)."""
    logging.getLogger("httpx").setLevel(logging.DEBUG)
    quiet_http_loggers()
    assert logging.getLogger("httpx").level == logging.WARNING
    assert logging.getLogger("httpcore").level == logging.WARNING


def test_usage_concatenates_rows_of_every_page() -> None:
    """usage() returns the rows of all pages in order."""
    h = harness(
        page(usage_page(usage_result(), has_more=True, cursor="c1")),
        page(usage_page(usage_result(model="m2"), usage_result(model="m3"))),
    )
    rows = h.client.usage(START)
    assert all(isinstance(row, UsageRow) for row in rows)
    assert [row.key.model for row in rows] == ["claude-haiku-4-5", "m2", "m3"]


@pytest.mark.parametrize("failure", [httpx.UnsupportedProtocol, httpx.DecodingError])
def test_request_errors_that_retrying_cannot_fix_are_permanent(
    failure: type[httpx.RequestError],
) -> None:
    """A bad URL scheme or an undecodable body fails at once, not after retries."""
    h = harness(failure)
    with pytest.raises(AdminAPIError) as caught:
        h.client.usage(START)
    assert caught.value.transient is False
    assert len(h.api.requests) == 1


@pytest.mark.parametrize(
    "body",
    [
        pytest.param('["error"]', id="array"),
        pytest.param('{"error": "text"}', id="error-not-object"),
        pytest.param('{"error": {"type": 5, "message": null}}', id="wrong-types"),
    ],
)
def test_odd_error_bodies_do_not_crash(body: str) -> None:
    """Error bodies of unexpected shape still produce a permanent error naming the status."""
    h = harness(page(body, 400))
    with pytest.raises(AdminAPIError, match="400 Bad Request") as caught:
        h.client.usage(START)
    assert caught.value.error_type is None


def test_absent_nested_count_is_zero() -> None:
    """cache_creation without its 1h key (older responses) counts 0 for it."""
    result = usage_result(cache_creation={"ephemeral_5m_input_tokens": 7})
    (row,) = harness(page(usage_page(result))).client.usage(START)
    assert row.counts.cache_creation_5m_tokens == 7
    assert row.counts.cache_creation_1h_tokens == 0


def test_malformed_organization_is_rejected() -> None:
    """/v1/organizations/me without a string name raises MalformedResponse."""
    with pytest.raises(MalformedResponse, match=r"body\.name: missing"):
        harness(page({"id": "org_1"})).client.organization_name()


def test_invalid_construction_is_refused() -> None:
    """Negative retry settings and max_pages < 1 are ValueErrors."""
    with pytest.raises(ValueError, match="non-negative"):
        RetryPolicy(max_retries=-1)
    http = build_http_client(BASE_URL, transport=httpx.MockTransport(ScriptedAPI()))
    with pytest.raises(ValueError, match="max_pages"):
        AdminClient(http, ADMIN_KEY, max_pages=0)
    with pytest.raises(TypeError, match="not a string"):
        harness().client.usage(START, group_by="model")


def test_a_read_page_is_freed_without_the_cyclic_collector() -> None:
    """A page's response (its body megabytes on a backfill) is freed when the page has been
    parsed: nothing of it waits in a reference cycle for the garbage collector."""
    answered: list[weakref.ref[httpx.Response]] = []

    def answer(request: httpx.Request) -> httpx.Response:
        response = page(usage_page(usage_result()))
        answered.append(weakref.ref(response))
        return response

    h = harness(answer)
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        rows = h.client.usage(START, START + timedelta(hours=1))
        assert len(rows) == 1
        assert len(answered) == 1
        assert answered[0]() is None
    finally:
        if was_enabled:
            gc.enable()
