"""`creditwatch db upgrade`: apply the migrations up to the newest (a deploy step)."""

from __future__ import annotations

import argparse

from service.commands.context import CommandContext, say
from service.commands.database import ledger_for_writing
from service.commands.registry import Command


def configure(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    actions.add_parser("upgrade", help="apply migrations up to the newest")


def db(ctx: CommandContext) -> int:
    with ledger_for_writing(ctx.settings):
        pass
    say("database is at the newest schema")
    return 0


COMMAND = Command("db", configure, db)
