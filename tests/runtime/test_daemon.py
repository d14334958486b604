"""The daemon as systemd runs it: READY/WATCHDOG, scheduled cycles, SIGHUP reload, SIGTERM."""

from __future__ import annotations

import json
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO

import pytest

from service.simulator import SimulatorServer, Workload, WorkloadSpec

KEY = "sk-ant-admin01-daemon-test-key-0123456789"
WAIT = 60.0


@pytest.fixture
def simulator() -> Iterator[SimulatorServer]:
    start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(days=1)
    with SimulatorServer(Workload(WorkloadSpec(seed=9, start=start, n_keys=2)), admin_key=KEY) as s:
        yield s


class Lines:
    """Collects a stream's lines on a thread so the test can wait for one without blocking."""

    def __init__(self, stream: IO[str]) -> None:
        self.queue: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._pump, args=(stream,), daemon=True).start()

    def _pump(self, stream: IO[str]) -> None:
        try:
            for line in stream:
                self.queue.put(line)
        except ValueError:  # the test closed the stream
            return

    def wait_for(self, text: str, timeout: float = WAIT) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.queue.get(timeout=0.2)
            except queue.Empty:
                continue
            self.seen.append(line)
            if text in line:
                return line
        raise AssertionError(f"no line with {text!r} in {timeout}s; saw:\n{''.join(self.seen)}")


def receive(sock: socket.socket, wanted: str, timeout: float = WAIT) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        sock.settimeout(max(0.1, deadline - time.monotonic()))
        try:
            if wanted in sock.recv(4096).decode():
                return
        except TimeoutError:
            break
    raise AssertionError(f"systemd never got {wanted}")


def test_daemon_lifecycle(simulator: SimulatorServer, tmp_path: Path) -> None:
    """run: READY=1, a cycle, WATCHDOG=1, reload on SIGHUP (bad file refused), clean SIGTERM."""
    env_file = tmp_path / "creditwatch.env"
    settings = (
        f"ANTHROPIC_ADMIN_KEY={KEY}\nANTHROPIC_BASE_URL={simulator.base_url}\n"
        f"CREDITWATCH_DATABASE_URL=sqlite:///{tmp_path / 'cw.db'}\n"
        "CREDITWATCH_POLL_INTERVAL=2s\nCREDITWATCH_LOG_FORMAT=json\n"
    )
    env_file.write_text(settings)
    notify_path = tmp_path / "notify.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as notify:
        notify.bind(str(notify_path))
        process = subprocess.Popen(
            [sys.executable, "-m", "service", "--env-file", str(env_file), "run"],
            stderr=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            text=True,
            cwd=tmp_path,
            env={
                "PATH": "/usr/bin:/bin",
                "NOTIFY_SOCKET": str(notify_path),
                "WATCHDOG_USEC": "2000000",
            },
        )
        assert process.stderr is not None
        logs = Lines(process.stderr)
        try:
            receive(notify, "READY=1")
            first = json.loads(logs.wait_for("collected"))
            assert first["level"] == "INFO"
            receive(notify, "WATCHDOG=1")
            logs.wait_for("collected")  # the schedule keeps running

            env_file.write_text(settings.replace("POLL_INTERVAL=2s", "POLL_INTERVAL=1s"))
            process.send_signal(signal.SIGHUP)
            logs.wait_for("settings reloaded")

            env_file.write_text(settings + "CREDITWATCH_LOOKBACK=forever\n")
            process.send_signal(signal.SIGHUP)
            refused = logs.wait_for("reload refused")
            assert "CREDITWATCH_LOOKBACK" in refused
            logs.wait_for("collected")  # still running on the old settings

            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=WAIT) == 0
            logs.wait_for("stopped")
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
            process.stderr.close()
    assert KEY not in "".join(logs.seen)
