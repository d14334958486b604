"""The drift health rule on hand-made facts: when it holds, what it names, when it resolves."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from service.alerts.facts import DriftFacts, DriftLine, Facts
from service.alerts.model import Freshness, Situation
from service.alerts.rules import drift, evaluate_rules
from service.settings.rules import RuleSettings

NOW = datetime(2026, 11, 20, 12, 10, tzinfo=UTC)
DAY = datetime(2026, 11, 19, tzinfo=UTC)
USD = 10**9
SITUATION = Situation(NOW, 1000 * USD, None, None, Freshness(NOW - timedelta(hours=1), NOW))
OPUS_OUTPUT = DriftLine("claude-opus-4-6", "output_tokens", 125 * USD, 100 * USD)


def day(billed: int, estimated: int, *lines: DriftLine, priority: int = 0) -> Facts:
    return Facts(
        situation=SITUATION,
        drift=(DriftFacts(DAY, billed, estimated, priority, tuple(lines)),),
    )


def test_no_reconciled_day_reports_nothing() -> None:
    """Before the first reconcile there is nothing to say, not even 'within bounds'."""
    assert drift.evaluate(RuleSettings(), Facts(situation=SITUATION)) == []


def test_a_day_beyond_the_percent_names_the_model_token_type_and_rate() -> None:
    """Opus output billed 1.25x: the alert says which model, which rate, by how much."""
    facts = day(
        225 * USD,
        200 * USD,
        OPUS_OUTPUT,
        DriftLine("claude-haiku-4-5", "uncached_input_tokens", 100 * USD, 100 * USD),
    )
    (finding,) = drift.evaluate(RuleSettings(), facts)
    assert finding.holds
    assert finding.persistent
    assert finding.identity.key == "health:drift/org//5%"
    assert finding.content.title == (
        "The bill for 2026-11-19 differs from the estimate by +$25.00 (+11.1%): billed "
        "$225.00, estimated $200.00"
    )
    assert (
        "claude-opus-4-6 output: billed $125.00 vs estimated $100.00, the bill's rate looks "
        "1.25× the price book's" in finding.content.summary
    )
    assert "claude-haiku-4-5" not in finding.content.summary, "an equal line is no cause"


def test_costs_only_the_bill_has_are_named_as_such() -> None:
    """Code execution (no model, no estimate) is a named contributor, not a rate."""
    facts = day(110 * USD, 100 * USD, DriftLine("", "code_execution", 10 * USD, 0))
    (finding,) = drift.evaluate(RuleSettings(), facts)
    assert "code execution: billed $10.00, not in the estimate (only the bill has it)" in (
        finding.content.summary
    )


def test_the_largest_differences_come_first_and_at_most_three() -> None:
    """Contributors are ranked by the size of their difference, either sign."""
    lines = [
        DriftLine("m1", "output_tokens", 10 * USD, 9 * USD),
        DriftLine("m2", "output_tokens", 1 * USD, 6 * USD),
        DriftLine("m3", "output_tokens", 13 * USD, 10 * USD),
        DriftLine("m4", "output_tokens", 3 * USD, 1 * USD),
    ]
    ranked = drift.largest_lines(tuple(lines))
    assert [line.model for line in ranked] == ["m2", "m3", "m4"]
    assert drift.line_text(lines[1]) == (
        "m2 output: billed $1.00 vs estimated $6.00, the bill's rate looks 0.17× the price book's"
    )


@pytest.mark.parametrize(
    ("billed", "estimated", "holds"),
    [
        (100 * USD, 95 * USD, False),  # exactly 5% of the bill: not more than it
        (100 * USD, 94 * USD, True),
        (94 * USD, 100 * USD, True),  # the bill below the estimate drifts too
        (USD // 125, USD // 250, False),  # 50%, but under a cent
        (0, 2 * USD, True),  # billed nothing at all
    ],
    ids=["at-threshold", "above", "below-estimate", "under-a-cent", "billed-zero"],
)
def test_the_condition_holds_above_the_percent_and_a_cent(
    billed: int, estimated: int, holds: bool
) -> None:
    """More than CREDITWATCH_DRIFT_ALERT percent of the day's bill, and at least one cent."""
    (finding,) = drift.evaluate(RuleSettings(), day(billed, estimated))
    assert finding.holds is holds


def test_the_percent_comes_from_the_settings() -> None:
    """CREDITWATCH_DRIFT_ALERT=15 lets an 11% day pass, and is part of the identity."""
    rules = RuleSettings(drift_percent=Decimal(15))
    (finding,) = drift.evaluate(rules, day(225 * USD, 200 * USD, OPUS_OUTPUT))
    assert not finding.holds
    assert finding.identity.threshold == "15%"


def test_priority_tier_is_mentioned_as_kept_estimated() -> None:
    """The bill omits priority-tier usage; the alert says it keeps its estimate."""
    facts = day(225 * USD, 200 * USD, OPUS_OUTPUT, priority=7 * USD)
    (finding,) = drift.evaluate(RuleSettings(), facts)
    assert "Priority-tier usage ($7.00) is not in the bill and keeps its estimate" in (
        finding.content.summary
    )


def test_the_rule_is_registered_with_the_health_rules() -> None:
    """The registry evaluates it every cycle."""
    findings = evaluate_rules(RuleSettings(), day(225 * USD, 200 * USD, OPUS_OUTPUT))
    assert [f.identity.rule for f in findings if f.identity.rule == drift.DRIFT] == [drift.DRIFT]


def test_a_bad_day_in_a_catch_up_run_is_named_and_a_quiet_day_does_not_hide_it() -> None:
    """Friday 40% off, a quiet Sunday at $0: the alert names Friday; it resolves only once no
    day of the window is off."""
    friday = DriftFacts(DAY - timedelta(days=2), 140 * USD, 100 * USD, 0, (OPUS_OUTPUT,))
    saturday = DriftFacts(DAY - timedelta(days=1), 50 * USD, 50 * USD, 0)
    sunday = DriftFacts(DAY, 0, 0, 0)
    (finding,) = drift.evaluate(
        RuleSettings(), Facts(situation=SITUATION, drift=(friday, saturday, sunday))
    )
    assert finding.holds
    assert "2026-11-17" in finding.content.title
    (calm,) = drift.evaluate(RuleSettings(), Facts(situation=SITUATION, drift=(saturday, sunday)))
    assert not calm.holds
    assert "2026-11-18" in calm.content.summary, "the newest day with a bill says all is well"
    assert drift.evaluate(RuleSettings(), Facts(situation=SITUATION, drift=(sunday,))) == []
