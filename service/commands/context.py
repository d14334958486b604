"""What every command receives: its arguments, a clock, the retry policy, the HTTP transport.

Tests inject the clock, the retry policy and a transport here instead of patching modules.
Settings are loaded on first use (``demo`` builds its own), and loading them configures logging
with every secret masked.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx

from service.admin_api.retry import DEFAULT_RETRY, RetryPolicy
from service.render.terminal import table_lines
from service.runtime.logs import SecretMasker, configure_logging
from service.settings import Settings, load_settings

Clock = Callable[[], datetime]
log = logging.getLogger("creditwatch")


def system_clock() -> datetime:
    return datetime.now(UTC)


@dataclass
class CommandContext:
    args: argparse.Namespace
    clock: Clock = system_clock
    retry: RetryPolicy = DEFAULT_RETRY
    transport: httpx.BaseTransport | None = None
    environ: Mapping[str, str] | None = None  # None: the process environment
    _settings: Settings | None = field(default=None, init=False, repr=False)

    def now(self) -> datetime:
        return self.clock()

    @property
    def settings(self) -> Settings:
        """The settings from ``--env-file`` (default ``./.env``) under the environment."""
        if self._settings is None:
            self._settings = self.load_settings()
            settings = self._settings
            configure_logging(settings.log.level, settings.log.format, settings.secrets)
            for warning in settings.warnings:
                log.warning("%s", warning)
        return self._settings

    def load_settings(self) -> Settings:
        """A fresh read of the settings (the daemon calls this on SIGHUP)."""
        explicit = self.args.env_file is not None
        env_file = self.args.env_file if explicit else Path(".env")
        return load_settings(self.environ, env_file, env_file_explicit=explicit, now=self.now())

    @property
    def masker(self) -> SecretMasker:
        return SecretMasker(self._settings.secrets if self._settings else ())


def say(text: str = "") -> None:
    print(text, flush=True)  # noqa: T201 - a command's output


def say_table(
    header: Sequence[str], rows: Sequence[Sequence[str]], *, text_columns: Sequence[int] = (0,)
) -> None:
    for line in table_lines(header, rows, text_columns=text_columns):
        say(line)


def complain(text: str) -> None:
    """One line on stderr, prefixed with the program's name."""
    print(f"creditwatch: {text}", file=sys.stderr, flush=True)  # noqa: T201
