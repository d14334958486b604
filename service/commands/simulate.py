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
from service.domain.money import format_usd, usd_text, usd_to_nanos
from service.domain.timefmt import rfc3339
from service.errors import ConfigError, ScenarioError
from service.runtime.budget_replay import ReplayedAlert, replay_budgets
from service.runtime.failures import EX_USAGE
from service.runtime.scenarios import scenarios_from_flags
from service.runtime.simulate import default_since, replay
from service.settings import Settings
from service.settings.rules import (
    BUDGET_EXAMPLE,
    DEFAULT_THRESHOLDS,
    BudgetRule,
    parse_budget,
)
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
    parser.add_argument(
        "--budget",
        action="append",
        metavar="SPEC",
        help="replay these budgets instead of the configured ones, in CREDITWATCH_BUDGET_<NAME> "
        "form ('limit=300 period=week thresholds=50,100'); repeatable",
    )
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
            budgets = _budgets(args.budget, settings)
            budget_alerts = replay_budgets(session, width, budgets, since=since, until=until)
    if args.json:
        payload = {
            "since": rfc3339(since),
            "until": rfc3339(until),
            "scenarios": results,
            "budget_alerts": [alert.to_json() for alert in budget_alerts],
        }
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
    if budgets:
        _say_budget_alerts(budget_alerts, money)
    return 0


def _say_budget_alerts(alerts: list[ReplayedAlert], money: Callable[[object], str]) -> None:
    say("")
    say("Budget alerts these budgets would have sent (spend thresholds, one cycle per bucket):")
    if not alerts:
        say("  none")
        return
    say_table(
        ("at", "budget", "threshold", "period", "spent", "limit"),
        [
            (
                rfc3339(a.at),
                a.budget,
                a.threshold,
                a.period,
                money(format_usd(a.spent_nanos)),
                money(format_usd(a.limit_nanos)),
            )
            for a in alerts
        ],
        text_columns=range(4),
    )


def _budgets(specs: list[str] | None, settings: Settings) -> list[BudgetRule]:
    """The ``--budget`` scenarios, or the configured budgets."""
    if not specs:
        return list(settings.rules.budgets)
    try:
        return [
            parse_budget(
                "--budget", f"scenario_{n}", spec, settings.rules.known_channels, DEFAULT_THRESHOLDS
            )
            for n, spec in enumerate(specs, start=1)
        ]
    except ConfigError as exc:
        raise ScenarioError(
            f"--budget: {exc.problem} (example: --budget '{BUDGET_EXAMPLE}')"
        ) from None


COMMAND = Command(
    "simulate",
    configure,
    simulate,
    description=DESCRIPTION,
)
