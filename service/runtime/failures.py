"""One policy for every failure: a single line for people, an exit status for the shell.

The command edge (``main``), the daemon's jobs and its SIGHUP reload all describe a failure
here. The traceback is logged at DEBUG only: set ``CREDITWATCH_LOG_LEVEL=DEBUG`` to see it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.exc import SQLAlchemyError

from service.errors import (
    AdminAPIAuthError,
    AdminAPIError,
    ConfigError,
    CreditwatchError,
    PriceBookError,
    ScenarioError,
)

EX_FAILURE = 1
EX_USAGE = 2
EX_SOFTWARE = 70  # sysexits.h: an internal error
EX_CONFIG = 78  # sysexits.h: a configuration error; the systemd unit does not restart on it
DEBUG_HINT = "set CREDITWATCH_LOG_LEVEL=DEBUG for the traceback"
_MAX_CHARS = 500


@dataclass(frozen=True)
class Failure:
    message: str
    exit_status: int


# The first class that matches describes the failure; order runs from specific to general.
_POLICY: tuple[tuple[type[BaseException], Callable[[BaseException], str], int], ...] = (
    (ConfigError, lambda e: f"configuration error: {e}", EX_CONFIG),
    # The built-in book is tested; a broken book is the operator's CREDITWATCH_PRICES_FILE.
    (PriceBookError, lambda e: f"configuration error: CREDITWATCH_PRICES_FILE: {e}", EX_CONFIG),
    (AdminAPIAuthError, lambda e: f"collection failed: {e}", EX_FAILURE),
    (
        AdminAPIError,
        lambda e: f"collection failed, the next cycle resumes from the watermark: {e}",
        EX_FAILURE,
    ),
    (ScenarioError, str, EX_USAGE),
    (CreditwatchError, str, EX_FAILURE),
)


def describe_failure(exc: BaseException) -> Failure:
    """The one-line message and exit status for ``exc`` (never a traceback)."""
    for kind, message, status in _POLICY:
        if isinstance(exc, kind):
            return Failure(message(exc), status)
    if isinstance(exc, SQLAlchemyError):
        # Driver messages name host and user, never passwords; the SQL is left out.
        return Failure(f"database error: {database_reason(exc)}", EX_FAILURE)
    if isinstance(exc, OSError) and exc.strerror:
        where = f" ({exc.filename})" if exc.filename else ""
        return Failure(f"{exc.strerror}{where}; {DEBUG_HINT}", EX_SOFTWARE)
    detail = str(exc).strip().splitlines()[0][:_MAX_CHARS] if str(exc).strip() else ""
    named = f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__
    return Failure(f"unexpected error {named}; {DEBUG_HINT}", EX_SOFTWARE)


def database_reason(exc: SQLAlchemyError) -> str:
    """The first line of the driver's message (no SQL, no parameters), or the error's class."""
    orig = getattr(exc, "orig", None)
    text = str(orig).strip() if orig is not None else ""
    return text.splitlines()[0] if text else type(exc).__name__


def log_failure(log: logging.Logger, what: str, exc: BaseException) -> Failure:
    """Log ``what`` failed in one line at ERROR, the traceback at DEBUG; returns the Failure."""
    failure = describe_failure(exc)
    log.error("%s: %s", what, failure.message)
    if not isinstance(exc, CreditwatchError):
        log.debug("traceback of the failure above", exc_info=exc)
    return failure
