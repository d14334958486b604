"""`make bench`: time to alert, from usage appearing in the simulator to the webhook receiver.

The real daemon (``creditwatch --env-file FILE run``, a process of its own, on the real clock,
``CREDITWATCH_POLL_INTERVAL=5s``) reads the simulator (a process of its own) and sends its
alerts to one webhook channel: a receiver on a thread of this process that notes when each
POST arrives. The simulator's clock is a value this process sets (``bench.soak.SharedClock``):
it stands still ``LAG`` (40 min) behind the real time, and each event moves it on by ``STEP``
(40 s), so usage the simulator did not show before appears at a wall time this process knows.
Everything the simulator will show at each step is read and priced beforehand (the same price
book as the daemon's), and one budget per event (``CREDITWATCH_BUDGET_E01`` … ``E50``, this
month, ``thresholds=100``) has its limit half-way between the month's spend before and after
the step: each step crosses exactly one budget. ``BENCH_LATENCY_EVENTS`` events (default 50),
one at a time: after an event's alert has arrived, a pause drawn uniformly from
[0, poll interval) (seeded), so the events fall at every phase of the poll; then the next step.
The delay of each event is the receiver's arrival time of the alert of its budget minus the
wall time of the step; percentiles are nearest-rank (over 50 events p99 is the largest
delay). Target: p99 at most the poll interval + 2 s. Every server binds 127.0.0.1. Figures
are printed and written to ``bench/results/latency.json``.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

from bench.figures import results_path, write_figures
from bench.receiver import QuietHandler, serving
from bench.soak import SharedClock, simulated_on
from service.admin_api.client import AdminClient
from service.domain.money import nanos_to_usd
from service.http import build_http_client
from service.pricing import PriceBook
from service.runtime.collector import make_pricer
from service.simulator import WorkloadSpec
from service.store.usage_booking import price_with_bill

KEY = "sk-ant-admin01-bench-latency-00000000"
EVENTS = int(os.environ.get("BENCH_LATENCY_EVENTS", "50"))
POLL_SECONDS = 5
TARGET_SLACK_SECONDS = 2
LAG = timedelta(minutes=40)
STEP = timedelta(seconds=40)
# Organization-wide list-price spend in a busy hour: a 40 s step adds a few dollars.
HOURLY_SPEND_USD = Decimal(1000)
ALERT_TIMEOUT_SECONDS = 60.0
START_TIMEOUT_SECONDS = 120.0
CENT = Decimal("0.01")
RESULTS = results_path("latency")
ENTRY = Path(sys.executable).parent / "creditwatch"


@dataclass
class Inbox:
    """What the receiver has been sent: the arrival time of each budget's first alert."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    arrived: dict[str, float] = field(default_factory=dict)
    other: list[str] = field(default_factory=list)
    posts: int = 0
    changed: threading.Condition = field(init=False)

    def __post_init__(self) -> None:
        self.changed = threading.Condition(self.lock)

    def note(self, at: float, body: dict[str, Any]) -> None:
        with self.changed:
            self.posts += 1
            rule = str(body.get("rule", ""))
            if body.get("kind") == "alert" and rule.startswith("budget:"):
                self.arrived.setdefault(rule.removeprefix("budget:"), at)
            else:
                self.other.append(str(body.get("dedup_id")))
            self.changed.notify_all()

    def wait_for(self, budget: str, timeout: float) -> float | None:
        with self.changed:
            self.changed.wait_for(lambda: budget in self.arrived, timeout=timeout)
            return self.arrived.get(budget)


@contextmanager
def receiver(inbox: Inbox) -> Iterator[str]:
    """A webhook receiver on 127.0.0.1 that answers 200 and notes each POST's arrival."""

    class Handler(QuietHandler):
        def do_POST(self) -> None:
            body = self.read_body()
            at = time.time()
            self.answer(200, b"ok")
            inbox.note(at, json.loads(body))

    with serving(Handler) as base_url:
        yield f"{base_url}/creditwatch"


def month_start(moment: datetime) -> datetime:
    return moment.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def spends(base_url: str, clock: SharedClock, steps: list[datetime], since: datetime) -> list[int]:
    """The spend since ``since`` (nano-USD, priced as the daemon prices it) that the simulator
    shows with its clock at each of ``steps``; the clock is left at the last one."""
    price = make_pricer(PriceBook.load())
    totals = []
    with build_http_client(base_url, timeout=60) as http:
        client = AdminClient(http, KEY)
        for step in steps:
            clock.set(step)
            end = step.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
            rows = client.usage(since, end, bucket_width="1h")
            totals.append(
                sum(price_with_bill(price, r.key, r.counts, None).cost_nanos for r in rows)
            )
    return totals


def thresholds(totals: list[int]) -> list[Decimal]:
    """One limit per step, half-way between the spend before it and after it, in cents."""
    limits = []
    for before, after in itertools.pairwise(totals):
        low, high = nanos_to_usd(before), nanos_to_usd(after)
        limit = ((low + high) / 2).quantize(CENT, rounding=ROUND_HALF_UP)
        if not low + CENT <= limit <= high - CENT:
            raise SystemExit(f"a step adds too little spend to cross a budget: {low} → {high}")
        limits.append(limit)
    return limits


def budget_name(index: int) -> str:
    return f"e{index:02d}"


def env_file(
    folder: Path, base_url: str, hook_url: str, backfill: datetime, limits: list[Decimal]
) -> Path:
    lines = [
        f"ANTHROPIC_ADMIN_KEY={KEY}",
        f"ANTHROPIC_BASE_URL={base_url}",
        f"CREDITWATCH_DATABASE_URL=sqlite:///{folder / 'latency.db'}",
        f"CREDITWATCH_POLL_INTERVAL={POLL_SECONDS}s",
        f"CREDITWATCH_BACKFILL_FROM={backfill.isoformat()}",
        f"CREDITWATCH_WEBHOOK_URL={hook_url}",
        "CREDITWATCH_LOG_LEVEL=INFO",
    ]
    for index, limit in enumerate(limits, start=1):
        lines.append(
            f"CREDITWATCH_BUDGET_{budget_name(index).upper()}=limit={limit} thresholds=100"
        )
    path = folder / "bench.env"
    path.write_text("\n".join(lines) + "\n")
    return path


def clean_environment() -> dict[str, str]:
    """This process's environment without any creditwatch setting or systemd variable: the
    daemon reads the env file alone."""
    dropped = ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "JOURNAL_STREAM")
    return {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("CREDITWATCH_", "ANTHROPIC_"))
        and name not in dropped
        and name != "STATE_DIRECTORY"
    }


@contextmanager
def daemon(env: Path, folder: Path) -> Iterator[tuple[subprocess.Popen[bytes], Path]]:
    """``creditwatch --env-file env run`` in ``folder``; SIGTERM (then SIGKILL) at the end."""
    log_path = folder / "daemon.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(  # noqa: S603 - our own entry point, fixed arguments
            [str(ENTRY), "--env-file", str(env), "run"],
            cwd=folder,
            env=clean_environment(),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            yield process, log_path
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)


def wait_for_first_cycle(process: subprocess.Popen[bytes], log_path: Path) -> float:
    """Seconds until the daemon logs its first collection; exits if it dies or fails first."""
    began = time.perf_counter()
    while time.perf_counter() - began < START_TIMEOUT_SECONDS:
        text = log_path.read_text(errors="replace")
        if "collected " in text:
            return time.perf_counter() - began
        if "cycle failed" in text or process.poll() is not None:
            raise SystemExit(f"the daemon did not start its cycles:\n{text[-3000:]}")
        time.sleep(0.1)
    raise SystemExit(f"no cycle after {START_TIMEOUT_SECONDS:.0f}s")


def percentile(values: list[float], share: float) -> float:
    """The nearest-rank percentile: the smallest value at or above ``share`` of them."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


def run_events(
    clock: SharedClock, steps: list[datetime], inbox: Inbox, rng: random.Random
) -> list[float]:
    """Move the simulator's clock to each step in turn and time its budget's alert."""
    delays = []
    for index, step in enumerate(steps[1:], start=1):
        time.sleep(rng.uniform(0, POLL_SECONDS))
        clock.set(step)
        appeared = time.time()
        arrived = inbox.wait_for(budget_name(index), ALERT_TIMEOUT_SECONDS)
        if arrived is None:
            raise SystemExit(f"event {index}: no alert within {ALERT_TIMEOUT_SECONDS:.0f}s")
        delays.append(arrived - appeared)
    return delays


def main() -> int:
    real_now = datetime.now(UTC)
    first = real_now - LAG
    since = month_start(real_now)
    if first - timedelta(hours=2) < since:
        raise SystemExit("too close to the start of a UTC month: run again in a few hours")
    backfill = (first - timedelta(hours=2)).replace(minute=0, second=0, microsecond=0)
    steps = [first + STEP * i for i in range(EVENTS + 1)]
    spec = WorkloadSpec(
        seed=23, start=backfill, n_keys=3, n_workspaces=1, hourly_spend_usd=HOURLY_SPEND_USD
    )
    inbox = Inbox()
    rng = random.Random(50)
    began = time.perf_counter()
    with (
        tempfile.TemporaryDirectory(prefix="creditwatch-bench-latency-") as folder_name,
        receiver(inbox) as hook_url,
        simulated_on(spec, first, KEY) as (base_url, value),
    ):
        folder = Path(folder_name)
        clock = SharedClock(value)
        limits = thresholds(spends(base_url, clock, steps, since))
        clock.set(steps[0])
        env = env_file(folder, base_url, hook_url, backfill, limits)
        with daemon(env, folder) as (process, log_path):
            start_seconds = wait_for_first_cycle(process, log_path)
            time.sleep(1)  # the first cycle's alerts (there must be none) would be sent by now
            early = dict(inbox.arrived)
            if early:
                raise SystemExit(f"alerts before any event: {sorted(early)}")
            delays = run_events(clock, steps, inbox, rng)
        cycles = log_path.read_text(errors="replace").count("collected ")
    seconds = time.perf_counter() - began
    figures: dict[str, Any] = {
        "events": len(delays),
        "poll_seconds": POLL_SECONDS,
        "daemon": "creditwatch --env-file FILE run (SQLite), real clock",
        "event": "the simulator's clock moves 40 s on; one budget's limit is crossed",
        "p50_seconds": round(percentile(delays, 0.50), 3),
        "p90_seconds": round(percentile(delays, 0.90), 3),
        "p99_seconds": round(percentile(delays, 0.99), 3),
        "max_seconds": round(max(delays), 3),
        "min_seconds": round(min(delays), 3),
        "mean_seconds": round(sum(delays) / len(delays), 3),
        "target_seconds": POLL_SECONDS + TARGET_SLACK_SECONDS,
        "daemon_first_cycle_seconds": round(start_seconds, 2),
        "daemon_cycles": cycles,
        "other_notifications": inbox.other,
        "webhook_posts": inbox.posts,
        "seconds": round(seconds, 1),
        "delays_seconds": [round(d, 3) for d in delays],
    }
    figures["p99_within_target"] = figures["p99_seconds"] <= figures["target_seconds"]
    print(
        f"time to alert over {len(delays)} events, {POLL_SECONDS}s poll: "
        f"p50 {figures['p50_seconds']}s, p90 {figures['p90_seconds']}s, "
        f"p99 {figures['p99_seconds']}s, max {figures['max_seconds']}s; target p99 <= "
        f"{figures['target_seconds']}s: {'met' if figures['p99_within_target'] else 'MISSED'} "
        f"({figures['seconds']}s in all)"
    )
    write_figures(RESULTS, figures)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
