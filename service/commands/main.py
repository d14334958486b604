"""`main()`: parse the arguments, run one command, map any failure to one line and an exit status.

This is the only place a failure leaves the program. Whatever is raised below becomes one line
on stderr (secrets masked) with the status :mod:`service.runtime.failures` assigns it; the
traceback appears only with ``CREDITWATCH_LOG_LEVEL=DEBUG``.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import traceback
from collections.abc import Mapping, Sequence
from pathlib import Path

import httpx

from service import __version__
from service.admin_api.retry import DEFAULT_RETRY, RetryPolicy
from service.commands import (
    alerts,
    check_config,
    credits,
    db,
    demo,
    once,
    reconcile,
    report,
    run,
    simulate,
    status,
    test_alert,
)
from service.commands.context import Clock, CommandContext, complain, system_clock
from service.commands.registry import Command
from service.errors import CreditwatchError
from service.runtime.failures import describe_failure

EX_INTERRUPTED = 130
EX_BROKEN_PIPE = 141  # 128 + SIGPIPE, what `head` leaves a shell tool with

COMMANDS: dict[str, Command] = {
    command.name: command
    for command in (
        run.COMMAND,
        once.COMMAND,
        status.COMMAND,
        report.COMMAND,
        credits.COMMAND,
        reconcile.COMMAND,
        simulate.COMMAND,
        alerts.COMMAND,
        test_alert.COMMAND,
        check_config.COMMAND,
        db.COMMAND,
        demo.COMMAND,
    )
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="creditwatch", description="Watches Claude API spend and the prepaid credit balance."
    )
    parser.add_argument("--version", action="version", version=f"creditwatch {__version__}")
    parser.add_argument(
        "--env-file", type=Path, help="settings file (default: .env in this folder, if present)"
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS.values():
        command.configure(
            subparsers.add_parser(command.name, help=command.help, description=command.description)
        )
    return parser


def main(
    argv: Sequence[str] | None = None,
    *,
    clock: Clock = system_clock,
    retry: RetryPolicy = DEFAULT_RETRY,
    transport: httpx.BaseTransport | None = None,
    environ: Mapping[str, str] | None = None,
) -> int:
    """Run the command ``argv`` names; returns the exit status. Bad arguments exit 2."""
    args = build_parser().parse_args(argv)
    ctx = CommandContext(args, clock=clock, retry=retry, transport=transport, environ=environ)
    try:
        return COMMANDS[args.command].run(ctx)
    except KeyboardInterrupt:
        return EX_INTERRUPTED
    except BrokenPipeError:
        # `creditwatch report | head`: the reader left. Quietly, as a SIGPIPE would end us.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EX_BROKEN_PIPE
    except Exception as exc:  # noqa: BLE001 - the one place every failure becomes one line
        failure = describe_failure(exc)
        # A deliberate error says all there is to say; anything else has a traceback to show.
        if not isinstance(exc, CreditwatchError) and _debugging(environ):
            # Before the one line, so the last line of stderr is always the summary.
            text = "".join(traceback.format_exception(exc))
            print(ctx.masker(text), file=sys.stderr, end="")  # noqa: T201
        complain(ctx.masker(failure.message))
        return failure.exit_status


def _debugging(environ: Mapping[str, str] | None) -> bool:
    """DEBUG is on in the configured logging, or asked for when the settings did not load."""
    if logging.getLogger().isEnabledFor(logging.DEBUG):
        return True
    env = os.environ if environ is None else environ
    return env.get("CREDITWATCH_LOG_LEVEL", "").upper() == "DEBUG"
