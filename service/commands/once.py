"""`creditwatch once`: one full cycle now, then exit (cron, scripts, tests)."""

from __future__ import annotations

from service.commands.context import CommandContext, say
from service.commands.registry import Command, no_flags
from service.runtime.cycle import Runtime


def once(ctx: CommandContext) -> int:
    with Runtime(
        ctx.settings, transport=ctx.transport, retry=ctx.retry, clock=ctx.clock
    ) as runtime:
        try:
            result = runtime.cycle(ctx.clock)
        finally:
            # Deliver before exiting, even when collection failed: its health alert is news.
            delivered = runtime.deliver()
    say(result.summary())
    say(delivered.summary())
    return 0


COMMAND = Command("once", "one full cycle now, then exit", no_flags, once)
