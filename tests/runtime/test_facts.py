"""What the rules read: budget spend by scope (ids, names, model families, Anthropic's nulls)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine

from service.domain.usage import TokenCounts, UsageKey, UsageRow
from service.runtime.facts import budget_facts
from service.settings import load_settings
from service.store.engine import transaction
from service.store.names import save_names
from service.store.usage_booking import book_usage
from tests.helpers import flat_price

T0 = datetime(2026, 11, 2, tzinfo=UTC)
NOW = T0 + timedelta(hours=20)
USD = 10**9
# (model, api key, workspace, dollars): None is Anthropic's null (Console use, default workspace).
USAGE = [
    ("claude-sonnet-4-5-20250929", "apikey_ci", "wrkspc_prod", 10),
    ("claude-sonnet-4-5", "apikey_web", "wrkspc_prod", 20),
    ("claude-sonnet-4-6", "apikey_web", "wrkspc_prod", 40),
    ("claude-opus-4-1-20250805", "apikey_ci", "wrkspc_stage", 80),
    ("claude-opus-4-6", None, None, 160),
    ("claude-haiku-4-5", "apikey_web", None, 320),
]


@pytest.fixture
def ledger(engine: Engine) -> Engine:
    rows = [
        UsageRow(
            UsageKey(T0, "1h", model, key, workspace, "standard", "0-200k", "global"),
            TokenCounts(uncached_input_tokens=usd * 10**6),
        )
        for model, key, workspace, usd in USAGE
    ]
    with transaction(engine) as session:
        book_usage(session, rows, flat_price, now=T0)
        save_names(session, "api_key", {"apikey_ci": "CI", "apikey_web": "Web app"}, T0)
        save_names(
            session, "workspace", {"wrkspc_prod": "Production", "wrkspc_stage": "Staging"}, T0
        )
    return engine


@pytest.mark.parametrize(
    ("scope", "dollars"),
    [
        ("", 630),
        ("workspace=wrkspc_prod", 70),
        ("workspace=Production", 70),
        ("workspace=production", 70),  # names match without regard to case
        ("workspace=default", 480),  # the default workspace: Anthropic's null
        ("api_key=CI", 90),
        ("api_key=console", 160),  # Console use: no API key
        ("model=claude-sonnet-4-5", 30),  # the family prefix takes its snapshots, not 4-6
        ("model=claude-sonnet-4", 0),  # claude-sonnet-4-5 is another version, not a snapshot
        ("model=claude-opus-4-1", 80),
        ("workspace=Production api_key=apikey_web", 60),
        ("workspace=Production api_key=apikey_web model=claude-sonnet-4-6", 40),
        ("workspace=Nowhere", 0),
    ],
)
def test_budget_scopes_match_by_id_name_family_and_null(
    ledger: Engine, db_url: str, scope: str, dollars: int
) -> None:
    """A budget scoped by workspace, key or model spends only what its scope spent."""
    settings = load_settings(
        {
            "ANTHROPIC_ADMIN_KEY": "sk-ant-admin01-facts",
            "CREDITWATCH_DATABASE_URL": db_url,
            "CREDITWATCH_BUDGET_SCOPED": f"limit=1000 period=day {scope}".strip(),
        },
        None,
        now=NOW,
    )
    with transaction(ledger) as session:
        (budget,) = budget_facts(session, settings, NOW)
    assert budget.spent_nanos == dollars * USD
    assert (
        sum(d.amount_nanos for d in budget.drivers if d.dimension == "workspace") <= dollars * USD
    )


def test_drivers_carry_names_and_the_nulls_are_named(ledger: Engine, db_url: str) -> None:
    """Top models, keys and workspaces by spend; Console and the default workspace by name."""
    settings = load_settings(
        {
            "ANTHROPIC_ADMIN_KEY": "sk-ant-admin01-facts",
            "CREDITWATCH_DATABASE_URL": db_url,
            "CREDITWATCH_MONTHLY_BUDGET": "1000",
        },
        None,
        now=NOW,
    )
    with transaction(ledger) as session:
        (budget,) = budget_facts(session, settings, NOW)
    named = [(d.dimension, d.name, d.amount_nanos // USD) for d in budget.drivers]
    assert named == [
        ("model", "claude-haiku-4-5", 320),
        ("model", "claude-opus-4-6", 160),
        ("model", "claude-opus-4-1-20250805", 80),
        ("api_key", "Web app", 380),
        ("api_key", "Console (no API key)", 160),
        ("api_key", "CI", 90),
        ("workspace", "Default workspace", 480),
        ("workspace", "Staging", 80),
        ("workspace", "Production", 70),
    ]
