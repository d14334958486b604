"""The `creditwatch` command: argument parsing and printing; the work happens in other modules."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, date, datetime, time
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from service import __version__, ledger
from service.config import Settings, describe, load_settings, parse_money, parse_timestamp
from service.db import make_engine, transaction, upgrade
from service.errors import (
    AdminAPIAuthError,
    AdminAPIError,
    ConfigError,
    LedgerError,
    PriceBookError,
)
from service.logs import configure_logging
from service.money import format_usd, usd_text, usd_to_nanos

EX_CONFIG = 78
log = logging.getLogger("creditwatch")


def utc_now() -> datetime:
    return datetime.now(UTC)


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
    report.add_argument("--since", help="date or RFC 3339 time (default: start of this month)")
    report.add_argument("--until", help="date or RFC 3339 time (default: now)")
    report.add_argument("--json", action="store_true")
    credits = commands.add_parser("credits", help="record and list credit purchases")
    credit_commands = credits.add_subparsers(dest="credits_command", required=True)
    add = credit_commands.add_parser("add", help="record a purchase of AMOUNT USD")
    add.add_argument("amount")
    add.add_argument("--at", help="RFC 3339 time of the purchase (default: now)")
    add.add_argument("--note", default="")
    add.add_argument(
        "--expires-at", help="RFC 3339 expiry (default: CREDITWATCH_CREDIT_EXPIRY after --at)"
    )
    credit_list = credit_commands.add_parser("list", help="list the starting balance and purchases")
    credit_list.add_argument("--json", action="store_true")
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
    except ConfigError as exc:
        print(f"creditwatch: configuration error: {exc}", file=sys.stderr)  # noqa: T201
        return EX_CONFIG
    except KeyboardInterrupt:
        return 130


def _settings(args: argparse.Namespace) -> Settings:
    explicit = args.env_file is not None
    env_file = args.env_file if explicit else Path(".env")
    return load_settings(env_file=env_file, env_file_explicit=explicit)


def _say(text: str = "") -> None:
    print(text)  # noqa: T201


def _fail(text: str, code: int = 1) -> int:
    print(f"creditwatch: {text}", file=sys.stderr)  # noqa: T201
    return code


def cmd_check_config(settings: Settings, _args: argparse.Namespace) -> int:
    from service.pricing import PriceBook

    try:
        PriceBook.load(settings.prices_file)
    except PriceBookError as exc:
        raise ConfigError(
            "CREDITWATCH_PRICES_FILE", str(exc), "/etc/creditwatch/prices.toml"
        ) from exc
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
    with _engine_ready(settings):
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
    except PriceBookError as exc:
        raise ConfigError(
            "CREDITWATCH_PRICES_FILE", str(exc), "/etc/creditwatch/prices.toml"
        ) from exc
    _say(result.summary())
    return 0


def cmd_run(settings: Settings, args: argparse.Namespace) -> int:
    from service.scheduler import run_daemon

    return run_daemon(settings, reload_settings=lambda: _settings(args))


@contextmanager
def _engine_ready(settings: Settings) -> Iterator[Engine]:
    """An engine on the migrated database, with the starting balance synced; disposed afterwards."""
    from service.collector import sync_opening

    engine = make_engine(settings.database_url)
    try:
        upgrade(engine)
        sync_opening(engine, settings, utc_now())
        yield engine
    finally:
        engine.dispose()


def cmd_status(settings: Settings, args: argparse.Namespace) -> int:
    from service.reports import build_status

    with _engine_ready(settings) as engine, transaction(engine) as session:
        status = build_status(session, settings, utc_now())
    if args.json:
        _say(json.dumps(status, indent=2))
        return 0
    _print_status(status)
    return 0


def _print_status(status: dict[str, Any]) -> None:
    if status["balance_known"]:
        _say(f"Balance           ${status['balance_usd']}")
    else:
        _say("Balance           unknown: set CREDITWATCH_STARTING_BALANCE and _AT")
    spend = status["spend"]
    _say(f"Spend today       ${spend['today_usd']} (UTC)")
    _say(f"Spend this month  ${spend['month_to_date_usd']}")
    if spend["month_to_date_estimated_usd"] != "0.00":
        _say(f"  of which estimated  ${spend['month_to_date_estimated_usd']}")
    _say(f"Last collected    {status['last_collected_at'] or 'never'}")
    _say(f"Data until        {status['data_until'] or 'no usage yet'}")
    if status["collection_failing_since"]:
        _say(f"Collection FAILING since {status['collection_failing_since']}")
        _say(f"  last error: {status['last_error']}")
    for unknown in status["unknown_models"]:
        _say(f"Unknown model     {unknown['model']} (priced as {unknown['priced_as']})")
    outbox = ", ".join(f"{k} {v}" for k, v in status["outbox"].items())
    _say(f"Alerts            {outbox}")


def _parse_moment(option: str, raw: str) -> datetime:
    try:
        return datetime.combine(date.fromisoformat(raw), time(), tzinfo=UTC)
    except ValueError:
        return parse_timestamp(option, raw, "2026-11-01 or 2026-11-01T00:00:00Z")


def cmd_report(settings: Settings, args: argparse.Namespace) -> int:
    from service.collector import month_start
    from service.reports import totals, usage_breakdown

    now = utc_now()
    since = _parse_moment("--since", args.since) if args.since else month_start(now)
    until = _parse_moment("--until", args.until) if args.until else now
    with _engine_ready(settings) as engine, transaction(engine) as session:
        rows = usage_breakdown(session, settings, args.by, since, until)
    total = totals(rows)
    if args.json:
        payload = {
            "by": args.by,
            "since": since.isoformat(),
            "until": until.isoformat(),
            "rows": [row.as_json() for row in rows],
            "total": total.as_json(),
        }
        _say(json.dumps(payload, indent=2))
        return 0
    header = ("", "input", "cache write", "cache read", "output", "web search", "cost USD")
    table = [
        (
            f"{row.key or '(none)'} {row.name}".strip(),
            f"{row.uncached_input_tokens:,}",
            f"{row.cache_write_tokens:,}",
            f"{row.cache_read_tokens:,}",
            f"{row.output_tokens:,}",
            f"{row.web_search_requests:,}",
            format_usd(row.cost_nanos) + ("*" if row.estimated else ""),
        )
        for row in [*rows, total]
    ]
    _say(f"Usage by {args.by} from {since.isoformat()} to {until.isoformat()}")
    _print_table(header, table)
    if total.estimated:
        _say("* includes estimated prices (unknown model, priority tier or tiered pricing)")
    return 0


def _print_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        cells = [str(row[0]).ljust(widths[0])]
        cells += [str(cell).rjust(widths[i]) for i, cell in enumerate(row) if i > 0]
        _say("  ".join(cells))


def cmd_credits(settings: Settings, args: argparse.Namespace) -> int:
    with _engine_ready(settings) as engine:
        return _credits(engine, settings, args)


def _credits(engine: Engine, settings: Settings, args: argparse.Namespace) -> int:
    from service.credit_ledger import current_walk, stated_lots, sync_credits

    now = utc_now()
    if args.credits_command == "add":
        amount = parse_money("AMOUNT", args.amount, "100.00")
        at = parse_timestamp("--at", args.at, "2026-11-20T09:30:00Z") if args.at else now
        expires = (
            parse_timestamp("--expires-at", args.expires_at, "2027-11-20T09:30:00Z")
            if args.expires_at
            else None
        )
        try:
            with transaction(engine) as session:
                entry = ledger.add_purchase(
                    session, usd_to_nanos(amount), at, args.note, now, expires_at=expires
                )
                sync_credits(session, settings, now)
        except LedgerError as exc:
            return _fail(str(exc))
        _say(f"recorded purchase #{entry.id}: {usd_text(entry.amount_nanos)} at {at.isoformat()}")
        return 0
    with transaction(engine) as session:
        result = current_walk(session, settings, now)
        lots = result.lots if result else stated_lots(session, settings.credit_expiry)
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
    _print_table(("lot", "bought", "amount", "remaining", "expires", "note"), table)
    return 0


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


COMMANDS: dict[str, Callable[[Settings, argparse.Namespace], int]] = {
    "check-config": cmd_check_config,
    "db": cmd_db_upgrade,
    "once": cmd_once,
    "run": cmd_run,
    "status": cmd_status,
    "report": cmd_report,
    "credits": cmd_credits,
}
