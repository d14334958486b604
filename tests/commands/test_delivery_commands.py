"""Delivery as a user meets it: `once` sends what it produced, a failing channel keeps the alert
until it recovers, `status` and `alerts` show each channel and attempt, `test-alert` reports per
channel. Real receivers on 127.0.0.1; signatures checked by the standardwebhooks library."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from standardwebhooks.webhooks import Webhook

from service.simulator import ManualClock, SimulatorServer
from tests.helpers import CLI_KEY, CLI_NOW, run_cli
from tests.receivers import Answer, Receiver

SECRET = "whsec_" + base64.b64encode(b"creditwatch-command-test-key-01").decode()
TOKEN = "tok-5e1f0c9a"
MONTHLY_100 = "budget:monthly/org/2026-11/100%"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as r:
        yield r


@pytest.fixture
def backup() -> Iterator[Receiver]:
    with Receiver() as r:
        yield r


def add_env(env: Path, **values: str) -> None:
    with (env / ".env").open("a") as out:
        for name, value in values.items():
            out.write(f"{name}={value}\n")


def move(simulator: SimulatorServer, to: datetime) -> None:
    clock = simulator.clock
    assert isinstance(clock, ManualClock)
    clock.now = to


def signed_by_us(request_headers: dict[str, str], body: bytes) -> bool:
    """The standardwebhooks library signs what we sent; its signature must be ours."""
    timestamp = datetime.fromtimestamp(int(request_headers["webhook-timestamp"])).astimezone()
    expected = Webhook(SECRET).sign(request_headers["webhook-id"], timestamp, body.decode())
    return expected == request_headers["webhook-signature"]


def test_once_delivers_and_status_and_alerts_show_it(
    env: Path, receiver: Receiver, capsys: pytest.CaptureFixture[str]
) -> None:
    add_env(
        env,
        CREDITWATCH_MONTHLY_BUDGET="100",
        CREDITWATCH_WEBHOOK_URL=f"{receiver.url}/in/{TOKEN}",
        CREDITWATCH_WEBHOOK_SECRET=SECRET,
    )
    code, out, err = run_cli(capsys, "once")
    assert code == 0, err
    assert "delivered 1, retrying 0, failed 0" in out
    (request,) = receiver.received
    assert request.headers["webhook-id"] == MONTHLY_100
    assert signed_by_us(request.headers, request.body)
    body = request.json()
    assert (body["kind"], body["dedup_id"], body["severity"]) == ("alert", MONTHLY_100, "critical")
    status = json.loads(run_cli(capsys, "status", "--json")[1])
    assert status["channels"] == [
        {
            "name": "webhook",
            "kind": "webhook",
            "last_delivery": "sent",
            "failing": False,
            "failing_reason": None,
            "failing_since": None,
        }
    ]
    assert status["outbox"]["sent"] == 1
    (listed,) = json.loads(run_cli(capsys, "alerts", "--json")[1])
    assert (listed["state"], listed["channel"]) == ("sent", "webhook")
    assert [(a["outcome"], a["status"]) for a in listed["attempts"]] == [("sent", "200")]
    # Nothing new, nothing sent again.
    assert "delivered 0, retrying 0, failed 0" in run_cli(capsys, "once")[1]
    assert len(receiver.received) == 1


def test_a_failing_channel_keeps_the_alert_until_it_recovers(
    env: Path,
    receiver: Receiver,
    simulator: SimulatorServer,
    capsys: pytest.CaptureFixture[str],
) -> None:
    add_env(
        env, CREDITWATCH_MONTHLY_BUDGET="100", CREDITWATCH_WEBHOOK_URL=f"{receiver.url}/{TOKEN}"
    )
    receiver.script(
        Answer(503, f"upstream {TOKEN} down".encode()), Answer(429, headers={"Retry-After": "120"})
    )
    code, out, err = run_cli(capsys, "once")
    assert code == 0, err
    assert "delivered 0, retrying 1, failed 0" in out
    (listed,) = json.loads(run_cli(capsys, "alerts", "--json")[1])
    assert listed["state"] == "pending"
    assert listed["attempts"][0]["status"] == "503"
    assert TOKEN not in json.dumps(listed) + out + err
    # Five minutes later: the 429 asks for two more minutes; after them, it arrives.
    later = CLI_NOW + timedelta(minutes=5)
    move(simulator, later)
    assert "retrying 1" in run_cli(capsys, "once", now=later)[1]
    last = later + timedelta(minutes=3)
    move(simulator, last)
    code, out, err = run_cli(capsys, "once", now=last)
    assert "delivered 1" in out, err
    ids = [r.headers["webhook-id"] for r in receiver.received]
    assert ids == [MONTHLY_100] * 3, "every attempt carries the same id"
    (listed,) = json.loads(run_cli(capsys, "alerts", "--json", now=last)[1])
    assert [a["status"] for a in listed["attempts"]] == ["503", "429", "200"]
    assert TOKEN not in out + err


def test_a_channel_that_refuses_is_reported_on_the_others_and_in_status(
    env: Path,
    receiver: Receiver,
    backup: Receiver,
    simulator: SimulatorServer,
    capsys: pytest.CaptureFixture[str],
) -> None:
    add_env(
        env,
        CREDITWATCH_MONTHLY_BUDGET="100",
        CREDITWATCH_WEBHOOK_URL=f"{receiver.url}/{TOKEN}",
        CREDITWATCH_CHANNEL_BACKUP=f"webhook:{backup.url}/b",
    )
    receiver.script(Answer(410, b"gone"))
    code, out, err = run_cli(capsys, "once")
    assert code == 0, err
    assert "delivered 1, retrying 0, failed 1" in out
    later = CLI_NOW + timedelta(minutes=5)
    move(simulator, later)
    code, out, err = run_cli(capsys, "once", now=later)
    assert code == 0, err
    kinds = [(r.headers["webhook-id"], r.json()["rule"]) for r in backup.received]
    assert kinds[0] == (MONTHLY_100, "budget:monthly")
    assert kinds[1][1] == "health:channel_failing"
    assert "webhook" in backup.received[1].json()["title"]
    assert len(receiver.received) == 1, "the refusing channel is not asked again"
    status = json.loads(run_cli(capsys, "status", "--json", now=later)[1])
    channels = {c["name"]: c for c in status["channels"]}
    assert channels["webhook"]["failing"] is True
    assert channels["webhook"]["failing_reason"] == "refused"
    assert channels["backup"]["failing"] is False
    text = run_cli(capsys, "status", now=later)[1]
    assert "Channel webhook    webhook, FAILING since 2026-11-10T15:20:" in text
    assert "an alert was refused for good" in text


def test_test_alert_reports_each_channel_and_fails_if_one_does(
    env: Path, receiver: Receiver, backup: Receiver, capsys: pytest.CaptureFixture[str]
) -> None:
    add_env(
        env,
        CREDITWATCH_WEBHOOK_URL=f"{receiver.url}/{TOKEN}",
        CREDITWATCH_WEBHOOK_SECRET=SECRET,
        CREDITWATCH_CHANNEL_BACKUP=f"webhook:{backup.url}/{TOKEN}",
    )
    backup.script(Answer(404, b"no such hook"))
    code, out, err = run_cli(capsys, "test-alert")
    assert code == 1
    lines = out.splitlines()
    assert any(line.startswith("webhook: delivered in ") and "200" in line for line in lines)
    assert any(
        line.startswith("backup: FAILED (permanent): ") and "404" in line for line in lines
    ), out
    (request,) = receiver.received
    body = request.json()
    assert body["test"] is True
    assert body["title"].startswith("Test alert from creditwatch")
    assert signed_by_us(request.headers, request.body)
    for secret in (TOKEN, SECRET, CLI_KEY):
        assert secret not in out + err
    # One channel only; it works: exit 0, the other is not asked.
    code, out, _ = run_cli(capsys, "test-alert", "--channel", "webhook")
    assert code == 0
    assert len(backup.received) == 1
    assert run_cli(capsys, "test-alert", "--channel", "nope")[0] == 2
    # Nothing is recorded: a test is not an alert.
    assert json.loads(run_cli(capsys, "alerts", "--json")[1]) == []


def test_test_alert_without_a_channel_is_a_configuration_error(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run_cli(capsys, "test-alert")
    assert code == 78
    assert "no channel is configured" in err
    assert "Traceback" not in err
