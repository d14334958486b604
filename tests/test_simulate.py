"""`simulate`: scenarios from repeated flags, replayed read-only over stored usage."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select

from service import cli, ledger
from service.config import Settings, load_settings
from service.db import transaction
from service.simulate import ScenarioError, replay, scenarios_from_flags
from service.usage import TokenCounts, UsageKey, UsageRow
from tests.test_ledger import flat_price

T0 = datetime(2026, 11, 2, tzinfo=UTC)
H = timedelta(hours=1)
USD = 10**9


def make_settings(db_url: str = "sqlite://", **extra: str) -> Settings:
    env = {
        "ANTHROPIC_ADMIN_KEY": "sk-ant-admin01-simulate-test",
        "CREDITWATCH_DATABASE_URL": db_url,
        "CREDITWATCH_STARTING_BALANCE": "100",
        "CREDITWATCH_STARTING_BALANCE_AT": T0.isoformat(),
        **extra,
    }
    return load_settings(env, None)


def test_one_flag_applies_to_every_scenario() -> None:
    """A flag given once is shared; repeated flags make one scenario per position."""
    scenarios = scenarios_from_flags(
        make_settings(),
        thresholds=["50", "100"],
        targets=["200", "400"],
        limits=["off"],
        balances=["500"],
    )
    assert [s.name for s in scenarios] == ["current", "scenario 1", "scenario 2"]
    assert scenarios[0].policy is None
    second = scenarios[2]
    assert second.policy is not None
    assert (second.policy.threshold_nanos, second.policy.target_nanos) == (100 * USD, 400 * USD)
    assert second.policy.monthly_limit_nanos is None
    assert second.starting_nanos == 500 * USD


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        ({"thresholds": ["50", "60"], "targets": ["200", "300", "400"]}, "given 2 times"),
        ({"thresholds": ["50"], "targets": ["40"]}, "must be above"),
        ({"thresholds": ["50"], "targets": None}, "must be above"),
        ({"balances": ["lots"]}, "not an amount"),
        ({"balances": ["-5"]}, "non-negative"),
    ],
)
def test_bad_scenarios_are_refused(flags: dict[str, list[str] | None], message: str) -> None:
    """Scenario flags that do not describe a replay say what is wrong."""
    arguments: dict[str, list[str] | None] = {
        "thresholds": None,
        "targets": None,
        "limits": None,
        "balances": None,
    }
    arguments.update(flags)
    with pytest.raises(ScenarioError, match=message):
        scenarios_from_flags(make_settings(), **arguments)


def store_usage(engine: Engine, hourly_usd: list[int]) -> None:
    rows = [
        UsageRow(
            UsageKey(T0 + i * H, "1h", "m", "k", None, "standard", "0-200k", "global"),
            TokenCounts(uncached_input_tokens=usd * 10**6),
        )
        for i, usd in enumerate(hourly_usd)
        if usd
    ]
    with transaction(engine) as session:
        ledger.ensure_opening(session, 100 * USD, T0, T0)
        ledger.book_usage(session, rows, flat_price, opening_at=T0, now=T0)


def test_replay_compares_settings_and_writes_nothing(engine: Engine, db_url: str) -> None:
    """Three settings over the same usage: no reload, unlimited reload, a tight monthly limit."""
    store_usage(engine, [40, 40, 40, 0, 0, 40, 40])
    settings = make_settings(db_url)
    scenarios = scenarios_from_flags(
        settings,
        thresholds=["off", "30", "30"],
        targets=["off", "100", "100"],
        limits=["off", "off", "60"],
        balances=None,
    )
    with transaction(engine) as session:
        before = session.execute(select(func.count()).select_from(ledger.LEDGER)).scalar_one()
        results = replay(session, settings, scenarios, since=T0, until=T0 + 8 * H)
        after = session.execute(select(func.count()).select_from(ledger.LEDGER)).scalar_one()
    assert before == after
    current, off, unlimited, limited = results
    assert current["reloads"] == off["reloads"] == 0
    assert off["first_zero_at"] == "2026-11-02T02:00:00Z"
    assert off["lowest_balance_usd"] == "-100.00"
    assert float(off["hours_at_zero"]) == 6.0
    assert unlimited["reloads"] == 2
    assert unlimited["hours_at_zero"] == "0.0"
    assert unlimited["final_balance_usd"] == "60.00"
    assert limited["reloaded_usd"] == "60.00"
    assert limited["blocked_reloads"] >= 1
    assert limited["first_zero_at"] is not None


def test_simulate_command_prints_scenarios_side_by_side(
    engine: Engine,
    db_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`creditwatch simulate` with repeated flags prints one column per scenario, and JSON."""
    store_usage(engine, [40, 40, 40])
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(cli, "utc_now", lambda: T0 + 4 * H)
    for name, value in {
        "ANTHROPIC_ADMIN_KEY": "sk-ant-admin01-simulate-test",
        "CREDITWATCH_DATABASE_URL": db_url,
        "CREDITWATCH_STARTING_BALANCE": "100",
        "CREDITWATCH_STARTING_BALANCE_AT": T0.isoformat(),
    }.items():
        monkeypatch.setenv(name, value)
    flags = [
        "--reload-threshold",
        "30",
        "--reload-to",
        "100",
        "--reload-threshold",
        "50",
        "--reload-to",
        "300",
    ]
    assert cli.main(["simulate", *flags]) == 0
    out = capsys.readouterr().out
    assert "current" in out
    assert "scenario 2" in out
    assert "hours at zero" in out
    assert cli.main(["simulate", *flags, "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert [s["scenario"] for s in payload["scenarios"]] == ["current", "scenario 1", "scenario 2"]
    assert payload["scenarios"][2]["final_balance_usd"] == "260.00"
