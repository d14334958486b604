"""Rule grammars: budgets, balance, runway, spike and health settings, every mistake exit 78."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from service.errors import ConfigError
from service.settings import load_settings
from service.settings.rules import BudgetRule, SpikeRule, describe_rules

BASE = {"ANTHROPIC_ADMIN_KEY": "sk-ant-admin01-rules-test-key"}


def rules_of(**env: str) -> tuple[BudgetRule, ...]:
    return load_settings({**BASE, **env}, None).rules.budgets


def test_the_common_case_is_one_monthly_budget() -> None:
    """CREDITWATCH_MONTHLY_BUDGET alone alerts at 50, 80 and 100% of the month, org-wide."""
    (budget,) = rules_of(CREDITWATCH_MONTHLY_BUDGET="500")
    assert budget.name == "monthly"
    assert (budget.limit, budget.period, budget.tz, budget.scope) == (
        Decimal(500),
        "month",
        "UTC",
        (),
    )
    assert budget.percents == (Decimal(50), Decimal(80), Decimal(100))


def test_alert_thresholds_are_sorted_and_unique() -> None:
    """Given in any order, with or without %, each threshold once."""
    (budget,) = rules_of(
        CREDITWATCH_MONTHLY_BUDGET="500", CREDITWATCH_ALERT_THRESHOLDS="100,25%,80,80.0,12.5"
    )
    assert budget.percents == (Decimal("12.5"), Decimal(25), Decimal(80), Decimal(100))


def test_a_named_budget_takes_every_key() -> None:
    """limit, period, tz, thresholds, amounts, forecast, scope and channels."""
    (budget,) = rules_of(
        CREDITWATCH_BUDGET_TEAM_A=(
            "limit=200 period=week tz=America/Los_Angeles thresholds=90,50 amounts=150,75 "
            "forecast=100 workspace=Production model=claude-sonnet-4-5 api_key=ci channels=ops"
        ),
        CREDITWATCH_CHANNEL_OPS="slack:https://hooks.slack.com/services/T/B/x",
    )
    assert budget.name == "team_a"
    assert budget.variable == "CREDITWATCH_BUDGET_TEAM_A"
    assert (budget.limit, budget.period, budget.tz) == (Decimal(200), "week", "America/Los_Angeles")
    assert budget.percents == (Decimal(50), Decimal(90))
    assert budget.amounts == (Decimal(75), Decimal(150))
    assert budget.forecast_percents == (Decimal(100),)
    assert budget.scope == (
        ("workspace", "Production"),
        ("api_key", "ci"),
        ("model", "claude-sonnet-4-5"),
    )
    assert budget.scope_text == "workspace=Production,api_key=ci,model=claude-sonnet-4-5"
    assert budget.channels == ("ops",)


def test_named_budgets_default_to_the_alert_thresholds() -> None:
    """CREDITWATCH_ALERT_THRESHOLDS is every budget's default, not only the monthly one's."""
    budgets = rules_of(
        CREDITWATCH_MONTHLY_BUDGET="500",
        CREDITWATCH_ALERT_THRESHOLDS="90",
        CREDITWATCH_BUDGET_DAILY="limit=40 period=day",
    )
    assert [b.name for b in budgets] == ["monthly", "daily"]
    assert all(b.percents == (Decimal(90),) for b in budgets)


@pytest.mark.parametrize(
    ("env", "variable", "problem"),
    [
        ({"CREDITWATCH_MONTHLY_BUDGET": "-5"}, "CREDITWATCH_MONTHLY_BUDGET", "is negative"),
        ({"CREDITWATCH_MONTHLY_BUDGET": "0"}, "CREDITWATCH_MONTHLY_BUDGET", "more than 0"),
        (
            {"CREDITWATCH_MONTHLY_BUDGET": "500", "CREDITWATCH_ALERT_THRESHOLDS": "50,abc"},
            "CREDITWATCH_ALERT_THRESHOLDS",
            "'abc' is not a percentage",
        ),
        (
            {"CREDITWATCH_MONTHLY_BUDGET": "500", "CREDITWATCH_ALERT_THRESHOLDS": "0,50"},
            "CREDITWATCH_ALERT_THRESHOLDS",
            "above 0 and at most 1000",
        ),
        (
            {"CREDITWATCH_MONTHLY_BUDGET": "500", "CREDITWATCH_ALERT_THRESHOLDS": "50,,80"},
            "CREDITWATCH_ALERT_THRESHOLDS",
            "empty item",
        ),
        ({"CREDITWATCH_ALERT_THRESHOLDS": "50"}, "CREDITWATCH_ALERT_THRESHOLDS", "needs"),
        ({"CREDITWATCH_BUDGET_X": "limit=-10"}, "CREDITWATCH_BUDGET_X", "limit='-10' is negative"),
        ({"CREDITWATCH_BUDGET_X": "period=week"}, "CREDITWATCH_BUDGET_X", "has no limit="),
        (
            {"CREDITWATCH_BUDGET_X": "limit=10 period=fortnight"},
            "CREDITWATCH_BUDGET_X",
            "period='fortnight' is not day, week or month",
        ),
        (
            {"CREDITWATCH_BUDGET_X": "limit=10 project=alpha"},
            "CREDITWATCH_BUDGET_X",
            "'project' is not a known key",
        ),
        (
            {"CREDITWATCH_BUDGET_X": "limit=10 tz=Mars/Olympus"},
            "CREDITWATCH_BUDGET_X",
            "tz='Mars/Olympus' is not an IANA time zone",
        ),
        (
            {"CREDITWATCH_BUDGET_X": "limit=10 thresholds=50,abc"},
            "CREDITWATCH_BUDGET_X",
            "thresholds='50,abc': 'abc' is not a percentage",
        ),
        (
            {"CREDITWATCH_BUDGET_X": "limit=10 thresholds=0"},
            "CREDITWATCH_BUDGET_X",
            "above 0",
        ),
        (
            {"CREDITWATCH_BUDGET_X": "limit=10 amounts=0"},
            "CREDITWATCH_BUDGET_X",
            "amounts='0' must be more than 0",
        ),
        (
            {"CREDITWATCH_BUDGET_X": "limit=10 limit=20"},
            "CREDITWATCH_BUDGET_X",
            "given twice",
        ),
        ({"CREDITWATCH_BUDGET_X": "limit=10 monthly"}, "CREDITWATCH_BUDGET_X", "not key=value"),
        (
            {"CREDITWATCH_BUDGET_X": "limit=10 channels=ops"},
            "CREDITWATCH_BUDGET_X",
            "channels='ops' is not a configured channel (configured: none)",
        ),
        (
            {"CREDITWATCH_BUDGET_X": "limit=1e999999"},
            "CREDITWATCH_BUDGET_X",
            "more than the ledger holds",
        ),
        (
            {"CREDITWATCH_MONTHLY_BUDGET": "500", "CREDITWATCH_BUDGET_MONTHLY": "limit=5"},
            "CREDITWATCH_BUDGET_MONTHLY",
            "keep one",
        ),
        ({"CREDITWATCH_LOW_BALANCE": "-1"}, "CREDITWATCH_LOW_BALANCE", "is negative"),
        ({"CREDITWATCH_LOW_BALANCE": "lots"}, "CREDITWATCH_LOW_BALANCE", "not a number"),
        ({"CREDITWATCH_RUNWAY_ALERT": "30m"}, "CREDITWATCH_RUNWAY_ALERT", "shorter than"),
        ({"CREDITWATCH_RUNWAY_ALERT": "91d"}, "CREDITWATCH_RUNWAY_ALERT", "longer than"),
        ({"CREDITWATCH_SPIKE": "min=20"}, "CREDITWATCH_SPIKE", "has no factor="),
        ({"CREDITWATCH_SPIKE": "factor=1"}, "CREDITWATCH_SPIKE", "not a number above 1"),
        ({"CREDITWATCH_SPIKE": "factor=4 min=-2"}, "CREDITWATCH_SPIKE", "is negative"),
        ({"CREDITWATCH_SPIKE": "factor=4 days=30"}, "CREDITWATCH_SPIKE", "from 2 to 14"),
        ({"CREDITWATCH_SPIKE": "factor=4 sigma=3"}, "CREDITWATCH_SPIKE", "not a known key"),
        ({"CREDITWATCH_REPEAT_INTERVAL": "often"}, "CREDITWATCH_REPEAT_INTERVAL", "duration"),
        (
            {"CREDITWATCH_COLLECTION_ALERT": "10s"},
            "CREDITWATCH_COLLECTION_ALERT",
            "shorter than",
        ),
        (
            {"CREDITWATCH_EXPIRY_WARNING": "2y"},
            "CREDITWATCH_EXPIRY_WARNING",
            "not a duration",
        ),
    ],
)
def test_rule_mistakes_name_the_variable_the_problem_and_an_example(
    env: dict[str, str], variable: str, problem: str
) -> None:
    """Each mistake is one ConfigError: exit 78 with the variable, the problem and an example."""
    with pytest.raises(ConfigError) as caught:
        load_settings({**BASE, **env}, None)
    assert caught.value.variable == variable
    assert problem in caught.value.problem
    assert "(example: " in str(caught.value)


def test_balance_runway_spike_and_health_settings() -> None:
    """The single-value rules parse to exact values; health has its defaults."""
    rules = load_settings(
        {
            **BASE,
            "CREDITWATCH_LOW_BALANCE": "25.50",
            "CREDITWATCH_RUNWAY_ALERT": "3d",
            "CREDITWATCH_SPIKE": "factor=4 min=20 days=5",
        },
        None,
    ).rules
    assert rules.low_balance == Decimal("25.50")
    assert rules.runway == timedelta(days=3)
    assert rules.spike == SpikeRule(Decimal(4), Decimal(20), 5)
    assert rules.repeat_interval == timedelta(hours=24)
    assert rules.collection_alert == timedelta(minutes=30)
    assert rules.expiry_warning == timedelta(days=14)


def test_a_repeat_interval_of_zero_never_repeats() -> None:
    """CREDITWATCH_REPEAT_INTERVAL=0: a condition is alerted once, then resolved."""
    rules = load_settings({**BASE, "CREDITWATCH_REPEAT_INTERVAL": "0"}, None).rules
    assert rules.repeat_interval is None


def test_check_config_lists_the_rules_in_words() -> None:
    """Every configured rule, and the health rules that are always on."""
    rules = load_settings(
        {
            **BASE,
            "CREDITWATCH_MONTHLY_BUDGET": "500",
            "CREDITWATCH_BUDGET_OPS": (
                "limit=50 period=day tz=Europe/Paris workspace=Ops forecast=100"
            ),
            "CREDITWATCH_LOW_BALANCE": "25",
            "CREDITWATCH_REPEAT_INTERVAL": "0",
        },
        None,
    ).rules
    assert describe_rules(rules) == [
        "budget monthly: 500 USD per month for the whole organization; alerts at 50%, 80%, 100%",
        "budget ops: 50 USD per day (Europe/Paris) for workspace=Ops; alerts at 50%, 80%, 100%; "
        "when the projected day reaches 100%",
        "low balance: the balance is below 25 USD",
        "health: collection failing for 30m, data stale, an unknown model price, a reload "
        "blocked or cut by the monthly limit, credits expiring within 14d, a day's bill "
        "differing from the estimate by more than 5%",
        "conditions that persist are not repeated",
    ]


def test_a_scope_name_with_spaces_is_quoted() -> None:
    """Workspace and key names often have spaces: a quoted value keeps them."""
    (budget,) = rules_of(
        CREDITWATCH_BUDGET_CODE="limit=50 workspace=\"Claude Code\" api_key='Deploy bot'"
    )
    assert budget.scope == (("workspace", "Claude Code"), ("api_key", "Deploy bot"))


def test_an_unclosed_quote_names_the_variable() -> None:
    """A quote left open is a configuration error, not a scope that swallows the rest."""
    with pytest.raises(ConfigError, match="CREDITWATCH_BUDGET_CODE"):
        rules_of(CREDITWATCH_BUDGET_CODE='limit=50 workspace="Claude Code')


def test_drift_alert_defaults_to_five_percent_and_reads_a_percentage() -> None:
    """CREDITWATCH_DRIFT_ALERT is a percent of the day's bill; ``7.5`` and ``7.5%`` agree."""
    assert load_settings(BASE, None).rules.drift_percent == Decimal(5)
    for raw in ("7.5", "7.5%", " 7.50 "):
        settings = load_settings({**BASE, "CREDITWATCH_DRIFT_ALERT": raw}, None)
        assert settings.rules.drift_percent == Decimal("7.5")
        assert settings.warnings == ()


@pytest.mark.parametrize("raw", ["0", "-3", "101", "lots", "NaN", "5 %%"])
def test_a_bad_drift_alert_names_the_variable_with_an_example(raw: str) -> None:
    """Above 0 and at most 100 percent; anything else stops the program with an example."""
    with pytest.raises(ConfigError) as caught:
        load_settings({**BASE, "CREDITWATCH_DRIFT_ALERT": raw}, None)
    message = str(caught.value)
    assert message.startswith("CREDITWATCH_DRIFT_ALERT: ")
    assert "example: CREDITWATCH_DRIFT_ALERT=5" in message
