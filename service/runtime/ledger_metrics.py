"""The ledger's figures for ``/metrics``, and the read-only access ``/healthz`` shares.

Read on each scrape in a read-only transaction (as `status` reads it), on an engine of its own,
so every instance shows the same figures: balance, budgets, runway, collection times, outbox
depth, delivery attempts. A scrape that cannot read the database still answers, with
``creditwatch_database_up 0`` and nothing else from the ledger. Money is exact (nano-dollars)
until here; it becomes a float only as a sample value.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TypeVar

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import Engine, func, select
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session
from sqlmodel import col

from service.domain.money import NANOS_PER_USD, usd_to_nanos
from service.domain.usage import BUCKET_SECONDS
from service.runtime.facts import budget_facts
from service.runtime.failures import describe_failure
from service.runtime.health import CollectionView, DatabaseDown
from service.runtime.outlook import runway_of, spend_profile
from service.settings import Settings
from service.store.balance import balance_nanos
from service.store.credit_sync import current_walk, ledger_terms
from service.store.engine import make_engine, read_transaction
from service.store.outbox import OUTBOX_STATES, outbox_counts
from service.store.tables import CollectionState, DeliveryAttempt

log = logging.getLogger(__name__)
T = TypeVar("T")
Clock = Callable[[], datetime]

ATTEMPT_OUTCOMES = ("sent", "retry", "failed")
# A scrape must answer within Prometheus' timeout (10 s by default), even when the server is
# unreachable: psycopg otherwise waits for the operating system's TCP timeout.
CONNECT_TIMEOUT_SECONDS = 5
STATEMENT_TIMEOUT_MS = 5_000
LOCK_TIMEOUT_MS = 2_000


def usd(nanos: int) -> float:
    return nanos / NANOS_PER_USD


class LedgerReader:
    """A read-only engine on the ledger for scrapes and health checks, built on first use and
    again when a reload points the settings at another database."""

    def __init__(self, settings: Callable[[], Settings]) -> None:
        self.settings = settings
        self._lock = threading.Lock()
        self._engine: Engine | None = None
        self._url = ""
        self._down = False

    def read(self, what: Callable[[Session, Settings], T]) -> T | DatabaseDown:
        """``what`` in a read transaction, or DatabaseDown (logged when it starts) on any error."""
        settings = self.settings()
        try:
            with read_transaction(self._engine_for(settings.ledger.database_url)) as session:
                found = what(session, settings)
        except Exception as exc:  # a scrape answers whatever the database does
            if not self._down:
                log.warning(
                    "metrics: the database cannot be read: %s", describe_failure(exc).message
                )
                log.debug("traceback of the failure above", exc_info=exc)
            self._down = True
            return DatabaseDown(type(exc).__name__)
        if self._down:
            log.info("metrics: the database can be read again")
        self._down = False
        return found

    def _engine_for(self, url: str) -> Engine:
        with self._lock:
            if self._engine is None or url != self._url:
                if self._engine is not None:
                    self._engine.dispose()
                self._engine = make_engine(with_connect_timeout(url), reading=True)
                self._url = url
            return self._engine

    def close(self) -> None:
        with self._lock:
            if self._engine is not None:
                self._engine.dispose()
                self._engine = None


def with_connect_timeout(url: str) -> str:
    """``url`` bounded on PostgreSQL (unless it sets its own): a connect timeout, and statement
    and lock timeouts, so a scrape behind a migration's lock answers 503 instead of hanging.
    Other databases unchanged."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "postgresql":
        return url
    bounds: dict[str, str] = {}
    if "connect_timeout" not in parsed.query:
        bounds["connect_timeout"] = str(CONNECT_TIMEOUT_SECONDS)
    options = str(parsed.query.get("options", ""))
    for setting, value in (
        ("statement_timeout", STATEMENT_TIMEOUT_MS),
        ("lock_timeout", LOCK_TIMEOUT_MS),
    ):
        if setting not in options:
            options = f"{options} -c {setting}={value}".strip()
    if options != parsed.query.get("options", ""):
        bounds["options"] = options
    if not bounds:
        return url
    return parsed.update_query_dict(bounds).render_as_string(hide_password=False)


def read_collection(session: Session, settings: Settings) -> CollectionView:
    """The ledger's collection record for the configured bucket width."""
    width = settings.collection.bucket_width
    bucket = timedelta(seconds=BUCKET_SECONDS[width])
    state = session.get(CollectionState, width)
    if state is None:
        return CollectionView(bucket)
    return CollectionView(
        bucket=bucket,
        last_success_at=state.last_success_at,
        failing_since=state.failing_since,
        last_error=state.last_error,
        newest_bucket_start=state.newest_bucket_start,
    )


@dataclass(frozen=True)
class BudgetFigure:
    name: str
    period: str
    period_start: datetime
    spent_nanos: int
    limit_nanos: int


@dataclass(frozen=True)
class LedgerFigures:
    """What one scrape reads from the ledger."""

    collection: CollectionView
    balance_nanos: int | None
    budgets: tuple[BudgetFigure, ...]
    runway_until: datetime | None
    outbox: dict[str, int]
    attempts: dict[tuple[str, str], int]


def delivery_attempts(session: Session, channels: Iterable[str]) -> dict[tuple[str, str], int]:
    """Attempts per (channel, outcome) ever recorded; zeros for the configured channels."""
    counts = {(name, outcome): 0 for name in channels for outcome in ATTEMPT_OUTCOMES}
    rows = session.execute(
        select(col(DeliveryAttempt.channel), col(DeliveryAttempt.outcome), func.count()).group_by(
            col(DeliveryAttempt.channel), col(DeliveryAttempt.outcome)
        )
    )
    for channel, outcome, count in rows:
        counts[(str(channel), str(outcome))] = int(count)
    return counts


class LedgerCollector(Collector):
    """The ledger's figures, read on each scrape.

    The runway needs the whole credit walk, which grows with history; it is computed again only
    when the ledger changed (a new collection, another balance), not on every scrape.
    """

    def __init__(self, reader: LedgerReader, clock: Clock) -> None:
        self.reader = reader
        self.clock = clock
        self._runway_lock = threading.Lock()
        self._runway_key: tuple[object, ...] | None = None
        self._runway_until: datetime | None = None

    def read_figures(self, session: Session, settings: Settings) -> LedgerFigures:
        now = self.clock()
        collection = read_collection(session, settings)
        balance = balance_nanos(session)
        budgets = tuple(
            BudgetFigure(
                name=budget.rule.name,
                period=budget.period.kind,
                period_start=budget.period.start,
                spent_nanos=budget.spent_nanos,
                limit_nanos=usd_to_nanos(budget.rule.limit),
            )
            for budget in budget_facts(session, settings, now)
        )
        return LedgerFigures(
            collection=collection,
            balance_nanos=balance,
            budgets=budgets,
            runway_until=self._runway(session, settings, collection, balance, now),
            outbox=outbox_counts(session),
            attempts=delivery_attempts(session, settings.channels.names),
        )

    def _runway(
        self,
        session: Session,
        settings: Settings,
        collection: CollectionView,
        balance: int | None,
        now: datetime,
    ) -> datetime | None:
        key = (settings.ledger, settings.collection, collection.last_success_at, balance)
        with self._runway_lock:
            if key != self._runway_key:
                terms = ledger_terms(session, settings.ledger.credit_terms())
                width = settings.collection.bucket_width
                walked = current_walk(session, width, terms, now)
                profile = spend_profile(session, settings, now)
                self._runway_until = runway_of(walked, profile, terms, now).until
                self._runway_key = key
            return self._runway_until

    def collect(self) -> Iterator[Metric]:
        read = self.reader.read(self.read_figures)
        up = GaugeMetricFamily(
            "creditwatch_database_up",
            "1 when this scrape could read the ledger, else 0 (and no ledger figures follow).",
            value=0 if isinstance(read, DatabaseDown) else 1,
        )
        yield up
        if isinstance(read, DatabaseDown):
            return
        yield from ledger_metrics(read, self.clock())


def ledger_metrics(figures: LedgerFigures, now: datetime) -> Iterator[Metric]:
    """The ledger's figures as metric families; a figure not known yet is left out."""
    if figures.balance_nanos is not None:
        yield GaugeMetricFamily(
            "creditwatch_balance_usd",
            "The prepaid credit balance now (USD), as `status` shows it.",
            value=usd(figures.balance_nanos),
        )
    labels = ["budget", "period"]
    spent = GaugeMetricFamily(
        "creditwatch_budget_spend_usd",
        "Spend in each budget's current period (USD).",
        labels=labels,
    )
    limit = GaugeMetricFamily(
        "creditwatch_budget_limit_usd", "Each budget's limit per period (USD).", labels=labels
    )
    start = GaugeMetricFamily(
        "creditwatch_budget_period_start_timestamp_seconds",
        "When each budget's current period began (Unix time).",
        labels=labels,
    )
    for budget in figures.budgets:
        values = [budget.name, budget.period]
        spent.add_metric(values, usd(budget.spent_nanos))
        limit.add_metric(values, usd(budget.limit_nanos))
        start.add_metric(values, budget.period_start.timestamp())
    yield from (spent, limit, start)
    if figures.runway_until is not None:
        yield GaugeMetricFamily(
            "creditwatch_runway_seconds",
            "Seconds until the balance reaches zero at the expected spend (absent when unknown "
            "or beyond the forecast horizon).",
            value=max(0.0, (figures.runway_until - now).total_seconds()),
        )
    collection = figures.collection
    if collection.last_success_at is not None:
        yield GaugeMetricFamily(
            "creditwatch_last_collection_success_timestamp_seconds",
            "When a collection last succeeded (Unix time), by whichever instance led.",
            value=collection.last_success_at.timestamp(),
        )
    if collection.newest_bucket_start is not None:
        yield GaugeMetricFamily(
            "creditwatch_newest_bucket_start_timestamp_seconds",
            "Start of the newest usage bucket the Admin API returned (Unix time).",
            value=collection.newest_bucket_start.timestamp(),
        )
    yield GaugeMetricFamily(
        "creditwatch_collection_failing",
        "1 while the ledger records collection as failing (the last cycle failed), else 0.",
        value=1 if collection.failing_since is not None else 0,
    )
    outbox = GaugeMetricFamily(
        "creditwatch_outbox_notifications",
        "Notifications in the outbox, by delivery state.",
        labels=["state"],
    )
    for state in dict.fromkeys([*OUTBOX_STATES, *figures.outbox]):
        outbox.add_metric([state], figures.outbox.get(state, 0))
    yield outbox
    attempts = CounterMetricFamily(
        "creditwatch_delivery_attempts",
        "Delivery attempts recorded in the ledger, by channel and outcome.",
        labels=["channel", "outcome"],
    )
    for (channel, outcome), count in sorted(figures.attempts.items()):
        attempts.add_metric([channel, outcome], count)
    yield attempts
