"""The report's two charts as inline SVG: daily spend against the budget, and the balance.

No script, no external resource: shapes, text and ``<title>`` tooltips only. Amounts stay exact
integers until they become pixel coordinates, the one place a float is right.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from decimal import Decimal
from html import escape

from service.domain.money import usd_text
from service.domain.report import DAY, BalanceHistory, DaySpend, Report

WIDTH, HEIGHT = 1100, 320
LEFT, RIGHT, TOP, BOTTOM = 78, 24, 18, 40
PLOT_W, PLOT_H = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
NANOS = 10**9
_STEPS = (1, 2, 5, 10)
Scale = Callable[[int], float]

SPEND, OVER, FAST, BILLED, BUDGET = "#3b6fb6", "#d1495b", "#f0a04b", "#1d3557", "#9c5b00"
BALANCE, RELOAD, ZERO, GRID, INK, MUTED = "#2a9d8f", "#2b9348", "#c1121f", "#e6e8eb", "#222", "#667"


def axis(nanos: int, ticks: int = 6) -> tuple[int, int]:
    """The axis top and tick step for values up to ``nanos`` and a little headroom: the step
    1, 2, 2.5 or 5 times a power of ten (a cent at least), at most ``ticks`` of them to the
    top, the top the first tick above the values (a dollar, for an empty chart)."""
    target = max(nanos, 0) * 105 // 100 or NANOS
    size = 10**6  # a tenth of a cent: steps start at a cent
    while True:
        for step in (10 * size, 20 * size, 25 * size, 50 * size):
            if step * ticks >= target:
                return -(-target // step) * step, step
        size *= 10


def _ticks(top: int, step: int, bottom: int = 0) -> list[int]:
    return list(range(bottom, top + 1, step))


def _num(value: float) -> str:
    return f"{value:.1f}"


def _money_label(nanos: int, unit: Decimal) -> str:
    text = usd_text(nanos, unit)
    return text.removesuffix(".00") if nanos % NANOS == 0 else text


def _frame(label: str, ticks: Sequence[tuple[float, str]]) -> list[str]:
    """The SVG's opening, its grid lines and y labels."""
    out = [
        f'<svg viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'role="img" aria-label="{escape(label)}" class="chart">',
        f"<title>{escape(label)}</title>",
    ]
    for y, text in ticks:
        out.append(
            f'<line x1="{LEFT}" y1="{_num(y)}" x2="{WIDTH - RIGHT}" y2="{_num(y)}" '
            f'stroke="{GRID}" stroke-width="1"/>'
        )
        out.append(
            f'<text x="{LEFT - 8}" y="{_num(y + 4)}" text-anchor="end" font-size="12" '
            f'fill="{MUTED}">{escape(text)}</text>'
        )
    return out


def _date_labels(days: Sequence[datetime], x_of: dict[datetime, float]) -> list[str]:
    every = max(1, -(-len(days) // 16))
    out = []
    for index, day in enumerate(days):
        if index % every:
            continue
        out.append(
            f'<text x="{_num(x_of[day])}" y="{HEIGHT - BOTTOM + 18}" text-anchor="middle" '
            f'font-size="12" fill="{MUTED}">{day:%b} {day.day}</text>'
        )
    return out


def spend_svg(report: Report, unit: Decimal = Decimal(1)) -> str:
    """Bars of estimated daily spend (red above the budget), billed ticks, the budget line."""
    days = list(report.days)
    top, step = axis(
        max([d.estimated_nanos for d in days] + [d.billed_nanos or 0 for d in days]
            + [d.budget_nanos or 0 for d in days] + [0])
    )  # fmt: skip

    def y(nanos: int) -> float:
        return TOP + PLOT_H - PLOT_H * nanos / top

    ticks = [(y(v), _money_label(v, unit)) for v in _ticks(top, step)]
    out = _frame("Daily spend against the budget", ticks)
    slot = PLOT_W / max(1, len(days))
    bar = max(2.0, slot * 0.7)
    x_of = {d.day: LEFT + slot * (i + 0.5) for i, d in enumerate(days)}
    for day in days:
        out.append(_spend_bar(day, x_of[day.day], bar, y, report=report, unit=unit))
    if report.budget is not None and days:
        points = []
        for day in days:
            if day.budget_nanos is None:
                continue
            left, right = x_of[day.day] - slot / 2, x_of[day.day] + slot / 2
            level = _num(y(day.budget_nanos))
            points += [f"{_num(left)},{level}", f"{_num(right)},{level}"]
        out.append(
            f'<polyline points="{" ".join(points)}" fill="none" stroke="{BUDGET}" '
            f'stroke-width="2.5" stroke-dasharray="7 4"><title>{escape(report.budget.label)}'
            "</title></polyline>"
        )
    out += _date_labels([d.day for d in days], x_of)
    out.append(
        f'<line x1="{LEFT}" y1="{TOP + PLOT_H}" x2="{WIDTH - RIGHT}" y2="{TOP + PLOT_H}" '
        f'stroke="{MUTED}" stroke-width="1"/>'
    )
    out.append("</svg>")
    return "\n".join(out)


def _spend_bar(
    day: DaySpend, x: float, width: float, y: Scale, *, report: Report, unit: Decimal
) -> str:
    over = day.budget_nanos is not None and day.estimated_nanos > day.budget_nanos
    fill = SPEND if not over else OVER if report.budget and report.budget.daily else FAST
    partial = day.day + DAY > report.until
    tip = f"{day.day:%Y-%m-%d}: estimated {usd_text(day.estimated_nanos, unit)}"
    if day.billed_nanos is not None:
        tip += f", billed {usd_text(day.billed_nanos, unit)}"
    if day.budget_nanos is not None:
        tip += f", budget {usd_text(day.budget_nanos, unit)}"
    if partial:
        tip += f" (until {report.until:%H:%M} UTC)"
    top = y(day.estimated_nanos)
    parts = [
        f'<g><title>{escape(tip)}</title><rect x="{_num(x - width / 2)}" y="{_num(top)}" '
        f'width="{_num(width)}" height="{_num(TOP + PLOT_H - top)}" rx="2" '
        f'fill="{fill}"' + (' fill-opacity="0.45"' if partial else "") + "/>"
    ]
    if day.billed_nanos is not None:
        level = _num(y(day.billed_nanos))
        parts.append(
            f'<line x1="{_num(x - width / 2 - 2)}" y1="{level}" x2="{_num(x + width / 2 + 2)}" '
            f'y2="{level}" stroke="{BILLED}" stroke-width="3"/>'
        )
    parts.append("</g>")
    return "".join(parts)


def balance_svg(history: BalanceHistory, unit: Decimal = Decimal(1)) -> str:
    """The balance line, credits in (triangles), the projection (dashed) and where it hits zero."""
    points, ahead = list(history.points), list(history.projection)
    every = points + ahead
    if not every:
        return ""
    start, end = every[0].at, every[-1].at
    span = max(1.0, (end - start).total_seconds())
    low = min([0] + [p.balance_nanos for p in every])
    high, step = axis(max([p.balance_nanos for p in every] + [history.reload_threshold_nanos or 0]))
    bottom = (low // step) * step  # floor division: a step below a negative low, else 0

    def x(at: datetime) -> float:
        return LEFT + PLOT_W * (at - start).total_seconds() / span

    def y(nanos: int) -> float:
        return TOP + PLOT_H - PLOT_H * (nanos - bottom) / (high - bottom)

    ticks = [(y(v), _money_label(v, unit)) for v in _ticks(high, step, bottom)]
    out = _frame("Balance, credits in and the runway projection", ticks)
    if history.reload_threshold_nanos is not None:
        level = _num(y(history.reload_threshold_nanos))
        label = f"auto-reload below {usd_text(history.reload_threshold_nanos, unit)}"
        out.append(
            f'<line x1="{LEFT}" y1="{level}" x2="{WIDTH - RIGHT}" y2="{level}" '
            f'stroke="{RELOAD}" stroke-width="1.5" stroke-dasharray="2 4"/>'
            f'<text x="{WIDTH - RIGHT - 4}" y="{_num(y(history.reload_threshold_nanos) - 6)}" '
            f'text-anchor="end" font-size="12" fill="{RELOAD}">{escape(label)}</text>'
        )
    if bottom < 0:
        out.append(
            f'<line x1="{LEFT}" y1="{_num(y(0))}" x2="{WIDTH - RIGHT}" y2="{_num(y(0))}" '
            f'stroke="{ZERO}" stroke-width="1"/>'
        )
    if points:
        line = " ".join(f"{_num(x(p.at))},{_num(y(p.balance_nanos))}" for p in points)
        area = f"{_num(x(points[0].at))},{_num(y(bottom))} {line} {_num(x(points[-1].at))},"
        area += _num(y(bottom))
        out.append(f'<polygon points="{area}" fill="{BALANCE}" fill-opacity="0.12"/>')
        out.append(
            f'<polyline points="{line}" fill="none" stroke="{BALANCE}" stroke-width="2.5" '
            'stroke-linejoin="round"/>'
        )
    if ahead:
        line = " ".join(f"{_num(x(p.at))},{_num(y(p.balance_nanos))}" for p in ahead)
        out.append(
            f'<polyline points="{line}" fill="none" stroke="{BALANCE}" stroke-width="2.5" '
            'stroke-dasharray="6 5" stroke-opacity="0.8"/>'
        )
    if history.now is not None and ahead:
        now_x = _num(x(history.now))
        out.append(
            f'<line x1="{now_x}" y1="{TOP}" x2="{now_x}" y2="{TOP + PLOT_H}" stroke="{MUTED}" '
            'stroke-dasharray="3 4"/>'
        )
        out.append(
            f'<text x="{now_x}" y="{TOP + 12}" text-anchor="middle" font-size="12" '
            f'fill="{MUTED}" paint-order="stroke" stroke="#fff" stroke-width="4">now</text>'
        )
    out += _event_marks(history, x, y, start=start, end=end, unit=unit)
    if history.zero_at is not None and ahead and ahead[-1].at == history.zero_at:
        zx, zy = x(history.zero_at), y(0)
        label = f"zero {history.zero_at:%b} {history.zero_at.day}, {history.zero_at:%H:%M}"
        anchor = "end" if zx > LEFT + PLOT_W * 0.85 else "middle"
        out.append(
            f"<g><title>the balance reaches zero at {history.zero_at:%Y-%m-%d %H:%M} UTC"
            f'</title><circle cx="{_num(zx)}" cy="{_num(zy)}" r="6" fill="{ZERO}"/>'
            f'<text x="{_num(zx)}" y="{_num(zy - 12)}" text-anchor="{anchor}" font-size="13" '
            f'font-weight="600" fill="{ZERO}" paint-order="stroke" stroke="#fff" '
            f'stroke-width="4">{escape(label)}</text></g>'
        )
    days = _day_ticks(start, end)
    out += _date_labels(days, {d: x(d) for d in days})
    out.append(
        f'<line x1="{LEFT}" y1="{TOP + PLOT_H}" x2="{WIDTH - RIGHT}" y2="{TOP + PLOT_H}" '
        f'stroke="{MUTED}" stroke-width="1"/>'
    )
    out.append("</svg>")
    return "\n".join(out)


def _event_marks(
    history: BalanceHistory,
    x: Callable[[datetime], float],
    y: Scale,
    *,
    start: datetime,
    end: datetime,
    unit: Decimal,
) -> list[str]:
    every = sorted([*history.points, *history.projection], key=lambda p: p.at)
    out = []
    for event in history.events:
        if not start <= event.at <= end:
            continue
        after = next((p.balance_nanos for p in every if p.at > event.at), every[-1].balance_nanos)
        ex, ey = x(event.at), y(after)
        kind = "auto-reload (simulated)" if event.kind == "reload" else "purchase"
        tip = f"{kind} +{usd_text(event.amount_nanos, unit)} at {event.at:%Y-%m-%d %H:%M} UTC"
        if event.projected:
            tip = "projected " + tip
        fill = "#fff" if event.projected else RELOAD
        if event.kind == "reload":
            shape = (
                f'<polygon points="{_num(ex)},{_num(ey - 9)} {_num(ex - 7)},{_num(ey + 4)} '
                f'{_num(ex + 7)},{_num(ey + 4)}" fill="{fill}" stroke="{RELOAD}" '
                'stroke-width="2"/>'
            )
        else:
            shape = (
                f'<circle cx="{_num(ex)}" cy="{_num(ey)}" r="6" fill="{fill}" '
                f'stroke="{RELOAD}" stroke-width="2"/>'
            )
        out.append(f"<g><title>{escape(tip)}</title>{shape}</g>")
    return out


def _day_ticks(start: datetime, end: datetime) -> list[datetime]:
    day = start.replace(hour=0, minute=0, second=0, microsecond=0)
    if day < start:
        day += DAY
    days = []
    while day <= end:
        days.append(day)
        day += DAY
    return days
