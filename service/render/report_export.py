"""`creditwatch report --json` and `--csv`: the same report for scripts and spreadsheets.

Amounts are decimal strings in USD (``"12.345678901"`` is exact to the nano-dollar); counts are
integers. Where no bill covers a line, billed amounts are ``null`` in JSON and empty in CSV.
"""

from __future__ import annotations

import csv
from decimal import Decimal
from typing import IO, Any

from service.domain.money import credits_of, format_usd
from service.domain.report import BalanceHistory, Report, UsageLine
from service.domain.timefmt import rfc3339, rfc3339_or_none

CSV_COLUMNS = (
    "key",
    "name",
    "uncached_input_tokens",
    "cache_write_tokens",
    "cache_read_tokens",
    "output_tokens",
    "web_search_requests",
    "cost_usd",
    "billed_usd",
    "billed_days_estimate_usd",
    "difference_usd",
    "estimated",
)


def _money(nanos: int | None) -> str | None:
    return None if nanos is None else format_usd(nanos)


def line_json(line: UsageLine, unit: Decimal = Decimal(1)) -> dict[str, Any]:
    """One line; ``cost_usd`` is what the ledger charges for the whole window (the hourly bill
    where the Analytics API gave one, else the estimate), ``estimated`` whether part of it is
    priced on an assumption (unknown model, priority tier, tiers); ``hourly_billed_usd`` is the
    part billed by the hour and ``hourly_list_usd`` its list price (``discount_usd`` between)."""
    out: dict[str, Any] = {
        "key": line.key,
        "name": line.name,
        "uncached_input_tokens": line.uncached_input_tokens,
        "cache_write_tokens": line.cache_write_tokens,
        "cache_read_tokens": line.cache_read_tokens,
        "output_tokens": line.output_tokens,
        "web_search_requests": line.web_search_requests,
        "cost_usd": format_usd(line.estimated_nanos),
        "billed_usd": _money(line.billed_nanos),
        "billed_days_estimate_usd": _money(line.compared_nanos),
        "difference_usd": _money(line.difference_nanos),
        "estimated": line.priced_estimate,
        "hourly_billed_usd": format_usd(line.hourly_billed_nanos),
        "hourly_list_usd": format_usd(line.hourly_list_nanos),
        "discount_usd": format_usd(line.discount_nanos),
    }
    if unit != 1:
        out["cost_credits"] = credits_of(line.estimated_nanos, unit)
    return out


def report_json(report: Report, unit: Decimal = Decimal(1)) -> dict[str, Any]:
    """The whole report as one JSON object."""
    return {
        "by": report.by,
        "since": rfc3339(report.since),
        "until": rfc3339(report.until),
        "generated_at": rfc3339(report.generated_at),
        "organization": report.organization or None,
        "bucket_width": report.bucket_width,
        "rows": [line_json(line, unit) for line in report.lines],
        "total": line_json(report.total, unit),
        "billing": {
            "billed_days": [d.date().isoformat() for d in report.billed_days],
            "by_line": report.billed_by_line,
            "priority_tier_not_billed_usd": format_usd(report.priority_unbilled_nanos),
        },
        "daily": [
            {
                "day": d.day.date().isoformat(),
                "cost_usd": format_usd(d.estimated_nanos),
                "billed_usd": _money(d.billed_nanos),
                "budget_usd": _money(d.budget_nanos),
            }
            for d in report.days
        ],
        "budget": None
        if report.budget is None
        else {
            "name": report.budget.name,
            "period": report.budget.period,
            "limit_usd": format_usd(report.budget.limit_nanos),
        },
        "balance": balance_json(report.balance),
    }


def balance_json(history: BalanceHistory | None) -> dict[str, Any] | None:
    if history is None:
        return None
    return {
        "balance_usd": _money(history.balance_nanos),
        "points": [
            {"at": rfc3339(p.at), "balance_usd": format_usd(p.balance_nanos)}
            for p in history.points
        ],
        "credits_in": [
            {
                "at": rfc3339(e.at),
                "kind": e.kind,
                "amount_usd": format_usd(e.amount_nanos),
                "projected": e.projected,
            }
            for e in history.events
        ],
        "projection": [
            {"at": rfc3339(p.at), "balance_usd": format_usd(p.balance_nanos)}
            for p in history.projection
        ],
        "runway_until": rfc3339_or_none(history.zero_at),
        "runway_note": history.runway_note,
    }


def write_csv(report: Report, out: IO[str]) -> None:
    """One header line, one line per row, then the total (key ``total``)."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for line in [*report.lines, report.total]:
        row = line_json(line)
        writer.writerow(
            ["" if row[c] is None else str(row[c]).lower() if c == "estimated"
             else _text_cell(row[c]) if c in _TEXT_COLUMNS else row[c]
             for c in CSV_COLUMNS]
        )  # fmt: skip


# Names come from upstream (a workspace anyone in the organization may name): a cell that a
# spreadsheet would run as a formula is written as text (OWASP's CSV injection advice).
_TEXT_COLUMNS = frozenset({"key", "name"})
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _text_cell(value: object) -> object:
    text = str(value)
    return "'" + text if text.startswith(_FORMULA_STARTS) else value
