"""No secret leaves: a run with every kind of channel failing, against receivers that echo the
request's path and body (where the tokens are) in their error answers, at DEBUG.

Collected: the output of every command (check-config, once, status, alerts, test-alert, each
also as JSON), the log of the daemon run as a process, and a dump of the whole database (the
alerts, their payloads, every attempt's error). None holds the admin key, a webhook token, the
signing secret, a routing key, the SMTP password or the Apprise URL's token.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, Session

from service.simulator import ManualClock, SimulatorServer
from tests.helpers import CLI_KEY, CLI_NOW, run_cli
from tests.receivers import Answer, Mailbox, Receiver, smtp_server

SLACK_TOKEN = "xoxslack9a8b7c6d5e4f"
HOOK_TOKEN = "hooktok-1a2b3c4d5e"
DISCORD_TOKEN = "disc0rdT0ken-77aa99bb"
TEAMS_SIG = "teamsSig0123456789abc"
ROUTING_KEY = "R0UT1NGKEY0123456789ABCDEF012345"
SMTP_PASSWORD = "smtp-Pa55word-4242"
APPRISE_TOKEN = "appr1se-tok-55cc66dd"
WEBHOOK_KEY = "creditwatch-secret-signing-key-1"
WHSEC = "whsec_Y3JlZGl0d2F0Y2gtc2VjcmV0LXNpZ25pbmcta2V5LTE="
SECRETS = (
    CLI_KEY,
    SLACK_TOKEN,
    HOOK_TOKEN,
    DISCORD_TOKEN,
    TEAMS_SIG,
    ROUTING_KEY,
    SMTP_PASSWORD,
    APPRISE_TOKEN,
    WHSEC,
    WHSEC.removeprefix("whsec_"),
)


class Refusing:
    """An SMTP authenticator that refuses, quoting the password back (the worst server)."""

    def __call__(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        password = data.password.decode()
        return AuthResult(success=False, handled=False, message=f"535 5.7.8 {password} is wrong")


@pytest.fixture
def receivers() -> Iterator[dict[str, Receiver]]:
    answers = {
        "slack": Answer(404, echo=True),
        "webhook": Answer(503, echo=True),
        "discord": Answer(429, headers={"Retry-After": "1"}, echo=True),
        "teams": Answer(403, echo=True),
        "pagerduty": Answer(400, echo=True),
        "apprise": Answer(500, echo=True),
    }
    with ExitStack() as stack:
        yield {name: stack.enter_context(Receiver(answer)) for name, answer in answers.items()}


def test_no_secret_in_any_output_log_or_row(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    simulator: SimulatorServer,
    receivers: dict[str, Receiver],
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    for name in list(os.environ):
        if name.startswith(("ANTHROPIC_", "CREDITWATCH_")):
            monkeypatch.delenv(name)
    database = tmp_path / "cw.db"
    with smtp_server(Mailbox(), auth_require_tls=False, authenticator=Refusing()) as smtp_port:
        r = {name: receiver.url for name, receiver in receivers.items()}
        settings = {
            "ANTHROPIC_ADMIN_KEY": CLI_KEY,
            "ANTHROPIC_BASE_URL": simulator.base_url,
            "CREDITWATCH_DATABASE_URL": f"sqlite:///{database}",
            "CREDITWATCH_LOG_LEVEL": "DEBUG",
            "CREDITWATCH_MONTHLY_BUDGET": "100",
            "CREDITWATCH_STARTING_BALANCE": "5000",
            "CREDITWATCH_STARTING_BALANCE_AT": "2026-11-05T00:00:00Z",
            "CREDITWATCH_POLL_INTERVAL": "1m",
            "CREDITWATCH_SLACK_WEBHOOK_URL": f"{r['slack']}/services/T0/B0/{SLACK_TOKEN}",
            "CREDITWATCH_WEBHOOK_URL": f"{r['webhook']}/in/{HOOK_TOKEN}",
            "CREDITWATCH_WEBHOOK_SECRET": WHSEC,
            "CREDITWATCH_CHANNEL_CHAT": f"discord:{r['discord']}/api/webhooks/1/{DISCORD_TOKEN}",
            "CREDITWATCH_CHANNEL_TEAMS": f"teams:{r['teams']}/workflows/x?sig={TEAMS_SIG}",
            "CREDITWATCH_CHANNEL_ONCALL": f"pagerduty:{ROUTING_KEY}",
            "CREDITWATCH_PAGERDUTY_URL": f"{r['pagerduty']}/v2/enqueue",
            "CREDITWATCH_CHANNEL_PUSH": f"apprise:json://{r['apprise'][7:]}/{APPRISE_TOKEN}",
            "CREDITWATCH_SMTP_URL": (
                f"smtp://alerts:{SMTP_PASSWORD}@127.0.0.1:{smtp_port}?tls=off"
            ),
            "CREDITWATCH_EMAIL_FROM": "creditwatch@example.com",
            "CREDITWATCH_EMAIL_TO": "ops@example.com",
        }
        (tmp_path / ".env").write_text("".join(f"{k}={v}\n" for k, v in settings.items()))
        seen: list[str] = []

        def cli(*args: str, **kwargs: Any) -> int:
            code, out, err = run_cli(capsys, *args, **kwargs)
            seen.extend([out, err])
            return code

        assert cli("check-config") == 0
        assert cli("once") == 0
        assert cli("test-alert") == 1
        later = CLI_NOW + timedelta(minutes=10)
        clock = simulator.clock
        assert isinstance(clock, ManualClock)
        clock.now = later
        assert cli("once", now=later) == 0  # retries, and the channel-failing alerts
        for command in (["status"], ["status", "--json"], ["alerts"], ["alerts", "--json"]):
            assert cli(*command, now=later) == 0
        # The daemon as a process, at DEBUG, for a few seconds of retries.
        log = tmp_path / "run.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                [sys.executable, "-m", "service", "run"],
                stdout=out,
                stderr=out,
                cwd=tmp_path,
                env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")},
            )
            try:
                deadline = time.monotonic() + 60
                while "delivered" not in log.read_text() and time.monotonic() < deadline:
                    time.sleep(0.2)
                process.send_signal(signal.SIGTERM)
                assert process.wait(timeout=60) == 0
            finally:
                if process.poll() is None:
                    process.kill()
                    process.wait()
        seen.append(log.read_text())
    with sqlite3.connect(database) as connection:
        seen.append("\n".join(connection.iterdump()))
    everything = "\n".join(seen)
    # The run did fail everywhere, and said so: the test looked where secrets would be.
    for failed in ("slack", "webhook", "chat", "teams", "oncall", "push", "email"):
        assert f"{failed}: FAILED" in everything, failed
    assert "cannot take /" in everything, "the receivers' echoes reached the records"
    assert "535" in everything
    for secret in SECRETS:
        assert secret not in everything, secret
