"""Helpers shared by several test modules (tests never import each other)."""

from __future__ import annotations

import copy
import os
import shutil
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, delete
from sqlalchemy.orm import Session

from service.admin_api.retry import RetryPolicy
from service.commands.main import main
from service.domain.credit_terms import CreditTerms
from service.domain.credit_walk import WalkResult, walk
from service.domain.usage import UsageKey
from service.render.view import AlertView
from service.store.credit_sync import bucket_charges, stated_lots
from service.store.engine import transaction
from service.store.ledger_entries import opening_entry
from service.store.tables import (
    BillAdjustment,
    LedgerEntry,
    ReloadBlock,
    StoredSetting,
    UnknownModel,
    UsageRecord,
    UsageSeries,
    WalkChange,
    WalkCheckpointRecord,
)
from service.store.usage_booking import Rate

LEDGER_TABLES: tuple[type[Any], ...] = (
    LedgerEntry,
    UsageRecord,
    UsageSeries,
    UnknownModel,
    ReloadBlock,
    BillAdjustment,
    StoredSetting,
    WalkCheckpointRecord,
    WalkChange,
)


def empty_ledger(engine: Engine, *first: type[Any]) -> None:
    """Empty the ledger's tables (and ``first``, emptied before them) between the examples of
    a property test, which share one database."""
    with transaction(engine) as session:
        for table in (*first, *LEDGER_TABLES):
            session.execute(delete(table))


def flat_nanos(values: Sequence[int]) -> int:
    """1,000 nano-dollars per token, 7 per web search (counts in ``TokenCounts`` order)."""
    *tokens, searches = values
    return sum(tokens) * 1000 + searches * 7


def flat_price(key: UsageKey) -> Rate:
    """A simple exact pricer (``flat_nanos``); a model named ``mystery…`` is unknown."""
    unknown = key.model if key.model and key.model.startswith("mystery") else None
    return Rate(
        flat_nanos,
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

VISIBILITY_CASES = [
    (timedelta(minutes=5), timedelta(hours=1)),
    (timedelta(0), timedelta(0)),
    (timedelta(hours=2), timedelta(0)),
    (timedelta(0), timedelta(minutes=30)),
]
"""Simulator (visibility delay, growth period) pairs that the finality tests run through."""

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


def outside_tool(name: str, package: str) -> str:
    """The path of an outside program a test reads our output with (chromium, promtool, …).

    Missing, the test skips on a developer's machine; in CI (``CW_REQUIRE_TOOLS=1``, where
    ``.ci/run`` installs them) it fails, so an independent reader cannot silently drop out.
    """
    found = shutil.which(name)
    if found is None:
        reason = f"{name} is missing (apt install {package})"
        if os.environ.get("CW_REQUIRE_TOOLS") == "1":
            pytest.fail(f"CW_REQUIRE_TOOLS=1 but {reason}")
        pytest.skip(reason)
    return found


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


# Alerts as the channels see them.


def sample_alert_view(
    *,
    kind: str = "alert",
    severity: str = "warning",
    drivers: int = 3,
    tricky_names: bool = False,
    notice: int = 1,
) -> AlertView:
    """A budget alert as the outbox stores it, read back: what every channel renders."""
    from datetime import timedelta
    from decimal import Decimal

    from service.alerts.model import Alert, Content, Driver, Freshness, Identity, Situation

    now = datetime(2026, 11, 20, 14, 5, tzinfo=UTC)
    usd = 10**9
    name = "Prod <script>&*_~`|" if tricky_names else "Production"
    all_drivers = [
        Driver("model", "claude-opus-4-6", "claude-opus-4-6", 210 * usd, 40 * usd),
        Driver("api_key", "apikey_01", "ci-runner", 120 * usd, None),
        Driver("workspace", "wrkspc_01", name, 330 * usd, -5 * usd),
    ]
    all_drivers += [
        Driver("api_key", f"apikey_{i:02d}", f"key-{i}", (50 - i) * usd) for i in range(40)
    ]
    identity = Identity("budget:monthly", "org", "2026-11", "80%")
    dedup_id = identity.key
    alert = Alert(
        dedup_id=dedup_id,
        message_id=dedup_id if notice == 1 else f"{dedup_id}:{notice}",
        kind=kind,  # type: ignore[arg-type]
        identity=identity,
        content=Content(
            severity=severity,  # type: ignore[arg-type]
            title="Budget 'monthly' crossed 80%: $412.30 of $500.00 (2026-11)",
            summary=(
                "Spend across the organization in 2026-11 (UTC) reached $412.30, 82.5% of the "
                "$500.00 limit; the 80% threshold ($400.00) is exceeded by $12.30."
            ),
            rule_name="budget monthly",
            value_nanos=41230 * usd // 100,
            limit_nanos=500 * usd,
            threshold_nanos=400 * usd,
            percent=Decimal("82.5"),
            period_label="2026-11",
            period_start=datetime(2026, 11, 1, tzinfo=UTC),
            period_end=datetime(2026, 12, 1, tzinfo=UTC),
            drivers=tuple(all_drivers[:drivers]),
        ),
        situation=Situation(
            now=now,
            balance_nanos=1234567 * usd // 1000,
            runway_until=now + timedelta(days=3, hours=4),
            runway_note=None,
            freshness=Freshness(now.replace(minute=0), now - timedelta(minutes=1)),
        ),
        previous_message_id=None if notice == 1 else dedup_id,
    )
    return AlertView.from_json(alert.to_json())


def whole_walk(session: Session, width: str, terms: CreditTerms, now: datetime) -> WalkResult:
    """The walk from the starting balance over every stored charge, without a checkpoint: what
    the checkpointed walk and the booked ledger must agree with."""
    opening = opening_entry(session)
    assert opening is not None, "a starting balance is set"
    return walk(
        stated_lots(session, terms.lifetime),
        bucket_charges(session, width),
        start=opening.at,
        until=now,
        policy=terms.policy,
        lot_lifetime=terms.lifetime,
    )


def changed(row: dict[str, Any], path: str, value: object) -> dict[str, Any]:
    """A copy of the wire ``row`` with the value at dotted ``path`` replaced (removed when
    ``value`` is ``...``): one value out of shape, for the parsers' rejection tests."""
    row = copy.deepcopy(row)
    *parents, last = path.split(".")
    target = row
    for name in parents:
        target = target[name]
    if value is ...:
        del target[last]
    else:
        target[last] = value
    return row
