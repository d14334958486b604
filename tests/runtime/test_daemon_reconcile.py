"""The daemon's reconcile job: scheduled with its own id at start, leader only, one log line
when it fails, its schedule kept across a reload."""

from __future__ import annotations

import logging
from pathlib import Path

import httpx
import pytest

from service.runtime.cycle import Runtime
from service.runtime.daemon import RECONCILE_CHECK_SECONDS, RECONCILE_JOB, RECONCILE_SECONDS, Daemon
from service.settings import Settings, load_settings
from tests.helpers import CLI_KEY, CLI_NOW, exploding


class Follower:
    """Another instance holds the lead."""

    def hold(self) -> bool:
        return False

    def release(self) -> None:
        return None


def settings_at(tmp_path: Path) -> Settings:
    env = {
        "ANTHROPIC_ADMIN_KEY": CLI_KEY,
        "ANTHROPIC_BASE_URL": "http://127.0.0.1:9",
        "CREDITWATCH_DATABASE_URL": f"sqlite:///{tmp_path / 'daemon.db'}",
    }
    return load_settings(env, None, now=CLI_NOW)


def exploding_runtime(settings: Settings) -> Runtime:
    return Runtime(settings, transport=httpx.MockTransport(exploding))


def test_reconcile_is_a_daily_job_with_its_own_id_that_a_reload_keeps(tmp_path: Path) -> None:
    """Looked at hourly (a run is due daily, or on taking the lead); rescheduling on SIGHUP
    does not move it."""
    daemon = Daemon(settings_at(tmp_path), lambda: settings_at(tmp_path))
    daemon.schedule()
    job = daemon.scheduler.get_job(RECONCILE_JOB)
    assert job is not None
    assert job.max_instances == 1
    assert job.coalesce is True
    assert job.trigger.interval.total_seconds() == RECONCILE_CHECK_SECONDS
    first = job.next_run_time
    daemon.schedule()
    assert daemon.scheduler.get_job(RECONCILE_JOB).next_run_time == first
    daemon.runtime.close()


def test_a_failing_reconcile_is_one_log_line(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """An unexpected error in the job is one ERROR line, never an exception in the scheduler."""
    settings = settings_at(tmp_path)
    daemon = Daemon(settings, lambda: settings, make_runtime=exploding_runtime)
    caplog.set_level(logging.INFO)
    daemon.reconcile()
    (error,) = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert error.getMessage().startswith("reconcile failed: unexpected error RuntimeError: boom")
    daemon.runtime.close()


def test_only_the_leader_reconciles(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A follower's job does nothing: the leader books the bill, once."""
    settings = settings_at(tmp_path)
    daemon = Daemon(
        settings, lambda: settings, make_runtime=exploding_runtime, leadership=Follower()
    )
    caplog.set_level(logging.INFO)
    daemon.reconcile()
    assert not [r for r in caplog.records if "reconcile" in r.getMessage()]
    daemon.runtime.close()


def test_reconcile_runs_daily_and_again_on_taking_the_lead(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The hourly look runs reconcile once a day; an instance that (re)takes the lead runs it
    at its next look instead of waiting for the rest of the day."""
    daemon = Daemon(settings_at(tmp_path), lambda: settings_at(tmp_path))
    runs: list[int] = []

    class Done:
        waiting = False
        alerts: tuple[object, ...] = ()

        def summary(self) -> str:
            return "reconciled"

        def fields(self) -> dict[str, object]:
            return {}

    def counted(clock: object) -> Done:
        runs.append(1)
        return Done()

    monkeypatch.setattr(daemon.runtime, "reconcile", counted)
    try:
        daemon.reconcile()
        daemon.reconcile()
        assert len(runs) == 1, "the second look in the same day does nothing"
        assert daemon.reconciled_at is not None
        daemon.reconciled_at -= RECONCILE_SECONDS
        daemon.reconcile()
        assert len(runs) == 2, "a day later it runs again"
        daemon.leading = False
        daemon.check_leadership()  # SQLite: takes the lead again
        daemon.reconcile()
        assert len(runs) == 3, "a new term reconciles at once"
    finally:
        daemon.runtime.close()
