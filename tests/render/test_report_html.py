"""The shared page: valid, self-contained (nothing fetched from anywhere), names escaped."""

from __future__ import annotations

from dataclasses import replace

import pytest

from service.domain.report import Report
from service.render.report_html import report_html
from tests.pages import parse_strictly
from tests.render.conftest import TRICKY, make_report


@pytest.mark.parametrize("by", ["workspace", "model", "day", "api_key", "hour"])
def test_the_page_parses_cleanly_and_fetches_nothing(by: str) -> None:
    """Every element closed, no script, no src/href/url() anywhere, no http(s) at all."""
    html = report_html(make_report(by), version="1.2.3")  # type: ignore[arg-type]
    page = parse_strictly(html)
    assert page.errors == []
    assert page.fetches == []
    assert "http://" not in html
    assert "https://" not in html
    assert page.tags.count("svg") == 2
    assert page.tags.count("tr") == 1 + 2 + 1  # header, two lines, the total


def test_names_from_the_api_are_escaped() -> None:
    """A workspace named like markup shows as text and adds no element."""
    html = report_html(make_report(tricky=True), version="1.2.3")
    page = parse_strictly(html)
    assert page.errors == []
    assert "script" not in page.tags
    assert TRICKY in "".join(page.text)
    assert "<script>alert" not in html


def test_the_page_names_what_it_shows(report: Report) -> None:
    """Cards, the charts' legends and the notes say what the numbers are."""
    text = " ".join(parse_strictly(report_html(report, version="1.2.3")).text)
    for phrase in (
        "Estimated cost",
        "$1,000.00",
        "Billed",
        "$985.00",
        "+$5.00 (+0.5%) against the estimate",
        "Budget daily",
        "Runway",
        "Nov 15, 17:20",
        "over the budget",
        "daily budget $100.00",
        "Default workspace",
        "wrkspc_01Prod",
        "10 billed day(s), 2026-11-01 to 2026-11-10",
        "creditwatch 1.2.3",
    ):
        assert phrase in text, phrase


def test_without_a_balance_or_a_bill_the_page_says_so(report: Report) -> None:
    """No starting balance: a sentence instead of a chart; nothing billed: dashes."""
    bare = replace(
        report,
        balance=None,
        billed_days=(),
        lines=tuple(replace(line, billed_nanos=None, compared_nanos=None) for line in report.lines),
        total=replace(report.total, billed_nanos=None, compared_nanos=None),
    )
    page = parse_strictly(report_html(bare, version="1.2.3"))
    assert page.errors == []
    text = " ".join(page.text)
    assert "Unknown: set CREDITWATCH_STARTING_BALANCE" in text
    assert "no whole day of the window is billed yet" in text
    assert page.tags.count("svg") == 1
