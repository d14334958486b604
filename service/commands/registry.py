"""The command protocol: a name, a help line, its flags, and what it does with the context."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from service.commands.context import CommandContext


@dataclass(frozen=True)
class Command:
    """One command's flags and what it does; its one-line help is in ``main.CATALOG``, so that
    ``creditwatch --help`` lists every command without importing any of them."""

    name: str
    configure: Callable[[argparse.ArgumentParser], None]
    run: Callable[[CommandContext], int]
    description: str | None = None


def no_flags(_parser: argparse.ArgumentParser) -> None:
    """For commands that take no flags of their own."""
