"""`creditwatch once`: one full cycle now, then exit (cron, scripts, tests)."""

from __future__ import annotations

import logging

from service.commands.context import CommandContext, say
from service.commands.registry import Command, no_flags
from service.runtime.cycle import Runtime
from service.runtime.failures import log_failure

log = logging.getLogger(__name__)


def once(ctx: CommandContext) -> int:
    with Runtime(
        ctx.settings, transport=ctx.transport, retry=ctx.retry, clock=ctx.clock
    ) as runtime:
        try:
            result = runtime.cycle(ctx.clock)
        except Exception:
            # Deliver before exiting even when collection failed (its health alert is news),
            # but the collection's failure is the one the user is told about.
            _deliver_quietly(runtime)
            raise
        delivered = runtime.deliver()
    say(result.summary())
    say(delivered.summary())
    return 0


def _deliver_quietly(runtime: Runtime) -> None:
    try:
        runtime.deliver()
    except Exception as exc:  # noqa: BLE001 - logged; the cycle's error is the one raised
        log_failure(log, "delivery failed", exc)


COMMAND = Command("once", no_flags, once)
