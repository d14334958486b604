"""The outbox worker on both databases, against real receivers: claim, send, retry with backoff,
stop on permanent failures, survive a crash between send and acknowledgement, never send one
row twice at once, route alerts produced before any channel existed, and raise the alarm on
the other channels when one fails for good."""

from __future__ import annotations

import base64
import json
import random
import threading
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, select
from sqlmodel import col

from service.channels.base import ChannelContext, Sent
from service.channels.registry import build_channels
from service.domain.usage import TokenCounts, UsageKey, UsageRow
from service.http import build_http_client
from service.runtime.alerting import evaluate
from service.runtime.delivery import Deliverer, DeliveryPolicy
from service.settings import Settings, load_settings
from service.simulator import ManualClock
from service.store import outbox
from service.store.engine import transaction
from service.store.tables import DeliveryAttempt, OutboxAlert
from service.store.usage_booking import book_usage
from tests.helpers import flat_price
from tests.receivers import Answer, Receiver, free_port

T0 = datetime(2026, 11, 20, 12, tzinfo=UTC)
H = timedelta(hours=1)
SECRET = "whsec_" + base64.b64encode(b"delivery-test-signing-key-000001").decode()
POLICY = DeliveryPolicy(first_retry=timedelta(seconds=10), max_age=timedelta(hours=24))


@pytest.fixture
def receivers() -> Iterator[tuple[Receiver, Receiver]]:
    with Receiver() as first, Receiver() as second:
        yield first, second


def settings_for(db_url: str, *urls: str, **extra: str) -> Settings:
    env = {
        "ANTHROPIC_ADMIN_KEY": "sk-ant-admin01-delivery",
        "CREDITWATCH_DATABASE_URL": db_url,
        "CREDITWATCH_MONTHLY_BUDGET": "100",
        "CREDITWATCH_ALERT_THRESHOLDS": "50",
        "CREDITWATCH_WEBHOOK_SECRET": SECRET,
        **extra,
    }
    for number, url in enumerate(urls, start=1):
        env[f"CREDITWATCH_CHANNEL_HOOK{number}"] = f"webhook:{url}/hook/secret-path-{number}"
    return load_settings(env, None, now=T0)


def produce(engine: Engine, settings: Settings, now: datetime, usd: int = 60) -> None:
    """Book some spend and evaluate: the 50% alert lands in the outbox."""
    row = UsageRow(
        UsageKey(now - H, "1h", "claude-haiku-4-5", "k", "w", "standard", "0-200k", "global"),
        TokenCounts(uncached_input_tokens=usd * 10**6),
    )
    with transaction(engine) as session:
        book_usage(session, [row], flat_price, now=now)
        evaluate(session, settings, now)


def deliverer(engine: Engine, settings: Settings, clock: ManualClock) -> Deliverer:
    context = ChannelContext(
        http=build_http_client("", timeout=5), settings=settings.channels, clock=clock
    )
    return Deliverer(
        engine, build_channels(context), clock=clock, policy=POLICY, rng=random.Random(7)
    )


def rows(engine: Engine) -> list[OutboxAlert]:
    with transaction(engine) as session:
        return list(session.scalars(select(OutboxAlert).order_by(col(OutboxAlert.id))))


def attempts(engine: Engine) -> list[DeliveryAttempt]:
    with transaction(engine) as session:
        return list(session.scalars(select(DeliveryAttempt).order_by(col(DeliveryAttempt.id))))


def test_an_alert_goes_to_every_channel_once_and_is_recorded(
    engine: Engine, db_url: str, receivers: tuple[Receiver, Receiver]
) -> None:
    """One row per channel; each sent once, with its attempt (status, duration) recorded."""
    settings = settings_for(db_url, receivers[0].url, receivers[1].url)
    clock = ManualClock(T0)
    produce(engine, settings, T0)
    report = deliverer(engine, settings, clock).deliver_due()
    assert (report.sent, report.retried, report.failed) == (2, 0, 0)
    for receiver in receivers:
        (request,) = receiver.received
        assert request.headers["webhook-id"] == "budget:monthly/org/2026-11/50%"
    assert [(r.channel, r.state, r.attempts) for r in rows(engine)] == [
        ("hook1", "sent", 1),
        ("hook2", "sent", 1),
    ]
    assert [(a.channel, a.outcome, a.status) for a in attempts(engine)] == [
        ("hook1", "sent", "200"),
        ("hook2", "sent", "200"),
    ]
    assert deliverer(engine, settings, clock).deliver_due().sent == 0, "nothing is sent twice"


def test_transient_failures_retry_with_backoff_until_delivered(
    engine: Engine, db_url: str, receivers: tuple[Receiver, Receiver]
) -> None:
    """500, then 503: retried later each time, not before; then delivered with the same id."""
    receiver = receivers[0]
    settings = settings_for(db_url, receiver.url)
    clock = ManualClock(T0)
    produce(engine, settings, T0)
    receiver.script(Answer(500, b"oops"), Answer(503, b"busy"))
    worker = deliverer(engine, settings, clock)
    assert worker.deliver_due().retried == 1
    (row,) = rows(engine)
    assert row.state == "pending"
    assert row.next_attempt_at is not None
    first_wait = row.next_attempt_at - T0
    assert timedelta(seconds=5) <= first_wait <= timedelta(seconds=10)
    clock.now = T0 + first_wait - timedelta(seconds=1)
    assert worker.deliver_due().retried == 0, "not due yet"
    assert len(receiver.received) == 1
    clock.now = T0 + first_wait
    assert worker.deliver_due().retried == 1
    (row,) = rows(engine)
    assert row.next_attempt_at is not None
    second_wait = row.next_attempt_at - clock.now
    assert timedelta(seconds=10) <= second_wait <= timedelta(seconds=20), "the wait doubles"
    clock.now = row.next_attempt_at
    assert worker.deliver_due().sent == 1
    assert len({r.headers["webhook-id"] for r in receiver.received}) == 1
    assert [(a.outcome, a.status) for a in attempts(engine)] == [
        ("retry", "500"),
        ("retry", "503"),
        ("sent", "200"),
    ]
    assert "oops" in (attempts(engine)[0].error or "")


@pytest.mark.parametrize(("status", "seconds"), [(429, 120), (503, 600)])
def test_retry_after_is_honoured(
    engine: Engine, db_url: str, receivers: tuple[Receiver, Receiver], status: int, seconds: int
) -> None:
    """A 429 or a 503 asking for minutes waits them, however short the backoff would be."""
    receiver = receivers[0]
    settings = settings_for(db_url, receiver.url)
    produce(engine, settings, T0)
    receiver.script(Answer(status, b"later", {"Retry-After": str(seconds)}))
    deliverer(engine, settings, ManualClock(T0)).deliver_due()
    (row,) = rows(engine)
    assert row.next_attempt_at == T0 + timedelta(seconds=seconds)


def test_a_permanent_failure_stops_and_alerts_the_other_channels(
    engine: Engine, db_url: str, receivers: tuple[Receiver, Receiver]
) -> None:
    """hook1 answers 404: no retry; the next evaluation tells hook2 (only), and resolves once
    hook1 takes an alert again."""
    broken, working = receivers
    settings = settings_for(db_url, broken.url, working.url)
    clock = ManualClock(T0)
    broken.script(Answer(404, b"no such hook"))
    produce(engine, settings, T0)
    worker = deliverer(engine, settings, clock)
    report = worker.deliver_due()
    assert (report.sent, report.failed) == (1, 1)
    failed = next(r for r in rows(engine) if r.channel == "hook1")
    assert (failed.state, failed.failure, failed.last_status) == ("failed", "permanent", "404")
    clock.now = T0 + H
    assert worker.deliver_due().sent == 0, "a permanent failure is not retried"
    with transaction(engine) as session:
        produced = evaluate(session, settings, clock.now).alerts
    assert [a.identity.rule for a in produced] == ["health:channel_failing"]
    worker.deliver_due()
    assert len(broken.received) == 1, "the failing channel is not told about itself"
    health = working.received[-1].json()
    assert health["rule"] == "health:channel_failing"
    assert health["scope"] == "channel=hook1"
    assert health["severity"] == "critical"
    # hook1 is mended: a later alert reaches it, and the health condition resolves.
    clock.now = T0 + 2 * H
    with transaction(engine) as session:
        book_usage(
            session,
            [
                UsageRow(
                    UsageKey(T0 + H, "1h", "m", "k", "w", "standard", "0-200k", "global"),
                    TokenCounts(uncached_input_tokens=50 * 10**6),
                )
            ],
            flat_price,
            now=clock.now,
        )
    with transaction(engine) as session:
        more = evaluate(
            session,
            settings_for(
                db_url, broken.url, working.url, **{"CREDITWATCH_ALERT_THRESHOLDS": "50,100"}
            ),
            clock.now,
        )
    assert [a.identity.threshold for a in more.alerts] == ["100%"]
    worker.deliver_due()
    clock.now += H
    with transaction(engine) as session:
        resolved = evaluate(session, settings, clock.now).alerts
    assert [(a.kind, a.identity.rule) for a in resolved] == [("resolved", "health:channel_failing")]


def test_a_notification_gives_up_at_the_maximum_age(
    engine: Engine, db_url: str, receivers: tuple[Receiver, Receiver]
) -> None:
    """Failing transiently for a day: failed as expired, with the last reason kept."""
    receiver = receivers[0]
    settings = settings_for(db_url, receiver.url)
    clock = ManualClock(T0)
    produce(engine, settings, T0)
    receiver.default = Answer(503, b"down for maintenance")
    worker = deliverer(engine, settings, clock)
    for _ in range(200):
        (row,) = rows(engine)
        if row.state == "failed":
            break
        clock.now = max(clock.now, row.next_attempt_at or clock.now)
        worker.deliver_due()
    (row,) = rows(engine)
    assert (row.state, row.failure) == ("failed", "expired")
    assert row.attempts >= 8
    assert all(r.headers["webhook-id"] == row.message_id for r in receiver.received)
    assert clock.now - T0 <= timedelta(hours=24)


def test_a_crash_between_send_and_acknowledgement_sends_again_with_the_same_id(
    engine: Engine, db_url: str, receivers: tuple[Receiver, Receiver]
) -> None:
    """A claim nobody acknowledged (kill -9) goes stale after the lease and is sent again."""
    receiver = receivers[0]
    settings = settings_for(db_url, receiver.url)
    clock = ManualClock(T0)
    produce(engine, settings, T0)
    (row,) = rows(engine)
    with transaction(engine) as session:
        assert outbox.claim(session, row.id or 0, T0, T0 - POLICY.lease, token="crashed")
    worker = deliverer(engine, settings, clock)
    clock.now = T0 + POLICY.lease - timedelta(seconds=1)
    assert worker.deliver_due().sent == 0, "the claim still holds"
    clock.now = T0 + POLICY.lease + timedelta(seconds=1)
    assert worker.deliver_due().sent == 1
    (row,) = rows(engine)
    assert (row.state, row.attempts) == ("sent", 2)
    assert receiver.received[0].headers["webhook-id"] == row.message_id


def test_two_workers_never_send_one_notification_twice(
    engine: Engine, db_url: str, receivers: tuple[Receiver, Receiver]
) -> None:
    """Forty notifications, two workers racing on them: each received exactly once."""
    receiver = receivers[0]
    settings = settings_for(db_url, receiver.url)
    clock = ManualClock(T0)
    for day in range(40):
        now = T0 + timedelta(days=31 * day)  # forty months: forty 50% alerts
        produce(engine, settings, now)
    clock.now = T0 + timedelta(days=31 * 40)
    policy = DeliveryPolicy(max_age=timedelta(days=3650))
    workers = [deliverer(engine, settings, clock) for _ in range(2)]
    for worker in workers:
        worker.policy = policy
    threads = [threading.Thread(target=w.deliver_due) for w in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    ids = Counter(r.headers["webhook-id"] for r in receiver.received)
    assert len(ids) == 40
    assert set(ids.values()) == {1}
    assert {r.state for r in rows(engine)} == {"sent"}


def test_alerts_from_before_any_channel_go_out_once_one_is_configured(
    engine: Engine, db_url: str, receivers: tuple[Receiver, Receiver]
) -> None:
    """Unrouted while nothing was configured; routed and sent when a channel appears."""
    receiver = receivers[0]
    produce(engine, settings_for(db_url), T0)
    assert [(r.channel, r.state) for r in rows(engine)] == [(None, "unrouted")]
    settings = settings_for(db_url, receiver.url)
    clock = ManualClock(T0 + H)
    assert deliverer(engine, settings, clock).deliver_due().sent == 1
    assert [(r.channel, r.state) for r in rows(engine)] == [("hook1", "sent")]
    assert json.loads(receiver.received[0].body)["dedup_id"] == "budget:monthly/org/2026-11/50%"


def test_an_alert_that_waited_out_an_outage_is_still_tried(
    engine: Engine, db_url: str, receivers: tuple[Receiver, Receiver]
) -> None:
    """creditwatch down for 25 h: the alert is sent when it comes back, not expired unseen."""
    receiver = receivers[0]
    settings = settings_for(db_url, receiver.url)
    produce(engine, settings, T0)
    clock = ManualClock(T0 + timedelta(hours=25))
    receiver.script(Answer(503, b"still waking up"))
    worker = deliverer(engine, settings, clock)
    assert worker.deliver_due().retried == 1, "tried, and retried: the day counts from now"
    (row,) = rows(engine)
    assert row.next_attempt_at is not None
    clock.now = row.next_attempt_at
    assert worker.deliver_due().sent == 1


def test_a_channel_retrying_for_an_hour_and_one_that_gave_up_are_failing(
    engine: Engine, db_url: str, receivers: tuple[Receiver, Receiver]
) -> None:
    """No permanent answer, just failure after failure: after an hour the other channel is
    told (still retrying), and again when the notification is given up at 24 h."""
    down, working = receivers
    settings = settings_for(db_url, down.url, working.url)
    clock = ManualClock(T0)
    down.default = Answer(503, b"down")
    produce(engine, settings, T0)
    worker = deliverer(engine, settings, clock)

    def failing_now() -> list[tuple[str, str]]:
        with transaction(engine) as session:
            found = evaluate(session, settings, clock.now).alerts
        return [(a.identity.rule, a.content.title) for a in found]

    worker.deliver_due()
    clock.now = T0 + timedelta(minutes=30)
    worker.deliver_due()
    assert failing_now() == [], "half an hour of retries is not yet a failing channel"
    clock.now = T0 + timedelta(minutes=61)
    worker.deliver_due()
    ((rule, title),) = failing_now()
    assert rule == "health:channel_failing"
    assert "hook1" in title
    assert "still retrying" in title
    worker.deliver_due()
    assert working.received[-1].json()["rule"] == "health:channel_failing"
    for _ in range(300):
        row = next(r for r in rows(engine) if r.channel == "hook1" and r.rule.startswith("budget"))
        if row.state == "failed":
            break
        clock.now = max(clock.now, row.next_attempt_at or clock.now)
        worker.deliver_due()
    assert (row.state, row.failure) == ("failed", "expired")
    # The same failing channel, now given up on: one condition, still open, not a new alert.
    with transaction(engine) as session:
        assert evaluate(session, settings, clock.now).alerts == []
        health = outbox.channel_health(session, ["hook1"], clock.now, timedelta(hours=1))
    assert (health["hook1"].failing, health["hook1"].reason) == (True, "expired")


def test_a_channel_that_raises_a_bug_fails_permanently_and_is_reported(
    engine: Engine, db_url: str, receivers: tuple[Receiver, Receiver]
) -> None:
    """Anything but a DeliveryError is a bug: no day of silent retries, a health alert."""
    broken, working = receivers
    settings = settings_for(db_url, broken.url, working.url)
    clock = ManualClock(T0)
    produce(engine, settings, T0)
    worker = deliverer(engine, settings, clock)

    class Buggy:
        spec = worker.channels["hook1"].spec

        def send(self, alert: object) -> object:
            raise KeyError("amount")

    worker.channels = {**worker.channels, "hook1": Buggy()}  # type: ignore[dict-item]
    report = worker.deliver_due()
    assert (report.sent, report.failed) == (1, 1)
    failed = next(r for r in rows(engine) if r.channel == "hook1")
    assert (failed.state, failed.failure) == ("failed", "permanent")
    assert "unexpected failure" in (failed.last_error or "")
    with transaction(engine) as session:
        produced = evaluate(session, settings, clock.now).alerts
    assert [a.identity.scope for a in produced] == ["channel=hook1"]


def test_a_removed_channel_hands_its_notifications_to_the_others(
    engine: Engine, db_url: str, receivers: tuple[Receiver, Receiver]
) -> None:
    """hook2 is removed while its copy is pending: closed as removed, never lost, and not a
    failing channel when the name comes back."""
    first, second = receivers
    both = settings_for(db_url, first.url, second.url)
    clock = ManualClock(T0)
    produce(engine, both, T0)
    only_first = settings_for(db_url, first.url)
    assert deliverer(engine, only_first, clock).deliver_due().sent == 1
    states = {r.channel: (r.state, r.failure) for r in rows(engine)}
    assert states == {"hook1": ("sent", None), "hook2": ("failed", "removed")}
    assert len(first.received) == 1, "hook1 already had it: not sent twice"
    with transaction(engine) as session:
        assert evaluate(session, both, clock.now).alerts == []


def test_an_alert_for_removed_channels_only_goes_to_the_rest(
    engine: Engine, db_url: str, receivers: tuple[Receiver, Receiver]
) -> None:
    """Produced for hook1 alone (a budget's channels=), then hook1 is removed: hook2 gets it."""
    first, second = receivers
    settings = settings_for(
        db_url,
        first.url,
        second.url,
        CREDITWATCH_MONTHLY_BUDGET="",
        CREDITWATCH_ALERT_THRESHOLDS="",
        CREDITWATCH_BUDGET_OPS="limit=100 thresholds=50 channels=hook1",
    )
    produce(engine, settings, T0)
    assert [r.channel for r in rows(engine)] == ["hook1"]
    without = load_settings(
        {
            "ANTHROPIC_ADMIN_KEY": "sk-ant-admin01-delivery",
            "CREDITWATCH_DATABASE_URL": db_url,
            "CREDITWATCH_CHANNEL_HOOK2": f"webhook:{second.url}/hook/secret-path-2",
        },
        None,
        now=T0,
    )
    assert deliverer(engine, without, ManualClock(T0)).deliver_due().sent == 1
    assert second.received[0].json()["dedup_id"] == "budget:ops/org/2026-11/50%"
    assert first.received == []


def test_a_late_acknowledgement_does_not_undo_the_next_claim(
    engine: Engine, db_url: str, receivers: tuple[Receiver, Receiver]
) -> None:
    """A worker whose claim lapsed (a send past the lease) cannot move the row another worker
    has claimed since: its answer is recorded, the row stays the new holder's."""
    settings = settings_for(db_url, receivers[0].url)
    produce(engine, settings, T0)
    (row,) = rows(engine)
    assert row.id is not None
    with transaction(engine) as session:
        assert outbox.claim(session, row.id, T0, T0 - POLICY.lease, token="slow")
    later = T0 + POLICY.lease + timedelta(seconds=1)
    with transaction(engine) as session:
        assert outbox.claim(session, row.id, later, later - POLICY.lease, token="fresh")
    with transaction(engine) as session:
        held = outbox.acknowledge(
            session,
            row,
            outbox.Outcome("retry", "503", "late", retry_at=later),
            token="slow",
            started_at=T0,
            duration_ms=1,
            now=later,
        )
    assert held is False
    (row,) = rows(engine)
    assert (row.state, row.claim_token) == ("sending", "fresh")
    assert [a.error for a in attempts(engine)] == ["late"]


def test_routing_a_row_twice_routes_it_once(
    engine: Engine, db_url: str, receivers: tuple[Receiver, Receiver]
) -> None:
    """Two workers routing the same unrouted alert: the guarded update lets one through."""
    produce(engine, settings_for(db_url), T0)
    (row,) = rows(engine)
    with transaction(engine) as session:
        assert outbox.reroute(session, row, ["hook1", "hook2"], T0, T0) == ["hook1", "hook2"]
    with transaction(engine) as session:
        assert outbox.reroute(session, row, ["hook1", "hook2"], T0, T0) == []
    assert sorted(r.channel or "" for r in rows(engine)) == ["hook1", "hook2"]


def test_an_unreachable_channel_costs_one_attempt_per_pass(
    engine: Engine, db_url: str, receivers: tuple[Receiver, Receiver]
) -> None:
    """A dead host rests for the rest of the pass; the other channel is not held up."""
    working = receivers[1]
    dead = f"http://127.0.0.1:{free_port()}"
    settings = settings_for(db_url, dead, working.url)
    clock = ManualClock(T0)
    for month in range(3):
        produce(engine, settings, T0 + timedelta(days=31 * month))
    clock.now = T0 + timedelta(days=62)
    report = deliverer(engine, settings, clock).deliver_due()
    assert (report.sent, report.retried) == (3, 1)
    assert len(working.received) == 3


def test_a_stop_ends_the_pass_between_rows(
    engine: Engine, db_url: str, receivers: tuple[Receiver, Receiver]
) -> None:
    settings = settings_for(db_url, receivers[0].url)
    clock = ManualClock(T0)
    for month in range(3):
        produce(engine, settings, T0 + timedelta(days=31 * month))
    clock.now = T0 + timedelta(days=62)
    asked: list[int] = []

    def stop() -> bool:
        asked.append(1)
        return len(asked) > 1

    report = deliverer(engine, settings, clock).deliver_due(stop)
    assert report.sent == 1


def test_a_nul_in_a_receiver_answer_is_stored_without_it(
    engine: Engine, db_url: str, receivers: tuple[Receiver, Receiver]
) -> None:
    """PostgreSQL refuses NUL in text: the answer is cleaned, the attempt recorded."""
    receiver = receivers[0]
    settings = settings_for(db_url, receiver.url)
    produce(engine, settings, T0)
    receiver.script(Answer(500, b"bad\x00news\x1b[31m"))
    assert deliverer(engine, settings, ManualClock(T0)).deliver_due().retried == 1
    (attempt,) = attempts(engine)
    assert "bad news" in (attempt.error or "")
    assert "\x00" not in (attempt.error or "")


def test_a_delivery_with_a_caveat_keeps_it(
    engine: Engine, db_url: str, receivers: tuple[Receiver, Receiver]
) -> None:
    """Email sent with one recipient refused: sent, and the refusal is on the record."""
    settings = settings_for(db_url, receivers[0].url)
    produce(engine, settings, T0)
    worker = deliverer(engine, settings, ManualClock(T0))

    class PartlyRefused:
        spec = worker.channels["hook1"].spec

        def send(self, alert: object) -> Sent:
            return Sent("250", "1 of 2 recipients refused: finance@example.com (550)")

    worker.channels = {"hook1": PartlyRefused()}
    assert worker.deliver_due().sent == 1
    (row,) = rows(engine)
    assert row.state == "sent"
    assert "finance@example.com (550)" in (row.last_error or "")
    assert "finance@example.com" in (attempts(engine)[0].error or "")
