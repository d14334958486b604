"""The ``/healthz`` decision: is what creditwatch shows current, and will it stay so?

A pure function of what the ledger says about collection, what this process saw itself, and
``now``. The first rule that holds answers 503 with its reason; when none does, 200 ``ok``
(``ok: degraded …`` while a failure is younger than its threshold):

1. **The database cannot be read** (the ledger is where every figure comes from).
2. **Collection cannot work**: this instance leads and its last cycle failed on something no
   retry fixes (the key is rejected: 401/403). A page now, not in half an hour.
3. **Collection has been failing for longer than** ``CREDITWATCH_COLLECTION_ALERT`` (30 minutes
   by default; ``failing_since`` in the ledger, written by whichever instance collects): the
   threshold of the ``health:collection_failing`` alert, so one blip of the API does not turn
   every instance's probe red at once.
4. **No collection has succeeded yet** and this process started more than the start-up grace
   ago (``CREDITWATCH_COLLECTION_ALERT``, or two poll intervals if longer: the first backfill
   of a month may take a while). Within it, the answer is 200 ``ok: starting``.
5. **The last successful collection is older than** that same limit: on a follower
   (PostgreSQL) this is how a leader that stopped collecting shows; a follower whose leader
   collects is healthy.
6. **The data is stale**: the newest bucket the API returned (empty ones count) ended more
   than one bucket width, the API's usual delay and one poll interval ago — the
   ``health:data_stale`` rule, allowing for the time since the last cycle.
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
    last_cycle_permanent: bool = False  # that failure is one no retry fixes (a rejected key)


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
    poll_interval: timedelta = timedelta(),
) -> Verdict:
    """The verdict of the rules in the module docstring, first match wins."""
    if isinstance(ledger, DatabaseDown):
        return Verdict(False, f"the database cannot be read ({ledger.reason})")
    if observed.leading and observed.last_cycle_permanent and observed.last_cycle_error:
        return Verdict(False, f"the last cycle failed: {_one_line(observed.last_cycle_error)}")
    role = "this instance leads" if observed.leading else "another instance leads"
    limit = max(collection_alert, 2 * poll_interval)
    problem = _failing(ledger, now, collection_alert)
    if problem is None and ledger.last_success_at is None:
        return _never_collected(now - observed.started_at, limit, role)
    age = now - ledger.last_success_at if ledger.last_success_at else timedelta()
    if problem is None and ledger.last_success_at is not None and age > limit:
        problem = (
            f"the last successful collection was {format_duration(age)} ago, at "
            f"{rfc3339(ledger.last_success_at)} (more than {format_duration(limit)}); {role}"
        )
    problem = problem or _stale(ledger, now, poll_interval)
    if problem is not None:
        return Verdict(False, problem)
    fine = f"last collection {format_duration(max(age, timedelta()))} ago; {role}"
    if ledger.failing_since is not None:
        error = _one_line(ledger.last_error or "no error recorded")
        fine = (
            f"degraded: collection failing since {rfc3339(ledger.failing_since)} (unhealthy "
            f"after {format_duration(collection_alert)}): {error}; {fine}"
        )
    return Verdict(True, fine)


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


def _stale(ledger: CollectionView, now: datetime, poll_interval: timedelta) -> str | None:
    if ledger.newest_bucket_start is None:
        return None
    newest_end = ledger.newest_bucket_start + ledger.bucket
    lag = now - newest_end
    allowed = ledger.bucket + API_DELAY + poll_interval
    if lag <= allowed:
        return None
    return (
        f"the data is stale: the newest bucket ended {format_duration(lag)} ago, at "
        f"{rfc3339(newest_end)} (more than {format_duration(allowed)})"
    )


def _failing(ledger: CollectionView, now: datetime, threshold: timedelta) -> str | None:
    if ledger.failing_since is None or now - ledger.failing_since <= threshold:
        return None
    error = _one_line(ledger.last_error or "no error recorded")
    return (
        f"collection failing since {rfc3339(ledger.failing_since)} (more than "
        f"{format_duration(threshold)}): {error}"
    )


def _one_line(text: str) -> str:
    line = " ".join(text.split())
    return line if len(line) <= _MAX_REASON else line[: _MAX_REASON - 1] + "…"
