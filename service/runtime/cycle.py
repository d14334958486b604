"""The runtime a cycle needs (engine, price book, API client) and one cycle on it.

A cycle is collect → book, with the simulated auto-reloads and expiries derived in the same
transactions; the later steps of DESIGN §2 (rules, outbox delivery) join it here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType

import httpx
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from service.admin_api.client import AdminClient
from service.admin_api.retry import DEFAULT_RETRY, RetryPolicy
from service.alerts.facts import ConfigRefusal
from service.alerts.model import Alert
from service.channels.base import ChannelContext
from service.channels.registry import build_channels
from service.domain.credit_walk import WalkResult
from service.domain.money import format_usd, usd_text
from service.http import build_http_client
from service.pricing import PriceBook
from service.runtime.alerting import evaluate
from service.runtime.collector import AfterBooking, CollectionResult, collect
from service.runtime.delivery import Deliverer, DeliveryPolicy, DeliveryReport
from service.runtime.logs import SecretMasker
from service.runtime.reconciling import ReconcileResult, reconcile
from service.settings import Settings
from service.store.balance import balance_nanos
from service.store.engine import make_engine, read_transaction
from service.store.migrations import upgrade


@dataclass(frozen=True)
class CycleResult:
    collection: CollectionResult
    balance_nanos: int | None
    alerts: tuple[Alert, ...] = ()

    def summary(self) -> str:
        c = self.collection
        b = c.booking
        balance = usd_text(self.balance_nanos) if self.balance_nanos is not None else "unknown"
        repriced = f", {c.repriced_rows} re-priced" if c.repriced_rows else ""
        return (
            f"collected {c.window_start:%Y-%m-%dT%H:%MZ}..{c.window_end:%Y-%m-%dT%H:%MZ}: "
            f"{c.rows_fetched} rows ({b.new_rows} new, {b.changed_rows} grew, "
            f"{b.unchanged_rows} unchanged{repriced}), spend +{usd_text(b.spend_nanos)}, "
            f"balance {balance}, {_count(len(self.alerts), 'alert')}, in {c.seconds:.1f}s"
        )

    def fields(self) -> dict[str, object]:
        """The cycle as log fields (``key=value``)."""
        c = self.collection
        b = c.booking
        return {
            "event": "cycle",
            "rows": c.rows_fetched,
            "new": b.new_rows,
            "grew": b.changed_rows,
            "spend_usd": format_usd(b.spend_nanos),
            "balance_usd": format_usd(self.balance_nanos)
            if self.balance_nanos is not None
            else None,
            "alerts": len(self.alerts),
            "seconds": round(c.seconds, 3),
        }


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" + ("" if number == 1 else "s")


class Runtime:
    """Long-lived parts shared by cycles: built once per process (and again on reload)."""

    def __init__(
        self,
        settings: Settings,
        *,
        transport: httpx.BaseTransport | None = None,
        retry: RetryPolicy = DEFAULT_RETRY,
        engine: Engine | None = None,
        delivery: DeliveryPolicy | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.settings = settings
        key = settings.require_admin_key().get_secret_value()
        self.book = PriceBook.load(settings.ledger.prices_file)
        self.engine = engine or make_engine(settings.ledger.database_url)
        try:
            upgrade(self.engine)
            self.http = build_http_client(
                settings.api.base_url,
                timeout=settings.api.http_timeout.total_seconds(),
                transport=transport,
            )
            # Channels post to URLs of their own; one pool, the same seam and timeouts.
            self.channel_http = build_http_client(
                "", timeout=settings.api.http_timeout.total_seconds(), transport=transport
            )
            context = ChannelContext(
                http=self.channel_http,
                settings=settings.channels,
                clock=clock,
                credit_unit=settings.ledger.credit_unit_usd,
                timeout=settings.api.http_timeout.total_seconds(),
            )
            self.channels = build_channels(context)
        except BaseException:
            self.engine.dispose()
            raise
        self.client = AdminClient(self.http, key, retry=retry)
        self.deliverer = Deliverer(
            self.engine,
            self.channels,
            clock=clock,
            policy=delivery or DeliveryPolicy(lease=settings.channels.delivery_lease),
            mask=SecretMasker(settings.secrets),
        )
        # Set by the daemon while a reload (SIGHUP) is refused: a health alert says so.
        self.config_refused: ConfigRefusal | None = None

    def _evaluator(self, produced: list[Alert]) -> AfterBooking:
        """The rules, run in the booking's transaction; their alerts are added to ``produced``."""

        def evaluate_rules(session: Session, walked: WalkResult | None, now: datetime) -> None:
            produced.extend(
                evaluate(
                    session, self.settings, now, walked, config_refused=self.config_refused
                ).alerts
            )

        return evaluate_rules

    def cycle(
        self, clock: Callable[[], datetime], should_stop: Callable[[], bool] = lambda: False
    ) -> CycleResult:
        """Collect → book → reload → evaluate → enqueue (DESIGN §2, steps 1–6)."""
        produced: list[Alert] = []
        evaluate_rules = self._evaluator(produced)

        collection = collect(
            self.engine,
            self.client,
            self.book,
            self.settings,
            clock,
            after_booking=evaluate_rules,
            should_stop=should_stop,
        )
        with read_transaction(self.engine) as session:
            balance = balance_nanos(session)
        return CycleResult(collection=collection, balance_nanos=balance, alerts=tuple(produced))

    def reconcile(
        self, clock: Callable[[], datetime], since: datetime | None = None
    ) -> ReconcileResult:
        """Book the difference between Anthropic's bill and the estimate for finished days,
        then evaluate the rules in the same transaction (the drift alert)."""
        produced: list[Alert] = []
        evaluate_rules = self._evaluator(produced)

        result = reconcile(
            self.engine,
            self.client,
            self.book,
            self.settings,
            clock,
            since=since,
            after_booking=evaluate_rules,
        )
        result.alerts = tuple(produced)
        return result

    def deliver(self, stop: Callable[[], bool] = lambda: False) -> DeliveryReport:
        """Send what is due in the outbox (DESIGN §2 step 7); ``stop`` ends it between rows."""
        return self.deliverer.deliver_due(stop)

    def close(self) -> None:
        self.http.close()
        self.channel_http.close()
        self.engine.dispose()

    def __enter__(self) -> Runtime:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
