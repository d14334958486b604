"""The report's figures: estimate and bill side by side, only where the bill covers them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine

from service.domain.report import Report, ReportBy, whole_days
from service.domain.usage import TokenCounts, UsageKey, UsageRow
from service.runtime.report import build_report
from service.settings import Settings, load_settings
from service.store.balance import ensure_opening
from service.store.engine import transaction
from service.store.names import save_names
from service.store.tables import BillAdjustment, BilledCost
from service.store.usage_booking import book_usage
from tests.helpers import flat_price

USD = 10**9
H = timedelta(hours=1)
D0 = datetime(2026, 11, 1, tzinfo=UTC)  # billed at zero, no usage
D1, D2, D3 = D0 + timedelta(days=1), D0 + timedelta(days=2), D0 + timedelta(days=3)
NOW = D3 + 12 * H  # D3 is today: not billed
SONNET, OPUS = "claude-sonnet-4-5-20250929", "claude-opus-4-6"
# (bucket start, model, key, workspace, tier, dollars); None is Anthropic's null.
USAGE = [
    (D1 + 10 * H, SONNET, "apikey_ci", "wrkspc_prod", "standard", 10),
    (D1 + 11 * H, OPUS, None, None, "standard", 20),
    (D1 + 12 * H, OPUS, "apikey_web", "wrkspc_prod", "priority", 5),
    (D2 + 9 * H, SONNET, "apikey_ci", "wrkspc_prod", "standard", 30),
    (D2 + 23 * H, OPUS, "apikey_web", None, "standard", 40),
    (D3 + 8 * H, SONNET, "apikey_ci", "wrkspc_prod", "standard", 50),
]
# (day, workspace, model, cost type, cents as the report says them, in nano-USD here)
BILL = [
    (D1, "wrkspc_prod", "claude-sonnet-4-5", "tokens", 9_900_000_000),
    (D1, "", OPUS, "tokens", 20_400_000_000),
    (D1, "wrkspc_prod", "", "code_execution", 1_000_000_000),
    (D2, "wrkspc_prod", SONNET, "tokens", 30_300_000_000),
    (D2, "", OPUS, "tokens", 39_000_000_000),
]


def settings_for(db_url: str, **extra: str) -> Settings:
    env = {
        "ANTHROPIC_ADMIN_KEY": "sk-ant-admin01-report-test-key-0123456789",
        "CREDITWATCH_DATABASE_URL": db_url,
    }
    return load_settings(env | extra, None)


@pytest.fixture
def ledger(engine: Engine) -> Engine:
    rows = [
        UsageRow(
            UsageKey(start, "1h", model, key, workspace, tier, "0-200k", "global"),
            TokenCounts(
                uncached_input_tokens=usd * 10**6 - 4000,
                cache_creation_5m_tokens=1000,
                cache_creation_1h_tokens=1000,
                cache_read_tokens=1000,
                output_tokens=1000,
                web_search_requests=0,
            ),
        )
        for start, model, key, workspace, tier, usd in USAGE
    ]
    with transaction(engine) as session:
        book_usage(session, rows, flat_price, now=NOW)
        save_names(session, "api_key", {"apikey_ci": "CI", "apikey_web": "Web app"}, NOW)
        save_names(session, "workspace", {"wrkspc_prod": "Production"}, NOW)
        for day, workspace, model, cost_type, nanos in BILL:
            session.add(
                BilledCost(
                    day=day,
                    workspace_id=workspace,
                    description=f"{model or cost_type} usage",
                    cost_type=cost_type,
                    model=model,
                    amount_nanos=nanos,
                    fetched_at=NOW,
                )
            )
        session.add(BillAdjustment(day=D0, workspace_id="", checked_at=NOW))
    return engine


def report_of(
    engine: Engine,
    db_url: str,
    by: ReportBy,
    since: datetime = D0,
    until: datetime = NOW,
    **extra: str,
) -> Report:
    with transaction(engine) as session:
        return build_report(
            session, settings_for(db_url, **extra), by=by, since=since, until=until, now=NOW
        )


def figures(report: Report) -> dict[str, tuple[int, int | None, int | None]]:
    """key: (estimated, billed, difference), in nano-USD."""
    return {
        line.key: (line.estimated_nanos, line.billed_nanos, line.difference_nanos)
        for line in [*report.lines, report.total]
    }


def test_by_model_the_bill_meets_the_estimate_of_the_same_days(ledger: Engine, db_url: str) -> None:
    """Billed days only (not today), priority tier out of the comparison, snapshot ids matched,
    a cost without a model on a line of its own; the difference is exact."""
    report = report_of(ledger, db_url, "model")
    assert [d.date().isoformat() for d in report.billed_days] == [
        "2026-11-01",
        "2026-11-02",
        "2026-11-03",
    ]
    assert figures(report) == {
        SONNET: (90 * USD, 40_200_000_000, 200_000_000),
        OPUS: (65 * USD, 59_400_000_000, -600_000_000),
        "": (0, 1 * USD, 1 * USD),
        "total": (155 * USD, 100_600_000_000, 600_000_000),
    }
    (no_model,) = [line for line in report.lines if line.key == ""]
    assert no_model.name == "Billed without a model: code execution"
    assert report.priority_unbilled_nanos == 5 * USD
    assert [line.key for line in report.lines] == [SONNET, OPUS, ""]


def test_by_workspace_names_the_default_workspace(ledger: Engine, db_url: str) -> None:
    """Workspace lines carry their names, the null one as the default workspace."""
    report = report_of(ledger, db_url, "workspace")
    assert figures(report)["wrkspc_prod"] == (95 * USD, 41_200_000_000, 1_200_000_000)
    assert figures(report)[""] == (60 * USD, 59_400_000_000, -600_000_000)
    assert {line.key: line.name for line in report.lines} == {
        "wrkspc_prod": "Production",
        "": "Default workspace",
    }


def test_by_day_a_day_billed_at_zero_counts_and_today_is_not_billed(
    ledger: Engine, db_url: str
) -> None:
    """A day reconcile checked with no bill reads $0 billed; a day not billed reads None."""
    report = report_of(ledger, db_url, "day")
    assert figures(report) == {
        "2026-11-01": (0, 0, 0),
        "2026-11-02": (35 * USD, 31_300_000_000, 1_300_000_000),
        "2026-11-03": (70 * USD, 69_300_000_000, -700_000_000),
        "2026-11-04": (50 * USD, None, None),
        "total": (155 * USD, 100_600_000_000, 600_000_000),
    }
    assert [d.billed_nanos for d in report.days] == [0, 31_300_000_000, 69_300_000_000, None]


@pytest.mark.parametrize("by", ["api_key", "hour"])
def test_keys_and_hours_are_never_billed_but_the_total_is(
    ledger: Engine, db_url: str, by: ReportBy
) -> None:
    """The cost report has no keys and no hours: "—" per line, the total still compared."""
    report = report_of(ledger, db_url, by)
    assert all(line.billed_nanos is None for line in report.lines)
    assert figures(report)["total"] == (155 * USD, 100_600_000_000, 600_000_000)
    if by == "api_key":
        names = {line.key: line.name for line in report.lines}
        assert names == {"apikey_ci": "CI", "apikey_web": "Web app", "": "Console (no API key)"}
    else:
        assert [line.key for line in report.lines][:2] == ["2026-11-02T10:00Z", "2026-11-02T11:00Z"]


def test_the_four_token_fields_and_web_searches(ledger: Engine, db_url: str) -> None:
    """Uncached input, cache writes (5m + 1h), cache reads and output are summed apart."""
    total = report_of(ledger, db_url, "model").total
    assert (
        total.uncached_input_tokens,
        total.cache_write_tokens,
        total.cache_read_tokens,
        total.output_tokens,
    ) == (155 * 10**6 - 6 * 4000, 6 * 2000, 6 * 1000, 6 * 1000)


@pytest.mark.parametrize(
    ("since", "until", "billed"),
    [
        (D2, D3, ["2026-11-03"]),
        (D1 + timedelta(minutes=30), D3, ["2026-11-03"]),  # 11-02 is not whole
        (D2, D2 + 23 * H, []),  # 11-03's last bucket starts at 23:00: not in the window
        (D2, D2 + 23 * H + timedelta(seconds=1), ["2026-11-03"]),
    ],
)
def test_only_whole_days_of_the_window_are_compared_with_the_bill(
    ledger: Engine, db_url: str, since: datetime, until: datetime, billed: list[str]
) -> None:
    """Bucket-exact: a day is billed in a window only when every bucket of it is inside."""
    report = report_of(ledger, db_url, "day", since=since, until=until)
    assert [d.date().isoformat() for d in report.billed_days] == billed


def test_adjacent_windows_add_up_to_the_whole(ledger: Engine, db_url: str) -> None:
    """[a, b) and [b, c) split at an hour inside a day count every bucket exactly once."""
    cut = D2 + 9 * H + timedelta(minutes=30)
    first = report_of(ledger, db_url, "model", since=D1, until=cut).total.estimated_nanos
    second = report_of(ledger, db_url, "model", since=cut, until=NOW).total.estimated_nanos
    assert first + second == report_of(ledger, db_url, "model", since=D1).total.estimated_nanos
    assert first == 65 * USD  # 11-02 09:00 starts before the cut


def test_whole_days_on_minute_and_day_buckets() -> None:
    """The last bucket of a day is its 23:59 minute, or the day itself."""
    assert whole_days(D1, D1 + timedelta(hours=23, minutes=59, seconds=1), 60) == [D1]
    assert whole_days(D1, D1 + timedelta(hours=23, minutes=59), 60) == []
    assert whole_days(D1, D1 + timedelta(seconds=1), 86400) == [D1]


def test_the_budget_line_and_the_balance(ledger: Engine, db_url: str) -> None:
    """A daily budget draws at its limit; the balance runs from the starting balance on."""
    with transaction(ledger) as session:
        ensure_opening(session, 1000 * USD, D1, NOW)
    report = report_of(
        ledger,
        db_url,
        "day",
        CREDITWATCH_BUDGET_DAILY="limit=45 period=day",
        CREDITWATCH_MONTHLY_BUDGET="3000",
    )
    assert report.budget is not None
    assert report.budget.name == "daily"
    assert {d.budget_nanos for d in report.days} == {45 * USD}
    assert report.budget.spent_nanos == 50 * USD
    balance = report.balance
    assert balance is not None
    assert balance.points[0].at == D1 + H
    assert balance.points[-1].at == NOW
    assert balance.points[-1].balance_nanos == (1000 - 155) * USD
    assert balance.runway_note is not None  # four days are not enough to forecast


def test_a_monthly_budget_is_spread_over_the_days_of_its_month(ledger: Engine, db_url: str) -> None:
    """November has 30 days: $3,000 is $100 a day."""
    report = report_of(ledger, db_url, "day", CREDITWATCH_MONTHLY_BUDGET="3000")
    assert {d.budget_nanos for d in report.days} == {100 * USD}
    assert report.budget is not None
    assert not report.budget.daily


def test_a_window_reaching_into_the_future_draws_no_days_to_come(
    ledger: Engine, db_url: str
) -> None:
    """--until years ahead: the daily series stops at today, the totals are unchanged."""
    far = datetime(2099, 1, 1, tzinfo=UTC)
    report = report_of(ledger, db_url, "day", until=far)
    assert report.days[-1].day == D3
    assert report.total.estimated_nanos == 155 * USD
    assert report.billed_days == report_of(ledger, db_url, "day").billed_days


def test_billed_model_ids_meet_the_usage_reports_spelling() -> None:
    """A family id billed goes to its one snapshot used; an ambiguous one stays as billed."""
    from service.store.report_queries import match_models

    used = ["claude-sonnet-4-5-20250929", "claude-opus-4-1-20250805", "claude-opus-4-1-20990101"]
    billed = {"claude-sonnet-4-5": 1, "claude-opus-4-1": 2, "claude-haiku-4-5": 3, "": 4}
    assert match_models(billed, used) == {
        "claude-sonnet-4-5-20250929": 1,
        "claude-opus-4-1": 2,
        "claude-haiku-4-5": 3,
        "": 4,
    }
