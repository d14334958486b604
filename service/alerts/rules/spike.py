"""Spike: the last complete hour cost at least ``factor`` × the median of the same hour on the
days before, and at least ``min`` USD. A condition: one alert for a spike however long it lasts,
and a resolved notice when an hour is back to normal."""

from __future__ import annotations

from decimal import Decimal

from service.alerts.facts import Facts
from service.alerts.model import Content, Finding, Identity
from service.domain.money import usd_text, usd_to_nanos
from service.settings.rules import RuleSettings

RULE = "spike"


def evaluate(rules: RuleSettings, facts: Facts) -> list[Finding]:
    spike, data = rules.spike, facts.spike
    if spike is None or data is None:
        return []
    spent, baseline = data.spent_nanos, data.baseline_nanos
    holds = spent >= usd_to_nanos(spike.min_usd) and Decimal(spent) >= spike.factor * baseline
    if baseline > 0:
        ratio = (Decimal(spent) / baseline).quantize(Decimal("0.1"))
        times = f"{ratio}× the usual {usd_text(baseline)}"
    else:
        times = "with nothing spent in that hour on the days before"
    hour = f"{data.hour_start:%Y-%m-%d %H:00} UTC"
    identity = Identity(RULE, "org", "", f"{spike.factor}x")
    if holds:
        content = Content(
            severity="warning",
            title=f"Spend spike: {usd_text(spent)} in the hour from {hour}, {times}",
            summary=(
                f"The hour from {hour} cost {usd_text(spent)}, {times} (the median of the same "
                f"hour over the last {data.days} days)."
            ),
            rule_name="spike",
            value_nanos=spent,
            threshold_nanos=baseline,
            drivers=data.drivers,
        )
    else:
        content = Content(
            severity="info",
            title=f"Spend is back to normal: {usd_text(spent)} in the hour from {hour}",
            summary=f"The hour from {hour} cost {usd_text(spent)}, {times}.",
            rule_name="spike",
            value_nanos=spent,
            threshold_nanos=baseline,
        )
    return [Finding(identity, content, persistent=True, holds=holds)]
