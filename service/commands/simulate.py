"""`creditwatch simulate`: replay stored usage under other auto-reload settings. Read-only."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from service.commands.args import moment_arg
from service.commands.context import CommandContext, complain, say, say_table
from service.commands.database import as_stored, ledger_for_reading
from service.commands.registry import Command
from service.domain.money import usd_text, usd_to_nanos
from service.domain.timefmt import rfc3339
from service.runtime.failures import EX_USAGE
from service.runtime.scenarios import scenarios_from_flags
from service.runtime.simulate import default_since, replay
from service.store.credit_sync import ledger_terms
from service.store.engine import read_transaction

DESCRIPTION = (
    "Repeat a flag to compare scenarios side by side; a flag given once applies to every "
    "scenario, the current settings' column included; 'off' turns auto-reload or the monthly "
    "limit off. The current settings are always the first column."
)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--since", type=moment_arg, help="date or RFC 3339 time (default: the starting balance)"
    )
    parser.add_argument("--until", type=moment_arg, help="date or RFC 3339 time (default: now)")
    for flag, meaning in (
        ("--reload-threshold", "reload when the balance falls below this (USD, or off)"),
        ("--reload-to", "reload to this balance (USD)"),
        ("--monthly-limit", "most reloads may add per calendar month (USD, or off)"),
        ("--starting-balance", "balance at --since (default: the ledger's)"),
    ):
        parser.add_argument(flag, action="append", help=meaning)
    parser.add_argument("--json", action="store_true")


def simulate(ctx: CommandContext) -> int:
    args = ctx.args
    now = ctx.now()
    with ledger_for_reading(ctx.settings) as engine:
        settings = as_stored(engine, ctx.settings)
        width = settings.collection.bucket_width
        with read_transaction(engine) as session:
            terms = ledger_terms(session, settings.ledger.credit_terms())
            scenarios = scenarios_from_flags(
                terms.policy,
                thresholds=args.reload_threshold,
                targets=args.reload_to,
                limits=args.monthly_limit,
                balances=args.starting_balance,
            )
            since = args.since or default_since(session, width)
            if since is None:
                complain("no usage stored yet: run `creditwatch once` first")
                return 1
            until = args.until or now
            if since >= until:
                complain(f"--since {rfc3339(since)} is not before --until {rfc3339(until)}")
                return EX_USAGE
            results = replay(session, width, terms, scenarios, since=since, until=until)
    if args.json:
        payload = {"since": rfc3339(since), "until": rfc3339(until), "scenarios": results}
        say(json.dumps(payload, indent=2))
        return 0
    say(f"Replay of stored usage from {rfc3339(since)} to {rfc3339(until)}")
    unit = settings.ledger.credit_unit_usd

    def money(text: object) -> str:
        return usd_text(usd_to_nanos(Decimal(str(text))), unit)

    lines: list[tuple[str, Callable[[dict[str, Any]], str]]] = [
        ("settings", lambda r: str(r["settings"])),
        ("starting balance", lambda r: money(r["starting_balance_usd"])),
        ("usage", lambda r: money(r["usage_usd"])),
        ("reloads", lambda r: str(r["reloads"])),
        ("reloaded", lambda r: money(r["reloaded_usd"])),
        ("blocked reloads", lambda r: str(r["blocked_reloads"])),
        ("lowest balance", lambda r: money(r["lowest_balance_usd"])),
        ("lowest at", lambda r: str(r["lowest_at"] or "-")),
        ("hours at zero", lambda r: str(r["hours_at_zero"])),
        ("first at zero", lambda r: str(r["first_zero_at"] or "never")),
        ("final balance", lambda r: money(r["final_balance_usd"])),
    ]
    header = ("", *(str(r["scenario"]) for r in results))
    say_table(header, [(label, *(fmt(r) for r in results)) for label, fmt in lines])
    return 0


COMMAND = Command(
    "simulate",
    "replay stored usage under other auto-reload settings (read-only)",
    configure,
    simulate,
    description=DESCRIPTION,
)
