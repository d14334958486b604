"""The real `creditwatch run` process: what an operator does to it (edit and reload, stop it
mid-cycle) and what systemd hears from it, observed from outside over real sockets."""

from __future__ import annotations

import itertools
import json
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from service.runtime.daemon import Daemon
from service.simulator import SimulatorServer, Workload, WorkloadSpec
from service.simulator.clock import ManualClock
from tests.receivers import Receiver
from tests.runtime.test_daemon import Lines, settings_at

KEY = "sk-ant-admin01-run-process-test-key-0123456789"
WAIT = 60.0
USAGE = "/v1/organizations/usage_report"


@pytest.fixture
def simulator() -> Iterator[SimulatorServer]:
    start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(days=2)
    with SimulatorServer(Workload(WorkloadSpec(seed=5, start=start, n_keys=2)), admin_key=KEY) as s:
        yield s


def start_run(env_file: Path, cwd: Path, **environment: str) -> tuple[subprocess.Popen[str], Lines]:
    process = subprocess.Popen(
        [sys.executable, "-m", "service", "--env-file", str(env_file), "run"],
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
        cwd=cwd,
        env={"PATH": "/usr/bin:/bin", **environment},
    )
    assert process.stderr is not None
    return process, Lines(process.stderr)


def stop(process: subprocess.Popen[str]) -> int:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    try:
        return process.wait(timeout=WAIT)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        if process.stderr is not None:
            process.stderr.close()


def wait_until(what: str, condition: object, timeout: float = WAIT) -> None:
    assert callable(condition)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError(f"{what}: not within {timeout}s")


def alerts_of(receiver: Receiver) -> list[dict[str, object]]:
    return [r.json() for r in list(receiver.received)]


def base_settings(simulator: SimulatorServer, tmp_path: Path, receiver: Receiver) -> str:
    return (
        f"ANTHROPIC_ADMIN_KEY={KEY}\nANTHROPIC_BASE_URL={simulator.base_url}\n"
        f"CREDITWATCH_DATABASE_URL=sqlite:///{tmp_path / 'cw.db'}\n"
        "CREDITWATCH_POLL_INTERVAL=1s\n"
        f"CREDITWATCH_WEBHOOK_URL={receiver.url}/hook\n"
        # A limit the simulator's two days overrun many times over: every threshold is crossed.
        "CREDITWATCH_MONTHLY_BUDGET=0.01\n"
    )


def test_sighup_applies_a_new_threshold_and_resends_nothing(
    simulator: SimulatorServer, tmp_path: Path
) -> None:
    """An added threshold above the alerted one goes out once; the old one and one below never
    again; an invalid edit is refused, alerted as health:config_refused, and a good edit
    resolves it, all without a restart."""
    env_file = tmp_path / "creditwatch.env"
    with Receiver() as receiver:
        settings = base_settings(simulator, tmp_path, receiver)
        env_file.write_text(settings + "CREDITWATCH_ALERT_THRESHOLDS=50\n")
        process, logs = start_run(env_file, tmp_path)
        try:
            wait_until("the 50% alert", lambda: len(receiver.received) >= 1)
            logs.wait_for("collected")
            time.sleep(2.5)  # cycles go on: nothing more to say
            assert [a["threshold"] for a in alerts_of(receiver)] == ["50%"]

            env_file.write_text(settings + "CREDITWATCH_ALERT_THRESHOLDS=25,50,100\n")
            process.send_signal(signal.SIGHUP)
            logs.wait_for("settings reloaded")
            wait_until("the 100% alert", lambda: len(receiver.received) >= 2)
            time.sleep(2.5)
            assert [a["threshold"] for a in alerts_of(receiver)] == ["50%", "100%"]

            env_file.write_text(settings + "CREDITWATCH_ALERT_THRESHOLDS=25,fifty\n")
            process.send_signal(signal.SIGHUP)
            refused = logs.wait_for("reload refused")
            assert "CREDITWATCH_ALERT_THRESHOLDS" in refused
            wait_until("the refusal alert", lambda: len(receiver.received) >= 3)
            refusal = alerts_of(receiver)[2]
            assert (refusal["rule"], refusal["kind"]) == ("health:config_refused", "alert")
            assert "CREDITWATCH_ALERT_THRESHOLDS" in str(refusal["summary"])
            logs.wait_for("collected")  # still running, on the settings it had

            env_file.write_text(settings + "CREDITWATCH_ALERT_THRESHOLDS=25,50,100\n")
            process.send_signal(signal.SIGHUP)
            logs.wait_for("settings reloaded")
            wait_until("the refusal's resolved notice", lambda: len(receiver.received) >= 4)
            time.sleep(2.5)
            assert stop(process) == 0
        finally:
            stop(process)
        received = alerts_of(receiver)
        assert [(a["rule"], a["kind"]) for a in received[2:]] == [
            ("health:config_refused", "alert"),
            ("health:config_refused", "resolved"),
        ]
        ids = [r.headers["webhook-id"] for r in receiver.received]
        assert len(ids) == len(set(ids)) == 4, ids
    assert KEY not in "".join(logs.seen)


def command(env_file: Path, cwd: Path, *args: str) -> str:
    """One creditwatch command with the env file, as a shell would run it: its stdout."""
    done = subprocess.run(
        [sys.executable, "-m", "service", "--env-file", str(env_file), *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={"PATH": "/usr/bin:/bin"},
        check=False,
        timeout=WAIT,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def ledger_totals(env_file: Path, cwd: Path) -> tuple[Decimal, str]:
    status = json.loads(command(env_file, cwd, "status", "--json"))
    return Decimal(status["balance_usd"]), status["spend"]["month_to_date_usd"]


@pytest.fixture
def frozen_simulator() -> Iterator[SimulatorServer]:
    """The simulator's clock stands still: two collections minutes apart see the same usage."""
    now = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=1)
    workload = Workload(WorkloadSpec(seed=5, start=now - timedelta(days=5), n_keys=2))
    with SimulatorServer(workload, admin_key=KEY, clock=ManualClock(now)) as server:
        yield server


def test_sigterm_mid_cycle_exits_cleanly_and_loses_nothing(
    frozen_simulator: SimulatorServer, tmp_path: Path
) -> None:
    """SIGTERM while a slow backfill is on the wire: exit 0 within the bound, and the next run
    books exactly what one uninterrupted collection books."""
    env_file = tmp_path / "creditwatch.env"
    reference_file = tmp_path / "reference.env"
    with Receiver() as receiver:
        settings = base_settings(frozen_simulator, tmp_path, receiver)
        # One-minute buckets: a chunk is a day, so the five days' backfill is several chunks.
        start = frozen_simulator.workload.spec.start.isoformat()
        settings += (
            f"CREDITWATCH_BUCKET_WIDTH=1m\nCREDITWATCH_BACKFILL_FROM={start}\n"
            f"CREDITWATCH_STARTING_BALANCE=500\nCREDITWATCH_STARTING_BALANCE_AT={start}\n"
        )
        env_file.write_text(settings)
        reference = settings.replace("cw.db", "reference.db").splitlines(keepends=True)
        reference_file.write_text("".join(x for x in reference if "WEBHOOK_URL" not in x))
        # Every usage page answers a quarter of a second late: the backfill takes many seconds.
        frozen_simulator.faults.add_delay(0.25, times=None, path_prefix=USAGE)
        process, logs = start_run(env_file, tmp_path)
        try:
            wait_until(
                "the backfill under way",
                lambda: sum(r.path.startswith(USAGE) for r in frozen_simulator.requests) >= 3,
            )
            began = time.monotonic()
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=30) == 0
            took = time.monotonic() - began
            # The cycle was mid-backfill: it ended after the chunk it was booking.
            logs.wait_for("stopped between chunks")
            logs.wait_for("stopped")
        finally:
            stop(process)
        assert took < 10, f"stopping took {took:.1f}s"
        assert "Traceback" not in "".join(logs.seen)
        frozen_simulator.faults.clear()
        for path in (env_file, reference_file):
            command(path, tmp_path, "once")
        assert ledger_totals(env_file, tmp_path) == ledger_totals(reference_file, tmp_path)
        # The interrupted run's alerts and the next run's are one each: nothing twice.
        ids = Counter(r.headers["webhook-id"] for r in receiver.received)
        assert ids, "the budget alert never arrived"
        assert max(ids.values()) == 1, ids


def test_systemd_hears_ready_status_and_watchdog(
    simulator: SimulatorServer, tmp_path: Path
) -> None:
    """Under a notify socket: READY=1, a STATUS= naming the cycle's outcome, WATCHDOG=1 at half
    the watchdog period, STOPPING=1 on SIGTERM."""
    env_file = tmp_path / "creditwatch.env"
    with Receiver() as receiver:
        env_file.write_text(base_settings(simulator, tmp_path, receiver))
    notify_path = tmp_path / "notify.sock"
    heard: list[tuple[float, str]] = []
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as notify:
        notify.bind(str(notify_path))
        notify.settimeout(0.2)
        process, logs = start_run(
            env_file, tmp_path, NOTIFY_SOCKET=str(notify_path), WATCHDOG_USEC="6000000"
        )
        try:
            deadline = time.monotonic() + WAIT
            while time.monotonic() < deadline:
                try:
                    heard.append((time.monotonic(), notify.recv(4096).decode()))
                except TimeoutError:
                    continue
                messages = [m for _, m in heard]
                watchdogs = [m for m in messages if m == "WATCHDOG=1"]
                if any(m.startswith("STATUS=collected") for m in messages) and len(watchdogs) >= 4:
                    break
            process.send_signal(signal.SIGTERM)
            stop_deadline = time.monotonic() + 30
            while time.monotonic() < stop_deadline and "STOPPING=1" not in [m for _, m in heard]:
                try:
                    heard.append((time.monotonic(), notify.recv(4096).decode()))
                except TimeoutError:
                    continue
            assert stop(process) == 0
        finally:
            stop(process)
    messages = [m for _, m in heard]
    assert messages[0] == "READY=1" or messages[0].startswith("STATUS="), messages[:3]
    assert "READY=1" in messages
    ready = messages.index("READY=1")
    statuses = [m for m in messages[ready:] if m.startswith("STATUS=")]
    assert any(s.startswith("STATUS=collected") for s in statuses), statuses
    assert all(len(s) <= 207 for s in statuses)
    assert "STOPPING=1" in messages
    watchdog_times = [t for t, m in heard if m == "WATCHDOG=1"]
    gaps = [b - a for a, b in itertools.pairwise(watchdog_times)]
    # Every half of WATCHDOG_USEC (6 s): never a silence as long as the period systemd allows
    # (long enough that a slow first chunk on a loaded machine does not count as a stall).
    assert len(gaps) >= 3, gaps
    assert max(gaps) < 6.0, gaps
    assert KEY not in "".join(messages) + "".join(logs.seen)


def test_a_stalled_cycle_stops_the_watchdog(tmp_path: Path) -> None:
    """No WATCHDOG=1 while a cycle has made no progress for the whole period; pings resume
    once it moves (or ends)."""
    notify_path = tmp_path / "notify.sock"
    with (
        socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as notify,
        pytest.MonkeyPatch.context() as mp,
    ):
        notify.bind(str(notify_path))
        notify.settimeout(0.2)
        mp.setenv("NOTIFY_SOCKET", str(notify_path))
        daemon = Daemon(settings_at(tmp_path), lambda: settings_at(tmp_path))
        try:
            daemon.in_cycle, daemon.progress_at = True, time.monotonic() - 10
            daemon.ping_watchdog(5.0)
            with pytest.raises(TimeoutError):
                notify.recv(4096)
            daemon.leading = True
            assert daemon._progress() is False  # the collector asks between chunks: go on
            daemon.leading = False
            assert daemon._progress() is True, "a leader that lost the lock stops collecting"
            daemon.ping_watchdog(5.0)
            assert notify.recv(4096) == b"WATCHDOG=1"
            daemon.in_cycle, daemon.progress_at = False, time.monotonic() - 10
            daemon.ping_watchdog(5.0)
            assert notify.recv(4096) == b"WATCHDOG=1"
        finally:
            daemon.runtime.close()
