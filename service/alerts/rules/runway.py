"""Runway: at the current burn rate (auto-reload and its limit included) the balance reaches zero
within a duration. A condition; without a runway (no balance, too little history) it is silent."""

from __future__ import annotations

from datetime import timedelta

from service.alerts.facts import Facts
from service.alerts.model import Content, Finding, Identity
from service.domain.timefmt import format_duration, rfc3339
from service.settings.rules import RuleSettings

RULE = "runway"


def evaluate(rules: RuleSettings, facts: Facts) -> list[Finding]:
    situation = facts.situation
    if rules.runway is None or situation.balance_nanos is None or situation.runway_note:
        return []
    until = situation.runway_until
    left = until - facts.now if until is not None else None
    holds = left is not None and left < rules.runway
    identity = Identity(RULE, "org", "", format_duration(rules.runway))
    if holds and until is not None and left is not None:
        left = max(left, timedelta(0))
        content = Content(
            severity="critical" if left < timedelta(days=1) else "warning",
            title=(f"Runway {format_duration(left)}: the balance reaches zero at {rfc3339(until)}"),
            summary=(
                f"At the expected spend the credit balance reaches zero at {rfc3339(until)}, in "
                f"{format_duration(left)} (alert below {format_duration(rules.runway)}); then "
                "every API call fails."
            ),
            rule_name="runway",
        )
    else:
        shown = f"reaches zero at {rfc3339(until)}" if until else "does not reach zero soon"
        content = Content(
            severity="info",
            title=f"Runway is longer than {format_duration(rules.runway)} again",
            summary=f"At the expected spend the balance {shown}.",
            rule_name="runway",
        )
    return [Finding(identity, content, persistent=True, holds=holds)]
