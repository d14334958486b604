"""Each rule kind on hand-made facts: what it reports, and what it says."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from service.alerts.facts import (
    BudgetFacts,
    CollectionFacts,
    ExpiringLot,
    Facts,
    ReloadBlockFact,
    SpikeFacts,
)
from service.alerts.model import Finding, Freshness, Situation
from service.alerts.rules import budget, health, low_balance, runway, spike
from service.domain.periods import period_at
from service.settings.rules import BudgetRule, RuleSettings, SpikeRule

NOW = datetime(2026, 11, 20, 12, 10, tzinfo=UTC)
USD = 10**9
SITUATION = Situation(NOW, 1000 * USD, None, None, Freshness(NOW - timedelta(hours=1), NOW))
MONTHLY = BudgetRule(name="monthly", variable="CREDITWATCH_MONTHLY_BUDGET", limit=Decimal(500))


def facts(**kw: object) -> Facts:
    return Facts(situation=kw.pop("situation", SITUATION), **kw)  # type: ignore[arg-type]


def budget_facts(
    spent_usd: str, *, rule: BudgetRule = MONTHLY, projected_usd: str | None = None
) -> BudgetFacts:
    return BudgetFacts(
        rule=rule,
        period=period_at(rule.period, rule.tz, NOW),
        spent_nanos=int(Decimal(spent_usd) * USD),
        projected_nanos=int(Decimal(projected_usd) * USD) if projected_usd else None,
        projection_note=None if projected_usd else "not enough history: 5 of the 24 hours needed",
    )


def labels(findings: list[Finding]) -> list[str]:
    return [f.identity.threshold for f in findings]


@pytest.mark.parametrize(
    ("spent", "crossed"),
    [
        ("249.99", []),
        ("250", ["50%"]),
        ("399.999999999", ["50%"]),
        ("400", ["50%", "80%"]),
        ("612.5", ["50%", "80%", "100%"]),
    ],
)
def test_budget_thresholds_cross_at_exact_amounts(spent: str, crossed: list[str]) -> None:
    """A threshold is crossed when spend reaches it, to the nano-dollar."""
    found = budget.evaluate(RuleSettings(budgets=(MONTHLY,)), facts(budgets=(budget_facts(spent),)))
    assert labels(found) == crossed
    assert {f.group for f in found} <= {"budget:monthly/org/2026-11/spend"}


def test_absolute_thresholds_sit_among_the_percentages() -> None:
    """``amounts=`` thresholds rank by their dollars with the percentages of the same budget."""
    rule = BudgetRule("ops", "CREDITWATCH_BUDGET_OPS", Decimal(500), amounts=(Decimal(300),))
    found = budget.evaluate(RuleSettings(), facts(budgets=(budget_facts("410", rule=rule),)))
    assert labels(found) == ["50%", "$300.00", "80%"]
    assert [f.rank for f in found] == [50_000_000, 60_000_000, 80_000_000]


def test_a_budget_alert_says_what_crossed_by_how_much() -> None:
    """The percentage and both amounts, the period, the overshoot; critical at 100%."""
    (fifty, hundred) = budget.evaluate(
        RuleSettings(), facts(budgets=(budget_facts("510", rule=MONTHLY),))
    )[::2]
    assert fifty.content.severity == "warning"
    assert hundred.content.severity == "critical"
    assert hundred.content.title == "Budget 'monthly' crossed 100%: $510.00 of $500.00 (2026-11)"
    assert "102.0% of the $500.00 limit" in hundred.content.summary
    assert "exceeded by $10.00" in hundred.content.summary
    assert hundred.content.percent == Decimal("102.0")
    assert (hundred.content.period_start, hundred.content.period_end) == (
        datetime(2026, 11, 1, tzinfo=UTC),
        datetime(2026, 12, 1, tzinfo=UTC),
    )


def test_forecast_thresholds_never_fire_without_enough_history() -> None:
    """No projection (too little history), no forecast alert, however high the spend."""
    rule = BudgetRule(
        "m", "V", Decimal(500), percents=(Decimal(50),), forecast_percents=(Decimal(100),)
    )
    found = budget.evaluate(RuleSettings(), facts(budgets=(budget_facts("300", rule=rule),)))
    assert labels(found) == ["50%"]


def test_a_forecast_alert_says_it_is_a_projection() -> None:
    """Projected past 100%: its own group, marked as a projection in the title and summary."""
    rule = BudgetRule(
        "m", "V", Decimal(500), percents=(Decimal(90),), forecast_percents=(Decimal(100),)
    )
    (forecast,) = budget.evaluate(
        RuleSettings(), facts(budgets=(budget_facts("300", rule=rule, projected_usd="560"),))
    )
    assert forecast.identity.threshold == "forecast 100%"
    assert forecast.group == "budget:m/org/2026-11/forecast"
    assert forecast.content.projection
    assert forecast.content.title.endswith("(projection)")
    assert "This is a projection" in forecast.content.summary


@pytest.mark.parametrize(
    ("balance_usd", "holds", "severity"),
    [
        ("24.99", True, "warning"),
        ("0", True, "critical"),
        ("-3", True, "critical"),
        ("25", False, "info"),
    ],
)
def test_low_balance(balance_usd: str, holds: bool, severity: str) -> None:
    """Strictly below the amount holds; at zero it is critical; at or above it clears."""
    situation = Situation(NOW, int(Decimal(balance_usd) * USD), None, None, SITUATION.freshness)
    (found,) = low_balance.evaluate(
        RuleSettings(low_balance=Decimal(25)), facts(situation=situation)
    )
    assert (found.holds, found.persistent, found.content.severity) == (holds, True, severity)
    assert found.identity.threshold == "$25.00"


def test_low_balance_is_silent_without_a_balance() -> None:
    """No starting balance, no balance to judge."""
    situation = Situation(NOW, None, None, None, SITUATION.freshness)
    assert (
        low_balance.evaluate(RuleSettings(low_balance=Decimal(25)), facts(situation=situation))
        == []
    )


@pytest.mark.parametrize(
    ("until", "note", "expected"),
    [
        (NOW + timedelta(hours=10), None, (True, "critical")),
        (NOW + timedelta(days=2), None, (True, "warning")),
        (NOW + timedelta(days=4), None, (False, "info")),
        (None, None, (False, "info")),  # not within the 90-day horizon
        (None, "not enough history: 3 of the 24 hours needed", None),  # silent
    ],
)
def test_runway(
    until: datetime | None, note: str | None, expected: tuple[bool, str] | None
) -> None:
    """Zero within the duration holds (critical within a day); no runway, no finding."""
    situation = Situation(NOW, 100 * USD, until, note, SITUATION.freshness)
    found = runway.evaluate(RuleSettings(runway=timedelta(days=3)), facts(situation=situation))
    if expected is None:
        assert found == []
        return
    (finding,) = found
    assert (finding.holds, finding.content.severity) == expected


@pytest.mark.parametrize(
    ("spent", "baseline", "holds"),
    [(80, 20, True), (79, 20, False), (19, 0, False), (20, 0, True), (200, 60, False)],
)
def test_spike_needs_the_factor_and_the_minimum(spent: int, baseline: int, holds: bool) -> None:
    """≥ factor × the median and ≥ min: both, or nothing."""
    data = SpikeFacts(NOW.replace(minute=0) - timedelta(hours=1), spent * USD, baseline * USD, 7)
    (found,) = spike.evaluate(
        RuleSettings(spike=SpikeRule(Decimal(4), Decimal(20))), facts(spike=data)
    )
    assert found.holds is holds
    assert found.persistent


def collection(**kw: object) -> CollectionFacts:
    values: dict[str, object] = {
        "failing_since": None,
        "last_error": None,
        "last_success_at": NOW,
        "newest_bucket_start": NOW.replace(minute=0),
        "bucket": timedelta(hours=1),
    }
    values.update(kw)
    return CollectionFacts(**values)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("failing_for", "holds"),
    [(None, False), (timedelta(minutes=29), False), (timedelta(minutes=30), True)],
)
def test_collection_failing_for_longer_than_the_setting(
    failing_for: timedelta | None, holds: bool
) -> None:
    """The API or the database failing for 30 minutes (the default) is a critical condition."""
    state = collection(
        failing_since=NOW - failing_for if failing_for else None, last_error="database error: x"
    )
    found = [
        f
        for f in health.evaluate(RuleSettings(), facts(collection=state))
        if f.identity.rule == health.COLLECTION
    ]
    assert [f.holds for f in found] == [holds]


@pytest.mark.parametrize(
    ("hours_back", "holds"),
    [
        (0, False),  # the current hour's bucket is there (empty or not)
        (1, False),  # the last complete hour ended 10 minutes ago
        (2, False),  # it ended 1h10m ago: within the 1h width + 15 min delay
        (3, True),  # it ended 2h10m ago
    ],
)
def test_data_stale_counts_empty_buckets(hours_back: int, holds: bool) -> None:
    """Stale when the newest bucket the API returned lags by more than its width + 15 min."""
    state = collection(newest_bucket_start=NOW.replace(minute=0) - timedelta(hours=hours_back))
    found = [
        f
        for f in health.evaluate(RuleSettings(), facts(collection=state))
        if f.identity.rule == health.STALE
    ]
    assert [f.holds for f in found] == [holds]


def test_stale_is_not_reported_while_collection_fails() -> None:
    """One cause, one alert: failing collection, not stale data as well."""
    state = collection(
        failing_since=NOW - timedelta(hours=5), newest_bucket_start=NOW - timedelta(days=1)
    )
    rules = {f.identity.rule for f in health.evaluate(RuleSettings(), facts(collection=state))}
    assert health.STALE not in rules


def test_unknown_models_reload_blocks_and_expiring_credits() -> None:
    """One condition per unknown model; one event per month of blocks; one per expiring lot."""
    found = health.evaluate(
        RuleSettings(),
        facts(
            unknown_models=(("claude-nova-1", "claude-opus-4-6"),),
            reload_blocks=(
                ReloadBlockFact(NOW - timedelta(hours=3), 150 * USD, 50 * USD),
                ReloadBlockFact(NOW - timedelta(hours=1), 150 * USD, 0),
            ),
            month_label="2026-11",
            expiring_lots=(
                ExpiringLot(
                    "opening",
                    "opening",
                    NOW - timedelta(days=360),
                    40 * USD,
                    NOW + timedelta(days=5),
                ),
            ),
        ),
    )
    by_rule = {f.identity.rule: f for f in found}
    unknown = by_rule[health.UNKNOWN_MODEL]
    assert (unknown.identity.scope, unknown.persistent) == ("model=claude-nova-1", True)
    blocked = by_rule[health.RELOAD_BLOCKED]
    assert (blocked.identity.period, blocked.persistent) == ("2026-11", False)
    assert "cut by the monthly limit" in blocked.content.title
    assert "wanted $300.00 and got $50.00" in blocked.content.summary
    expiring = by_rule[health.CREDITS_EXPIRING]
    assert expiring.identity.scope == "lot=opening"
    assert expiring.content.title.startswith("$40.00 of credits expire at 2026-11-25T12:10:00Z")
