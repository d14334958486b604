"""The report in a terminal: the table, its notes, and the two charts (styled or plain)."""

from __future__ import annotations

import csv
import io
from dataclasses import replace

import pytest
from rich.console import Console

from service.domain.report import Report
from service.render.report_export import write_csv
from service.render.report_text import (
    balance_chart,
    count_text,
    difference_text,
    spend_chart,
    table,
)
from tests.render.conftest import USD


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (0, "0"),
        (9_999, "9,999"),
        (12_345, "12.3K"),
        (1_234_567, "1.23M"),
        (45_000_000, "45.0M"),
        (123_456_789, "123M"),
        (4_560_000_000, "4.56B"),
    ],
)
def test_token_counts_read_at_a_glance(value: int, text: str) -> None:
    """Exact below 10,000, then three significant digits with K, M, B."""
    assert count_text(value) == text


def test_the_table_has_names_ids_and_honest_billed_columns(report: Report) -> None:
    """Names with their ids, the difference with its share, "—" where nothing is billed."""
    unbilled = replace(report.lines[0], billed_nanos=None, compared_nanos=None)
    shown = replace(report, lines=(unbilled, report.lines[1]))
    lines = table(shown)
    header, first, second = lines[0], lines[1], lines[2]
    assert header.split()[:2] == ["workspace", "id"]
    assert first.startswith("Production")
    assert "wrkspc_01Prod" in first
    assert first.split()[-2:] == ["—", "—"]
    assert second.split()[-2:] == ["-$5.00", "(-1.7%)"]
    assert "$300.00*" in second
    assert lines[4].startswith("total")
    text = "\n".join(lines)
    assert "* includes estimated prices" in text
    assert "10 billed day(s), 2026-11-01 to 2026-11-10" in text
    assert "priority-tier usage on those days ($3.00 estimated)" in text


def test_the_difference_is_billed_minus_the_estimate_of_the_billed_days(report: Report) -> None:
    """+$10.00 of $680.00 is +1.5%; nothing billed is a dash."""
    assert difference_text(report.lines[0]) == "+$10.00 (+1.5%)"
    assert difference_text(replace(report.lines[0], billed_nanos=None)) == "—"


def test_the_plain_spend_chart_is_ascii_one_line_a_day(report: Report) -> None:
    """Off a terminal: ASCII only, the budget's column marked on every day, over-budget days
    named, billed days say their bill, the day in progress says so."""
    lines = [t.plain for t in spend_chart(report, fancy=False)]
    assert all(line.isascii() for line in lines)
    days = [line for line in lines if line.startswith("2026-11-")]
    assert len(days) == 12
    columns = {line.index("|", 16) for line in days}
    assert len(columns) == 1, "the budget line is one straight column"
    assert "over by $5.00" in days[5]  # $60 + 9 × 5 = $105 against $100
    assert "|#" in days[5], "a bar over the budget goes on past its line"
    assert "over by" not in days[4]
    assert "billed $59.50" in days[0]
    assert "billed" not in days[10]
    assert days[-1].endswith("(to 15:20)")
    assert lines[-1].startswith("Budget daily: $55.00 of $100.00 (55.0%) in 2026-11-12")


def test_the_plain_balance_chart_shows_reloads_the_projection_and_the_runway(
    report: Report,
) -> None:
    """Booked and projected reloads on their days, projected days drawn apart, zero named."""
    lines = [t.plain for t in balance_chart(report, fancy=False)]
    assert all(line.isascii() for line in lines)
    by_day = {line[:10]: line for line in lines if line.startswith("2026-11-")}
    assert "^ reload +$600.00" in by_day["2026-11-08"]
    assert "^ reload +$500.00 (projected)" in by_day["2026-11-13"]
    assert "now (15:20)" in by_day["2026-11-12"]
    assert "zero at 17:20" in by_day["2026-11-15"]
    projected_bar = by_day["2026-11-14"][16:56]
    assert "." in projected_bar
    assert "#" not in projected_bar
    assert lines[-1] == (
        "Runway: the balance reaches zero 2026-11-15 17:20 UTC at the expected rate, "
        "in 3 day(s) 2 hour(s)"
    )


def test_a_terminal_gets_blocks_and_colour_and_a_pipe_gets_neither(report: Report) -> None:
    """The same chart through rich: ANSI styles on a terminal, none when not one."""
    terminal, pipe = io.StringIO(), io.StringIO()
    styled = Console(file=terminal, force_terminal=True, color_system="standard", width=200)
    plain = Console(file=pipe, force_terminal=False, width=200)
    for text in spend_chart(report, fancy=True) + balance_chart(report, fancy=True):
        styled.print(text)
        plain.print(text)
    assert "\x1b[" in terminal.getvalue()
    assert "█" in terminal.getvalue()
    assert "░" in terminal.getvalue()
    assert "\x1b[" not in pipe.getvalue()


def test_no_balance_and_an_empty_window_say_so(report: Report) -> None:
    """Without a starting balance the chart says what to set; no days, no chart."""
    assert (
        "CREDITWATCH_STARTING_BALANCE"
        in balance_chart(replace(report, balance=None), fancy=False)[0].plain
    )
    assert spend_chart(replace(report, days=()), fancy=False) == []
    assert report.total.estimated_nanos == 1000 * USD


def test_a_name_a_spreadsheet_would_run_is_written_as_text(report: Report) -> None:
    """A workspace named '=HYPERLINK(…)' lands in the CSV as text; negative amounts stay
    numbers."""
    evil = replace(report.lines[0], name='=HYPERLINK("http://x","click")')
    out = io.StringIO()
    write_csv(replace(report, lines=(evil, *report.lines[1:])), out)
    rows = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert rows[0]["name"] == '\'=HYPERLINK("http://x","click")'
    assert rows[1]["name"] == "Default workspace"
    assert rows[1]["difference_usd"] == "-5.00", rows[1]
