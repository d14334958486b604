"""`main()`: parse the arguments, run one command, map any failure to one line and an exit status.

This is the only place a failure leaves the program. Whatever is raised below becomes one line
on stderr (secrets masked) with the status :mod:`service.runtime.failures` assigns it; the
traceback appears only with ``CREDITWATCH_LOG_LEVEL=DEBUG``.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
import traceback
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from service import __version__
from service.commands.registry import Command

if TYPE_CHECKING:
    import httpx

    from service.admin_api.retry import RetryPolicy
    from service.commands.context import Clock

EX_INTERRUPTED = 130
EX_BROKEN_PIPE = 141  # 128 + SIGPIPE, what `head` leaves a shell tool with

CATALOG: tuple[tuple[str, str, str], ...] = (
    ("run", "run", "the daemon: collect on a schedule until stopped"),
    ("once", "once", "one full cycle now, then exit"),
    ("status", "status", "balance, spend and collection health"),
    ("report", "report", "usage, estimated and billed cost, charts"),
    ("credits", "credits", "record and list credit purchases"),
    (
        "reconcile",
        "reconcile",
        "book the difference between Anthropic's bill and the estimate for finished days",
    ),
    ("simulate", "simulate", "replay stored usage under other auto-reload settings (read-only)"),
    ("alerts", "alerts", "recent alerts with their identity and state"),
    ("test-alert", "test_alert", "send a sample alert through each channel and say how it went"),
    ("check-config", "check_config", "validate settings and print them, secrets masked"),
    ("db", "db", "database maintenance"),
    ("demo", "demo", "run end to end against the built-in simulator (no account needed)"),
)
"""(name, module under ``service.commands``, one-line help) of every command. A command's
module (and what it imports: the database, HTTP, the scheduler) is imported only when that
command runs, so ``creditwatch --help`` starts in a fraction of the time."""


def load_command(name: str) -> Command:
    """The command ``name`` (a name from ``CATALOG``), its module imported now."""
    module = next(module for command, module, _ in CATALOG if command == name)
    command: Command = importlib.import_module(f"service.commands.{module}").COMMAND
    return command


def _named_in(argv: Sequence[str]) -> str | None:
    """The command ``argv`` names, if any: the first argument that is a command's name (what
    follows ``--env-file`` is its value, not a command)."""
    names = {name for name, _, _ in CATALOG}
    skip = False
    for arg in argv:
        if skip:
            skip = False
            continue
        if arg == "--env-file":
            skip = True
        elif not arg.startswith("-"):
            return arg if arg in names else None
    return None


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The parser, with the flags of the command ``argv`` names (every command's without
    ``argv``): the others are listed by name and help alone."""
    parser = argparse.ArgumentParser(
        prog="creditwatch", description="Watches Claude API spend and the prepaid credit balance."
    )
    parser.add_argument("--version", action="version", version=f"creditwatch {__version__}")
    parser.add_argument(
        "--env-file", type=Path, help="settings file (default: .env in this folder, if present)"
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    wanted = _named_in(argv) if argv is not None else None
    for name, _, help_text in CATALOG:
        if argv is not None and name != wanted:
            subparsers.add_parser(name, help=help_text)
            continue
        command = load_command(name)
        command.configure(
            subparsers.add_parser(name, help=help_text, description=command.description)
        )
    return parser


def main(
    argv: Sequence[str] | None = None,
    *,
    clock: Clock | None = None,
    retry: RetryPolicy | None = None,
    transport: httpx.BaseTransport | None = None,
    environ: Mapping[str, str] | None = None,
) -> int:
    """Run the command ``argv`` names; returns the exit status. Bad arguments exit 2."""
    arguments = sys.argv[1:] if argv is None else list(argv)
    args = build_parser(arguments).parse_args(arguments)
    from service.admin_api.retry import DEFAULT_RETRY
    from service.commands.context import CommandContext, complain, system_clock
    from service.errors import CreditwatchError
    from service.runtime.failures import describe_failure

    ctx = CommandContext(
        args,
        clock=clock or system_clock,
        retry=retry or DEFAULT_RETRY,
        transport=transport,
        environ=environ,
    )
    try:
        return load_command(args.command).run(ctx)
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
