"""The drift health rule (``health:drift``, on by default): the bill departs from the estimate.

Reconciliation books the bill into the ledger whatever the difference; a large one still says
the estimate is wrong, which budgets and alerts rely on until the next bill. The days of the re-
check window (the last three reconciled, so a catch-up run over a weekend or a bill revised two
days later is seen) are compared, and the worst one is named: its bill differs from the estimate
(priority tier left out, as the bill omits it) by more than ``CREDITWATCH_DRIFT_ALERT`` percent
of the bill (of the estimate on a day billed at zero), and by at least a cent, so rounding on a
quiet day is not news. The alert names the largest differences by model and token type, and for
a line both sides price, the ratio of the rates: a ratio other than 1 is a price the price book
does not know. It resolves when a later day (or a revised bill) is within bounds.
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal

from service.alerts.facts import DriftFacts, DriftLine, Facts
from service.alerts.model import Content, Finding, Identity
from service.domain.money import percent_text, usd_text
from service.settings.rules import RuleSettings

DRIFT = "health:drift"
MIN_DRIFT_NANOS = 10_000_000  # one cent
TOP_LINES = 3
_KIND_LABELS = {
    "uncached_input_tokens": "input",
    "output_tokens": "output",
    "cache_read_input_tokens": "cache read",
    "cache_creation.ephemeral_5m_input_tokens": "5m cache write",
    "cache_creation.ephemeral_1h_input_tokens": "1h cache write",
    "web_search": "web search",
    "code_execution": "code execution",
}


def evaluate(rules: RuleSettings, facts: Facts) -> list[Finding]:
    # Days with neither a bill nor an estimate say nothing either way (a quiet Sunday).
    days = [d for d in facts.drift if d.billed_nanos or d.estimated_nanos]
    if not days:
        return []
    off = [d for d in days if exceeds(d, rules.drift_percent)]
    # The worst day of the window while any is off; else the newest, which resolves it.
    drift = (
        max(off, key=lambda d: (abs(d.billed_nanos - d.estimated_nanos), d.day))
        if off
        else days[-1]
    )
    identity = Identity(DRIFT, "org", "", percent_text(rules.drift_percent))
    day = f"{drift.day:%Y-%m-%d}"
    difference = drift.billed_nanos - drift.estimated_nanos
    share = drift_share(drift)
    if not exceeds(drift, rules.drift_percent):
        content = Content(
            severity="info",
            title=f"The bill is within {percent_text(rules.drift_percent)} of the estimate again",
            summary=(
                f"Anthropic's bill for {day} (UTC) is {usd_text(drift.billed_nanos)}, the "
                f"estimate {usd_text(drift.estimated_nanos)}."
            ),
            rule_name="bill drift",
        )
        return [Finding(identity, content, persistent=True, holds=False)]
    shown_share = "" if share is None else f" ({_signed_percent(share)})"
    largest = largest_lines(drift.lines)
    lines = [line_text(line) for line in largest]
    priority = (
        f" Priority-tier usage ({usd_text(drift.priority_nanos)}) is not in the bill and keeps "
        "its estimate."
        if drift.priority_nanos
        else ""
    )
    content = Content(
        severity="warning",
        title=(
            f"The bill for {day} differs from the estimate by {_signed_usd(difference)}"
            f"{shown_share}: billed {usd_text(drift.billed_nanos)}, "
            f"estimated {usd_text(drift.estimated_nanos)}"
        ),
        summary=(
            f"Anthropic's cost report for {day} (UTC) bills {usd_text(drift.billed_nanos)} where "
            f"creditwatch estimated {usd_text(drift.estimated_nanos)}, more than the "
            f"{percent_text(rules.drift_percent)} CREDITWATCH_DRIFT_ALERT allows; the ledger "
            "now charges the bill. Largest differences: "
            + ("; ".join(lines) if lines else "none by model")
            + f".{priority} A rate that differs from the price book's is a price change it does "
            "not know: add it to CREDITWATCH_PRICES_FILE (or upgrade)."
        ),
        rule_name="bill drift",
        value_nanos=drift.billed_nanos,
        threshold_nanos=drift.estimated_nanos,
        period_label=day,
        details=(
            ("day", day),
            ("billed", usd_text(drift.billed_nanos)),
            ("estimated", usd_text(drift.estimated_nanos)),
            *(
                (f"{line.model or 'no model'} {line.kind}", text)
                for line, text in zip(largest, lines, strict=True)
            ),
        ),
    )
    return [Finding(identity, content, persistent=True)]


def drift_share(drift: DriftFacts) -> Decimal | None:
    """billed − estimated as a percentage of the bill (of the estimate when billed at zero)."""
    base = drift.billed_nanos or drift.estimated_nanos
    if base == 0:
        return None
    return Decimal(drift.billed_nanos - drift.estimated_nanos) * 100 / Decimal(base)


def exceeds(drift: DriftFacts, percent: Decimal) -> bool:
    difference = abs(drift.billed_nanos - drift.estimated_nanos)
    share = drift_share(drift)
    return difference >= MIN_DRIFT_NANOS and share is not None and abs(share) > percent


def largest_lines(lines: tuple[DriftLine, ...]) -> list[DriftLine]:
    """The lines with the largest differences, largest first (ties by model and kind)."""
    differing = [line for line in lines if line.billed_nanos != line.estimated_nanos]
    differing.sort(key=lambda x: (-abs(x.billed_nanos - x.estimated_nanos), x.model, x.kind))
    return differing[:TOP_LINES]


def line_text(line: DriftLine) -> str:
    """``claude-x output: billed $A vs estimated $B, the bill's rate looks 1.25× the price
    book's``; a line only one side has says so."""
    kind = _KIND_LABELS.get(line.kind, line.kind)
    name = f"{line.model} {kind}" if line.model else kind
    billed, estimated = line.billed_nanos, line.estimated_nanos
    if estimated == 0:
        return f"{name}: billed {usd_text(billed)}, not in the estimate (only the bill has it)"
    if billed == 0:
        return f"{name}: estimated {usd_text(estimated)}, not in the bill"
    ratio = (Decimal(billed) / Decimal(estimated)).quantize(Decimal("0.01"), ROUND_HALF_EVEN)
    return (
        f"{name}: billed {usd_text(billed)} vs estimated {usd_text(estimated)}, the bill's rate "
        f"looks {ratio}× the price book's"
    )


def _signed_usd(nanos: int) -> str:
    return ("+" if nanos >= 0 else "") + usd_text(nanos)


def _signed_percent(value: Decimal) -> str:
    rounded = value.quantize(Decimal("0.1"), ROUND_HALF_EVEN)
    return ("+" if rounded >= 0 else "") + percent_text(rounded)
