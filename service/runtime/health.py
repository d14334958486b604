"""The ``/healthz`` decision: is what creditwatch shows current, and will it stay so?

A pure function of what the ledger says about collection, what this process saw itself, and
``now``. The first rule that holds answers 503 with its reason; when none does, 200 ``ok``:

1. **The database cannot be read** (the ledger is where every figure comes from).
2. **Collection is failing**: the last cycle failed — this instance's own last cycle when it
   leads, or the ledger's record (``failing_since``, written by whichever instance collects).
3. **No collection has succeeded yet** and this process started more than the start-up grace
   ago. The grace is ``CREDITWATCH_COLLECTION_ALERT`` (30 minutes by default): the first
   backfill of a month of data may take a while. Within it, the answer is 200 ``ok: starting``.
4. **The last successful collection is older than** ``CREDITWATCH_COLLECTION_ALERT``: on a
   follower (another instance leads, PostgreSQL), this is how a leader that stopped
   collecting shows; a follower whose leader collects is healthy.
5. **The data is stale**: the newest bucket the API returned (empty ones count) ended more
   than one bucket width plus the API's usual delay ago — the ``health:data_stale`` rule.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from service.alerts.rules.health import API_DELAY
from service.domain.timefmt import format_duration, rfc3339

HEALTHY = 200
UNHEALTHY = 503
_MAX_REASON = 300


@dataclass(frozen=True)
class CollectionView:
    """What the ledger says about collection (``collection_state`` for the bucket width)."""

    bucket: timedelta
    last_success_at: datetime | None = None
    failing_since: datetime | None = None
    last_error: str | None = None
    newest_bucket_start: datetime | None = None


@dataclass(frozen=True)
class DatabaseDown:
    """The ledger could not be read; ``reason`` names the error's class only (no URL)."""

    reason: str


@dataclass(frozen=True)
class Observed:
    """What this process saw: when it started, whether it leads, how its last cycle ended."""

    started_at: datetime
    leading: bool
    last_cycle_error: str | None = None  # None: the last cycle succeeded, or none ran yet


@dataclass(frozen=True)
class Verdict:
    healthy: bool
    reason: str

    @property
    def status(self) -> int:
        return HEALTHY if self.healthy else UNHEALTHY

    @property
    def body(self) -> str:
        """One line: ``ok: …`` or ``unhealthy: …``."""
        return f"{'ok' if self.healthy else 'unhealthy'}: {self.reason}\n"


def decide_health(
    ledger: CollectionView | DatabaseDown,
    observed: Observed,
    *,
    now: datetime,
    collection_alert: timedelta,
) -> Verdict:
    """The verdict of the rules in the module docstring, first match wins."""
    if isinstance(ledger, DatabaseDown):
        return Verdict(False, f"the database cannot be read ({ledger.reason})")
    failing = _failing(ledger, observed)
    if failing is not None:
        return Verdict(False, failing)
    role = "this instance leads" if observed.leading else "another instance leads"
    if ledger.last_success_at is None:
        return _never_collected(now - observed.started_at, collection_alert, role)
    age = now - ledger.last_success_at
    if age > collection_alert:
        return Verdict(
            False,
            f"the last successful collection was {format_duration(age)} ago, at "
            f"{rfc3339(ledger.last_success_at)} (more than {format_duration(collection_alert)}); "
            f"{role}",
        )
    stale = _stale(ledger, now)
    if stale is not None:
        return Verdict(False, stale)
    return Verdict(True, f"last collection {format_duration(max(age, timedelta()))} ago; {role}")


def _never_collected(running: timedelta, grace: timedelta, role: str) -> Verdict:
    if running <= grace:
        return Verdict(
            True,
            f"starting: no collection has completed yet (running for "
            f"{format_duration(running)}, grace {format_duration(grace)}); {role}",
        )
    return Verdict(
        False,
        f"no collection has succeeded in the {format_duration(running)} since this "
        f"instance started (more than {format_duration(grace)}); {role}",
    )


def _stale(ledger: CollectionView, now: datetime) -> str | None:
    if ledger.newest_bucket_start is None:
        return None
    newest_end = ledger.newest_bucket_start + ledger.bucket
    lag = now - newest_end
    allowed = ledger.bucket + API_DELAY
    if lag <= allowed:
        return None
    return (
        f"the data is stale: the newest bucket ended {format_duration(lag)} ago, at "
        f"{rfc3339(newest_end)} (more than {format_duration(allowed)})"
    )


def _failing(ledger: CollectionView, observed: Observed) -> str | None:
    if observed.leading and observed.last_cycle_error is not None:
        return f"the last cycle failed: {_one_line(observed.last_cycle_error)}"
    if ledger.failing_since is not None:
        error = _one_line(ledger.last_error or "no error recorded")
        return f"collection failing since {rfc3339(ledger.failing_since)}: {error}"
    return None


def _one_line(text: str) -> str:
    line = " ".join(text.split())
    return line if len(line) <= _MAX_REASON else line[: _MAX_REASON - 1] + "…"
