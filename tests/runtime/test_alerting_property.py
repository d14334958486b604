"""A property over random histories of usage, cycles, restarts, threshold edits and months:
each identity is produced at most once, and every threshold crossed is produced at least once
unless a higher one of the same budget was produced first in that period."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine

from service.alerts.rules.budget import rank
from service.domain.periods import period_at
from service.domain.usage import TokenCounts, UsageKey, UsageRow
from service.runtime.alerting import evaluate
from service.settings import Settings, load_settings
from service.store.engine import make_engine, transaction
from service.store.tables import (
    AlertRecord,
    OutboxAlert,
)
from service.store.usage_booking import book_usage
from tests.helpers import empty_ledger, flat_price

T0 = datetime(2026, 10, 1, tzinfo=UTC)
H = timedelta(hours=1)
USD = 10**9
LIMIT = 1000
LEVELS = (10, 25, 50, 75, 80, 90, 100, 120)

operation = st.one_of(
    st.tuples(st.just("spend"), st.integers(1, 700)),
    st.tuples(st.just("cycle"), st.just(0)),
    st.tuples(st.just("cycle"), st.just(0)),
    st.tuples(st.just("restart"), st.just(0)),
    st.tuples(st.just("edit"), st.integers(1, 2 ** len(LEVELS) - 1)),
    st.tuples(st.just("next_month"), st.just(0)),
)


def budget_settings(db_url: str, mask: int) -> Settings:
    levels = [str(level) for i, level in enumerate(LEVELS) if mask & (1 << i)]
    return load_settings(
        {
            "ANTHROPIC_ADMIN_KEY": "sk-ant-admin01-property",
            "CREDITWATCH_DATABASE_URL": db_url,
            "CREDITWATCH_MONTHLY_BUDGET": str(LIMIT),
            "CREDITWATCH_ALERT_THRESHOLDS": ",".join(levels),
        },
        None,
        now=T0,
    )


def assert_covered(config: Settings, spent_usd: int, ranks: list[int], label: str) -> None:
    """Every threshold crossed now is covered by one produced at or above it in the period."""
    (budget,) = config.rules.budgets
    for percent in budget.percents:
        amount = int(Decimal(LIMIT * USD) * percent / 100)
        if spent_usd * USD >= amount:
            level = rank(amount, LIMIT * USD)
            assert any(top >= level for top in ranks), (
                f"{percent}% crossed in {label} but nothing at or above it was sent"
            )


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    first_mask=st.integers(1, 2 ** len(LEVELS) - 1),
    operations=st.lists(operation, min_size=1, max_size=30),
)
def test_each_identity_at_most_once_and_every_crossing_covered(
    engine: Engine, db_url: str, first_mask: int, operations: list[tuple[str, int]]
) -> None:
    """The dedup guarantees of DESIGN §2, over whatever happens in whatever order."""
    empty_ledger(engine, OutboxAlert, AlertRecord)
    current = engine
    config = budget_settings(db_url, first_mask)
    now = T0 + H
    spent: Counter[str] = Counter()  # per period label, in whole dollars
    produced: dict[str, list[int]] = {}  # period label -> ranks alerted
    alerts_per_id: Counter[str] = Counter()
    try:
        for kind, value in operations:
            now += H
            label = period_at("month", "UTC", now).label
            if kind == "spend":
                row = UsageRow(
                    UsageKey(now, "1h", "m", "k", "w", "standard", "0-200k", "global"),
                    TokenCounts(uncached_input_tokens=value * 10**6),
                )
                with transaction(current) as session:
                    book_usage(session, [row], flat_price, now=now)
                spent[label] += value
            elif kind == "restart":
                if current is not engine:
                    current.dispose()
                current = make_engine(db_url)
            elif kind == "edit":
                config = budget_settings(db_url, value)
            elif kind == "next_month":
                now = period_at("month", "UTC", now).end
            else:
                with transaction(current) as session:
                    result = evaluate(session, config, now)
                for alert in result.alerts:
                    alerts_per_id[alert.dedup_id] += 1
                    threshold = alert.content.threshold_nanos
                    assert threshold is not None
                    produced.setdefault(alert.identity.period, []).append(
                        rank(threshold, LIMIT * USD)
                    )
                assert_covered(config, spent[label], produced.get(label, []), label)
        assert all(count == 1 for count in alerts_per_id.values()), alerts_per_id
    finally:
        if current is not engine:
            current.dispose()
