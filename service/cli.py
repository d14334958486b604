"""The `creditwatch` command: argument parsing and printing; the work happens in other modules."""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError

from service import __version__, ledger
from service.config import Settings, describe, load_settings, parse_money, parse_timestamp
from service.db import make_engine, sqlite_path, transaction, upgrade
from service.errors import (
    AdminAPIAuthError,
    AdminAPIError,
    ConfigError,
    LedgerError,
    PriceBookError,
)
from service.logs import configure_logging
from service.money import format_usd, usd_text, usd_to_nanos
from service.text import status_lines, table_lines

EX_CONFIG = 78


log = logging.getLogger("creditwatch")


def utc_now() -> datetime:
    return datetime.now(UTC)


def moment_arg(raw: str) -> datetime:
    """A date (midnight UTC) or an RFC 3339 time with an offset; argparse reports a bad one."""
    try:
        return datetime.combine(date.fromisoformat(raw), time(), tzinfo=UTC)
    except ValueError:
        pass
    try:
        return parse_timestamp("time", raw, "")
    except ConfigError:
        raise argparse.ArgumentTypeError(
            f"{raw!r} is not a date or an RFC 3339 time (2026-11-01 or 2026-11-01T09:30:00Z)"
        ) from None


def amount_arg(raw: str) -> Decimal:
    """A positive USD amount; argparse reports a bad one."""
    try:
        value = parse_money("AMOUNT", raw, "100.00")
    except ConfigError as exc:
        raise argparse.ArgumentTypeError(exc.problem) from None
    if value == 0:
        raise argparse.ArgumentTypeError("must be more than 0")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="creditwatch", description="Watches Claude API spend and the prepaid credit balance."
    )
    parser.add_argument("--version", action="version", version=f"creditwatch {__version__}")
    parser.add_argument(
        "--env-file", type=Path, help="settings file (default: .env in this folder, if present)"
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    commands.add_parser("run", help="the daemon: collect on a schedule until stopped")
    commands.add_parser("once", help="one full cycle now, then exit")
    status = commands.add_parser("status", help="balance, spend and collection health")
    status.add_argument("--json", action="store_true", help="one JSON object")
    report = commands.add_parser("report", help="usage and cost breakdown")
    report.add_argument("--by", choices=("model", "api_key", "workspace", "day"), default="model")
    report.add_argument(
        "--since", type=moment_arg, help="date or RFC 3339 time (default: start of this month)"
    )
    report.add_argument("--until", type=moment_arg, help="date or RFC 3339 time (default: now)")
    report.add_argument("--json", action="store_true")
    credits = commands.add_parser("credits", help="record and list credit purchases")
    credit_commands = credits.add_subparsers(dest="credits_command", required=True)
    add = credit_commands.add_parser("add", help="record a purchase of AMOUNT USD")
    add.add_argument("amount", type=amount_arg)
    add.add_argument("--at", type=moment_arg, help="date or RFC 3339 time (default: now)")
    add.add_argument("--note", default="")
    add.add_argument(
        "--expires-at",
        type=moment_arg,
        help="date or RFC 3339 time (default: CREDITWATCH_CREDIT_EXPIRY after --at)",
    )
    credit_list = credit_commands.add_parser("list", help="list the starting balance and purchases")
    credit_list.add_argument("--json", action="store_true")
    simulate = commands.add_parser(
        "simulate",
        help="replay stored usage under other auto-reload settings (read-only)",
        description="Repeat a flag to compare scenarios side by side; a flag given once applies "
        "to every scenario; 'off' turns auto-reload or the monthly limit off. The current "
        "settings are always the first column.",
    )
    simulate.add_argument(
        "--since", type=moment_arg, help="date or RFC 3339 time (default: the starting balance)"
    )
    simulate.add_argument("--until", type=moment_arg, help="date or RFC 3339 time (default: now)")
    for flag, meaning in (
        ("--reload-threshold", "reload when the balance falls below this (USD, or off)"),
        ("--reload-to", "reload to this balance (USD)"),
        ("--monthly-limit", "most reloads may add per calendar month (USD, or off)"),
        ("--starting-balance", "balance at --since (default: the ledger's)"),
    ):
        simulate.add_argument(flag, action="append", help=meaning)
    simulate.add_argument("--json", action="store_true")
    commands.add_parser("check-config", help="validate settings and print them, secrets masked")
    db = commands.add_parser("db", help="database maintenance")
    db_commands = db.add_subparsers(dest="db_command", required=True)
    db_commands.add_parser("upgrade", help="apply migrations up to the newest")
    demo = commands.add_parser("demo", help="run end to end against the built-in simulator")
    demo.add_argument("--cycles", type=int, default=6, help="cycles to run (0: until Ctrl-C)")
    demo.add_argument("--interval", type=float, default=10.0, help="seconds between cycles")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "demo":
            from service.demo import run_demo

            return run_demo(cycles=args.cycles, interval=args.interval)
        settings = _settings(args)
        configure_logging(
            settings.log_level,
            settings.log_format,
            [settings.admin_key.get_secret_value()] if settings.admin_key else [],
        )
        for warning in settings.warnings:
            log.warning("%s", warning)
        return COMMANDS[args.command](settings, args)
    except (ConfigError, PriceBookError) as exc:
        # The built-in book is tested; a broken book is the operator's CREDITWATCH_PRICES_FILE.
        where = "CREDITWATCH_PRICES_FILE: " if isinstance(exc, PriceBookError) else ""
        return _fail(f"configuration error: {where}{exc}", EX_CONFIG)
    except KeyboardInterrupt:
        return 130
    except LedgerError as exc:
        return _fail(str(exc))
    except DBAPIError as exc:
        # One line, not a driver traceback; driver messages name host and user, never passwords.
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else type(exc).__name__
        return _fail(f"database error: {reason}")


def _settings(args: argparse.Namespace) -> Settings:
    explicit = args.env_file is not None
    env_file = args.env_file if explicit else Path(".env")
    return load_settings(env_file=env_file, env_file_explicit=explicit)


def _say(text: str = "") -> None:
    print(text)  # noqa: T201


def _say_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    for line in table_lines(header, rows):
        _say(line)


def _fail(text: str, code: int = 1) -> int:
    print(f"creditwatch: {text}", file=sys.stderr)  # noqa: T201
    return code


def cmd_check_config(settings: Settings, _args: argparse.Namespace) -> int:
    from service.pricing import PriceBook

    PriceBook.load(settings.prices_file)
    effective = describe(settings)
    width = max(len(name) for name in effective)
    _say("creditwatch configuration is valid. Effective settings:")
    for name, value in effective.items():
        source = settings.sources.get(name, "default")
        _say(f"  {name.ljust(width)}  {value}   [{source}]")
    for warning in settings.warnings:
        _say(f"warning: {warning}")
    return 0


def cmd_db_upgrade(settings: Settings, _args: argparse.Namespace) -> int:
    with _engine_ready(settings, create=True):
        pass
    _say("database is at the newest schema")
    return 0


def cmd_once(settings: Settings, _args: argparse.Namespace) -> int:
    from service.cycle import run_cycle

    try:
        result = run_cycle(settings, clock=utc_now)
    except AdminAPIAuthError as exc:
        return _fail(f"collection failed: {exc}")
    except AdminAPIError as exc:
        return _fail(f"collection failed, the next cycle resumes from the watermark: {exc}")
    _say(result.summary())
    return 0


def cmd_run(settings: Settings, args: argparse.Namespace) -> int:
    from service.scheduler import run_daemon

    return run_daemon(settings, reload_settings=lambda: _settings(args))


@contextmanager
def _engine_ready(settings: Settings, *, create: bool = False) -> Iterator[Engine]:
    """An engine on the migrated database, disposed afterwards.

    Reading commands never write the ledger: only `once`, `run` and `credits add` apply the
    settings to it, so a shell with a different environment cannot rewrite the balance. Without
    ``create``, a SQLite file that does not exist yet is an error (a typo in the path should
    not answer with an empty ledger).
    """
    path = sqlite_path(settings.database_url)
    if not create and path is not None and not path.exists():
        raise LedgerError(f"no ledger at {path} yet: run `creditwatch once` first")
    engine = make_engine(settings.database_url)
    try:
        upgrade(engine)
        yield engine
    finally:
        engine.dispose()


def _as_stored(engine: Engine, settings: Settings) -> Settings:
    """``settings`` with the bucket width the database holds: reading it at another width
    would find no usage (`once` and the daemon refuse the mismatch; reads adapt)."""
    with transaction(engine) as session:
        widths = ledger.usage_widths(session)
    if len(widths) == 1 and widths[0] != settings.bucket_width:
        log.warning(
            "the database holds %s buckets; reading it as such, not as CREDITWATCH_BUCKET_WIDTH=%s",
            widths[0],
            settings.bucket_width,
        )
        return dataclasses.replace(settings, bucket_width=widths[0])  # type: ignore[arg-type]
    return settings


def cmd_status(settings: Settings, args: argparse.Namespace) -> int:
    from service.reports import build_status

    with _engine_ready(settings) as engine:
        settings = _as_stored(engine, settings)
        with transaction(engine) as session:
            status = build_status(session, settings, utc_now())
    if args.json:
        _say(json.dumps(status, indent=2))
        return 0
    for line in status_lines(status, settings.credit_unit_usd):
        _say(line)
    return 0


def cmd_report(settings: Settings, args: argparse.Namespace) -> int:
    from service.collector import month_start
    from service.reports import totals, usage_breakdown

    now = utc_now()
    since = args.since or month_start(now)
    until = args.until or now
    if since >= until:
        return _fail(f"--since {since.isoformat()} is not before --until {until.isoformat()}", 2)
    with _engine_ready(settings) as engine:
        settings = _as_stored(engine, settings)
        with transaction(engine) as session:
            rows = usage_breakdown(session, settings, args.by, since, until)
    total = totals(rows)
    if args.json:
        payload = {
            "by": args.by,
            "since": since.isoformat(),
            "until": until.isoformat(),
            "rows": [row.as_json(settings.credit_unit_usd) for row in rows],
            "total": total.as_json(settings.credit_unit_usd),
        }
        _say(json.dumps(payload, indent=2))
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
            usd_text(row.cost_nanos, settings.credit_unit_usd) + ("*" if row.estimated else ""),
        )
        for row in [*rows, total]
    ]
    _say(f"Usage by {args.by} from {since.isoformat()} to {until.isoformat()}")
    _say_table(header, table)
    if total.estimated:
        _say("* includes estimated prices (unknown model, priority tier or tiered pricing)")
    return 0


def cmd_credits(settings: Settings, args: argparse.Namespace) -> int:
    with _engine_ready(settings, create=args.credits_command == "add") as engine:
        return _credits(engine, _as_stored(engine, settings), args)


def _credits(engine: Engine, settings: Settings, args: argparse.Namespace) -> int:
    from service.credit_ledger import current_walk, ledger_terms, stated_lots, sync_credits

    now = utc_now()
    if args.credits_command == "add":
        amount = args.amount
        at = args.at or now
        expires = args.expires_at
        if at > now + timedelta(minutes=5):
            return _fail(f"--at {at.isoformat()} is in the future; record purchases when made", 2)
        try:
            with transaction(engine) as session:
                # Only a first starting balance: changing one is for `once` and the daemon.
                opening = ledger.opening_entry(session)
                if opening is None and settings.starting_balance is not None:
                    ledger.ensure_opening(
                        session,
                        usd_to_nanos(settings.starting_balance),
                        settings.starting_balance_at,
                        now,
                    )
                entry = ledger.add_purchase(
                    session, usd_to_nanos(amount), at, args.note, now, expires_at=expires
                )
                sync_credits(session, settings, now, authoritative=False)
        except LedgerError as exc:
            return _fail(str(exc))
        _say(f"recorded purchase #{entry.id}: {usd_text(entry.amount_nanos)} at {at.isoformat()}")
        return 0
    with transaction(engine) as session:
        result = current_walk(session, settings, now)
        lots = (
            result.lots
            if result
            else stated_lots(session, ledger_terms(session, settings).lifetime)
        )
        notes = {f"purchase:{e.id}": e.note for e in ledger.purchases(session)}
    rows = [
        {
            "key": lot.key,
            "kind": lot.kind,
            "at": _iso(lot.at),
            "amount_usd": format_usd(lot.amount_nanos),
            "remaining_usd": format_usd(result.remaining[lot.key]) if result else None,
            "expires_at": _iso(lot.expires_at),
            "expired": lot.expires_at <= now,
            "note": notes.get(lot.key, ""),
        }
        for lot in sorted(lots, key=lambda lot: (lot.at, lot.key))
    ]
    if args.json:
        _say(json.dumps(rows, indent=2))
        return 0
    if not rows:
        _say("no starting balance or purchases recorded")
        return 0
    unit = settings.credit_unit_usd
    table = [
        (
            str(row["kind"]),
            str(row["at"]),
            usd_text(usd_to_nanos(Decimal(str(row["amount_usd"]))), unit),
            usd_text(usd_to_nanos(Decimal(str(row["remaining_usd"]))), unit)
            if row["remaining_usd"] is not None
            else "unknown",
            f"{row['expires_at']}{' (expired)' if row['expired'] else ''}",
            str(row["note"]),
        )
        for row in rows
    ]
    _say_table(("lot", "bought", "amount", "remaining", "expires", "note"), table)
    return 0


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def cmd_simulate(settings: Settings, args: argparse.Namespace) -> int:
    from service.credit_ledger import ledger_terms
    from service.simulate import ScenarioError, default_since, replay, scenarios_from_flags

    now = utc_now()
    try:
        with _engine_ready(settings) as engine:
            settings = _as_stored(engine, settings)
            with transaction(engine) as session:
                scenarios = scenarios_from_flags(
                    ledger_terms(session, settings).policy,
                    thresholds=args.reload_threshold,
                    targets=args.reload_to,
                    limits=args.monthly_limit,
                    balances=args.starting_balance,
                )
                since = args.since or default_since(session, settings)
                if since is None:
                    return _fail("no usage stored yet: run `creditwatch once` first")
                until = args.until or now
                if since >= until:
                    return _fail(f"--since {_iso(since)} is not before --until {_iso(until)}", 2)
                results = replay(session, settings, scenarios, since=since, until=until)
    except ScenarioError as exc:
        return _fail(str(exc), 2)
    if args.json:
        _say(
            json.dumps({"since": _iso(since), "until": _iso(until), "scenarios": results}, indent=2)
        )
        return 0
    _say(f"Replay of stored usage from {_iso(since)} to {_iso(until)}")
    unit = settings.credit_unit_usd

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
    _say_table(header, [(label, *(fmt(r) for r in results)) for label, fmt in lines])
    return 0


COMMANDS: dict[str, Callable[[Settings, argparse.Namespace], int]] = {
    "simulate": cmd_simulate,
    "check-config": cmd_check_config,
    "db": cmd_db_upgrade,
    "once": cmd_once,
    "run": cmd_run,
    "status": cmd_status,
    "report": cmd_report,
    "credits": cmd_credits,
}
