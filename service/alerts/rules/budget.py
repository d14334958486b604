"""Budgets: spend in the period against percentage and absolute thresholds, and the projection.

Each threshold crossed is an event identified by (budget, scope, period, threshold); all of a
budget's thresholds in one period form a group, so one cycle sends only the highest crossed.
Forecast thresholds compare the projected end-of-period spend and form a group of their own;
without enough history there is no projection and no forecast alert.
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal

from service.alerts.facts import BudgetFacts, Facts
from service.alerts.model import Content, Finding, Identity, Severity
from service.domain.money import NANOS_PER_USD, percent_text, usd_label, usd_text, usd_to_nanos
from service.settings.rules import RuleSettings

RULE_PREFIX = "budget:"


def evaluate(rules: RuleSettings, facts: Facts) -> list[Finding]:
    findings: list[Finding] = []
    for budget in facts.budgets:
        findings += _actual(budget)
        findings += _forecast(budget)
    return findings


def group_key(budget: BudgetFacts, kind: str) -> str:
    """The dedup group of one budget's ``spend`` or ``forecast`` thresholds in its period."""
    rule = budget.rule
    return f"{RULE_PREFIX}{rule.name}/{rule.scope_text}/{budget.period.label}/{kind}"


def thresholds(budget: BudgetFacts) -> list[tuple[str, int]]:
    """(label, amount) of every spend threshold, lowest first: ``80%`` and ``$250.00``."""
    rule = budget.rule
    limit = usd_to_nanos(rule.limit)
    found = [(percent_text(p), share(limit, p)) for p in rule.percents]
    found += [(usd_label(usd_to_nanos(a)), usd_to_nanos(a)) for a in rule.amounts]
    return sorted(found, key=lambda t: (t[1], t[0]))


def rank(amount_nanos: int, limit_nanos: int) -> int:
    """A threshold's level as millionths of a percent of the limit.

    Ranking by share of the limit, not by dollars, keeps "above" and "below" meaning what the
    operator wrote: with the limit lowered from $500 to $400, spend over $400 crosses 100%,
    which is above an 84% already alerted, even though $400 is less than 84% of $500.
    """
    return amount_nanos * 100_000_000 // limit_nanos


def share(limit_nanos: int, percent: Decimal) -> int:
    """``percent`` of ``limit_nanos``, rounded half to even to a whole nano-dollar."""
    exact = Decimal(limit_nanos) * percent / 100
    return int(exact.to_integral_value(rounding=ROUND_HALF_EVEN))


def percent_of(value_nanos: int, limit_nanos: int) -> Decimal:
    """``value`` as a percentage of ``limit``, to one decimal."""
    return (Decimal(value_nanos) * 100 / limit_nanos).quantize(Decimal("0.1"), ROUND_HALF_EVEN)


def _actual(budget: BudgetFacts) -> list[Finding]:
    rule, period = budget.rule, budget.period
    limit = usd_to_nanos(rule.limit)
    spent = budget.spent_nanos
    group = group_key(budget, "spend")
    findings = []
    for label, amount in thresholds(budget):
        if spent < amount:
            continue
        percent = percent_of(spent, limit)
        severity: Severity = "critical" if amount >= limit else "warning"
        content = Content(
            severity=severity,
            title=(
                f"Budget '{rule.name}' crossed {label}: {usd_text(spent)} of "
                f"{usd_text(limit)} ({period.label})"
            ),
            summary=(
                f"Spend {_scope_words(budget)} in {period.label} ({rule.tz}) reached "
                f"{usd_text(spent)}, {percent}% of the {usd_text(limit)} limit; the {label} "
                f"threshold ({usd_text(amount)}) is exceeded by {usd_text(spent - amount)}."
            ),
            rule_name=f"budget {rule.name}",
            value_nanos=spent,
            limit_nanos=limit,
            threshold_nanos=amount,
            percent=percent,
            period_label=period.label,
            period_start=period.start,
            period_end=period.end,
            drivers=budget.drivers,
            channels=rule.channels,
        )
        findings.append(
            Finding(
                Identity(RULE_PREFIX + rule.name, rule.scope_text, period.label, label),
                content,
                group=group,
                rank=rank(amount, limit),
            )
        )
    return findings


def _forecast(budget: BudgetFacts) -> list[Finding]:
    rule, period = budget.rule, budget.period
    projected = budget.projected_nanos
    if projected is None or not rule.forecast_percents:
        return []
    limit = usd_to_nanos(rule.limit)
    group = group_key(budget, "forecast")
    findings = []
    for percent in rule.forecast_percents:
        amount = share(limit, percent)
        if projected < amount:
            continue
        label = percent_text(percent)
        of_limit = percent_of(projected, limit)
        content = Content(
            severity="warning",
            title=(
                f"Budget '{rule.name}' projected to pass {label}: {usd_text(projected)} of "
                f"{usd_text(limit)} by the end of {period.label} (projection)"
            ),
            summary=(
                f"At the recent rate, spend {_scope_words(budget)} would end {period.label} at "
                f"{usd_text(projected)}, {of_limit}% of the {usd_text(limit)} limit "
                f"({usd_text(budget.spent_nanos)} spent so far). This is a projection, not "
                "spend that happened."
            ),
            rule_name=f"budget {rule.name}",
            value_nanos=projected,
            limit_nanos=limit,
            threshold_nanos=amount,
            percent=of_limit,
            period_label=period.label,
            period_start=period.start,
            period_end=period.end,
            projection=True,
            drivers=budget.drivers,
            channels=rule.channels,
            details=(("spent_usd", f"{Decimal(budget.spent_nanos) / NANOS_PER_USD:f}"),),
        )
        findings.append(
            Finding(
                Identity(
                    RULE_PREFIX + rule.name, rule.scope_text, period.label, f"forecast {label}"
                ),
                content,
                group=group,
                rank=rank(amount, limit),
            )
        )
    return findings


def _scope_words(budget: BudgetFacts) -> str:
    scope = budget.rule.scope
    if not scope:
        return "across the organization"
    return "for " + " and ".join(f"{key} {value}" for key, value in scope)
