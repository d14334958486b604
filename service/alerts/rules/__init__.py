"""The rule registry: every rule kind, evaluated in this order each cycle."""

from __future__ import annotations

from collections.abc import Callable

from service.alerts.facts import Facts
from service.alerts.model import Finding
from service.alerts.rules import budget, drift, health, low_balance, runway, spike
from service.settings.rules import RuleSettings

Rule = Callable[[RuleSettings, Facts], list[Finding]]

RULES: dict[str, Rule] = {
    "budget": budget.evaluate,
    "low_balance": low_balance.evaluate,
    "runway": runway.evaluate,
    "spike": spike.evaluate,
    "health": health.evaluate,
    "drift": drift.evaluate,
}
ENUMERATING = health.ENUMERATING


def evaluate_rules(rules: RuleSettings, facts: Facts) -> list[Finding]:
    """Every finding of every rule kind."""
    return [finding for rule in RULES.values() for finding in rule(rules, facts)]
