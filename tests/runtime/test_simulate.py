"""`simulate`: scenarios from repeated flags, replayed read-only over stored usage."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from service.commands.main import main
from service.domain.credit_walk import ReloadPolicy
from service.domain.usage import TokenCounts, UsageKey, UsageRow
from service.errors import ScenarioError
from service.runtime.scenarios import scenarios_from_flags
from service.runtime.simulate import replay
from service.settings import Settings, load_settings
from service.store import balance, tables, usage_booking
from service.store.engine import transaction
from tests.helpers import flat_price

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
        None,
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
        ({"thresholds": ["50"], "targets": None}, "give both"),
        ({"balances": ["lots"]}, "not a number"),
        ({"balances": ["-5"]}, "is negative"),
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
        scenarios_from_flags(None, **arguments)


CONFIGURED = ReloadPolicy(100 * USD, 500 * USD, 2000 * USD)


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        ({"targets": ["1000"]}, ReloadPolicy(100 * USD, 1000 * USD, 2000 * USD)),
        ({"limits": ["100"]}, ReloadPolicy(100 * USD, 500 * USD, 100 * USD)),
        (
            {"thresholds": ["200"], "targets": ["900"]},
            ReloadPolicy(200 * USD, 900 * USD, 2000 * USD),
        ),
        ({"limits": ["off"]}, ReloadPolicy(100 * USD, 500 * USD, None)),
        ({"thresholds": ["off"]}, None),
    ],
)
def test_flags_not_given_keep_the_configured_values(
    flags: dict[str, list[str]], expected: ReloadPolicy | None
) -> None:
    """Each scenario changes only what its flags name; 'off' switches a setting off."""
    arguments: dict[str, list[str] | None] = {
        "thresholds": None,
        "targets": None,
        "limits": None,
        "balances": None,
    }
    arguments.update(flags)
    current, scenario = scenarios_from_flags(CONFIGURED, **arguments)
    assert current.policy == CONFIGURED
    assert scenario.policy == expected


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
        balance.ensure_opening(session, 100 * USD, T0, T0)
        usage_booking.book_usage(session, rows, flat_price, now=T0)


def test_replay_compares_settings_and_writes_nothing(engine: Engine, db_url: str) -> None:
    """Three settings over the same usage: no reload, unlimited reload, a tight monthly limit."""
    store_usage(engine, [40, 40, 40, 0, 0, 40, 40])
    settings = make_settings(db_url)
    scenarios = scenarios_from_flags(
        None,
        thresholds=["off", "30", "30"],
        targets=["off", "100", "100"],
        limits=["off", "off", "60"],
        balances=None,
    )
    before = ledger_rows(engine)
    with transaction(engine) as session:
        results = replay(
            session, "1h", settings.ledger.credit_terms(), scenarios, since=T0, until=T0 + 8 * H
        )
    assert ledger_rows(engine) == before
    current, off, unlimited, limited = results
    assert current["reloads"] == off["reloads"] == 0
    assert off["first_zero_at"] == "2026-11-02T02:00:00Z"
    assert off["lowest_balance_usd"] == "-100.00"
    assert float(off["hours_at_zero"]) == 6.0
    assert unlimited["reloads"] == 2
    assert unlimited["hours_at_zero"] == "0.0"
    assert unlimited["final_balance_usd"] == "60.00"
    # 100 → 60 → 20: reload 60 of 80 (limit) → 80 → 40; h5 → 0, blocked; h6 → -40.
    assert limited["reloaded_usd"] == "60.00"
    assert limited["blocked_reloads"] == 2
    assert limited["first_zero_at"] == "2026-11-02T05:00:00Z"
    assert limited["hours_at_zero"] == "3.0"
    assert limited["final_balance_usd"] == "-40.00"


def ledger_rows(engine: Engine) -> list[tuple[object, ...]]:
    with transaction(engine) as session:
        return [
            tuple(r) for r in session.execute(select(tables.LEDGER).order_by(tables.LEDGER.c.id))
        ]


def test_replay_from_a_later_time_starts_from_the_ledger_state(engine: Engine, db_url: str) -> None:
    """From mid-window, a scenario starts with the real balance and this month's reloads."""
    store_usage(engine, [40, 40, 40, 0, 0, 40, 40])
    settings = make_settings(
        db_url,
        CREDITWATCH_AUTO_RELOAD_THRESHOLD="30",
        CREDITWATCH_AUTO_RELOAD_TO="100",
        CREDITWATCH_AUTO_RELOAD_MONTHLY_LIMIT="100",
    )
    policy = ReloadPolicy(30 * USD, 100 * USD, 100 * USD)
    scenarios = scenarios_from_flags(
        policy, thresholds=None, targets=None, limits=None, balances=None
    )
    with transaction(engine) as session:
        whole = replay(
            session, "1h", settings.ledger.credit_terms(), scenarios, since=T0, until=T0 + 8 * H
        )[0]
        # Up to 03:00 the same policy has reloaded 80 (of a 100 limit) and left 60.
        later = replay(
            session,
            "1h",
            settings.ledger.credit_terms(),
            scenarios,
            since=T0 + 3 * H,
            until=T0 + 8 * H,
        )[0]
    assert later["starting_balance_usd"] == "60.00"
    assert later["reloaded_usd"] == "20.00", "only 20 of the month's allowance is left"
    assert later["final_balance_usd"] == whole["final_balance_usd"]


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
    assert main(["simulate", *flags], clock=lambda: T0 + 4 * H) == 0
    out = capsys.readouterr().out
    assert "current" in out
    assert "scenario 2" in out
    assert "hours at zero" in out
    assert main(["simulate", *flags, "--json"], clock=lambda: T0 + 4 * H) == 0
    payload = json.loads(capsys.readouterr().out)
    assert [s["scenario"] for s in payload["scenarios"]] == ["current", "scenario 1", "scenario 2"]
    assert payload["scenarios"][2]["final_balance_usd"] == "260.00"


@pytest.mark.parametrize("opening", [None, T0 + 2 * H], ids=["no opening", "before the opening"])
def test_starting_balance_given_once_starts_the_current_column_too(
    engine: Engine,
    db_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    opening: datetime | None,
) -> None:
    """With no balance known at --since, --starting-balance B replays the current settings."""
    rows = [
        UsageRow(
            UsageKey(T0 + i * H, "1h", "m", "k", None, "standard", "0-200k", "global"),
            TokenCounts(uncached_input_tokens=10 * 10**6),
        )
        for i in range(4)
    ]
    with transaction(engine) as session:
        if opening is not None:
            balance.ensure_opening(session, 100 * USD, opening, T0)
        usage_booking.book_usage(session, rows, flat_price, now=T0)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ANTHROPIC_ADMIN_KEY", "sk-ant-admin01-simulate-test")
    monkeypatch.setenv("CREDITWATCH_DATABASE_URL", db_url)
    flags = ["--since", T0.isoformat(), "--starting-balance", "25", "--json"]
    assert main(["simulate", *flags], clock=lambda: T0 + 4 * H) == 0
    current = json.loads(capsys.readouterr().out)["scenarios"][0]
    assert current["scenario"] == "current"
    assert current["starting_balance_usd"] == "25.00"
    assert current["final_balance_usd"] == "-15.00"
    assert current["first_zero_at"] == "2026-11-02T02:00:00Z"


def test_simulate_reports_when_budget_alerts_would_have_gone_out(
    engine: Engine,
    db_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Replayed bucket by bucket through the daemon's rule and dedup: each threshold's moment,
    one alert naming the highest when a bucket crosses two."""
    store_usage(engine, [40, 40, 40, 0, 0, 40, 40, 300])
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ANTHROPIC_ADMIN_KEY", "sk-ant-admin01-simulate-test")
    monkeypatch.setenv("CREDITWATCH_DATABASE_URL", db_url)
    flags = [
        "--since",
        T0.isoformat(),
        "--budget",
        "limit=200 period=day thresholds=50,100",
        "--budget",
        "limit=1000 period=month thresholds=10,20,50",
        "--json",
    ]
    assert main(["simulate", *flags], clock=lambda: T0 + 9 * H) == 0
    alerts = json.loads(capsys.readouterr().out)["budget_alerts"]
    assert [(a["at"], a["budget"], a["threshold"], a["spent_usd"]) for a in alerts] == [
        ("2026-11-02T03:00:00Z", "scenario_1", "50%", "120.00"),
        ("2026-11-02T03:00:00Z", "scenario_2", "10%", "120.00"),
        ("2026-11-02T07:00:00Z", "scenario_1", "100%", "200.00"),
        ("2026-11-02T07:00:00Z", "scenario_2", "20%", "200.00"),
        # 500 in one bucket crosses 50% of the month: the 20% and 50% of scenario 2 in one
        # cycle name only the highest, and scenario 1 has nothing left to say.
        ("2026-11-02T08:00:00Z", "scenario_2", "50%", "500.00"),
    ]
    assert main(["simulate", *flags[:-1]], clock=lambda: T0 + 9 * H) == 0
    text = capsys.readouterr().out
    assert "Budget alerts these budgets would have sent" in text
    assert "scenario_2  50%" in text


def test_a_bad_budget_scenario_is_a_usage_error(
    engine: Engine, db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--budget takes the CREDITWATCH_BUDGET_<NAME> grammar; a mistake says what and how."""
    store_usage(engine, [40])
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ANTHROPIC_ADMIN_KEY", "sk-ant-admin01-simulate-test")
    monkeypatch.setenv("CREDITWATCH_DATABASE_URL", db_url)
    code = main(["simulate", "--budget", "limit=200 period=fortnight"], clock=lambda: T0 + 2 * H)
    assert code == 2
