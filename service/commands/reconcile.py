"""`creditwatch reconcile [--since DATE]`: book the bill's difference from the estimate.

For the finished UTC days to check (the ones not adjusted yet and the last few, or every day
from ``--since``), prints per day what Anthropic billed, what creditwatch estimated (priority
tier apart: the bill omits it, so it keeps its estimate) and the adjustment booked, then
delivers any alert it raised (a large drift), as `once` does.
"""

from __future__ import annotations

import argparse
import logging
from datetime import UTC, date, datetime, time

from service.commands.context import CommandContext, say
from service.commands.registry import Command
from service.domain.money import usd_text
from service.render.terminal import table_lines
from service.runtime.cycle import Runtime
from service.runtime.failures import log_failure
from service.runtime.reconciling import STATUS_TEXT, DayOutcome, ReconcileResult

log = logging.getLogger(__name__)


def day_arg(raw: str) -> datetime:
    """A date (``2026-11-03``): midnight UTC of that day."""
    try:
        day = date.fromisoformat(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{raw!r} is not a date such as 2026-11-03") from None
    if not 2000 <= day.year <= 2100:
        raise argparse.ArgumentTypeError(f"{raw!r} is not between 2000 and 2100")
    return datetime.combine(day, time(), tzinfo=UTC)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--since",
        type=day_arg,
        metavar="DATE",
        help="re-check every finished UTC day from DATE (default: the days not adjusted yet "
        "and the last 3)",
    )


def reconcile(ctx: CommandContext) -> int:
    with Runtime(
        ctx.settings, transport=ctx.transport, retry=ctx.retry, clock=ctx.clock
    ) as runtime:
        result = runtime.reconcile(ctx.clock, since=ctx.args.since)
        try:
            delivered = runtime.deliver() if result.alerts else None
        except Exception as exc:  # noqa: BLE001 - the booking stands; the daemon delivers later
            log_failure(log, "delivery failed", exc)
            delivered = None
    for line in result_lines(result):
        say(line)
    if delivered is not None:
        say(delivered.summary())
    return 0


def result_lines(result: ReconcileResult) -> list[str]:
    """The per-day table and the summary line."""
    if not result.days:
        return [result.summary()]
    header = ("day", "billed", "estimated", "priority tier", "booked", "adjustment", "")
    rows = [_row(day) for day in result.days]
    return [*table_lines(header, rows, text_columns=(0, 6)), "", result.summary()]


def _row(day: DayOutcome) -> tuple[str, ...]:
    adjusted = day.status == "adjusted"
    return (
        f"{day.day:%Y-%m-%d}",
        usd_text(day.billed_nanos) if day.status != "awaiting_bill" else "-",
        usd_text(day.estimated_nanos),
        usd_text(day.priority_nanos) + " (kept)" if day.priority_nanos else "-",
        _signed(day.booked_nanos) if adjusted else "-",
        _signed(day.adjusted_nanos) if adjusted else "-",
        STATUS_TEXT[day.status],
    )


def _signed(nanos: int) -> str:
    return ("+" if nanos > 0 else "") + usd_text(nanos)


COMMAND = Command(
    "reconcile",
    configure,
    reconcile,
    description=(
        "Fetch the cost report for finished UTC days and book, per day and workspace, the "
        "difference between what Anthropic billed and what creditwatch estimated."
    ),
)
