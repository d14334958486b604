"""`creditwatch report`: usage and cost by model, API key, workspace or day.

The window is half-open and bucket-exact: a bucket counts in the report whose ``[since, until)``
holds its start, so adjacent reports never count one bucket twice.
"""

from __future__ import annotations

import argparse
import json

from service.commands.args import moment_arg
from service.commands.context import CommandContext, complain, say, say_table
from service.commands.database import as_stored, ledger_for_reading
from service.commands.registry import Command
from service.domain.money import usd_text
from service.domain.periods import month_start
from service.domain.timefmt import rfc3339
from service.runtime.failures import EX_USAGE
from service.store.engine import read_transaction
from service.store.usage_queries import totals, usage_breakdown


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--by", choices=("model", "api_key", "workspace", "day"), default="model")
    parser.add_argument(
        "--since", type=moment_arg, help="date or RFC 3339 time (default: start of this month)"
    )
    parser.add_argument("--until", type=moment_arg, help="date or RFC 3339 time (default: now)")
    parser.add_argument("--json", action="store_true")


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
        with read_transaction(engine) as session:
            rows = usage_breakdown(session, settings.collection.bucket_width, args.by, since, until)
    total = totals(rows)
    unit = settings.ledger.credit_unit_usd
    if args.json:
        payload = {
            "by": args.by,
            "since": rfc3339(since),
            "until": rfc3339(until),
            "rows": [row.as_json(unit) for row in rows],
            "total": total.as_json(unit),
        }
        say(json.dumps(payload, indent=2))
        return 0
    header = ("", "input", "cache write", "cache read", "output", "web search", "cost")
    table = [
        (
            f"{row.key or '(none)'} {row.name}".strip(),
            f"{row.uncached_input_tokens:,}",
            f"{row.cache_write_tokens:,}",
            f"{row.cache_read_tokens:,}",
            f"{row.output_tokens:,}",
            f"{row.web_search_requests:,}",
            usd_text(row.cost_nanos, unit) + ("*" if row.estimated else ""),
        )
        for row in [*rows, total]
    ]
    say(f"Usage by {args.by} in buckets starting from {rfc3339(since)} to {rfc3339(until)}")
    say_table(header, table)
    if total.estimated:
        say("* includes estimated prices (unknown model, priority tier or tiered pricing)")
    return 0


COMMAND = Command("report", "usage and cost breakdown", configure, report)
