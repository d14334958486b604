"""`creditwatch report --html FILE`: one self-contained page to share.

Inline CSS and inline SVG only: no script, no font, stylesheet or image from anywhere, so the
page opens the same offline, in a mail attachment or behind a strict proxy, and tells nobody
that it was opened. Every name from the Admin API is escaped.
"""

from __future__ import annotations

from decimal import Decimal
from html import escape

from service.domain.money import usd_text
from service.domain.report import Report, UsageLine
from service.domain.timefmt import rfc3339
from service.render.report_svg import (
    BALANCE,
    BILLED,
    BUDGET,
    FAST,
    OVER,
    RELOAD,
    SPEND,
    ZERO,
    balance_svg,
    spend_svg,
)
from service.render.report_text import (
    DIMENSION_TITLE,
    NAMED_BY,
    count_text,
    difference_text,
    notes,
)

_CSS = """
:root { color-scheme: light; }
* { box-sizing: border-box; }
body { margin: 0; background: #f4f5f7; color: #222;
  font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial,
  sans-serif; }
main { max-width: 1180px; margin: 0 auto; padding: 28px 24px 40px; }
header h1 { margin: 0; font-size: 26px; }
header p { margin: 4px 0 0; color: #555; }
.cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(200px, 1fr));
  gap: 14px; margin: 22px 0; }
.card { background: #fff; border-radius: 10px; padding: 14px 16px;
  box-shadow: 0 1px 2px rgba(0,0,0,.08); }
.card .label { font-size: 13px; color: #667; text-transform: uppercase; letter-spacing: .04em; }
.card .value { font-size: 24px; font-weight: 650; margin-top: 2px; }
.card .sub { font-size: 13px; color: #555; }
.warn { color: #c1121f; }
section { background: #fff; border-radius: 10px; padding: 16px 18px 10px; margin: 0 0 18px;
  box-shadow: 0 1px 2px rgba(0,0,0,.08); }
section h2 { margin: 0 0 4px; font-size: 18px; }
.legend { display: flex; flex-wrap: wrap; gap: 16px; font-size: 13px; color: #555;
  margin: 4px 0 6px; }
.swatch { display: inline-block; width: 14px; height: 10px; border-radius: 2px;
  margin-right: 6px; vertical-align: middle; }
.line { display: inline-block; width: 18px; height: 0; border-top: 3px dashed;
  margin-right: 6px; vertical-align: middle; }
svg.chart { width: 100%; height: auto; display: block; font-family: inherit; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; width: 100%; font-size: 13.5px;
  font-variant-numeric: tabular-nums; }
th, td { padding: 6px 7px; border-bottom: 1px solid #eceef1; white-space: nowrap; }
th { text-align: right; font-weight: 600; color: #555; font-size: 13px; white-space: normal;
  vertical-align: bottom; }
th:first-child, td:first-child { text-align: left; }
td { text-align: right; }
td.name { text-align: left; white-space: normal; min-width: 12em; }
td.name small { display: block; color: #889; font-size: 12px; }
tr.total td { font-weight: 650; border-top: 2px solid #ccd; border-bottom: none; }
td.none { color: #aab; }
td.up { color: #c1121f; }
td.down { color: #2b9348; }
ul.notes { color: #555; font-size: 13px; padding-left: 18px; }
footer { color: #889; font-size: 12px; text-align: center; margin-top: 18px; }
"""


def report_html(report: Report, *, version: str, unit: Decimal = Decimal(1)) -> str:
    """The page: summary cards, the two charts, the breakdown table and its notes."""
    title = "creditwatch report" + (f" — {report.organization}" if report.organization else "")
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{escape(title)}</title>",
        f"<style>{_CSS}</style>",
        "</head>",
        "<body>",
        "<main>",
        _header(report, title),
        _cards(report, unit),
        _spend_section(report, unit),
        _balance_section(report, unit),
        _table_section(report, unit),
        f"<footer>creditwatch {escape(version)} · generated {escape(rfc3339(report.generated_at))}"
        " · a self-contained page: no scripts, nothing loaded from elsewhere</footer>",
        "</main>",
        "</body>",
        "</html>",
    ]
    return "\n".join(parts) + "\n"


def _header(report: Report, title: str) -> str:
    width = {"1m": "minute", "1h": "hourly", "1d": "daily"}.get(report.bucket_width, "")
    window = f"{report.since:%Y-%m-%d %H:%M} to {report.until:%Y-%m-%d %H:%M} UTC"
    return (
        f"<header><h1>{escape(title)}</h1><p>Usage by {escape(DIMENSION_TITLE[report.by])}, "
        f"{escape(window)} (buckets starting in the window; {width} buckets)</p></header>"
    )


def _card(label: str, value: str, sub: str = "", *, warn: bool = False) -> str:
    css = "value warn" if warn else "value"
    return (
        f'<div class="card"><div class="label">{escape(label)}</div>'
        f'<div class="{css}">{escape(value)}</div><div class="sub">{escape(sub)}</div></div>'
    )


def _cards(report: Report, unit: Decimal) -> str:
    total = report.total
    hourly = total.hourly_list_nanos > 0
    cards = [
        _card(
            "Charged" if hourly else "Estimated cost",
            usd_text(total.estimated_nanos, unit),
            "hourly bill, estimated until billed" if hourly else "tokens × list prices",
        )
    ]
    if total.billed_nanos is not None:
        days = len(report.billed_days)
        cards.append(
            _card(
                "Billed",
                usd_text(total.billed_nanos, unit),
                f"{days} billed day(s); {difference_text(total, unit)} against the estimate",
            )
        )
    else:
        cards.append(_card("Billed", "—", "no whole day of the window is billed yet"))
    budget = report.budget
    if budget is not None and budget.spent_nanos is not None:
        cards.append(
            _card(
                f"Budget {budget.name}",
                f"{usd_text(budget.spent_nanos, unit)}",
                f"of {usd_text(budget.limit_nanos, unit)} in {budget.period_label}, "
                "billed days at their bill",
                warn=budget.spent_nanos >= budget.limit_nanos,
            )
        )
    history = report.balance
    if history is not None and history.balance_nanos is not None:
        cards.append(
            _card(
                "Balance now",
                usd_text(history.balance_nanos, unit),
                history.reload_rule or "no auto-reload configured",
            )
        )
    if history is not None and history.zero_at is not None:
        when = history.zero_at
        cards.append(
            _card(
                "Runway",
                f"{when:%b} {when.day}, {when:%H:%M}",
                "UTC: the balance reaches zero at the expected rate",
                warn=True,
            )
        )
    elif history is not None and history.runway_note:
        cards.append(_card("Runway", "not reached", history.runway_note))
    return '<div class="cards">' + "".join(cards) + "</div>"


def _legend(items: list[tuple[str, str, bool]]) -> str:
    spans = []
    for color, label, dashed in items:
        mark = (
            f'<span class="line" style="border-color:{color}"></span>'
            if dashed
            else f'<span class="swatch" style="background:{color}"></span>'
        )
        spans.append(f"<span>{mark}{escape(label)}</span>")
    return '<div class="legend">' + "".join(spans) + "</div>"


def _spend_section(report: Report, unit: Decimal) -> str:
    items = [(SPEND, "estimated spend per UTC day", False)]
    budget = report.budget
    if budget is not None:
        above = "over the budget" if budget.daily else "faster than the budget's daily pace"
        items += [(OVER if budget.daily else FAST, above, False), (BUDGET, budget.label, True)]
    if report.billed_days:
        items.append((BILLED, "billed (Anthropic's cost report)", False))
    return "<section><h2>Daily spend</h2>" + _legend(items) + spend_svg(report, unit) + "</section>"


def _balance_section(report: Report, unit: Decimal) -> str:
    history = report.balance
    if history is None:
        return (
            "<section><h2>Balance</h2><p>Unknown: set CREDITWATCH_STARTING_BALANCE and "
            "CREDITWATCH_STARTING_BALANCE_AT.</p></section>"
        )
    chart = balance_svg(history, unit)
    if not chart:
        return (
            "<section><h2>Balance</h2><p>The window ends before the starting balance.</p></section>"
        )
    items = [
        (BALANCE, "balance (ledger)", False),
        (RELOAD, "credits in: auto-reload ▲ (simulated), purchase ●", False),
    ]
    if history.projection:
        items.append((BALANCE, "projected on expected spend", True))
    if history.zero_at is not None:
        items.append((ZERO, "reaches zero", False))
    note = history.runway_note or ""
    return (
        "<section><h2>Balance, reloads and runway</h2>"
        + _legend(items)
        + chart
        + (f'<p class="sub">{escape(note)}</p>' if note else "")
        + "</section>"
    )


def _table_section(report: Report, unit: Decimal) -> str:
    named = report.by in NAMED_BY
    head = [DIMENSION_TITLE[report.by].capitalize(), "Input", "Cache write", "Cache read"]
    cost = "Charged" if report.total.hourly_list_nanos else "Estimated"
    head += ["Output", "Web searches", cost, "Estimate, billed days", "Billed"]
    head += ["Difference"]
    rows = [_table_row(line, named, unit) for line in report.lines]
    rows.append(_table_row(report.total, False, unit, total=True))
    header = "".join(f"<th>{escape(h)}</th>" for h in head)
    notes_html = "".join(f"<li>{escape(n.strip())}</li>" for n in notes(report, unit))
    return (
        f"<section><h2>By {escape(DIMENSION_TITLE[report.by])}</h2>"
        f'<div class="scroll"><table><thead><tr>{header}</tr></thead><tbody>'
        + "".join(rows)
        + f'</tbody></table></div><ul class="notes">{notes_html}'
        "<li>Token counts are rounded here; hover one for the exact count, or use --csv or "
        "--json.</li></ul></section>"
    )


def _count(value: int) -> str:
    return f'<td title="{value:,}">{escape(count_text(value))}</td>'


def _table_row(line: UsageLine, named: bool, unit: Decimal, *, total: bool = False) -> str:
    label = "Total" if total else (line.name or line.key or "(none)")
    name = f'<td class="name">{escape(label)}'
    if named and line.key and line.name and line.name != line.key:
        name += f"<small>{escape(line.key)}</small>"
    name += "</td>"
    tds = "".join(
        _count(v)
        for v in (
            line.uncached_input_tokens,
            line.cache_write_tokens,
            line.cache_read_tokens,
            line.output_tokens,
        )
    )
    tds += f"<td>{line.web_search_requests:,}</td>"
    estimated = usd_text(line.estimated_nanos, unit) + ("*" if line.priced_estimate else "")
    tds += f"<td>{escape(estimated)}</td>"
    difference = line.difference_nanos
    if line.billed_nanos is None or line.compared_nanos is None or difference is None:
        tds += '<td class="none">—</td>' * 3
    else:
        css = "up" if difference > 0 else "down" if difference < 0 else ""
        tds += f"<td>{escape(usd_text(line.compared_nanos, unit))}</td>"
        tds += f"<td>{escape(usd_text(line.billed_nanos, unit))}</td>"
        tds += f'<td class="{css}">{escape(difference_text(line, unit))}</td>'
    row_class = ' class="total"' if total else ""
    return f"<tr{row_class}>{name}{tds}</tr>"
