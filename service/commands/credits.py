"""`creditwatch credits add AMOUNT` / `credits list`: record purchases, list the lots."""

from __future__ import annotations

import argparse
import json
from datetime import timedelta
from decimal import Decimal

from sqlalchemy import Engine

from service.commands.args import amount_arg, moment_arg
from service.commands.context import CommandContext, complain, say, say_table
from service.commands.database import as_stored, ledger_for_reading, ledger_for_writing
from service.commands.registry import Command
from service.domain.money import format_usd, usd_text, usd_to_nanos
from service.domain.timefmt import rfc3339
from service.runtime.failures import EX_USAGE
from service.settings import Settings
from service.store.balance import add_purchase, ensure_opening, purchases
from service.store.credit_sync import current_walk, ledger_terms, stated_lots, sync_credits
from service.store.engine import read_transaction, transaction
from service.store.ledger_entries import opening_entry

# A purchase is recorded when it is made; a few minutes of clock skew are forgiven.
FUTURE_SLACK = timedelta(minutes=5)


def configure(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="credits_command", required=True, metavar="ACTION")
    add = actions.add_parser("add", help="record a purchase of AMOUNT USD")
    add.add_argument("amount", type=amount_arg)
    add.add_argument("--at", type=moment_arg, help="date or RFC 3339 time (default: now)")
    add.add_argument("--note", default="")
    add.add_argument(
        "--expires-at",
        type=moment_arg,
        help="date or RFC 3339 time (default: CREDITWATCH_CREDIT_EXPIRY after --at)",
    )
    listing = actions.add_parser("list", help="list the starting balance and purchases")
    listing.add_argument("--json", action="store_true")


def credits(ctx: CommandContext) -> int:
    if ctx.args.credits_command == "add":
        with ledger_for_writing(ctx.settings) as engine:
            return _add(ctx, engine, as_stored(engine, ctx.settings))
    with ledger_for_reading(ctx.settings) as engine:
        return _list(ctx, engine, as_stored(engine, ctx.settings))


def _add(ctx: CommandContext, engine: Engine, settings: Settings) -> int:
    args = ctx.args
    now = ctx.now()
    at = args.at or now
    if at > now + FUTURE_SLACK:
        complain(f"--at {rfc3339(at)} is in the future; record purchases when made")
        return EX_USAGE
    width = settings.collection.bucket_width
    with transaction(engine) as session:
        # Only a first starting balance: changing one is for `once` and the daemon.
        if opening_entry(session) is None and settings.ledger.starting_balance is not None:
            ensure_opening(
                session,
                settings.ledger.starting_balance_nanos,
                settings.ledger.starting_balance_at,
                now,
            )
        entry = add_purchase(
            session, usd_to_nanos(args.amount), at, args.note, now, expires_at=args.expires_at
        )
        sync_credits(session, width, settings.ledger.credit_terms(), now, authoritative=False)
    say(f"recorded purchase #{entry.id}: {usd_text(entry.amount_nanos)} at {rfc3339(at)}")
    return 0


def _list(ctx: CommandContext, engine: Engine, settings: Settings) -> int:
    now = ctx.now()
    with read_transaction(engine) as session:
        terms = ledger_terms(session, settings.ledger.credit_terms())
        result = current_walk(session, settings.collection.bucket_width, terms, now)
        lots = result.lots if result else stated_lots(session, terms.lifetime)
        notes = {f"purchase:{e.id}": e.note for e in purchases(session)}
    rows = [
        {
            "key": lot.key,
            "kind": lot.kind,
            "at": rfc3339(lot.at),
            "amount_usd": format_usd(lot.amount_nanos),
            "remaining_usd": format_usd(result.remaining[lot.key]) if result else None,
            "expires_at": rfc3339(lot.expires_at),
            "expired": lot.expires_at <= now,
            "note": notes.get(lot.key, ""),
        }
        for lot in sorted(lots, key=lambda lot: (lot.at, lot.key))
    ]
    if ctx.args.json:
        say(json.dumps(rows, indent=2))
        return 0
    if not rows:
        say("no starting balance or purchases recorded")
        return 0
    unit = settings.ledger.credit_unit_usd

    def money(text: object) -> str:
        return usd_text(usd_to_nanos(Decimal(str(text))), unit)

    table = [
        (
            str(row["kind"]),
            str(row["at"]),
            money(row["amount_usd"]),
            money(row["remaining_usd"]) if row["remaining_usd"] is not None else "unknown",
            f"{row['expires_at']}{' (expired)' if row['expired'] else ''}",
            str(row["note"]),
        )
        for row in rows
    ]
    say_table(("lot", "bought", "amount", "remaining", "expires", "note"), table)
    return 0


COMMAND = Command("credits", configure, credits)
