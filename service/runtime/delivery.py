"""The outbox worker: claim due notifications, send them, record every attempt, retry with
capped exponential backoff and jitter, give up only on a permanent failure or at the maximum age.

Nothing is lost: a row is claimed (``sending``, with a token) in one short transaction, sent
outside any transaction, and acknowledged in another by the token's holder only; a worker
killed between send and acknowledgement leaves a claim that goes stale after the lease and is
sent again, with the same message id (receivers that keep ids see a duplicate, never a loss).
Two workers on one PostgreSQL database claim with an atomic update and never send one row at
once. The maximum age counts from the first attempt, so an alert that waited out an outage of
creditwatch itself still gets its day of retries. Notifications for a channel removed from the
settings go to the alert's other channels; a channel that raises something other than a
DeliveryError (a bug) fails permanently, and so is reported, rather than retried in silence.
"""

from __future__ import annotations

import json
import logging
import random
import re
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import Engine

from service.channels.base import Channel
from service.domain.timefmt import format_duration
from service.errors import DeliveryError
from service.render.view import AlertView
from service.runtime.failures import describe_failure, log_failure
from service.store import outbox
from service.store.engine import read_transaction, transaction
from service.store.tables import OutboxAlert

log = logging.getLogger(__name__)
Clock = Callable[[], datetime]
MAX_ERROR_CHARS = 500
# A channel retrying one notification for this long is failing: the other channels are told.
CHANNEL_RETRYING_ALERT = timedelta(hours=1)


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

    def deliver_due(self, stop: Callable[[], bool] = lambda: False) -> DeliveryReport:
        """One pass: route what has no (configured) channel, then claim and send what is due.

        A channel that cannot be reached (a timeout, a refused connection) or asks to be left
        alone (429) rests for the rest of the pass: a dead host costs one timeout, not one per
        row. ``stop`` is asked between rows.
        """
        report = DeliveryReport()
        now = self.clock()
        self._route(now)
        stale = now - self.policy.lease
        with read_transaction(self.engine) as session:
            candidates = outbox.due(session, now, stale, self.policy.batch)
        resting: set[str] = set()
        for candidate in candidates:
            if stop():
                break
            name = candidate.channel or ""
            if name not in self.channels or name in resting:
                continue
            token = uuid.uuid4().hex
            with transaction(self.engine, ledger_lock=False) as session:
                if not outbox.claim(session, candidate.id, self.clock(), stale, token):
                    continue  # another worker took it
                row = session.get(OutboxAlert, candidate.id)
            if row is not None and self._deliver(row, token, report) == "rest":
                resting.add(name)
        return report

    def _deliver(self, row: OutboxAlert, token: str, report: DeliveryReport) -> str:
        """Send one claimed row and record how it went; "rest" when its channel should wait."""
        started = self.clock()
        rest = False
        began = time.monotonic()
        channel = self.channels[row.channel or ""]
        try:
            sent = channel.send(AlertView.from_json(json.loads(row.payload)))
            detail = self._clean(sent.detail) if sent.detail else None
            result = outbox.Outcome("sent", status=sent.status, error=detail)
        except DeliveryError as exc:
            result = self._failure(row, exc, started)
            rest = not exc.permanent and exc.status in (None, "429")
        except Exception as exc:  # a bug in a channel: recorded, never retried
            log.debug("channel %s raised", row.channel, exc_info=exc)
            error = DeliveryError(
                f"{row.channel}: unexpected failure (a bug; retrying cannot help): "
                f"{describe_failure(exc).message}",
                permanent=True,
            )
            result = self._failure(row, error, started)
        duration = int((time.monotonic() - began) * 1000)
        try:
            with transaction(self.engine, ledger_lock=False) as session:
                held = outbox.acknowledge(
                    session,
                    row,
                    result,
                    token=token,
                    started_at=started,
                    duration_ms=duration,
                    now=self.clock(),
                )
        except Exception as exc:  # noqa: BLE001 - the claim lapses and the row is tried again
            log_failure(
                log,
                f"recording the delivery of {row.message_id} to {row.channel} failed "
                f"(it is tried again after the {format_duration(self.policy.lease)} lease)",
                exc,
            )
            return "rest"
        if not held:
            log.warning(
                "delivery of %s to %s took longer than the %s lease: another worker took it "
                "over, and it may arrive twice (with the same id)",
                row.message_id,
                row.channel,
                format_duration(self.policy.lease),
            )
        self._report(row, result, report)
        return "rest" if rest else result.outcome

    def _report(self, row: OutboxAlert, result: outbox.Outcome, report: DeliveryReport) -> None:
        fields = {
            "event": "delivery",
            "message_id": row.message_id,
            "channel": row.channel,
            "outcome": result.outcome,
            "status": result.status,
        }
        extra = {"fields": fields}
        if result.outcome == "sent":
            report.sent += 1
            if result.error:
                log.warning(
                    "delivery of %s to %s: %s",
                    row.message_id,
                    row.channel,
                    result.error,
                    extra=extra,
                )
            else:
                log.debug("delivered %s to %s", row.message_id, row.channel, extra=extra)
            return
        if result.outcome == "retry":
            report.retried += 1
        else:
            report.failed += 1
        report.errors.append(f"{row.channel}: {result.error}")
        level = logging.WARNING if result.outcome == "retry" else logging.ERROR
        log.log(
            level,
            "delivery of %s to %s: %s",
            row.message_id,
            row.channel,
            result.error,
            extra=extra,
        )

    def _clean(self, text: str) -> str:
        """Error text as stored: secrets masked, control characters gone (a NUL from a
        receiver's body would fail the write on PostgreSQL), one line, bounded."""
        text = _CONTROL.sub(" ", self.mask(text))
        return " ".join(text.split())[:MAX_ERROR_CHARS]

    def _failure(self, row: OutboxAlert, exc: DeliveryError, started: datetime) -> outbox.Outcome:
        error = self._clean(str(exc))
        if exc.permanent:
            return outbox.Outcome("failed", exc.status, error, failure="permanent")
        delay = self.policy.retry_delay(row.attempts, exc.retry_after, self.rng)
        retry_at = started + delay
        first = row.first_attempt_at or started
        if retry_at - first > self.policy.max_age:
            tried = format_duration(self.policy.max_age)
            return outbox.Outcome(
                "failed", exc.status, f"{error}; given up after {tried}", failure="expired"
            )
        return outbox.Outcome("retry", exc.status, error, retry_at=retry_at)

    def _route(self, now: datetime) -> None:
        """Give a channel to what has none: alerts produced while no channel was configured
        (if recent), and notifications for a channel since removed from the settings (they
        go to the alert's other channels that do not have it yet)."""
        if not self.channels:
            return
        configured = tuple(self.channels)
        stale = now - self.policy.lease
        with read_transaction(self.engine) as session:
            waiting = outbox.unrouted_since(session, now - self.policy.max_age)
            waiting += outbox.orphans(session, configured, stale)
            session.expunge_all()  # kept as read: the reading transaction rolls back
        for row in waiting:
            payload = json.loads(row.payload)
            wanted = [n for n in payload.get("channels") or [] if n in configured]
            avoid = set(payload.get("exclude_channels") or [])
            targets = [n for n in wanted or configured if n not in avoid]
            with transaction(self.engine, ledger_lock=False) as session:
                moved = outbox.reroute(session, row, targets, stale, now)
            if row.channel is not None:
                log.warning(
                    "channel %s is no longer configured: %s goes to %s instead",
                    row.channel,
                    row.message_id,
                    ", ".join(moved) or "no other channel (the others have it)",
                )


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
