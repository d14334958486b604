"""The fault matrix: every channel against each transient and each permanent failure its
receiver can give, through the real outbox worker over real sockets.

Transient: the alert arrives in the end, every attempt carrying the same id, with the waits the
receiver asked for. Permanent: one attempt, the row failed, and a health alert naming the
channel reaches the other channel (never the broken one). The kill -9 half of the matrix is
``test_kill_nine.py``.
"""

from __future__ import annotations

import email
import email.policy
import random
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select
from sqlmodel import col

from service.channels.base import ChannelContext
from service.channels.registry import build_channels
from service.domain.usage import TokenCounts, UsageKey, UsageRow
from service.http import build_http_client
from service.runtime.alerting import evaluate
from service.runtime.delivery import Deliverer, DeliveryPolicy
from service.settings import Settings, load_settings
from service.simulator import ManualClock
from service.store.engine import make_engine, transaction
from service.store.migrations import upgrade
from service.store.tables import DeliveryAttempt, OutboxAlert
from service.store.usage_booking import book_usage
from tests.helpers import flat_price
from tests.receivers import Answer, Mailbox, Received, Receiver, free_port, smtp_server

T0 = datetime(2026, 11, 20, 12, tzinfo=UTC)
ALERT_ID = "budget:monthly/org/2026-11/50%"
ROUTING_KEY = "R0UT1NGKEY0123456789ABCDEF012345"
TOKEN = "tok9f8e7d6c5b"
TIMEOUT = 0.5
POLICY = DeliveryPolicy(first_retry=timedelta(seconds=10), max_age=timedelta(hours=24))
HTTP_KINDS = ("slack", "webhook", "discord", "teams", "pagerduty")


@dataclass(frozen=True)
class Failure:
    """What the receiver does on the first attempt, and what the worker must make of it."""

    name: str
    answer: Answer | None  # None: nothing listens yet (connection refused)
    permanent: bool
    wait: timedelta | None = None  # the exact wait a Retry-After asks for


TRANSIENT = [
    Failure("500", Answer(500, b"internal error"), permanent=False),
    Failure("502", Answer(502, b"bad gateway"), permanent=False),
    Failure("503", Answer(503, b"unavailable"), permanent=False),
    Failure("504", Answer(504, b"gateway timeout"), permanent=False),
    Failure("408", Answer(408, b"request timeout"), permanent=False),
    Failure(
        "429",
        Answer(429, b"slow down", {"Retry-After": "90"}),
        permanent=False,
        wait=timedelta(seconds=90),
    ),
    Failure("dropped", Answer(drop=True), permanent=False),
    Failure("timeout", Answer(delay=TIMEOUT * 3), permanent=False),
    Failure("refused", None, permanent=False),
]
PERMANENT = [
    Failure(str(status), Answer(status, b"no"), permanent=True)
    for status in (400, 401, 403, 404, 410)
]
SLACK_PERMANENT = [
    Failure("invalid_token", Answer(403, b"invalid_token"), permanent=True),
    Failure("no_service", Answer(404, b"no_service"), permanent=True),
    Failure("channel_not_found", Answer(404, b"channel_not_found"), permanent=True),
    Failure("200-not-ok", Answer(200, b"invalid_payload"), permanent=True),
]
CASES = [
    pytest.param(kind, failure, id=f"{kind}-{failure.name}")
    for kind in HTTP_KINDS
    for failure in TRANSIENT + PERMANENT + (SLACK_PERMANENT if kind == "slack" else [])
]


def alert_id_in(kind: str, request: Received) -> str:
    """The alert's id as the receiver's own format carries it."""
    if kind == "webhook":
        return request.headers["webhook-id"]
    body: Any = request.json()
    if kind == "pagerduty":
        return str(body["dedup_key"])
    if kind == "slack":
        footer = body["blocks"][-1]["elements"][0]["text"]
    elif kind == "discord":
        footer = body["embeds"][0]["footer"]["text"]
    else:  # teams: the card's last line is the freshness line
        footer = body["attachments"][0]["content"]["body"][-1]["text"]
    return str(footer).rsplit("alert id ", 1)[1]


def target(kind: str, base: str) -> dict[str, str]:
    """The variables that point channel ``x`` of ``kind`` at a receiver at ``base``."""
    if kind == "pagerduty":
        return {
            "CREDITWATCH_CHANNEL_X": f"pagerduty:{ROUTING_KEY}",
            "CREDITWATCH_PAGERDUTY_URL": f"{base}/v2/enqueue",
        }
    path = {
        "slack": f"/services/T0/B0/{TOKEN}",
        "webhook": f"/hook/{TOKEN}",
        "discord": f"/api/webhooks/1/{TOKEN}",
        "teams": f"/workflows/1/triggers/manual?sig={TOKEN}",
    }[kind]
    return {"CREDITWATCH_CHANNEL_X": f"{kind}:{base}{path}"}


def settings_for(db_url: str, backup: Receiver, **channel: str) -> Settings:
    env = {
        "ANTHROPIC_ADMIN_KEY": "sk-ant-admin01-fault-matrix",
        "CREDITWATCH_DATABASE_URL": db_url,
        "CREDITWATCH_MONTHLY_BUDGET": "100",
        "CREDITWATCH_ALERT_THRESHOLDS": "50",
        "CREDITWATCH_CHANNEL_BACKUP": f"webhook:{backup.url}/backup",
        **channel,
    }
    return load_settings(env, None, now=T0)


def produce(engine: Engine, settings: Settings) -> None:
    """$60 of spend against a $100 budget: the 50% alert, to both channels."""
    row = UsageRow(
        UsageKey(T0 - timedelta(hours=1), "1h", "m", "k", "w", "standard", "0-200k", "global"),
        TokenCounts(uncached_input_tokens=60 * 10**6),
    )
    with transaction(engine) as session:
        book_usage(session, [row], flat_price, now=T0)
        evaluate(session, settings, T0)


def worker(engine: Engine, settings: Settings, clock: ManualClock) -> Deliverer:
    context = ChannelContext(
        http=build_http_client("", timeout=TIMEOUT),
        settings=settings.channels,
        clock=clock,
        timeout=TIMEOUT,
    )
    return Deliverer(
        engine, build_channels(context), clock=clock, policy=POLICY, rng=random.Random(3)
    )


def row_of(engine: Engine, channel: str) -> OutboxAlert:
    with transaction(engine) as session:
        rows = session.scalars(select(OutboxAlert).where(col(OutboxAlert.channel) == channel)).all()
    assert len(rows) >= 1
    return rows[0]


def drain(engine: Engine, deliverer: Deliverer, clock: ManualClock, channel: str) -> OutboxAlert:
    """Deliver, moving the clock to each retry, until ``channel``'s first row is settled."""
    for _ in range(10):
        deliverer.deliver_due()
        row = row_of(engine, channel)
        if row.state in ("sent", "failed"):
            return row
        assert row.next_attempt_at is not None
        clock.now = max(clock.now, row.next_attempt_at)
    raise AssertionError(f"{channel} never settled: {row.state}")


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    """The matrix runs on SQLite: the worker's claims on both databases are test_delivery's."""
    created = make_engine(f"sqlite:///{tmp_path / 'matrix.db'}")
    upgrade(created)
    yield created
    created.dispose()


@contextmanager
def http_receiver(failure: Failure) -> Iterator[tuple[str, Callable[[], Receiver]]]:
    """A receiver whose first answer is ``failure``; for "refused", one that starts only when
    the test asks for it (after the first attempt found nothing listening)."""
    with ExitStack() as stack:
        if failure.answer is None:
            port = free_port()
            started: list[Receiver] = []

            def start() -> Receiver:
                if not started:
                    started.append(stack.enter_context(Receiver(port=port)))
                return started[0]

            yield f"http://127.0.0.1:{port}", start
            return
        receiver = stack.enter_context(Receiver())
        receiver.script(failure.answer)
        yield receiver.url, lambda: receiver


@pytest.mark.parametrize(("kind", "failure"), CASES)
def test_http_channels_recover_from_transient_failures_and_report_permanent_ones(
    engine: Engine, tmp_path: Path, kind: str, failure: Failure
) -> None:
    db_url = str(engine.url)
    with Receiver() as backup, http_receiver(failure) as (base, receiver_of):
        settings = settings_for(db_url, backup, **target(kind, base))
        clock = ManualClock(T0)
        produce(engine, settings)
        deliverer = worker(engine, settings, clock)
        deliverer.deliver_due()
        first = row_of(engine, "x")
        if failure.answer is None:
            assert first.state == "pending"
            receiver_of()  # the receiver comes up: the retry finds it
        if failure.wait is not None:
            assert first.next_attempt_at == T0 + failure.wait
        settled = drain(engine, deliverer, clock, "x")
        received = receiver_of().received
        ids = {alert_id_in(kind, r) for r in received if r.body}
        if failure.permanent:
            assert (settled.state, settled.failure) == ("failed", "permanent")
            assert settled.attempts == 1
            assert len(received) == 1
            # The next evaluation raises the alarm on the other channel only.
            clock.now += timedelta(minutes=5)
            with transaction(engine) as session:
                produced = evaluate(session, settings, clock.now).alerts
            assert [a.identity.rule for a in produced] == ["health:channel_failing"]
            deliverer.deliver_due()
            health = backup.received[-1].json()
            assert (health["rule"], health["scope"]) == ("health:channel_failing", "channel=x")
            assert len(receiver_of().received) == 1, "the broken channel is not told about itself"
        else:
            assert settled.state == "sent"
            assert settled.attempts == 2
            expected = 1 if failure.answer is None else 2
            assert len(received) == expected
        assert ids == {ALERT_ID}, "every attempt carries the alert's one id"
        assert alert_id_in("webhook", backup.received[0]) == ALERT_ID
        for attempt in (r.body for r in received):
            assert TOKEN.encode() not in attempt
        with transaction(engine) as session:
            errors = [a.error or "" for a in session.scalars(select(DeliveryAttempt))]
        assert not any(TOKEN in e or ROUTING_KEY in e for e in errors)


EMAIL_CASES = [
    pytest.param("data", "451 4.3.0 try again later", False, id="data-451"),
    pytest.param("data", "421 4.7.0 closing", False, id="data-421"),
    pytest.param("rcpt", "450 4.2.0 greylisted", False, id="rcpt-450-greylisted"),
    pytest.param("refused", "", False, id="refused"),
    pytest.param("data", "554 5.7.1 message rejected", True, id="data-554"),
    pytest.param("data", "552 5.3.4 message too big", True, id="data-552"),
    pytest.param("rcpt", "550 5.1.1 no such user", True, id="rcpt-550"),
]


class FlakyMailbox(Mailbox):
    """A mailbox that gives ``reply`` once (at RCPT or DATA), then accepts."""

    def __init__(self, stage: str, reply: str) -> None:
        super().__init__()
        self.stage, self.reply = stage, reply
        self.replied = False
        if stage == "data":
            self.data_reply = reply

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        if self.stage == "rcpt" and not self.replied:
            self.replied = True
            return self.reply
        return await super().handle_RCPT(server, session, envelope, address, options)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        answer = await super().handle_DATA(server, session, envelope)
        self.data_reply = "250 OK"
        return answer


@pytest.mark.parametrize(("stage", "reply", "permanent"), EMAIL_CASES)
def test_email_recovers_from_4xx_and_reports_5xx(
    engine: Engine, stage: str, reply: str, permanent: bool
) -> None:
    db_url = str(engine.url)
    mailbox = FlakyMailbox(stage, reply)
    port = free_port()
    with ExitStack() as stack:
        backup = stack.enter_context(Receiver())
        if stage != "refused":
            stack.enter_context(smtp_server(mailbox, port=port))
        settings = settings_for(
            db_url,
            backup,
            CREDITWATCH_CHANNEL_X="email:ops@example.com",
            CREDITWATCH_SMTP_URL=f"smtp://127.0.0.1:{port}?tls=off",
            CREDITWATCH_EMAIL_FROM="creditwatch@example.com",
        )
        clock = ManualClock(T0)
        produce(engine, settings)
        deliverer = worker(engine, settings, clock)
        deliverer.deliver_due()
        assert row_of(engine, "x").state == ("failed" if permanent else "pending")
        if stage == "refused":
            stack.enter_context(smtp_server(mailbox, port=port))
        settled = drain(engine, deliverer, clock, "x")
        if permanent:
            assert (settled.state, settled.failure, settled.last_status) == (
                "failed",
                "permanent",
                reply[:3],
            )
            assert mailbox.envelopes == []
            clock.now += timedelta(minutes=5)
            with transaction(engine) as session:
                produced = evaluate(session, settings, clock.now).alerts
            assert [a.identity.rule for a in produced] == ["health:channel_failing"]
            deliverer.deliver_due()
            assert backup.received[-1].json()["scope"] == "channel=x"
            assert mailbox.envelopes == [], "the broken channel is not told about itself"
        else:
            assert (settled.state, settled.attempts) == ("sent", 2)
            (envelope,) = mailbox.envelopes
            assert isinstance(envelope.content, bytes)
            message = email.message_from_bytes(envelope.content, policy=email.policy.default)
            assert ALERT_ID in message.get_body(preferencelist=("plain",)).get_content()  # type: ignore[union-attr]
