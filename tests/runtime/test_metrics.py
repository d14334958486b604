"""/metrics and /healthz: the real daemon scraped over a socket, promtool as the independent
reader of the exposition, the figures checked against `status --json`, an outage seen and
recovered from, and the health decision itself with an injected clock."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import TypeVar

import httpx
import pytest
import sqlalchemy
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as openmetrics_families,
)
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import Engine

from service.errors import AdminAPIAuthError, AdminAPIError, ConfigError, MalformedResponse
from service.runtime.endpoint import Endpoint, start_endpoint
from service.runtime.health import CollectionView, DatabaseDown, Observed, decide_health
from service.runtime.ledger_metrics import with_connect_timeout
from service.runtime.metrics import api_error_class, cycle_outcome
from service.settings import Settings, load_settings
from service.simulator import SimulatorServer, Workload, WorkloadSpec
from service.simulator.clock import ManualClock
from service.store.engine import transaction
from service.store.tables import CollectionState
from tests.helpers import outside_tool
from tests.receivers import Receiver, free_port

KEY = "sk-ant-admin01-metrics-test-key-0123456789"
HOOK_TOKEN = "T0kenInTheHookPath9f3a"
WAIT = 30.0
T = TypeVar("T")


# A real daemon, scraped over a socket.


@dataclass
class Simulated:
    server: SimulatorServer
    now: datetime
    start: datetime


@pytest.fixture
def simulated() -> Iterator[Simulated]:
    """The simulator on a clock that stands still: the ledger's figures stop moving once
    collected, so a scrape and a later `status` must agree exactly."""
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    start = now.replace(minute=0) - timedelta(days=3)
    workload = Workload(WorkloadSpec(seed=5, start=start, n_keys=2))
    with SimulatorServer(workload, admin_key=KEY, clock=ManualClock(now)) as server:
        yield Simulated(server, now, start)


def daemon_env(simulated: Simulated, db_url: str, port: int, **extra: str) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "ANTHROPIC_ADMIN_KEY": KEY,
        "ANTHROPIC_BASE_URL": simulated.server.base_url,
        "CREDITWATCH_DATABASE_URL": db_url,
        "CREDITWATCH_POLL_INTERVAL": "1s",
        "CREDITWATCH_METRICS_ADDR": f"127.0.0.1:{port}",
        **extra,
    }


@contextmanager
def running(env: dict[str, str], cwd: Path, *args: str) -> Iterator[subprocess.Popen[bytes]]:
    """`creditwatch run` in a process of its own; killed at the end if still running."""
    log = (cwd / "daemon.log").open("ab")
    process = subprocess.Popen(
        [sys.executable, "-m", "service", *args, "run"], stdout=log, stderr=log, cwd=cwd, env=env
    )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        log.close()


def get(port: int, path: str) -> httpx.Response:
    return httpx.get(f"http://127.0.0.1:{port}{path}", timeout=10)


def wait_for(check: Callable[[], T | None], what: str, timeout: float = WAIT) -> T:
    """The first truthy answer of ``check`` within ``timeout``; a refused connection is none."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            found = check()
        except httpx.TransportError:
            found = None
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"{what}: not within {timeout}s")


def value(body: str, name: str, **labels: str) -> float | None:
    """The sample ``name{labels}`` of an exposition, or None when it is absent."""
    for family in text_string_to_metric_families(body):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return float(sample.value)
    return None


def healthz_says(port: int, status: int, *texts: str) -> Callable[[], httpx.Response | None]:
    """A check for /healthz answering ``status`` with every one of ``texts`` in its body."""

    def check() -> httpx.Response | None:
        answer = get(port, "/healthz")
        said = all(text in answer.text for text in texts)
        return answer if answer.status_code == status and said else None

    return check


def promtool_check(body: str) -> None:
    """``promtool check metrics`` reads the exposition from stdin and finds no problem."""
    promtool = outside_tool("promtool", "prometheus")
    result = subprocess.run(
        [promtool, "check", "metrics"],
        input=body,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert (result.stdout + result.stderr).strip() == ""


def timestamp(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def test_metrics_pass_promtool_and_agree_with_status(
    simulated: Simulated, db_url: str, tmp_path: Path
) -> None:
    """A scrape is valid exposition and shows the balance, budgets, runway, outbox and
    deliveries `status --json` shows (and the receiver saw), with no secret in it."""
    with Receiver() as receiver:
        env = daemon_env(
            simulated,
            db_url,
            port := free_port(),
            CREDITWATCH_STARTING_BALANCE="900",
            CREDITWATCH_STARTING_BALANCE_AT=simulated.start.isoformat(),
            CREDITWATCH_MONTHLY_BUDGET="100",
            CREDITWATCH_BUDGET_DAILY="limit=1 period=day thresholds=100",
            CREDITWATCH_CHANNEL_OPS=f"webhook:{receiver.url}/{HOOK_TOKEN}",
        )
        with running(env, tmp_path) as process:

            def settled() -> str | None:
                body = get(port, "/metrics").text
                sent = value(
                    body, "creditwatch_delivery_attempts_total", channel="ops", outcome="sent"
                )
                waiting = [
                    value(body, "creditwatch_outbox_notifications", state=state)
                    for state in ("pending", "sending")
                ]
                runway = value(body, "creditwatch_runway_seconds")
                return body if sent and waiting == [0, 0] and runway else None

            wait_for(healthz_says(port, 200, "ok: last collection"), "healthy")
            wait_for(settled, "alerts delivered and a runway known")
            scraped_at = time.time()
            answer = get(port, "/metrics")
            status = json.loads(
                subprocess.run(
                    [sys.executable, "-m", "service", "status", "--json"],
                    env=env,
                    cwd=tmp_path,
                    capture_output=True,
                    check=True,
                    timeout=60,
                ).stdout
            )
            health = get(port, "/healthz")
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=WAIT) == 0
        received = len(receiver.received)
    body = answer.text
    assert answer.headers["content-type"].startswith("text/plain; version=0.0.4")
    promtool_check(body)
    assert value(body, "creditwatch_database_up") == 1
    assert value(body, "creditwatch_leader") == 1
    assert value(body, "creditwatch_collection_failing") == 0
    assert (value(body, "creditwatch_cycles_total", outcome="ok") or 0) >= 1
    assert value(body, "creditwatch_balance_usd") == float(Decimal(status["balance_usd"]))
    assert len(status["budgets"]) == 2
    for budget in status["budgets"]:
        labels = {"budget": budget["name"], "period": budget["period"]}
        spent = value(body, "creditwatch_budget_spend_usd", **labels)
        assert spent == float(Decimal(budget["spent_usd"]))
        assert value(body, "creditwatch_budget_limit_usd", **labels) == float(
            Decimal(budget["limit_usd"])
        )
        start = value(body, "creditwatch_budget_period_start_timestamp_seconds", **labels)
        assert start == timestamp(budget["period_start"])
    for state, count in status["outbox"].items():
        assert value(body, "creditwatch_outbox_notifications", state=state) == count
    assert value(body, "creditwatch_delivery_attempts_total", channel="ops", outcome="sent") == (
        received
    )
    runway = value(body, "creditwatch_runway_seconds")
    assert runway is not None
    assert status["forecast"]["runway_until"] is not None
    assert abs(scraped_at + runway - timestamp(status["forecast"]["runway_until"])) < 5
    collected = value(body, "creditwatch_last_collection_success_timestamp_seconds")
    assert collected is not None
    assert abs(collected - timestamp(status["last_collected_at"])) < 10
    newest = value(body, "creditwatch_newest_bucket_start_timestamp_seconds")
    assert newest == simulated.now.replace(minute=0).timestamp()
    for text in (body, health.text):
        assert KEY not in text
        assert KEY[:12] not in text
        assert HOOK_TOKEN not in text
        assert db_url not in text
    assert health.status_code == 200


def test_healthz_and_metrics_follow_an_api_outage(
    simulated: Simulated, db_url: str, tmp_path: Path
) -> None:
    """A rejected key turns /healthz 503 at once, an overloaded API "degraded" (503 only past
    CREDITWATCH_COLLECTION_ALERT); both count in /metrics by class and recover; SIGTERM stops
    the endpoint with the daemon."""
    env = daemon_env(simulated, db_url, port := free_port())
    faults = simulated.server.faults
    with running(env, tmp_path) as process:
        wait_for(healthz_says(port, 200, "ok: last collection"), "healthy")

        faults.add(status=401, times=None)
        # The ledger records the failure a moment before the daemon's hook hears of it; from
        # then on this instance's own last cycle is the reason given.
        reason = "unhealthy: the last cycle failed: collection failed: Admin API rejected the"
        down = wait_for(healthz_says(port, 503, reason), "401 seen")
        assert down.text.startswith(reason)
        assert "check ANTHROPIC_ADMIN_KEY" in down.text
        assert down.text.count("\n") == 1
        body = get(port, "/metrics").text
        assert (value(body, "creditwatch_admin_api_errors_total", **{"class": "auth"}) or 0) >= 1
        assert (value(body, "creditwatch_cycles_total", outcome="api_error") or 0) >= 1
        assert value(body, "creditwatch_collection_failing") == 1
        promtool_check(body)
        for text in (down.text, body):
            assert KEY not in text

        faults.clear()
        wait_for(healthz_says(port, 200, "ok: last collection"), "recovered from 401")
        assert value(get(port, "/metrics").text, "creditwatch_collection_failing") == 0

        faults.add(status=529, times=None)
        # A transient failure is "degraded" until it lasts CREDITWATCH_COLLECTION_ALERT.
        wait_for(healthz_says(port, 200, "ok: degraded: collection failing since", "529"), "529")
        body = get(port, "/metrics").text
        unavailable = value(body, "creditwatch_admin_api_errors_total", **{"class": "unavailable"})
        assert (unavailable or 0) >= 1
        faults.clear()
        wait_for(healthz_says(port, 200, "ok: last collection"), "recovered from 529")

        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=WAIT) == 0
    with pytest.raises(httpx.ConnectError):
        get(port, "/healthz")
    log = (tmp_path / "daemon.log").read_text()
    assert KEY not in log
    assert "Traceback" not in log


@pytest.mark.postgres
@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
def test_a_follower_is_healthy_while_the_leader_collects(
    simulated: Simulated, db_url: str, tmp_path: Path
) -> None:
    """Two instances on one database: the follower reads the leader's fresh collection as
    healthy and the same balance, and leads once the leader is killed."""
    first_port, second_port = free_port(), free_port()
    extra = {
        "CREDITWATCH_STARTING_BALANCE": "500",
        "CREDITWATCH_STARTING_BALANCE_AT": simulated.start.isoformat(),
    }
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    with (
        running(daemon_env(simulated, db_url, first_port, **extra), tmp_path / "a") as first,
        running(daemon_env(simulated, db_url, second_port, **extra), tmp_path / "b") as second,
    ):
        for port in (first_port, second_port):
            wait_for(healthz_says(port, 200, "ok: last collection"), f"healthy on {port}")
        leaders = {
            port: value(get(port, "/metrics").text, "creditwatch_leader")
            for port in (first_port, second_port)
        }
        assert set(leaders.values()) == {0, 1}
        leader_port = first_port if leaders[first_port] == 1 else second_port
        follower_port = second_port if leader_port == first_port else first_port
        follower = get(follower_port, "/healthz")
        assert follower.status_code == 200
        assert "another instance leads" in follower.text
        balances = {value(get(p, "/metrics").text, "creditwatch_balance_usd") for p in leaders}
        assert len(balances) == 1
        assert None not in balances

        (first if leader_port == first_port else second).kill()
        wait_for(
            lambda: value(get(follower_port, "/metrics").text, "creditwatch_leader") == 1,
            "the follower took the lead",
        )
        wait_for(healthz_says(follower_port, 200, "this instance leads"), "healthy as leader")


def test_reloads_are_counted_by_outcome(simulated: Simulated, tmp_path: Path) -> None:
    """SIGHUP with good settings counts as applied, with a bad file as refused."""
    env_file = tmp_path / "creditwatch.env"
    env = daemon_env(simulated, f"sqlite:///{tmp_path / 'cw.db'}", port := free_port())
    settings = "".join(f"{k}={v}\n" for k, v in env.items() if k != "PATH")
    env_file.write_text(settings)
    with running({"PATH": env["PATH"]}, tmp_path, "--env-file", str(env_file)) as process:
        wait_for(healthz_says(port, 200, "ok"), "serving")

        def reloads(outcome: str) -> Callable[[], bool]:
            return lambda: (
                value(get(port, "/metrics").text, "creditwatch_reloads_total", outcome=outcome) == 1
            )

        process.send_signal(signal.SIGHUP)
        wait_for(reloads("applied"), "one reload applied")
        env_file.write_text(settings + "CREDITWATCH_LOOKBACK=forever\n")
        process.send_signal(signal.SIGHUP)
        wait_for(reloads("refused"), "one reload refused")
        body = get(port, "/metrics").text
        assert value(body, "creditwatch_reloads_total", outcome="applied") == 1
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=WAIT) == 0


# The endpoint in this process, with a stand-in for the daemon.


@dataclass
class StandInRuntime:
    settings: Settings


class StandInDaemon:
    """What the endpoint reads of a daemon; the hooks are set by ``start_endpoint``."""

    def __init__(self, runtime: StandInRuntime, now: datetime | None = None) -> None:
        self.runtime = runtime
        self.now = now or datetime.now(UTC)
        self.on_cycle: Callable[[float, BaseException | None], None] = lambda s, e: None
        self.on_leadership: Callable[[bool], None] = lambda leading: None
        self.on_reload: Callable[[bool], None] = lambda applied: None

    def clock(self) -> datetime:
        return self.now


def endpoint_settings(database_url: str, port: int) -> Settings:
    env = {
        "ANTHROPIC_ADMIN_KEY": KEY,
        "CREDITWATCH_DATABASE_URL": database_url,
        "CREDITWATCH_METRICS_ADDR": str(port),
    }
    return load_settings(env, None)


@contextmanager
def serving(daemon: StandInDaemon) -> Iterator[Endpoint]:
    endpoint = start_endpoint(daemon)
    assert endpoint is not None
    try:
        yield endpoint
    finally:
        endpoint.stop()


def test_a_scrape_answers_when_the_database_cannot_be_read() -> None:
    """No database: /metrics still answers 200 with creditwatch_database_up 0 and no URL or
    password, /healthz says 503 why; the endpoint then stops and frees its port."""
    url = f"postgresql+psycopg://cw:hunter2secret@127.0.0.1:{free_port()}/cw"
    daemon = StandInDaemon(StandInRuntime(endpoint_settings(url, port := free_port())))
    with serving(daemon):
        answer = get(port, "/metrics")
        health = get(port, "/healthz")
        missing = get(port, "/nothing")
    assert answer.status_code == 200
    promtool_check(answer.text)
    assert value(answer.text, "creditwatch_database_up") == 0
    assert value(answer.text, "creditwatch_balance_usd") is None
    assert value(answer.text, "creditwatch_leader") == 0
    assert (health.status_code, health.text) == (
        503,
        "unhealthy: the database cannot be read (OperationalError)\n",
    )
    assert missing.status_code == 404
    for text in (answer.text, health.text):
        assert "hunter2secret" not in text
        assert "postgresql" not in text
    with pytest.raises(httpx.ConnectError):
        get(port, "/metrics")


def test_healthz_masks_secrets_in_recorded_errors(db_url: str, engine: Engine) -> None:
    """An error that quotes the admin key (a proxy echoing headers) shows it masked."""
    now = datetime.now(UTC)
    with transaction(engine) as session:
        session.add(
            CollectionState(
                bucket_width="1h",
                last_success_at=now - timedelta(minutes=3),
                failing_since=now - timedelta(minutes=1),
                last_error=f"proxy said: bad header x-api-key: {KEY}",
            )
        )
    daemon = StandInDaemon(StandInRuntime(endpoint_settings(db_url, port := free_port())), now)
    with serving(daemon):
        follower = get(port, "/healthz")
        daemon.on_leadership(True)
        daemon.on_cycle(0.1, AdminAPIAuthError(f"upstream echoed {KEY} back", status=401))
        leader = get(port, "/healthz")
        body = get(port, "/metrics").text
        daemon.on_leadership(False)
        daemon.on_leadership(True)
        again = get(port, "/healthz")
    assert follower.status_code == 200  # failing for a minute: degraded, not yet unhealthy
    assert "collection failing since" in follower.text
    assert "proxy said: bad header x-api-key: sk-a…(masked)" in follower.text
    assert leader.status_code == 503
    assert "the last cycle failed: " in leader.text
    assert "upstream echoed sk-a…(masked) back" in leader.text
    assert value(body, "creditwatch_leader") == 1
    assert value(body, "creditwatch_admin_api_errors_total", **{"class": "auth"}) == 1
    assert "collection failing since" in again.text, "a new term forgets the old term's cycle"
    for text in (follower.text, leader.text, again.text, body):
        assert KEY not in text


def test_openmetrics_is_served_when_asked(db_url: str, engine: Engine) -> None:
    """A scraper asking for OpenMetrics gets it (ending in # EOF); HEAD answers without a body."""
    daemon = StandInDaemon(StandInRuntime(endpoint_settings(db_url, port := free_port())))
    accept = "application/openmetrics-text; version=1.0.0"
    with serving(daemon):
        answer = httpx.get(f"http://127.0.0.1:{port}/metrics", headers={"Accept": accept})
        head = httpx.head(f"http://127.0.0.1:{port}/healthz")
    assert answer.headers["content-type"].startswith("application/openmetrics-text")
    assert answer.text.endswith("# EOF\n")
    parsed = openmetrics_families(answer.text)  # type: ignore[no-untyped-call]  # unannotated
    families = {f.name: f for f in parsed}
    assert families["creditwatch_database_up"].samples[0].value == 1
    assert families["creditwatch_cycles"].type == "counter"
    assert (head.status_code, head.content) == (200, b"")
    assert int(head.headers["content-length"]) > 0


def test_a_port_in_use_is_a_config_error() -> None:
    """An address that cannot be listened on stops `run` as a ConfigError naming the variable."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = int(taken.getsockname()[1])
        settings = endpoint_settings("sqlite:///unused.db", port)
        with pytest.raises(ConfigError) as caught:
            start_endpoint(StandInDaemon(StandInRuntime(settings)))
    assert caught.value.variable == "CREDITWATCH_METRICS_ADDR"
    assert f"cannot listen on 127.0.0.1:{port}" in caught.value.problem


def test_no_address_no_server(tmp_path: Path) -> None:
    """Without CREDITWATCH_METRICS_ADDR nothing listens and the hooks stay the daemon's own."""
    settings = load_settings({"ANTHROPIC_ADMIN_KEY": KEY}, None)
    daemon = StandInDaemon(StandInRuntime(settings))
    hook = daemon.on_cycle
    assert start_endpoint(daemon) is None
    assert daemon.on_cycle is hook


# The pure parts.


NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
ALERT = timedelta(minutes=30)
STARTED = NOW - timedelta(hours=5)


def fresh(**changes: object) -> CollectionView:
    """A ledger collected a minute ago whose newest bucket is the current hour."""
    view = CollectionView(
        bucket=HOUR,
        last_success_at=NOW - timedelta(minutes=1),
        newest_bucket_start=NOW.replace(minute=0),
    )
    return dataclasses.replace(view, **changes)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("ledger", "observed", "status", "reason"),
    [
        pytest.param(
            fresh(),
            Observed(STARTED, leading=True),
            200,
            "last collection 1m ago; this instance leads",
            id="fresh-leader",
        ),
        pytest.param(
            fresh(),
            Observed(STARTED, leading=False),
            200,
            "another instance leads",
            id="fresh-follower",
        ),
        pytest.param(
            DatabaseDown("OperationalError"),
            Observed(STARTED, leading=True),
            503,
            "the database cannot be read (OperationalError)",
            id="database-down",
        ),
        pytest.param(
            fresh(),
            Observed(
                STARTED,
                leading=True,
                last_cycle_error="collection failed: 401",
                last_cycle_permanent=True,
            ),
            503,
            "the last cycle failed: collection failed: 401",
            id="own-cycle-rejected-key",
        ),
        pytest.param(
            fresh(),
            Observed(STARTED, leading=True, last_cycle_error="collection failed: 529"),
            200,
            "last collection 1m ago; this instance leads",
            id="own-transient-failure-waits-for-the-ledger",
        ),
        pytest.param(
            fresh(),
            Observed(STARTED, leading=False, last_cycle_error="from when it led"),
            200,
            "another instance leads",
            id="a-follower-ignores-its-old-cycle",
        ),
        pytest.param(
            fresh(failing_since=NOW - timedelta(seconds=30), last_error="529 overloaded\nagain"),
            Observed(STARTED, leading=False),
            200,
            "degraded: collection failing since 2026-11-20T11:59:30Z (unhealthy after 30m): "
            "529 overloaded again; last collection 1m ago",
            id="ledger-records-a-young-failure",
        ),
        pytest.param(
            fresh(failing_since=NOW - ALERT, last_error="529"),
            Observed(STARTED, leading=False),
            200,
            "degraded",
            id="failing-at-the-limit",
        ),
        pytest.param(
            fresh(failing_since=NOW - ALERT - timedelta(seconds=1), last_error="529 overloaded"),
            Observed(STARTED, leading=False),
            503,
            "collection failing since 2026-11-20T11:29:59Z (more than 30m): 529 overloaded",
            id="failing-past-the-limit",
        ),
        pytest.param(
            fresh(last_success_at=NOW - ALERT),
            Observed(STARTED, leading=False),
            200,
            "last collection 30m ago",
            id="age-at-the-limit",
        ),
        pytest.param(
            fresh(last_success_at=NOW - ALERT - timedelta(seconds=1)),
            Observed(STARTED, leading=False),
            503,
            "the last successful collection was 30m1s ago, at 2026-11-20T11:29:59Z "
            "(more than 30m); another instance leads",
            id="leader-stopped-collecting",
        ),
        pytest.param(
            CollectionView(HOUR),
            Observed(NOW - ALERT, leading=True),
            200,
            "starting: no collection has completed yet (running for 30m, grace 30m)",
            id="start-up-grace",
        ),
        pytest.param(
            CollectionView(HOUR),
            Observed(NOW - ALERT - timedelta(minutes=1), leading=True),
            503,
            "no collection has succeeded in the 31m since this instance started",
            id="grace-over",
        ),
        pytest.param(
            fresh(newest_bucket_start=NOW - timedelta(hours=2, minutes=15)),
            Observed(STARTED, leading=True),
            200,
            "last collection",
            id="lag-at-the-limit",
        ),
        pytest.param(
            fresh(newest_bucket_start=NOW - timedelta(hours=2, minutes=16)),
            Observed(STARTED, leading=True),
            503,
            "the data is stale: the newest bucket ended 1h16m ago, at 2026-11-20T10:44:00Z "
            "(more than 1h15m)",
            id="stale",
        ),
    ],
)
def test_health_decision(
    ledger: CollectionView | DatabaseDown, observed: Observed, status: int, reason: str
) -> None:
    """Each /healthz rule, at and just past its limit, with the clock injected."""
    verdict = decide_health(ledger, observed, now=NOW, collection_alert=ALERT)
    assert verdict.status == status
    assert reason in verdict.reason
    assert verdict.body == f"{'ok' if status == 200 else 'unhealthy'}: {verdict.reason}\n"
    assert "\n" not in verdict.reason


def test_a_long_error_is_cut_to_one_short_line() -> None:
    """A recorded error of any length is one line of at most 300 characters in the reason."""
    ledger = fresh(failing_since=NOW - HOUR, last_error="x" * 5000 + "\n" + "y" * 10)
    verdict = decide_health(
        ledger, Observed(STARTED, leading=False), now=NOW, collection_alert=ALERT
    )
    assert not verdict.healthy
    assert verdict.reason.endswith("x…")
    assert len(verdict.reason) < 400


@pytest.mark.parametrize(
    ("error", "outcome", "kind"),
    [
        (None, "ok", None),
        (AdminAPIAuthError("401", status=401), "api_error", "auth"),
        (MalformedResponse("not JSON", status=200), "api_error", "malformed"),
        (AdminAPIError("529 overloaded", status=529, transient=True), "api_error", "unavailable"),
        (AdminAPIError("404 not found", status=404), "api_error", "rejected"),
        (RuntimeError("a bug"), "error", None),
    ],
)
def test_cycle_outcomes_and_api_error_classes(
    error: BaseException | None, outcome: str, kind: str | None
) -> None:
    """A cycle's outcome label, and an Admin API error's class, from the exception."""
    assert cycle_outcome(error) == outcome
    if isinstance(error, AdminAPIError):
        assert api_error_class(error) == kind


def test_a_database_error_is_its_own_outcome() -> None:
    """A cycle that failed in the database is counted apart from API errors and bugs."""
    from sqlalchemy.exc import OperationalError

    assert cycle_outcome(OperationalError("SELECT 1", {}, Exception("gone"))) == "database_error"


BOUNDS = "options=-c+statement_timeout%3D5000+-c+lock_timeout%3D2000"


@pytest.mark.parametrize(
    ("url", "bounded"),
    [
        (
            "postgresql+psycopg://cw@db/cw",
            f"postgresql+psycopg://cw@db/cw?connect_timeout=5&{BOUNDS}",
        ),
        (
            "postgresql://cw@db/cw?connect_timeout=2",
            f"postgresql://cw@db/cw?connect_timeout=2&{BOUNDS}",
        ),
        (
            "postgresql://cw@db/cw?options=-c+search_path%3Dcw+-c+lock_timeout%3D1s",
            "postgresql://cw@db/cw?connect_timeout=5"
            "&options=-c+search_path%3Dcw+-c+lock_timeout%3D1s+-c+statement_timeout%3D5000",
        ),
        (
            "sqlite:////var/lib/creditwatch/creditwatch.db",
            "sqlite:////var/lib/creditwatch/creditwatch.db",
        ),
    ],
)
def test_scrapes_bound_the_connect_time(url: str, bounded: str) -> None:
    """PostgreSQL connections for scrapes give up after 5 s, and their statements and lock waits
    after 5 s and 2 s, unless the URL says otherwise."""
    assert with_connect_timeout(url) == bounded


def test_a_scrape_behind_a_locked_table_answers_503(db_url: str, engine: Engine) -> None:
    """A migration's exclusive lock on collection_state: /healthz answers 503 within the
    statement bounds instead of hanging, and the endpoint still stops at once."""
    if not db_url.startswith("postgresql"):
        pytest.skip("SQLite readers do not wait on a writer's lock (WAL)")
    with transaction(engine) as session:
        session.add(CollectionState(bucket_width="1h", last_success_at=datetime.now(UTC)))
    daemon = StandInDaemon(StandInRuntime(endpoint_settings(db_url, port := free_port())))
    with engine.connect() as blocker:
        blocker.execute(sqlalchemy.text("LOCK TABLE collection_state IN ACCESS EXCLUSIVE MODE"))
        with serving(daemon):
            began = time.monotonic()
            health = get(port, "/healthz")
            took = time.monotonic() - began
        blocker.rollback()
    assert health.status_code == 503
    assert "the database cannot be read" in health.text
    assert took < 15, took  # the 5 s statement bound, not a TCP timeout


def test_the_limits_allow_for_the_poll_interval() -> None:
    """A long poll interval stretches the age limit to two intervals and the staleness limit by
    one: an hourly poll is not unhealthy half of every hour."""
    poll = HOUR
    ledger = fresh(last_success_at=NOW - timedelta(minutes=59), newest_bucket_start=NOW - 2 * HOUR)
    verdict = decide_health(
        ledger, Observed(STARTED, leading=True), now=NOW, collection_alert=ALERT, poll_interval=poll
    )
    assert verdict.healthy, verdict.reason
    late = fresh(last_success_at=NOW - 2 * HOUR - timedelta(seconds=1))
    verdict = decide_health(
        late, Observed(STARTED, leading=True), now=NOW, collection_alert=ALERT, poll_interval=poll
    )
    assert not verdict.healthy
    assert "(more than 2h)" in verdict.reason
