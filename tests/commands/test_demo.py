"""`creditwatch demo` as a newcomer runs it: a real process, the whole story in order, Ctrl-C."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
from argparse import Namespace
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from service.commands.context import CommandContext
from service.commands.demo import (
    DEMO_KEY,
    DEMO_SECRET,
    HISTORY,
    STORY,
    story_start,
    user_choices,
)
from service.domain.periods import month_of
from tests.helpers import run_cli

# The story needs 8 cycles (the low balance resolves at the eighth); one more for good measure.
STORY_ARGS = ("--cycles", "9", "--interval", "1")


@contextmanager
def _demo_process(
    tmp_path: Path, *args: str, settings: Mapping[str, str] | None = None
) -> Iterator[subprocess.Popen[str]]:
    """``python -m service demo ARGS`` in an empty folder, with no creditwatch settings around
    but ``settings`` and a temporary folder of its own, which must be empty again when it has
    exited. Killed if the test leaves it running (a hung demo fails its test, not the whole
    run)."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("CREDITWATCH_", "ANTHROPIC_"))
    }
    env.update(settings or {})
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    env["TMPDIR"] = str(scratch)
    process = subprocess.Popen(
        [sys.executable, "-m", "service", "demo", *args],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=30)
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()
    assert list(scratch.iterdir()) == [], "the demo left its temporary folder behind"


def _first(lines: list[str], text: str) -> int:
    found = [number for number, line in enumerate(lines) if text in line]
    assert found, f"no line with {text!r} in:\n" + "\n".join(lines)
    return found[0]


def test_the_demo_tells_the_whole_story_in_order_and_keeps_its_secrets(tmp_path: Path) -> None:
    """Backfill, budget alert, low balance, reload, resolved, status: in that order, at every
    sink, exit 0, nothing on stderr, and neither the demo key nor the webhook secret shown."""
    with _demo_process(tmp_path, *STORY_ARGS) as process:
        out, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    assert err == ""
    lines = out.splitlines()
    story = [
        _first(lines, "backfilled"),
        _first(lines, "[slack sink]   Budget 'monthly' crossed 50%"),
        _first(lines, "[slack sink]   Spend spike"),
        _first(lines, "[slack sink]   Balance $"),
        _first(lines, "auto-reload (simulated)"),
        _first(lines, "[slack sink]   Resolved: Balance"),
        _first(lines, "`creditwatch status` at"),
        _first(lines, "  Balance            $"),
    ]
    assert story == sorted(story)
    assert "is below $250.00" in lines[story[3]]
    first_alert = re.search(r"first alert reached a sink ([0-9.]+) s after the demo started", out)
    assert first_alert is not None
    assert float(first_alert.group(1)) < 10
    # Every alert reaches the three sinks; the signature holds; mail has both parts.
    slack = [line for line in lines if "[slack sink]" in line]
    webhook = [line for line in lines if "[webhook sink]" in line]
    mail = [line for line in lines if "[email sink]" in line]
    assert len(slack) == len(webhook) == len(mail) >= 4
    assert all("signature valid" in line for line in webhook)
    assert all("text + HTML" in line for line in mail)
    assert any("resolved (info): Balance" in line for line in webhook)
    assert "Alerts             pending 0, sending 0" in out
    assert "failed 0" in out
    for secret in (DEMO_KEY, DEMO_SECRET, DEMO_SECRET.removeprefix("whsec_"), "/services/"):
        assert secret not in out + err


_AMOUNT = re.compile(r"\$[0-9,]+\.[0-9]+|[0-9.]+×")


def _alerts(lines: list[str]) -> list[str]:
    """What reached the Slack-style sink, amounts left out."""
    return [_AMOUNT.sub("…", line) for line in lines if "[slack sink]" in line]


def test_the_demo_on_the_analytics_api_tells_the_same_story(tmp_path: Path) -> None:
    """CREDITWATCH_USAGE_SOURCE=analytics: the demo says so, shows each hour estimated and then
    billed, and the same alerts reach every sink as on the usage report; amounts may differ
    slightly (analytics books inference_geo as none, and charges the hourly bill)."""
    (tmp_path / "messages").mkdir()
    (tmp_path / "analytics").mkdir()
    with (
        _demo_process(tmp_path / "messages", *STORY_ARGS) as messages,
        _demo_process(
            tmp_path / "analytics", *STORY_ARGS, settings={"CREDITWATCH_USAGE_SOURCE": "analytics"}
        ) as analytics,
    ):
        legacy_out, legacy_err = messages.communicate(timeout=90)
        out, err = analytics.communicate(timeout=90)
    assert (messages.returncode, analytics.returncode) == (0, 0), legacy_err + err
    assert err == ""
    lines = out.splitlines()
    opening = lines[: _first(lines, "[cycle  1]")]
    assert any(
        "usage source         analytics: the Usage and Cost Analytics API" in line
        for line in opening
    )
    assert not any("usage source" in line for line in legacy_out.splitlines())
    # The hour estimated in one cycle is billed in the next.
    costs = [line for line in lines if "hourly cost (Analytics API):" in line]
    assert len(costs) == 9
    for earlier, later in pairwise(costs):
        estimated = re.search(r"([0-9]{2}:00) estimated \$[0-9.,]+ so far", earlier)
        assert estimated is not None, earlier
        assert f"{estimated.group(1)} billed $" in later
    assert sorted(_alerts(lines)) == sorted(_alerts(legacy_out.splitlines()))
    assert len(_alerts(lines)) >= 5
    webhook = [line for line in lines if "[webhook sink]" in line]
    mail = [line for line in lines if "[email sink]" in line]
    assert len(webhook) == len(mail) == len(_alerts(lines))
    assert all("signature valid" in line for line in webhook)
    assert (
        "  Usage source       analytics (Usage and Cost Analytics API, beta); data refreshed 20"
        in out
    )
    assert "  Usage source       messages (usage report)" in legacy_out
    assert "Alerts             pending 0, sending 0" in out
    for secret in (DEMO_KEY, DEMO_SECRET, DEMO_SECRET.removeprefix("whsec_")):
        assert secret not in out + err


def test_the_demo_takes_the_usage_source_from_the_env_file_under_the_environment(
    tmp_path: Path,
) -> None:
    """The usage source comes from --env-file, the environment winning; nothing else does."""
    env_file = tmp_path / "creditwatch.env"
    env_file.write_text(
        "CREDITWATCH_USAGE_SOURCE=analytics\nANTHROPIC_ADMIN_KEY=sk-ant-admin01-not-for-the-demo\n"
    )

    def chosen(environ: dict[str, str]) -> dict[str, str]:
        return user_choices(CommandContext(Namespace(env_file=env_file), environ=environ))

    assert chosen({}) == {"CREDITWATCH_USAGE_SOURCE": "analytics"}
    assert chosen({"CREDITWATCH_USAGE_SOURCE": "messages"}) == {
        "CREDITWATCH_USAGE_SOURCE": "messages"
    }


def test_a_bad_usage_source_stops_the_demo_before_it_starts(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """CREDITWATCH_USAGE_SOURCE=bogus is a configuration error (exit 78) naming the variable."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CREDITWATCH_USAGE_SOURCE", "bogus")
    code, out, err = run_cli(capsys, "demo", "--cycles", "1")
    assert code == 78
    assert "creditwatch demo:" not in out
    assert "CREDITWATCH_USAGE_SOURCE: 'bogus' is not messages" in err


@pytest.mark.parametrize(
    "after", ["creditwatch demo:", "[cycle  2]"], ids=["while-starting", "mid-run"]
)
def test_ctrl_c_stops_the_demo_cleanly(tmp_path: Path, after: str) -> None:
    """SIGINT while it starts or between cycles: exit 0 or 130, no traceback, the sinks shut."""
    seen: list[str] = []
    ready = threading.Event()
    with _demo_process(tmp_path, "--interval", "1") as process:
        assert process.stdout is not None
        assert process.stderr is not None
        stdout, stderr = process.stdout, process.stderr

        def read() -> None:
            for line in stdout:
                seen.append(line)
                if after in line:
                    ready.set()

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        assert ready.wait(30), "".join(seen)
        process.send_signal(signal.SIGINT)
        process.wait(timeout=30)
        reader.join(timeout=5)
        err = stderr.read()
    out = "".join(seen)
    assert process.returncode in (0, 130), out + err
    assert "Traceback" not in out + err
    if process.returncode == 0:
        assert "Stopped after" in out
        assert "  Balance            $" in out


EPOCH = datetime(2001, 1, 1, tzinfo=UTC)


@given(st.integers(0, 98 * 365 * 86400).map(lambda seconds: EPOCH + timedelta(seconds=seconds)))
def test_the_story_is_a_recent_wednesday_inside_one_month(now: datetime) -> None:
    """Whatever the date, the story starts 06:00 UTC on a Wednesday, has ended by now, lies in
    one calendar month (the monthly budget does not start again) and is at most three weeks
    old."""
    start = story_start(now)
    assert (start.weekday(), start.hour, start.minute) == (2, 6, 0)
    assert start + STORY <= now
    assert month_of(start - HISTORY) == month_of(start + STORY)
    assert now - start < timedelta(days=22)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--cycles", "99999999999"), "not between 0 and 1000000"),
        (("--interval", "1e308"), "not between 0.1 and 86400"),
        (("--interval", "0.5"), "shorter than 1 second"),
    ],
)
def test_bad_arguments_are_usage_errors(
    capsys: pytest.CaptureFixture[str], args: tuple[str, ...], message: str
) -> None:
    """A bad --cycles or --interval is exit 2 naming the problem, before anything starts."""
    code, out, err = run_cli(capsys, "demo", *args)
    assert code == 2
    assert out == ""
    assert message in err
