"""`creditwatch report` in the terminal: the breakdown table, its notes, and two text charts.

Charts are horizontal bars, one line per UTC day, so they read the same in a terminal, a pager
or a cron mail: daily spend against the budget's line, and the balance with its reloads and the
runway projection. ``fancy`` (a terminal) draws with block characters and colour styles;
without it the lines are plain ASCII. Pure: a report in, rich ``Text`` lines out.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal

from rich.text import Text

from service.domain.money import usd_text
from service.domain.periods import day_start
from service.domain.report import (
    ATTRIBUTED_BY,
    DAY,
    BalanceEvent,
    BalanceHistory,
    BudgetLine,
    Report,
    UsageLine,
)
from service.render.terminal import table_lines

BAR_WIDTH = 40
MOST_DAYS = 92  # a chart line per day: longer windows show their last 92 days
_EIGHTHS = " ▏▎▍▌▋▊▉"
DIMENSION_TITLE = {
    "model": "model",
    "api_key": "API key",
    "workspace": "workspace",
    "day": "day (UTC)",
    "hour": "hour (UTC)",
    "actor": "actor",
    "product": "product",
}
NAMED_BY = ("api_key", "workspace", "actor")
"""Breakdowns whose lines have a name beside their id."""
_NOT_IN_BILL = {"api_key": "API keys", "hour": "hours", "actor": "actors", "product": "products"}


def count_text(value: int) -> str:
    """Token counts people can scan: exact below 10,000, then 12.3K, 1.23M, 4.56B."""
    if abs(value) < 10_000:
        return f"{value:,}"
    for size, suffix in ((10**12, "T"), (10**9, "B"), (10**6, "M"), (10**3, "K")):
        if abs(value) >= size:
            scaled = Decimal(value) / size
            places = 2 if abs(scaled) < 10 else 1 if abs(scaled) < 100 else 0
            shown = scaled.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_EVEN)
            return f"{shown}{suffix}"
    return f"{value:,}"  # pragma: no cover - the loop always returns


def signed_usd(nanos: int, unit: Decimal = Decimal(1)) -> str:
    text = usd_text(nanos, unit)
    return text if nanos <= 0 else f"+{text}"


def difference_text(line: UsageLine, unit: Decimal = Decimal(1)) -> str:
    """``-$5.90 (-1.5%)``: billed minus the estimate of the same days, and its share of it."""
    difference, compared = line.difference_nanos, line.compared_nanos
    if difference is None:
        return "—"
    text = signed_usd(difference, unit)
    if compared:
        percent = (Decimal(difference * 100) / compared).quantize(
            Decimal("0.1"), rounding=ROUND_HALF_EVEN
        )
        text += f" ({'+' if percent > 0 else ''}{percent}%)"
    return text


def table(report: Report, unit: Decimal = Decimal(1)) -> list[str]:
    """The breakdown with a total line, and what the reader needs to know about its columns."""
    named = report.by in NAMED_BY
    header = [DIMENSION_TITLE[report.by]]
    if named:
        header.append("id")
    cost = "charged" if report.total.hourly_list_nanos else "estimated"
    header += ["input", "cache write", "cache read", "output", "web search", cost]
    header += ["billed", "difference"]
    rows = [_row(line, named, report, unit) for line in [*report.lines, report.total]]
    lines = table_lines(header, rows, text_columns=(0, 1) if named else (0,))
    if len(lines) > 2:
        rule = "-" * max(len(line) for line in lines)
        lines.insert(len(lines) - 1, rule)
    return lines + notes(report, unit)


def _row(line: UsageLine, named: bool, report: Report, unit: Decimal) -> list[str]:
    label = line.name or line.key or "(none)"
    if line is report.total:
        label = "total"
    cells = [label]
    if named:
        cells.append("" if line is report.total else line.key)
    billed = "—" if line.billed_nanos is None else usd_text(line.billed_nanos, unit)
    difference = difference_text(line, unit)
    return [
        *cells,
        count_text(line.uncached_input_tokens),
        count_text(line.cache_write_tokens),
        count_text(line.cache_read_tokens),
        count_text(line.output_tokens),
        f"{line.web_search_requests:,}",
        usd_text(line.estimated_nanos, unit) + ("*" if line.priced_estimate else ""),
        billed,
        difference,
    ]


def hourly_bill_notes(report: Report, unit: Decimal = Decimal(1)) -> list[str]:
    """What of the cost is the Analytics API's hourly bill, and the discount it shows."""
    total = report.total
    if not total.hourly_list_nanos:
        return []
    line = (
        f"hourly bill (Analytics API): {usd_text(total.hourly_billed_nanos, unit)} of the "
        f"{usd_text(total.estimated_nanos, unit)} above is billed by the hour, the rest estimated"
    )
    discount = total.discount_nanos
    if discount:
        percent = (Decimal(discount * 100) / total.hourly_list_nanos).quantize(
            Decimal("0.1"), rounding=ROUND_HALF_EVEN
        )
        line += (
            f"; at list price {usd_text(total.hourly_list_nanos, unit)}, a discount of "
            f"{usd_text(discount, unit)} ({percent}%)"
        )
    return [line]


def notes(report: Report, unit: Decimal = Decimal(1)) -> list[str]:
    """What the estimate and the billed columns cover, honestly."""
    out = []
    if report.total.priced_estimate:
        out.append("* includes estimated prices (unknown model, priority tier or tiered pricing)")
    out += hourly_bill_notes(report, unit)
    if report.by in ATTRIBUTED_BY and not report.lines:
        out.append(
            f"no usage attributed to {_NOT_IN_BILL[report.by]} in this window: only the Usage and "
            "Cost Analytics API says who and what is behind the spend "
            "(CREDITWATCH_USAGE_SOURCE=analytics)"
        )
    days = report.billed_days
    if not days:
        out.append(
            "billed: no whole day of this window is billed yet (`creditwatch reconcile` fetches "
            "Anthropic's cost report for finished UTC days)"
        )
        return out
    span = days[0].date().isoformat()
    if len(days) > 1:
        span += f" to {days[-1].date().isoformat()}"
    out.append(
        f"billed: {len(days)} billed day(s), {span} (UTC); difference = billed minus "
        "creditwatch's estimate of the same days"
    )
    if not report.billed_by_line:
        out.append(
            f"  Anthropic's cost report has no {_NOT_IN_BILL.get(report.by, report.by)}"
            ": only the total is compared"
        )
    if report.priority_unbilled_nanos:
        out.append(
            f"  priority-tier usage on those days ({usd_text(report.priority_unbilled_nanos, unit)}"
            " estimated) is not in the cost report and is left out of the comparison"
        )
    return out


def _bar(value: int, scale: int, width: int, fancy: bool) -> tuple[str, int]:
    """A bar of ``value`` on ``width`` columns for ``scale``; returns it and its full columns."""
    if value <= 0 or scale <= 0:
        return "", 0
    eighths = min(value * width * 8 // scale, width * 8)
    full, rest = divmod(eighths, 8)
    if not fancy:
        return "#" * (full + (rest >= 4)), full
    return "█" * full + (_EIGHTHS[rest] if rest else ""), full


def _column(value: int, scale: int, width: int) -> int:
    return min(width, max(0, (value * width * 2 + scale) // (scale * 2))) if scale > 0 else 0


def spend_chart(
    report: Report, *, fancy: bool, unit: Decimal = Decimal(1), width: int = BAR_WIDTH
) -> list[Text]:
    """Daily spend bars against the budget's daily amount (a vertical line)."""
    days = list(report.days)[-MOST_DAYS:]
    if not days:
        return []
    budget = report.budget
    scale = max([d.estimated_nanos for d in days] + [d.budget_nanos or 0 for d in days])
    marker = "│" if fancy else "|"
    title = "Daily spend, UTC days"
    if budget is not None:
        title += f"; {marker} {budget.label}"
    out = [Text(title, style="bold")]
    if len(report.days) > MOST_DAYS:
        out.append(Text(f"(the last {MOST_DAYS} days of the window)", style="dim"))
    end = report.until
    daily = budget is not None and budget.daily
    for day in days:
        bar, _ = _bar(day.estimated_nanos, scale, width, fancy)
        line = Text(_day_label(day.day) + "  ")
        cut = _column(day.budget_nanos, scale, width) if day.budget_nanos is not None else None
        cells = bar.ljust(width + 1)
        if cut is None:
            line.append(cells + " ", style="cyan")
        else:
            # The budget's line takes a column of its own: a bar that crosses it goes on.
            inside, beyond = cells[:cut], cells[cut:]
            line.append(inside, style="cyan")
            line.append(marker, style="bold yellow")
            line.append(beyond, style="red" if daily else "yellow")
        line.append(f" {usd_text(day.estimated_nanos, unit):>11}")
        if day.billed_nanos is not None:
            line.append(f"  billed {usd_text(day.billed_nanos, unit)}", style="green")
        if day.budget_nanos is not None and day.estimated_nanos > day.budget_nanos:
            over_by = usd_text(day.estimated_nanos - day.budget_nanos, unit)
            if daily:
                line.append(f"  over by {over_by}", style="red")
            else:
                line.append(f"  {over_by} above the pace", style="yellow")
        if day.day + DAY > end:
            line.append(f"  (to {end:%H:%M})", style="dim")
        out.append(line)
    axis = "0".ljust(width + 2) + f" {usd_text(scale, unit):>11}"
    out.append(Text(" " * 16 + axis, style="dim"))
    if budget is not None and budget.spent_nanos is not None:
        out.append(Text(budget_status(budget, unit)))
    return out


def budget_status(budget: BudgetLine, unit: Decimal = Decimal(1)) -> str:
    """``Budget monthly: $1,988.39 of $3,500.00 (56.8%) in 2026-11, …``: the budget's own
    count, which takes reconciled days at their bill."""
    spent = budget.spent_nanos or 0
    share = Decimal(spent * 100) / budget.limit_nanos if budget.limit_nanos else Decimal(0)
    percent = share.quantize(Decimal("0.1"), rounding=ROUND_HALF_EVEN)
    return (
        f"Budget {budget.name}: {usd_text(spent, unit)} of {usd_text(budget.limit_nanos, unit)} "
        f"({percent}%) in {budget.period_label}, billed days at their bill"
    )


def balance_chart(
    report: Report, *, fancy: bool, unit: Decimal = Decimal(1), width: int = BAR_WIDTH
) -> list[Text]:
    """The balance at the end of each day, credits in, and the projection to the runway."""
    history = report.balance
    if history is None:
        return [Text("Balance: unknown (set CREDITWATCH_STARTING_BALANCE and _AT)", style="dim")]
    rows = _balance_rows(history, report.since)[-MOST_DAYS:]
    if not rows:
        return [Text("Balance: the window ends before the starting balance", style="dim")]
    scale = max(*(r[2] for r in rows), 1)
    title = "Balance at the end of each UTC day"
    if history.reload_rule:
        title += f"; {history.reload_rule} (simulated)"
    if history.projection:
        title += "; " + ("░" if fancy else ".") + " projected"
    out = [Text(title, style="bold")]
    events = _events_by_day(history.events)
    shown: set[datetime] = set()
    for day, at, balance, projected in rows:
        bar, _ = _bar(balance, scale, width, fancy=fancy and not projected)
        if projected:
            bar = bar.replace("#", "░" if fancy else ".")
        line = Text(_day_label(day) + "  ")
        line.append(bar.ljust(width + 1), style="dim cyan" if projected else "cyan")
        line.append(f" {usd_text(balance, unit):>11}", style="red" if balance <= 0 else "")
        if at is not None:
            line.append(f"  {at}", style="dim")
        if day not in shown:
            shown.add(day)
            for event, style in _event_texts(events.get(day, []), fancy, unit):
                line.append(f"  {event}", style=style)
        out.append(line)
    out.append(Text(" " * 16 + "0".ljust(width + 1) + f" {usd_text(scale, unit):>11}", style="dim"))
    out.append(runway_line(history))
    return out


def runway_line(history: BalanceHistory) -> Text:
    if history.zero_at is not None and history.now is not None:
        left = max(timedelta(0), history.zero_at - history.now)
        return Text(
            f"Runway: the balance reaches zero {history.zero_at:%Y-%m-%d %H:%M} UTC at the "
            f"expected rate, in {_duration(left)}",
            style="bold red",
        )
    if history.runway_note:
        return Text(f"Runway: {history.runway_note}")
    return Text("Runway: not projected (the window ends before now)", style="dim")


def _balance_rows(
    history: BalanceHistory, since: datetime
) -> list[tuple[datetime, str | None, int, bool]]:
    """(day, note, balance, projected) per UTC day: the balance at the day's end, or at the
    window's end (now) on its last day; then the projected days after today."""
    rows: list[tuple[datetime, str | None, int, bool]] = []
    if history.points:
        at = {p.at: p.balance_nanos for p in history.points}
        last = history.points[-1]
        day = max(day_start(since), day_start(history.points[0].at))
        while day <= last.at:
            end = day + DAY
            if end < last.at or (end == last.at and last.at != history.now):
                if end in at:
                    rows.append((day, None, at[end], False))
            else:
                note = f"now ({last.at:%H:%M})" if last.at == history.now else None
                rows.append((day, note, last.balance_nanos, False))
                break
            day = end
    if history.projection:
        ahead = {p.at: p.balance_nanos for p in history.projection}
        final = history.projection[-1]
        today = day_start(history.projection[0].at)
        day = today
        while day <= final.at:
            end = day + DAY
            if end <= final.at and end in ahead:
                if day > today:
                    rows.append((day, None, ahead[end], True))
            else:
                zero = history.zero_at is not None and final.at == history.zero_at
                note = f"zero at {final.at:%H:%M}" if zero else None
                rows.append((day, note, final.balance_nanos, True))
                break
            day = end
    return rows


def _events_by_day(events: Sequence[BalanceEvent]) -> dict[datetime, list[BalanceEvent]]:
    grouped: dict[datetime, list[BalanceEvent]] = defaultdict(list)
    for event in events:
        grouped[day_start(event.at)].append(event)
    return grouped


def _event_texts(events: list[BalanceEvent], fancy: bool, unit: Decimal) -> list[tuple[str, str]]:
    out = []
    for kind in ("reload", "purchase"):
        for projected in (False, True):
            chosen = [e for e in events if e.kind == kind and e.projected == projected]
            if not chosen:
                continue
            amount = usd_text(sum(e.amount_nanos for e in chosen), unit)
            count = f"{len(chosen)} {kind}s" if len(chosen) > 1 else kind
            mark = ("▲ " if fancy else "^ ") if kind == "reload" else "+ "
            label = f"{mark}{count} +{amount}" + (" (projected)" if projected else "")
            out.append((label, "dim green" if projected else "green"))
    return out


def _day_label(day: datetime) -> str:
    return f"{day:%Y-%m-%d %a}"


def _duration(left: timedelta) -> str:
    hours = int(left.total_seconds() // 3600)
    days, hours = divmod(hours, 24)
    if days:
        return f"{days} day(s) {hours} hour(s)"
    return f"{hours} hour(s)"
