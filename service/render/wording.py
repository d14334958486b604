"""The words every channel uses: the headline, the facts, the drivers, the footer.

Pure: an :class:`AlertView` and the credit unit in, strings out. Each channel lays these out in
its own format (Block Kit, HTML, an Adaptive Card, …) but never words them differently.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import ROUND_HALF_EVEN, Decimal

from service.render.view import AlertView, DriverView

KIND_LABEL = {"alert": "", "reminder": "Reminder: ", "resolved": "Resolved: "}
SEVERITY_LABEL = {"info": "Info", "warning": "Warning", "critical": "Critical"}
DIMENSION_LABEL = {
    "model": "Model",
    "api_key": "API key",
    "workspace": "Workspace",
    "actor": "Actor",
    "product": "Product",
}
TEST_PREFIX = "[TEST] "
# The rules name at most three drivers per dimension, in at most four dimensions (twelve: an
# organization's budget read from the Analytics API adds actors); an alert lists twelve at most.
MAX_DRIVERS = 12


@dataclass(frozen=True)
class Fact:
    label: str
    value: str


def money(amount: Decimal | None, credit_unit: Decimal = Decimal(1)) -> str:
    """``$1,234.57``; amounts under a dollar to four places; credits beside when configured."""
    if amount is None:
        return "unknown"
    places = Decimal("0.01") if abs(amount) >= 1 or amount == 0 else Decimal("0.0001")
    text = f"${amount.quantize(places, rounding=ROUND_HALF_EVEN):,}"
    if text.startswith("$-"):
        text = "-$" + text[2:]
    if credit_unit != 1:
        credits = (amount / credit_unit).quantize(Decimal("0.01"), rounding=ROUND_HALF_EVEN)
        text += f" ({credits:,} credits)"
    return text


def headline(view: AlertView) -> str:
    """The one line every channel leads with (and the plain-text fallback starts with)."""
    test = TEST_PREFIX if view.test else ""
    return f"{test}{KIND_LABEL.get(view.kind, '')}{view.title}"


def facts(view: AlertView, credit_unit: Decimal = Decimal(1)) -> list[Fact]:
    """Amount and limit, period, balance and runway, severity: what the alert is about."""
    found: list[Fact] = []
    if view.value is not None:
        label = "Projected" if view.projection else "Amount"
        found.append(Fact(label, money(view.value, credit_unit)))
    if view.limit is not None:
        limit = money(view.limit, credit_unit)
        if view.percent_of_limit is not None:
            limit += f" ({view.percent_of_limit}% used)"
        found.append(Fact("Limit", limit))
    if view.threshold:
        threshold = view.threshold
        if view.threshold_amount is not None and not threshold.startswith("$"):
            threshold += f" = {money(view.threshold_amount, credit_unit)}"
        found.append(Fact("Threshold", threshold))
    if view.period:
        found.append(Fact("Period", period_text(view)))
    found.append(Fact("Balance", money(view.balance, credit_unit)))
    found.append(Fact("Runway", runway_text(view)))
    found.append(Fact("Severity", SEVERITY_LABEL.get(view.severity, view.severity)))
    if view.scope != "org":
        found.append(Fact("Scope", view.scope))
    return found


def period_text(view: AlertView) -> str:
    if view.period_start is None or view.period_end is None:
        return view.period or ""
    return f"{view.period} ({_short(view.period_start)} to {_short(view.period_end)})"


def runway_text(view: AlertView) -> str:
    if view.runway_until is not None:
        return f"balance reaches zero at {_short(view.runway_until)}"
    return view.runway_note or "unknown"


def driver_line(driver: DriverView, credit_unit: Decimal = Decimal(1)) -> str:
    """``Model claude-opus-4-6: $12.30 (+$4.10 since the last alert)``; names, not ids."""
    label = DIMENSION_LABEL.get(driver.dimension, driver.dimension)
    name = driver.name if driver.name == driver.id else f"{driver.name} ({driver.id})"
    if driver.dimension in ("model", "product") or not driver.id:
        name = driver.name
    line = f"{label} {name}: {money(driver.amount, credit_unit)}"
    if driver.change is not None and driver.change != 0:
        sign = "+" if driver.change > 0 else "-"
        line += f" ({sign}{money(abs(driver.change), credit_unit)} since the last alert)"
    return line


def listed_drivers(view: AlertView, most: int = MAX_DRIVERS) -> tuple[list[DriverView], int]:
    """The drivers an alert lists (``most`` at most) and how many more there are."""
    return list(view.drivers[:most]), max(0, len(view.drivers) - most)


def more_drivers(rest: int) -> str:
    """The line that counts the drivers left out."""
    return f"… and {rest} more"


def clip(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, the last an ellipsis."""
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def freshness(view: AlertView) -> str:
    """How current the data is, and the alert's id: the context line every channel ends with."""
    newest = _short(view.newest_bucket_start) if view.newest_bucket_start else "none"
    collected = _short(view.last_collected_at) if view.last_collected_at else "never"
    return f"Data up to the bucket of {newest}, collected {collected} · alert id {view.dedup_id}"


def plain_text(view: AlertView, credit_unit: Decimal = Decimal(1)) -> str:
    """The whole alert as plain text: email's text part, Slack's fallback, Apprise's body."""
    lines = [headline(view), "", view.summary, ""]
    lines += [f"{fact.label}: {fact.value}" for fact in facts(view, credit_unit)]
    if view.drivers:
        listed, rest = listed_drivers(view)
        lines += ["", "Top drivers:"]
        lines += [f"- {driver_line(d, credit_unit)}" for d in listed]
        lines += [f"- {more_drivers(rest)}"] if rest else []
    lines += ["", freshness(view)]
    return "\n".join(lines)


def _short(moment: datetime) -> str:
    """``2026-11-20 14:05 UTC``: minutes are as exact as an alert needs."""
    return f"{moment.astimezone(UTC):%Y-%m-%d %H:%M} UTC"
