"""The outbox worker: claim due notifications, send them, record every attempt, retry with
capped exponential backoff and jitter, give up only on a permanent failure or at the maximum age.

Nothing is lost: a row is claimed (``sending``) in one short transaction, sent outside any
transaction, and acknowledged in another; a worker killed between send and acknowledgement
leaves a claim that goes stale after the lease and is sent again, with the same message id
(receivers that keep ids see a duplicate, never a loss). Two workers on one PostgreSQL database
claim with an atomic update and never send one row at once.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import Engine, update
from sqlmodel import col

from service.channels.base import Channel
from service.errors import DeliveryError
from service.render.view import AlertView
from service.runtime.failures import describe_failure
from service.store import outbox
from service.store.engine import transaction
from service.store.tables import OutboxAlert

log = logging.getLogger(__name__)
Clock = Callable[[], datetime]
MAX_ERROR_CHARS = 500


@dataclass(frozen=True)
class DeliveryPolicy:
    """How long to wait between attempts, and when to stop.

    The n-th retry waits between half and all of ``first_retry × 2^(n-1)``, capped at
    ``max_delay`` (jitter spreads a burst of retries); a receiver's ``Retry-After`` is honoured
    up to ``max_retry_after``. A notification still undelivered after ``max_age`` fails.
    """

    first_retry: timedelta = timedelta(seconds=10)
    max_delay: timedelta = timedelta(minutes=15)
    max_retry_after: timedelta = timedelta(hours=1)
    max_age: timedelta = timedelta(hours=24)
    lease: timedelta = timedelta(minutes=5)
    batch: int = 200

    def retry_delay(
        self, attempts: int, retry_after: float | None, rng: random.Random
    ) -> timedelta:
        doublings = min(max(0, attempts - 1), 30)
        ceiling = min(self.max_delay, self.first_retry * (1 << doublings))
        delay = ceiling / 2 + ceiling / 2 * rng.random()
        if retry_after is not None:
            delay = max(delay, min(timedelta(seconds=retry_after), self.max_retry_after))
        return delay


@dataclass
class DeliveryReport:
    sent: int = 0
    retried: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return f"delivered {self.sent}, retrying {self.retried}, failed {self.failed}"


class Deliverer:
    """Delivers what is due in the outbox through the configured channels."""

    def __init__(
        self,
        engine: Engine,
        channels: Mapping[str, Channel],
        *,
        clock: Clock,
        policy: DeliveryPolicy | None = None,
        rng: random.Random | None = None,
        mask: Callable[[str], str] = lambda text: text,
    ) -> None:
        self.engine = engine
        self.channels = channels
        self.clock = clock
        self.policy = policy or DeliveryPolicy()
        self.rng = rng or random.Random()  # noqa: S311 - backoff jitter, not a secret
        self.mask = mask

    def deliver_due(self) -> DeliveryReport:
        """One pass: route, expire, then claim and send every row due now."""
        report = DeliveryReport()
        now = self.clock()
        self._route_unrouted(now)
        self._expire(now)
        stale = now - self.policy.lease
        with transaction(self.engine, ledger_lock=False) as session:
            candidates = outbox.due(session, now, stale, self.policy.batch)
        for outbox_id in candidates:
            with transaction(self.engine, ledger_lock=False) as session:
                if not outbox.claim(session, outbox_id, self.clock(), stale):
                    continue  # another worker took it
                row = session.get(OutboxAlert, outbox_id)
            if row is not None:
                self._deliver(row, report)
        return report

    def _deliver(self, row: OutboxAlert, report: DeliveryReport) -> None:
        started = self.clock()
        began = time.monotonic()
        channel = self.channels.get(row.channel or "")
        try:
            if channel is None:
                raise DeliveryError(
                    f"channel {row.channel!r} is no longer configured", permanent=True
                )
            sent = channel.send(AlertView.from_json(json.loads(row.payload)))
            result = outbox.Outcome("sent", status=sent.status)
        except DeliveryError as exc:
            result = self._failure(row, exc, started)
        except Exception as exc:
            log.debug("channel %s raised", row.channel, exc_info=exc)
            failure = describe_failure(exc)
            error = DeliveryError(failure.message, permanent=False)
            result = self._failure(row, error, started)
        duration = int((time.monotonic() - began) * 1000)
        now = self.clock()
        with transaction(self.engine, ledger_lock=False) as session:
            outbox.acknowledge(
                session, row, result, started_at=started, duration_ms=duration, now=now
            )
        if result.outcome == "sent":
            report.sent += 1
        elif result.outcome == "retry":
            report.retried += 1
        else:
            report.failed += 1
        if result.error:
            report.errors.append(f"{row.channel}: {result.error}")
            level = logging.WARNING if result.outcome == "retry" else logging.ERROR
            log.log(level, "delivery of %s to %s: %s", row.message_id, row.channel, result.error)

    def _failure(self, row: OutboxAlert, exc: DeliveryError, started: datetime) -> outbox.Outcome:
        error = self.mask(str(exc))[:MAX_ERROR_CHARS]
        if exc.permanent:
            return outbox.Outcome("failed", exc.status, error, failure="permanent")
        delay = self.policy.retry_delay(row.attempts, exc.retry_after, self.rng)
        retry_at = started + delay
        if retry_at - row.created_at > self.policy.max_age:
            return outbox.Outcome("failed", exc.status, f"{error}; gave up", failure="expired")
        return outbox.Outcome("retry", exc.status, error, retry_at=retry_at)

    def _expire(self, now: datetime) -> None:
        """Rows that outlived the maximum age fail (with what they last said)."""
        with transaction(self.engine, ledger_lock=False) as session:
            session.execute(
                update(OutboxAlert)
                .where(
                    col(OutboxAlert.state) == "pending",
                    col(OutboxAlert.created_at) < now - self.policy.max_age,
                )
                .values(state="failed", failure="expired")
                .execution_options(synchronize_session=False)
            )

    def _route_unrouted(self, now: datetime) -> None:
        """Alerts produced while no channel was configured go out once one is (if recent)."""
        if not self.channels:
            return
        with transaction(self.engine, ledger_lock=False) as session:
            for row in outbox.unrouted_since(session, now - self.policy.max_age):
                payload = json.loads(row.payload)
                wanted = payload.get("channels") or list(self.channels)
                avoid = payload.get("exclude_channels") or []
                targets = [n for n in wanted if n in self.channels and n not in avoid]
                if not targets:
                    continue
                row.state, row.channel = "pending", targets[0]
                session.add_all(
                    OutboxAlert(
                        record_id=row.record_id,
                        dedup_id=row.dedup_id,
                        message_id=row.message_id,
                        kind=row.kind,
                        rule=row.rule,
                        severity=row.severity,
                        title=row.title,
                        payload=row.payload,
                        created_at=row.created_at,
                        channel=name,
                    )
                    for name in targets[1:]
                )
