"""``/metrics``: what this process did, and what the ledger holds, in Prometheus' text format.

Everything lives in a registry of its own (never prometheus_client's global one). Two kinds:

- **In-process**, fed by the daemon's hooks (here): cycle durations, cycles by outcome, Admin
  API errors by class, whether this instance leads, reloads by outcome. A follower's cycle
  figures stay at zero: the leader collects.
- **From the ledger** (:mod:`service.runtime.ledger_metrics`), read on each scrape, so every
  instance, leader or not, shows the same figures.
"""

from __future__ import annotations

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
)
from prometheus_client.exposition import choose_encoder
from prometheus_client.process_collector import ProcessCollector
from sqlalchemy.exc import SQLAlchemyError

from service.errors import AdminAPIAuthError, AdminAPIError, MalformedResponse
from service.runtime.failures import describe_failure
from service.runtime.ledger_metrics import Clock, LedgerCollector, LedgerReader

CYCLE_OUTCOMES = ("ok", "api_error", "database_error", "error")
API_ERROR_CLASSES = ("auth", "malformed", "unavailable", "rejected")
RELOAD_OUTCOMES = ("applied", "refused")
# From a quick cycle against a warm ledger to a first backfill of a month of 1-minute buckets.
CYCLE_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0)


def cycle_outcome(exc: BaseException | None) -> str:
    if exc is None:
        return "ok"
    if isinstance(exc, AdminAPIError):
        return "api_error"
    if isinstance(exc, SQLAlchemyError):
        return "database_error"
    return "error"


def api_error_class(exc: AdminAPIError) -> str:
    """``auth`` (401/403), ``malformed`` (a page not of the documented shape), ``unavailable``
    (5xx, 429, timeouts: retries ran out) or ``rejected`` (any other refusal)."""
    if isinstance(exc, AdminAPIAuthError):
        return "auth"
    if isinstance(exc, MalformedResponse):
        return "malformed"
    return "unavailable" if exc.transient else "rejected"


class DaemonMetrics:
    """The registry ``/metrics`` serves, and what the daemon's hooks tell it."""

    def __init__(self, reader: LedgerReader, clock: Clock) -> None:
        # The *_created series (a counter's start time) double the text output for nothing
        # Prometheus reads from it; the process start time is in process_start_time_seconds.
        disable_created_metrics()  # type: ignore[no-untyped-call]  # unannotated upstream
        self.registry = CollectorRegistry()
        self.leading = False
        self.last_cycle_error: str | None = None
        self.last_cycle_permanent = False
        self.cycle_seconds = Histogram(
            "creditwatch_cycle_duration_seconds",
            "How long each collection cycle took, failed ones included.",
            buckets=CYCLE_BUCKETS,
            registry=self.registry,
        )
        self.cycles = Counter(
            "creditwatch_cycles",
            "Collection cycles this process ran, by outcome.",
            ["outcome"],
            registry=self.registry,
        )
        self.api_errors = Counter(
            "creditwatch_admin_api_errors",
            "Cycles that failed on an Admin API error (after retries), by class.",
            ["class"],
            registry=self.registry,
        )
        self.leader = Gauge(
            "creditwatch_leader",
            "1 while this instance leads (collects, evaluates and delivers), else 0.",
            registry=self.registry,
        )
        self.reloads = Counter(
            "creditwatch_reloads",
            "Settings reloads (SIGHUP), by outcome.",
            ["outcome"],
            registry=self.registry,
        )
        # Every series exists from the start, so rate() and absent() read them from zero.
        for outcome in CYCLE_OUTCOMES:
            self.cycles.labels(outcome)
        for kind in API_ERROR_CLASSES:
            self.api_errors.labels(kind)
        for outcome in RELOAD_OUTCOMES:
            self.reloads.labels(outcome)
        ProcessCollector(registry=self.registry)
        self.registry.register(LedgerCollector(reader, clock))

    def cycle_finished(self, seconds: float, exc: BaseException | None) -> None:
        self.cycle_seconds.observe(seconds)
        self.cycles.labels(cycle_outcome(exc)).inc()
        if isinstance(exc, AdminAPIError):
            self.api_errors.labels(api_error_class(exc)).inc()
        self.last_cycle_error = describe_failure(exc).message if exc is not None else None
        self.last_cycle_permanent = (
            isinstance(exc, AdminAPIError) and api_error_class(exc) == "auth"
        )

    def leadership_changed(self, leading: bool) -> None:
        self.leading = leading
        self.leader.set(1 if leading else 0)
        # A cycle from an earlier term says nothing about the collection now.
        self.last_cycle_error = None
        self.last_cycle_permanent = False

    def reload_finished(self, applied: bool) -> None:
        self.reloads.labels("applied" if applied else "refused").inc()

    def exposition(self, accept: str) -> tuple[bytes, str]:
        """The body and content type for a scrape with this ``Accept`` header."""
        encode, content_type = choose_encoder(accept)
        return encode(self.registry), content_type
