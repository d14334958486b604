"""The daemon as systemd runs it (READY, WATCHDOG, SIGHUP, SIGTERM), and its failure policy."""

from __future__ import annotations

import json
import logging
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

import httpx
import pytest

from service.errors import ConfigError
from service.runtime.cycle import Runtime
from service.runtime.daemon import Daemon
from service.runtime.logs import MaskingJsonFormatter
from service.settings import Settings, load_settings
from service.simulator import SimulatorServer, Workload, WorkloadSpec
from tests.helpers import CLI_KEY, CLI_NOW, exploding

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


def settings_at(tmp_path: Path, **extra: str) -> Settings:
    env = {
        "ANTHROPIC_ADMIN_KEY": CLI_KEY,
        "ANTHROPIC_BASE_URL": "http://127.0.0.1:9",
        "CREDITWATCH_DATABASE_URL": f"sqlite:///{tmp_path / 'daemon.db'}",
        **extra,
    }
    return load_settings(env, None, now=CLI_NOW)


def test_a_failing_cycle_in_the_daemon_is_one_log_line(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The scheduler's job never raises: an unexpected error is one ERROR line, then it runs on."""

    def make_runtime(settings: Settings) -> Runtime:
        return Runtime(settings, transport=httpx.MockTransport(exploding))

    daemon = Daemon(settings_at(tmp_path), lambda: settings_at(tmp_path), make_runtime=make_runtime)
    caplog.set_level(logging.INFO)
    daemon.cycle()
    daemon.cycle()
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 2
    assert errors[0].getMessage().startswith("cycle failed: unexpected error RuntimeError: boom")
    assert errors[0].exc_info is None, "the traceback is logged at DEBUG, not with the error"
    daemon.runtime.close()


def test_a_refused_reload_keeps_the_running_settings(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A bad edit on SIGHUP logs 'reload refused' with the reason; the old runtime stays."""

    def bad_settings() -> Settings:
        raise ConfigError("CREDITWATCH_LOOKBACK", "'forever' is not a duration", "3h")

    daemon = Daemon(settings_at(tmp_path), bad_settings)
    running = daemon.runtime
    caplog.set_level(logging.INFO)
    daemon.reload()
    assert daemon.runtime is running
    refused = [r.getMessage() for r in caplog.records if "reload refused" in r.getMessage()]
    assert refused == [
        "reload refused, keeping the running settings: configuration error: "
        "CREDITWATCH_LOOKBACK: 'forever' is not a duration (example: CREDITWATCH_LOOKBACK=3h)"
    ]
    daemon.runtime.close()


@pytest.mark.usefixtures("restore_logging")
def test_a_reload_applies_the_new_log_format_and_secrets(tmp_path: Path) -> None:
    """SIGHUP re-applies logging: a switch to JSON and a new secret take effect at once."""
    daemon = Daemon(
        settings_at(tmp_path),
        lambda: settings_at(tmp_path, CREDITWATCH_LOG_FORMAT="json", CREDITWATCH_LOG_LEVEL="DEBUG"),
    )
    daemon.reload()
    root = logging.getLogger()
    assert root.level == logging.DEBUG
    (handler,) = root.handlers
    assert isinstance(handler.formatter, MaskingJsonFormatter)
    assert CLI_KEY in handler.formatter.mask.secrets
    daemon.runtime.close()


def test_two_interrupts_stop_once_without_a_traceback(
    simulator: SimulatorServer, tmp_path: Path
) -> None:
    """Ctrl-C twice during a cycle: one clean stop, exit 0, nothing on stderr but log lines."""
    env_file = tmp_path / "creditwatch.env"
    env_file.write_text(
        f"ANTHROPIC_ADMIN_KEY={KEY}\nANTHROPIC_BASE_URL={simulator.base_url}\n"
        f"CREDITWATCH_DATABASE_URL=sqlite:///{tmp_path / 'cw.db'}\n"
        "CREDITWATCH_POLL_INTERVAL=1s\n"
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "service", "--env-file", str(env_file), "run"],
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin"},
    )
    assert process.stderr is not None
    logs = Lines(process.stderr)
    try:
        logs.wait_for("creditwatch running")
        process.send_signal(signal.SIGINT)
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=WAIT) == 0
        logs.wait_for("stopped")
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        process.stderr.close()
    assert "Traceback" not in "".join(logs.seen)
