"""`creditwatch status [--json]`: balance, spend, forecast, collection health, alert counts."""

from __future__ import annotations

import argparse
import json

from service.commands.context import CommandContext, say
from service.commands.database import as_stored, ledger_for_reading
from service.commands.registry import Command
from service.render.terminal import status_lines
from service.runtime.status import build_status
from service.store.engine import read_transaction


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="one JSON object")


def status(ctx: CommandContext) -> int:
    with ledger_for_reading(ctx.settings) as engine:
        settings = as_stored(engine, ctx.settings)
        with read_transaction(engine) as session:
            shown = build_status(session, settings, ctx.now())
    if ctx.args.json:
        say(json.dumps(shown, indent=2))
        return 0
    for line in status_lines(shown, settings.ledger.credit_unit_usd):
        say(line)
    return 0


COMMAND = Command("status", configure, status)
