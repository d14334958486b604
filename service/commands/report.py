"""`creditwatch report`: usage, estimated and billed cost by model, key, workspace, day or hour.

The window is half-open and bucket-exact: a bucket counts in the report whose ``[since, until)``
holds its start, so adjacent reports never count one bucket twice. Billed amounts cover only the
whole UTC days of the window that Anthropic has billed (see :mod:`service.domain.report`).

Output: a table and two charts (daily spend against the budget, the balance with its reloads
and runway), drawn with block characters and colour in a terminal and as plain ASCII
otherwise; ``--json`` or ``--csv`` for scripts; ``--html FILE`` for a page to share.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from rich.console import Console
from rich.text import Text

from service import __version__
from service.commands.args import moment_arg
from service.commands.context import CommandContext, complain, say
from service.commands.database import as_stored, ledger_for_reading
from service.commands.registry import Command
from service.domain.periods import month_start
from service.domain.report import REPORT_BY, Report
from service.domain.timefmt import rfc3339
from service.render.report_export import report_json, write_csv
from service.render.report_html import report_html
from service.render.report_text import DIMENSION_TITLE, balance_chart, spend_chart, table
from service.runtime.failures import EX_FAILURE, EX_USAGE
from service.runtime.report import build_report
from service.store.engine import read_transaction


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--by", choices=REPORT_BY, default="model")
    parser.add_argument(
        "--since", type=moment_arg, help="date or RFC 3339 time (default: start of this month)"
    )
    parser.add_argument("--until", type=moment_arg, help="date or RFC 3339 time (default: now)")
    output = parser.add_mutually_exclusive_group()
    output.add_argument("--json", action="store_true", help="one JSON object on stdout")
    output.add_argument("--csv", action="store_true", help="the table as CSV on stdout")
    parser.add_argument(
        "--html", type=Path, metavar="FILE", help="also write a self-contained HTML page"
    )
    parser.add_argument("--no-charts", action="store_true", help="only the table")


def report(ctx: CommandContext) -> int:
    args = ctx.args
    now = ctx.now()
    since = args.since or month_start(now)
    until = args.until or now
    if since >= until:
        complain(f"--since {rfc3339(since)} is not before --until {rfc3339(until)}")
        return EX_USAGE
    with ledger_for_reading(ctx.settings) as engine:
        settings = as_stored(engine, ctx.settings)
        if args.by == "hour" and settings.collection.bucket_width == "1d":
            complain(
                "--by hour needs hourly or minute buckets; this ledger holds daily ones "
                "(CREDITWATCH_BUCKET_WIDTH=1d)"
            )
            return EX_USAGE
        with read_transaction(engine) as session:
            built = build_report(session, settings, by=args.by, since=since, until=until, now=now)
    unit = settings.ledger.credit_unit_usd
    if args.html is not None:
        try:
            args.html.write_text(report_html(built, version=__version__, unit=unit), "utf-8")
        except OSError as exc:
            complain(f"cannot write {args.html}: {exc.strerror or exc}")
            return EX_FAILURE
    if args.json:
        say(json.dumps(report_json(built, unit), indent=2))
    elif args.csv:
        write_csv(built, sys.stdout)
    elif args.html is not None:
        say(f"Wrote the report ({DIMENSION_TITLE[args.by]}) to {args.html}")
    else:
        _print(built, charts=not args.no_charts)
    return 0


def _print(built: Report, *, charts: bool) -> None:
    """The table and the charts; styled only when stdout is a terminal."""
    unit_lines = [
        f"Usage by {DIMENSION_TITLE[built.by]} in buckets starting from {rfc3339(built.since)} "
        f"to {rfc3339(built.until)}",
        *table(built),
    ]
    fancy = sys.stdout.isatty()
    chart_lines: list[Text] = []
    if charts:
        chart_lines = [Text(), *spend_chart(built, fancy=fancy), Text()]
        chart_lines += balance_chart(built, fancy=fancy)
    if not fancy:
        for line in unit_lines:
            say(line)
        for text in chart_lines:
            say(text.plain.rstrip())
        return
    console = Console(highlight=False, soft_wrap=True)
    for line in unit_lines:
        console.print(line, markup=False)
    for text in chart_lines:
        console.print(text)


COMMAND = Command("report", configure, report)
