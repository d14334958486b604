"""kill -9 of the real daemon at random points, again and again, on both databases: every alert
it produced reaches every channel at least once, and a repeat carries the same id and body.

The receivers answer slowly (a quarter of a second), so most kills land while a notification is
on the wire: claimed, perhaps received, not acknowledged. The lease is two seconds, so such a
claim is taken back by the next process. Kill times come from a seeded generator.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from service.simulator import SimulatorServer, Workload, WorkloadSpec
from service.store.engine import make_engine, read_transaction
from service.store.tables import OutboxAlert
from tests.receivers import Answer, Receiver

KEY = "sk-ant-admin01-kill-nine-test-key-0123456789"
BUDGETS = 12
KILLS = 5
SLOW = Answer(delay=0.25)
DRAIN_SECONDS = 90.0


@pytest.fixture
def simulator() -> Iterator[SimulatorServer]:
    start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(days=2)
    spec = WorkloadSpec(seed=11, start=start, n_keys=2)
    with SimulatorServer(Workload(spec), admin_key=KEY) as server:
        yield server


def daemon(env: dict[str, str], cwd: Path, log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "service", "run"],
            stdout=out,
            stderr=out,
            cwd=cwd,
            env=env,
        )


@dataclass(frozen=True)
class Row:
    channel: str | None
    message_id: str
    state: str


def outbox_rows(db_url: str) -> list[Row]:
    engine = make_engine(db_url, reading=True)
    try:
        with read_transaction(engine) as session:
            return [
                Row(r.channel, r.message_id, r.state) for r in session.scalars(select(OutboxAlert))
            ]
    except Exception:  # noqa: BLE001 - the schema may not exist until the first run migrates
        return []
    finally:
        engine.dispose()


def test_kill_nine_at_random_points_loses_no_alert(
    simulator: SimulatorServer, db_url: str, tmp_path: Path
) -> None:
    rng = random.Random(20261201)
    log = tmp_path / "daemon.log"
    with Receiver(SLOW) as first, Receiver(SLOW) as second:
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "ANTHROPIC_ADMIN_KEY": KEY,
            "ANTHROPIC_BASE_URL": simulator.base_url,
            "CREDITWATCH_DATABASE_URL": db_url,
            "CREDITWATCH_POLL_INTERVAL": "2s",
            "CREDITWATCH_DELIVERY_LEASE": "2s",
            "CREDITWATCH_HTTP_TIMEOUT": "1s",
            "CREDITWATCH_CHANNEL_FIRST": f"webhook:{first.url}/a",
            "CREDITWATCH_CHANNEL_SECOND": f"webhook:{second.url}/b",
            **{
                f"CREDITWATCH_BUDGET_B{n:02d}": f"limit=0.{n:02d} thresholds=50,100"
                for n in range(1, BUDGETS + 1)
            },
        }
        kills = []
        for _ in range(KILLS):
            process = daemon(env, tmp_path, log)
            wait = rng.uniform(0.8, 5.0)
            time.sleep(wait)
            sending = sum(r.state == "sending" for r in outbox_rows(db_url))
            process.send_signal(signal.SIGKILL)
            process.wait(timeout=30)
            kills.append((round(wait, 2), sending))
        # The last process runs until everything it and its predecessors produced is sent.
        started = log.stat().st_size if log.exists() else 0
        process = daemon(env, tmp_path, log)
        try:
            deadline = time.monotonic() + DRAIN_SECONDS
            while "creditwatch running" not in log.read_text()[started:]:
                assert time.monotonic() < deadline, "the last daemon never started"
                time.sleep(0.1)
            while time.monotonic() < deadline:
                rows = outbox_rows(db_url)
                if len(rows) >= 2 * BUDGETS and all(r.state == "sent" for r in rows):
                    break
                time.sleep(0.5)
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=60) == 0
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
        rows = outbox_rows(db_url)
        text = log.read_text()
        assert "Traceback" not in text
        assert KEY not in text
        states = Counter(r.state for r in rows)
        assert states == {"sent": len(rows)}, (states, kills, text[-3000:])
        produced = {(r.channel, r.message_id) for r in rows}
        assert len({m for _, m in produced}) >= BUDGETS, "every budget alerted"
        repeats = 0
        for name, receiver in (("first", first), ("second", second)):
            bodies: dict[str, set[bytes]] = {}
            for request in receiver.received:
                bodies.setdefault(request.headers["webhook-id"], set()).add(request.body)
            wanted = {m for c, m in produced if c == name}
            assert set(bodies) == wanted, "every alert arrived, and nothing else did"
            assert all(len(b) == 1 for b in bodies.values()), "a repeat is the same message"
            repeats += len(receiver.received) - len(bodies)
            for body in (json.loads(b) for found in bodies.values() for b in found):
                assert body["dedup_id"] == body["message_id"] or body["kind"] != "alert"
        # Not asserted (a kill may land anywhere), but shown with -s or -rP.
        sys.stdout.write(f"kills (after s, rows in flight): {kills}; repeats: {repeats}\n")
