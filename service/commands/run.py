"""`creditwatch run`: the daemon (cycles on a schedule, SIGHUP reload, systemd notify)."""

from __future__ import annotations

from service.commands.context import CommandContext
from service.commands.registry import Command, no_flags
from service.runtime.cycle import Runtime
from service.runtime.daemon import Daemon
from service.settings import Settings


def run(ctx: CommandContext) -> int:
    def make_runtime(settings: Settings) -> Runtime:
        return Runtime(settings, transport=ctx.transport, retry=ctx.retry)

    daemon = Daemon(ctx.settings, ctx.load_settings, make_runtime=make_runtime, clock=ctx.clock)
    return daemon.run()


COMMAND = Command("run", no_flags, run)
