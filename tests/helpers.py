"""Helpers shared by several test modules (tests never import each other)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from service.admin_api.retry import RetryPolicy
from service.commands.main import main
from service.domain.usage import TokenCounts, UsageKey
from service.store.usage_booking import PricedCost


def flat_price(key: UsageKey, counts: TokenCounts) -> PricedCost:
    """A simple exact pricer: 1,000 nano-dollars per token, 7 per web search."""
    tokens = (
        counts.uncached_input_tokens
        + counts.cache_creation_5m_tokens
        + counts.cache_creation_1h_tokens
        + counts.cache_read_tokens
        + counts.output_tokens
    )
    unknown = key.model if key.model and key.model.startswith("mystery") else None
    return PricedCost(
        cost_nanos=tokens * 1000 + counts.web_search_requests * 7,
        estimated=unknown is not None,
        unknown_model=unknown,
        priced_as="claude-opus-4" if unknown else None,
    )


# The simulator's wire, read with plain httpx (the simulator tests use no client code).

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


# The commands, run in-process with an injected clock and retry policy.

CLI_KEY = "sk-ant-admin01-cli-test-key-abcdefghijklmnop"
CLI_NOW = datetime(2026, 11, 10, 15, 20, tzinfo=UTC)
CLI_RETRY = RetryPolicy(max_retries=1, base_delay=0.001, max_delay=0.001)


def run_cli(
    capsys: pytest.CaptureFixture[str],
    *args: str,
    now: datetime = CLI_NOW,
    retry: RetryPolicy = CLI_RETRY,
    transport: httpx.BaseTransport | None = None,
) -> tuple[int, str, str]:
    """`creditwatch ARGS` in this process at ``now``; returns (exit status, stdout, stderr)."""
    try:
        code = main(list(args), clock=lambda: now, retry=retry, transport=transport)
    except SystemExit as exit_:  # argparse rejects bad arguments this way
        code = int(exit_.code or 0)
    out = capsys.readouterr()
    return code, out.out, out.err


def exploding(request: httpx.Request) -> httpx.Response:
    """A transport failing in a way nothing anticipates (a bug, not an outage)."""
    raise RuntimeError(f"boom while asking {request.url.path} with {CLI_KEY}")
