"""Billed vs estimated, pure: per workspace, per model and token type, priority tier apart."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from service.domain.billing import TOKEN_TYPES, BilledLine, DayUsage
from service.domain.money import usd_to_nanos
from service.domain.usage import TokenCounts
from service.pricing import PriceBook
from service.reconcile.compare import compare_day
from service.reconcile.estimate import estimate_lines

DAY = datetime(2026, 11, 3, tzinfo=UTC)
USD = 10**9
OPUS = "claude-opus-4-6"
SONNET = "claude-sonnet-4-5-20250929"


def usage(
    workspace: str = "",
    model: str = OPUS,
    tier: str = "standard",
    *,
    output: int = 0,
    uncached: int = 0,
    charged: int | None = None,
) -> DayUsage:
    counts = TokenCounts(uncached_input_tokens=uncached, output_tokens=output)
    cost = uncached * 5_000 + output * 25_000  # Opus 4.6 list prices, nano-USD per token
    return DayUsage(workspace, model, tier, "0-200k", "global", counts, cost, charged or cost)


def test_the_estimate_splits_by_the_cost_reports_token_types_at_the_books_rates() -> None:
    """A row's parts are priced at its own rates and add up to its cost."""
    book = PriceBook.load()
    row = usage("wrkspc_a", output=1_000_000, uncached=2_000_000)
    lines = estimate_lines([row], book, DAY)
    assert lines == {
        ("wrkspc_a", OPUS, "output_tokens"): 25 * USD,
        ("wrkspc_a", OPUS, "uncached_input_tokens"): 10 * USD,
    }
    assert sum(lines.values()) == row.cost_nanos


def test_token_types_follow_the_usage_counters_in_order() -> None:
    """The split maps each usage counter to the cost report's name for it."""
    assert [name for name, _ in TOKEN_TYPES] == list(TokenCounts.__struct_fields__)[:5]


def test_a_priced_line_the_bill_rates_higher_is_a_positive_adjustment() -> None:
    """The bill charges Opus output at 1.25x: the workspace's adjustment is the difference."""
    rows = [usage("w", output=4_000_000)]  # estimated $100
    lines = estimate_lines(rows, PriceBook.load(), DAY)
    billed = [BilledLine("w", OPUS, "output_tokens", 125 * USD)]
    day = compare_day(DAY, billed, rows, lines)
    (workspace,) = day.workspaces
    assert (workspace.billed_nanos, workspace.estimated_nanos) == (125 * USD, 100 * USD)
    assert workspace.adjustment_nanos == 25 * USD
    (line,) = workspace.lines
    assert (line.model, line.kind, line.difference_nanos) == (OPUS, "output_tokens", 25 * USD)


def test_costs_only_the_bill_has_are_adjusted_in_full() -> None:
    """Code execution has no usage row: estimated at zero, its whole amount is the adjustment."""
    billed = [BilledLine("w", "", "code_execution", 3 * USD)]
    day = compare_day(DAY, billed, [], {})
    (workspace,) = day.workspaces
    assert workspace.adjustment_nanos == 3 * USD
    assert [(x.model, x.kind, x.estimated_nanos) for x in workspace.lines] == [
        ("", "code_execution", 0)
    ]


def test_priority_tier_keeps_its_estimate_and_is_left_out_of_the_comparison() -> None:
    """The bill omits priority-tier usage: it is reported apart and not adjusted away."""
    rows = [usage("w", output=1_000_000), usage("w", tier="priority", output=2_000_000)]
    lines = estimate_lines(rows, PriceBook.load(), DAY)
    assert all(key[2] != "priority" for key in lines)
    billed = [BilledLine("w", OPUS, "output_tokens", 25 * USD)]
    (workspace,) = compare_day(DAY, billed, rows, lines).workspaces
    assert workspace.estimated_nanos == 25 * USD
    assert workspace.priority_nanos == 50 * USD
    assert workspace.adjustment_nanos == 0


def test_the_totals_compared_are_the_charged_amounts_not_the_split() -> None:
    """The split explains; the adjustment uses the exact charged cost of the day."""
    rows = [usage("w", output=1_000_000, charged=25 * USD + 7)]
    billed = [BilledLine("w", OPUS, "output_tokens", 25 * USD)]
    (workspace,) = compare_day(DAY, billed, rows, {}).workspaces
    assert workspace.adjustment_nanos == -7


def test_a_bill_below_the_estimate_is_a_negative_adjustment() -> None:
    """A discount (or a price cut the book misses) books a credit back."""
    rows = [usage("w", output=4_000_000)]
    billed = [BilledLine("w", OPUS, "output_tokens", usd_to_nanos(Decimal("97.5")))]
    (workspace,) = compare_day(DAY, billed, rows, {}).workspaces
    assert workspace.adjustment_nanos == -usd_to_nanos(Decimal("2.5"))


def test_no_bill_while_usage_was_estimated_waits_for_the_bill() -> None:
    """A day whose bill is not out yet is not compared: adjusting would erase the estimate."""
    day = compare_day(DAY, None, [usage("w", output=10)], {})
    assert day.awaiting_bill
    assert day.workspaces == ()


def test_only_priority_usage_and_no_bill_is_a_day_within_bounds() -> None:
    """Nothing billable was used, so an empty bill is the right one."""
    day = compare_day(DAY, None, [usage("w", tier="priority", output=10)], {})
    assert not day.awaiting_bill
    (workspace,) = day.workspaces
    assert (workspace.billed_nanos, workspace.estimated_nanos, workspace.adjustment_nanos) == (
        0,
        0,
        0,
    )
    assert workspace.priority_nanos == 250_000


def test_a_quiet_day_is_one_zero_row_for_the_default_workspace() -> None:
    """Neither bill nor usage: still compared, so a drift alert can resolve on it."""
    day = compare_day(DAY, [], [], {})
    assert [(w.workspace_id, w.billed_nanos, w.estimated_nanos) for w in day.workspaces] == [
        ("", 0, 0)
    ]


@pytest.mark.parametrize(
    ("bill_workspaces", "usage_workspaces", "expected"),
    [
        (("a", "b"), ("a",), ["a", "b"]),
        (("a",), ("a", "c"), ["a", "c"]),
        ((), ("", "a"), ["", "a"]),
    ],
    ids=["bill-only-workspace", "usage-only-workspace", "default-workspace"],
)
def test_every_workspace_either_side_names_is_compared(
    bill_workspaces: tuple[str, ...], usage_workspaces: tuple[str, ...], expected: list[str]
) -> None:
    """One comparison per workspace of the bill or the usage, the default one as ``""``."""
    billed = [BilledLine(w, SONNET, "output_tokens", USD) for w in bill_workspaces]
    rows = [usage(w, model=SONNET, output=1) for w in usage_workspaces]
    day = compare_day(DAY, billed, rows, {})
    assert [w.workspace_id for w in day.workspaces] == expected
    assert day.billed_nanos == len(bill_workspaces) * USD
