"""`make bench`: a burst of 1,000 alerts to a webhook receiver that fails half the time.

One evaluation with 1,000 budgets, all crossed, puts 1,000 distinct notifications in the outbox
of a fresh database (the cycle's own path: book usage, ``evaluate``), routed to one signed
webhook channel. The real Deliverer drains it with the real WebhookChannel, over real sockets,
on the real clock, with a short backoff (50 ms, capped at 1 s) so the drain takes seconds. The
receiver runs in its own process (no shared GIL) and answers each message's first attempt 503
and every later one 200, so exactly half the requests fail. The drain must deliver every id
and count its duplicates and attempts; the floor, measured in the same run, is the same bodies
POSTed once each with one ``httpx.Client`` to the same receiver answering 200, no database.
SQLite always, PostgreSQL too when ``CW_TEST_POSTGRES_URL`` answers. Figures are printed and
written to ``bench/results/delivery.json``.
"""

from __future__ import annotations

import base64
import json
import logging
import multiprocessing
import random
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, event, func, select
from sqlmodel import col

from bench.figures import results_path, write_figures
from bench.ingest import database, postgres_available
from bench.receiver import QuietHandler, serving
from service.channels.base import ChannelContext
from service.channels.registry import build_channels
from service.channels.webhook import WebhookChannel
from service.domain.usage import TokenCounts, UsageKey, UsageRow
from service.http import build_http_client
from service.pricing import PriceBook
from service.runtime.alerting import evaluate
from service.runtime.collector import make_pricer
from service.runtime.delivery import Deliverer, DeliveryPolicy
from service.settings import Settings, load_settings
from service.store import outbox
from service.store.engine import make_engine, read_transaction, transaction
from service.store.migrations import upgrade
from service.store.tables import DeliveryAttempt, OutboxAlert
from service.store.usage_booking import book_usage

ALERTS = 1000
SECRET = "whsec_" + base64.b64encode(b"bench-delivery-signing-key-00001").decode()
POLICY = DeliveryPolicy(first_retry=timedelta(milliseconds=50), max_delay=timedelta(seconds=1))
GIVE_UP_AFTER = 120.0
IDLE_SLEEP = 0.005
RESULTS = results_path("delivery")


def _serve(url_queue: Any, stop: Any) -> None:
    """The receiver: ``/flaky`` answers a message's first attempt 503, later ones 200; ``/ok``
    answers 200; ``GET /tally`` returns what ``/flaky`` saw (and clears it)."""
    lock = threading.Lock()
    seen: set[str] = set()
    accepted: Counter[str] = Counter()
    bodies: dict[str, str] = {}
    counts: Counter[str] = Counter()

    class Handler(QuietHandler):
        def do_POST(self) -> None:
            body = self.read_body()
            message = self.headers.get("webhook-id", "")
            flaky = self.path.startswith("/flaky")
            with lock:
                counts["requests" if flaky else "floor_requests"] += 1
                fail = flaky and message not in seen
                if fail:
                    seen.add(message)
                    bodies[message] = body.decode()
                    counts["failed"] += 1
                elif flaky:
                    accepted[message] += 1
            self.answer(503 if fail else 200, b"busy" if fail else b"ok")

        def do_GET(self) -> None:
            with lock:
                tally = {"counts": dict(counts), "accepted": dict(accepted), "bodies": bodies}
                answer = json.dumps(tally).encode()
                seen.clear()
                accepted.clear()
                counts.clear()
                bodies.clear()
            self.answer(200, answer)

    with serving(Handler) as base_url:
        url_queue.put(base_url)
        stop.wait()


@contextmanager
def receiver() -> Iterator[str]:
    context = multiprocessing.get_context("spawn")
    queue, stop = context.Queue(), context.Event()
    process = context.Process(target=_serve, args=(queue, stop), daemon=True)
    process.start()
    try:
        yield queue.get(timeout=60)
    finally:
        stop.set()
        process.join(timeout=10)


def tally(base_url: str) -> dict[str, Any]:
    """What the receiver saw since the last tally: counts, the 200s per id, the bodies."""
    with build_http_client(base_url, timeout=30) as http:
        answer: dict[str, Any] = http.get("/tally").raise_for_status().json()
    return answer


def utc_now() -> datetime:
    return datetime.now(UTC)


def burst_settings(db_url: str, receiver_url: str, now: datetime) -> Settings:
    """1,000 org-wide monthly budgets of $1 at 50%: one notification each on $2 of spend."""
    env = {
        "ANTHROPIC_ADMIN_KEY": "sk-ant-admin01-bench-delivery",
        "CREDITWATCH_DATABASE_URL": db_url,
        "CREDITWATCH_CHANNEL_HOOK": f"webhook:{receiver_url}/flaky/creditwatch",
        "CREDITWATCH_WEBHOOK_SECRET": SECRET,
    }
    for i in range(ALERTS):
        env[f"CREDITWATCH_BUDGET_B{i:04d}"] = "limit=1 period=month thresholds=50"
    return load_settings(env, None, now=now)


def enqueue_burst(engine: Engine, settings: Settings, now: datetime) -> float:
    """Book $2 of spend in the current hour and evaluate: the burst lands in the outbox.

    Returns the seconds the booking and evaluation took (one transaction, as in a cycle).
    """
    row = UsageRow(
        UsageKey(
            now.replace(minute=0, second=0, microsecond=0),
            "1h",
            "claude-haiku-4-5-20251001",
            "apikey_bench",
            "wrkspc_bench",
            "standard",
            "0-200k",
            "global",
        ),
        TokenCounts(uncached_input_tokens=2_000_000),
    )
    price = make_pricer(PriceBook.load())
    began = time.perf_counter()
    with transaction(engine) as session:
        book_usage(session, [row], price, now=now)
        evaluate(session, settings, now)
    return time.perf_counter() - began


@dataclass
class StatementCounter:
    """SQL statements and commits the engine runs while ``counting`` is set."""

    counting: bool = False
    statements: int = 0
    commits: int = 0
    by_verb: Counter[str] = field(default_factory=Counter)

    def attach(self, engine: Engine) -> None:
        event.listen(engine, "before_cursor_execute", self._statement)
        event.listen(engine, "commit", self._commit)

    def _statement(self, *args: Any) -> None:
        if self.counting:
            self.statements += 1
            self.by_verb[str(args[2]).lstrip().split(None, 1)[0].upper()] += 1

    def _commit(self, *args: Any) -> None:
        if self.counting:
            self.commits += 1


@dataclass
class Drain:
    seconds: float
    busy_seconds: float
    passes: int
    sent: int
    retried: int
    failed: int


def drain(deliverer: Deliverer, engine: Engine, queued: int) -> Drain:
    """Run ``deliver_due`` until no row is pending or sending; raise after GIVE_UP_AFTER s.

    The outbox is counted once the reports add up to every row finished (and every second,
    to give up), not after each pass: the drain's figures are the worker's, not this loop's.
    """
    began = time.perf_counter()
    checked = began
    busy = 0.0
    passes = sent = retried = failed = 0
    while True:
        started = time.perf_counter()
        report = deliverer.deliver_due()
        busy += time.perf_counter() - started
        passes += 1
        sent, retried, failed = sent + report.sent, retried + report.retried, failed + report.failed
        if sent + failed >= queued or started - checked > 1.0:
            checked = started
            with read_transaction(engine) as session:
                counts = outbox.outbox_counts(session)
            if counts["pending"] + counts["sending"] == 0:
                return Drain(time.perf_counter() - began, busy, passes, sent, retried, failed)
            if time.perf_counter() - began > GIVE_UP_AFTER:
                raise SystemExit(f"gave up after {GIVE_UP_AFTER:.0f}s with the outbox at {counts}")
        if report.sent + report.retried + report.failed == 0:
            time.sleep(IDLE_SLEEP)  # nothing was due: the retries wait out their backoff


def floor_seconds(base_url: str, bodies: list[str]) -> float:
    """The same bodies POSTed once each, one client, a receiver answering 200, no database."""
    with build_http_client("", timeout=10) as http:
        http.post(f"{base_url}/ok/warm-up", content=b"{}")
        began = time.perf_counter()
        for index, body in enumerate(bodies):
            response = http.post(
                f"{base_url}/ok/creditwatch",
                content=body.encode(),
                headers={"content-type": "application/json", "webhook-id": f"floor-{index}"},
            )
            response.raise_for_status()
        return time.perf_counter() - began


def bench_backend(backend: str, folder: Path) -> dict[str, Any]:
    with receiver() as base_url, database(backend, folder) as db_url:
        engine = make_engine(db_url)
        try:
            upgrade(engine)
            now = datetime.now(UTC)
            settings = burst_settings(db_url, base_url, now)
            enqueue = enqueue_burst(engine, settings, now)
            with read_transaction(engine) as session:
                queued = outbox.outbox_counts(session)
                expected = set(session.scalars(select(col(OutboxAlert.message_id))))
            assert queued["pending"] == len(expected) == ALERTS, (queued, len(expected))
            with build_http_client("", timeout=10) as http:
                context = ChannelContext(http=http, settings=settings.channels, clock=utc_now)
                channels = build_channels(context)
                assert isinstance(channels["hook"], WebhookChannel)
                deliverer = Deliverer(
                    engine, channels, clock=utc_now, policy=POLICY, rng=random.Random(8)
                )
                counter = StatementCounter()
                counter.attach(engine)
                counter.counting = True
                drained = drain(deliverer, engine, queued["pending"])
                counter.counting = False
            with read_transaction(engine) as session:
                final = outbox.outbox_counts(session)
                attempts = int(session.scalar(select(func.sum(col(OutboxAlert.attempts)))) or 0)
                logged = int(session.scalar(select(func.count(col(DeliveryAttempt.id)))) or 0)
        finally:
            engine.dispose()
        seen = tally(base_url)
        floor = floor_seconds(base_url, list(seen["bodies"].values()))
        floor_seen = tally(base_url)
    accepted: dict[str, int] = seen["accepted"]
    missing = expected - set(accepted)
    duplicates = sum(n - 1 for n in accepted.values() if n > 1)
    requests = int(seen["counts"].get("requests", 0))
    assert not missing, f"{len(missing)} message ids never got a 200, e.g. {sorted(missing)[:3]}"
    assert final["sent"] == ALERTS, final
    assert floor_seen["counts"].get("floor_requests") == ALERTS + 1
    body_bytes = [len(body.encode()) for body in seen["bodies"].values()]
    return {
        "alerts": ALERTS,
        "enqueue_seconds": round(enqueue, 3),
        "drain_seconds": round(drained.seconds, 3),
        "drain_busy_seconds": round(drained.busy_seconds, 3),
        "drain_idle_seconds": round(drained.seconds - drained.busy_seconds, 3),
        "deliver_due_passes": drained.passes,
        "delivered": len(accepted),
        "duplicates": duplicates,
        "requests": requests,
        "answered_503": int(seen["counts"].get("failed", 0)),
        "attempts_recorded": logged,
        "attempts_per_alert": round(attempts / ALERTS, 3),
        "outbox_after": final,
        "mean_body_bytes": round(sum(body_bytes) / len(body_bytes)),
        "floor": "1,000 POSTs, one httpx.Client, answered 200",
        "floor_seconds": round(floor, 3),
        "floor_ms_per_post": round(floor / ALERTS * 1000, 3),
        "drain_vs_floor": round(drained.seconds / floor, 2),
        "overhead_ms_per_alert": round((drained.seconds - floor) / ALERTS * 1000, 3),
        "busy_ms_per_attempt": round(drained.busy_seconds / requests * 1000, 3),
        "sql_statements_per_attempt": round(counter.statements / requests, 2),
        "commits_per_attempt": round(counter.commits / requests, 2),
        "sql_statements_by_verb": dict(counter.by_verb.most_common()),
    }


def describe(backend: str, f: dict[str, Any]) -> str:
    drained = f"drained {f['delivered']:,}/{f['alerts']:,} in {f['drain_seconds']}s"
    idle = f"({f['deliver_due_passes']:,} passes, {f['drain_idle_seconds']}s waiting on backoff)"
    attempts = f"{f['requests']:,} requests, {f['attempts_per_alert']} attempts/alert"
    floor = f"{f['drain_vs_floor']}x the floor ({f['floor_seconds']}s for 1,000 plain POSTs)"
    overhead = f"+{f['overhead_ms_per_alert']} ms/alert"
    sql = f"{f['sql_statements_per_attempt']} statements, {f['commits_per_attempt']} commits"
    return (
        f"{backend:9} {drained} {idle}; {attempts}, {f['duplicates']} duplicates; "
        f"{floor}, {overhead}; {sql} per attempt"
    )


def main() -> int:
    figures: dict[str, Any] = {
        "alerts": ALERTS,
        "receiver": "503 on each message's first attempt, 200 after (half the requests fail)",
        "first_retry_ms": POLICY.first_retry / timedelta(milliseconds=1),
        "max_delay_ms": POLICY.max_delay / timedelta(milliseconds=1),
    }
    # Each of the 1,000 first attempts is a 503 the worker logs as a warning: expected here.
    logging.getLogger("service.runtime.delivery").setLevel(logging.ERROR)
    backends = ["sqlite"] + (["postgres"] if postgres_available() else [])
    with tempfile.TemporaryDirectory(prefix="creditwatch-bench-delivery-") as folder:
        for backend in backends:
            figures[backend] = bench_backend(backend, Path(folder))
            print(describe(backend, figures[backend]))
    if "postgres" not in backends:
        print("postgres  skipped: no server at CW_TEST_POSTGRES_URL")
    write_figures(RESULTS, figures)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
