"""Low balance: the credit balance is below an amount. A condition: repeats, then resolves."""

from __future__ import annotations

from service.alerts.facts import Facts
from service.alerts.model import Content, Finding, Identity
from service.domain.money import usd_label, usd_text, usd_to_nanos
from service.settings.rules import RuleSettings

RULE = "low_balance"


def evaluate(rules: RuleSettings, facts: Facts) -> list[Finding]:
    balance = facts.situation.balance_nanos
    if rules.low_balance is None or balance is None:
        return []
    floor = usd_to_nanos(rules.low_balance)
    holds = balance < floor
    if holds:
        content = Content(
            severity="critical" if balance <= 0 else "warning",
            title=f"Balance {usd_text(balance)} is below {usd_text(floor)}",
            summary=(
                f"The credit balance is {usd_text(balance)}, {usd_text(floor - balance)} below "
                f"the {usd_text(floor)} alert level."
                + (" At zero every API call fails." if balance <= 0 else "")
            ),
            rule_name="low balance",
            value_nanos=balance,
            threshold_nanos=floor,
        )
    else:
        content = Content(
            severity="info",
            title=f"Balance {usd_text(balance)} is back above {usd_text(floor)}",
            summary=f"The credit balance is {usd_text(balance)} again.",
            rule_name="low balance",
            value_nanos=balance,
            threshold_nanos=floor,
        )
    identity = Identity(RULE, "org", "", usd_label(floor))
    return [Finding(identity, content, persistent=True, holds=holds)]
