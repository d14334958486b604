"""Argument types for command flags, on the same grammars (and bounds) as the settings."""

from __future__ import annotations

import argparse
from datetime import UTC, date, datetime, time
from decimal import Decimal

from service.errors import ConfigError
from service.settings.grammar import check_time_bounds, parse_money, parse_timestamp

_MOMENT_HELP = "a date or an RFC 3339 time (2026-11-01 or 2026-11-01T09:30:00Z)"


def moment_arg(raw: str) -> datetime:
    """A date (midnight UTC) or an RFC 3339 time with an offset, in 2000–2100."""
    try:
        return check_time_bounds(
            "time", raw, datetime.combine(date.fromisoformat(raw), time(), tzinfo=UTC), ""
        )
    except ValueError:
        pass
    except ConfigError as exc:
        raise argparse.ArgumentTypeError(exc.problem) from None
    try:
        return parse_timestamp("time", raw, "")
    except ConfigError as exc:
        problem = exc.problem if "2000" in exc.problem else f"{raw!r} is not {_MOMENT_HELP}"
        raise argparse.ArgumentTypeError(problem) from None


def amount_arg(raw: str) -> Decimal:
    """A positive USD amount within the ledger's bounds."""
    try:
        value = parse_money("AMOUNT", raw, "100.00")
    except ConfigError as exc:
        raise argparse.ArgumentTypeError(exc.problem) from None
    if value == 0:
        raise argparse.ArgumentTypeError("must be more than 0")
    return value


def positive_int_arg(raw: str) -> int:
    """A whole number from 0 to one million (counts of cycles and the like)."""
    try:
        value = int(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{raw!r} is not a whole number") from None
    if not 0 <= value <= 1_000_000:
        raise argparse.ArgumentTypeError(f"{raw!r} is not between 0 and 1000000")
    return value


def seconds_arg(raw: str) -> float:
    """Seconds from 0.1 to a day."""
    try:
        value = float(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{raw!r} is not a number of seconds") from None
    if not 0.1 <= value <= 86_400:
        raise argparse.ArgumentTypeError(f"{raw!r} is not between 0.1 and 86400 seconds")
    return value
