"""`creditwatch check-config`: validate the settings and print them, secrets masked.

It never calls the API; it does read the price book, so a broken price file fails here too.
"""

from __future__ import annotations

from service.commands.context import CommandContext, say
from service.commands.registry import Command, no_flags
from service.pricing import PriceBook
from service.settings import describe
from service.settings.channels import NO_CHANNEL
from service.settings.rules import describe_rules


def check_config(ctx: CommandContext) -> int:
    settings = ctx.settings
    PriceBook.load(settings.ledger.prices_file)
    effective = describe(settings)
    width = max(len(name) for name in effective)
    say("creditwatch configuration is valid. Effective settings:")
    for name, value in effective.items():
        source = settings.sources.get(name, "default")
        say(f"  {name.ljust(width)}  {value}   [{source}]")
    say("Rules:")
    for line in describe_rules(settings.rules):
        say(f"  {line}")
    say("Channels:")
    for line in settings.channels.describe():
        say(f"  {line}")
    warnings = list(settings.warnings)
    if not settings.channels.channels:
        warnings.append(NO_CHANNEL)
    for warning in warnings:
        say(f"warning: {warning}")
    return 0


COMMAND = Command("check-config", no_flags, check_config)
