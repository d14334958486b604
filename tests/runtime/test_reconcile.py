"""Reconciliation end to end: the simulator's bill departs from the estimate on purpose (a price
change mid-month, code execution, a priority-tier day, a bill revised two days later), and
after reconcile the ledger charges each day and workspace what the bill says, on both databases.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session
from sqlmodel import col

from service.admin_api.retry import RetryPolicy
from service.domain.usage import CostRow
from service.errors import MalformedResponse
from service.runtime.cycle import Runtime
from service.runtime.facts import build_facts
from service.runtime.reconciling import reconcile
from service.settings import Settings, load_settings
from service.simulator import ManualClock, SimulatorServer, Workload, WorkloadSpec
from service.simulator.workload import BillPriceChange, BillRevision, CodeExecution
from service.store.balance import balance_nanos
from service.store.credit_sync import current_walk, ledger_terms
from service.store.engine import read_transaction
from service.store.tables import LEDGER, USAGE_ROWS, BillAdjustment, BilledCost
from tests.helpers import COST, group_by, whole_walk

KEY = "sk-ant-admin01-reconcile-test-key-0123456789"
START = datetime(2025, 8, 1, tzinfo=UTC)
NOW = datetime(2025, 8, 18, 12, 30, tzinfo=UTC)
TODAY = datetime(2025, 8, 18, tzinfo=UTC)
DAY = timedelta(days=1)
OPENING_AT = "2025-08-06T06:00:00Z"  # 08-06 begins before it: the first adjusted day is 08-07
FIRST_DAY = datetime(2025, 8, 7, tzinfo=UTC)
PRICE_CHANGE = datetime(2025, 8, 14, tzinfo=UTC)
PRIORITY_DAY = datetime(2025, 8, 12, tzinfo=UTC)
REVISED_DAY = datetime(2025, 8, 16, tzinfo=UTC)
CODE_FROM = datetime(2025, 8, 10, tzinfo=UTC)
OPUS = "claude-opus-4-6"
MODELS = ("claude-sonnet-4-20250514", "claude-haiku-4-5-20251001", OPUS)
FAST_RETRY = RetryPolicy(max_retries=1, base_delay=0.001, max_delay=0.001)
NEW_OPUS_OUTPUT = """
[[model]]
id = "claude-opus-4-6"
[[model.prices]]
effective_from = 2025-08-14
input = "5"
output = "31.25"
"""


def scripted(**overrides: Any) -> WorkloadSpec:
    """Seed 33 has batch, priority, long-context and US-geo streams; the bill is scripted."""
    values: dict[str, Any] = {
        "seed": 33,
        "start": START,
        "n_workspaces": 2,
        "n_keys": 6,
        "models": MODELS,
        "bill_price_changes": (
            BillPriceChange(PRICE_CHANGE, OPUS, Decimal("1.25"), "output_tokens"),
        ),
        "code_execution": (CodeExecution(Decimal("1.5"), workspace=0, start=CODE_FROM),),
        "priority_days": (PRIORITY_DAY,),
        "bill_revisions": (BillRevision(REVISED_DAY, Decimal("1.02"), after=2 * DAY),),
    }
    values.update(overrides)
    return WorkloadSpec(**values)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(NOW)


@pytest.fixture
def spec() -> WorkloadSpec:
    return scripted()


@pytest.fixture
def simulator(spec: WorkloadSpec, clock: ManualClock) -> Iterator[SimulatorServer]:
    with SimulatorServer(Workload(spec), admin_key=KEY, clock=clock) as server:
        yield server


def settings_for(simulator: SimulatorServer, db_url: str, **extra: str) -> Settings:
    env = {
        "ANTHROPIC_ADMIN_KEY": KEY,
        "ANTHROPIC_BASE_URL": simulator.base_url,
        "CREDITWATCH_DATABASE_URL": db_url,
        "CREDITWATCH_STARTING_BALANCE": "5000",
        "CREDITWATCH_STARTING_BALANCE_AT": OPENING_AT,
        **extra,
    }
    return load_settings(env, None, now=NOW)


def bill_of(simulator: SimulatorServer, day: datetime) -> dict[str, tuple[Decimal, int]]:
    """The simulator's bill of ``day`` per workspace, read with plain httpx: the exact amount in
    nano-USD and the amount with each row rounded to a nano-dollar (as the ledger stores it)."""
    params = [
        ("starting_at", f"{day:%Y-%m-%dT%H:%M:%SZ}"),
        ("ending_at", f"{day + DAY:%Y-%m-%dT%H:%M:%SZ}"),
        *group_by("workspace_id", "description"),
    ]
    headers = {"x-api-key": KEY, "anthropic-version": "2023-06-01"}
    body = httpx.get(simulator.base_url + COST, params=params, headers=headers).json()
    exact: dict[str, Decimal] = defaultdict(Decimal)
    rounded: dict[str, int] = defaultdict(int)
    for row in body["data"][0]["results"]:
        nanos = Decimal(row["amount"]) * 10**7  # cents to nano-dollars
        exact[row["workspace_id"] or ""] += nanos
        rounded[row["workspace_id"] or ""] += int(nanos.to_integral_value(ROUND_HALF_EVEN))
    return {workspace: (exact[workspace], rounded[workspace]) for workspace in exact}


def charges_of(session: Session, day: datetime) -> tuple[dict[str, int], dict[str, int]]:
    """What the ledger charges each workspace for ``day`` (usage plus adjustment), and the
    priority-tier part of it."""
    charged: dict[str, int] = defaultdict(int)
    priority: dict[str, int] = defaultdict(int)
    u = USAGE_ROWS
    rows = session.execute(
        select(u.c.workspace_id, u.c.service_tier, func.sum(u.c.charged_nanos))
        .where(u.c.bucket_start >= day, u.c.bucket_start < day + DAY)
        .group_by(u.c.workspace_id, u.c.service_tier)
    )
    for workspace, tier, amount in rows:
        charged[workspace] += int(amount)
        if tier == "priority":
            priority[workspace] += int(amount)
    for row in session.scalars(select(BillAdjustment).where(col(BillAdjustment.day) == day)):
        charged[row.workspace_id] += row.adjusted_nanos
    return dict(charged), dict(priority)


def ledger_day_total(session: Session, day: datetime) -> int:
    """What the ledger's own entries charge for ``day``: usage and adjustments, positive."""
    total = session.execute(
        select(func.coalesce(func.sum(LEDGER.c.amount_nanos), 0)).where(
            LEDGER.c.kind.in_(("usage", "adjustment")),
            LEDGER.c.at >= day,
            LEDGER.c.at < day + DAY,
        )
    ).scalar_one()
    return -int(total)


def snapshot(engine: Engine) -> dict[str, Any]:
    """Everything reconciling can change."""
    with read_transaction(engine) as session:
        entries = session.execute(
            select(LEDGER.c.kind, LEDGER.c.at, LEDGER.c.amount_nanos).order_by(LEDGER.c.id)
        ).all()
        bills = session.execute(
            select(col(BilledCost.day), col(BilledCost.workspace_id), col(BilledCost.amount_nanos))
        ).all()
        adjustments = [
            (row.day, row.workspace_id, row.billed_nanos, row.adjusted_nanos)
            for row in session.scalars(select(BillAdjustment))
        ]
        return {
            "entries": [tuple(e) for e in entries],
            "bills": sorted(tuple(b) for b in bills),
            "adjustments": sorted(adjustments),
            "balance": balance_nanos(session),
        }


def assert_ledger_is_the_bill(
    engine: Engine, simulator: SimulatorServer, days: list[datetime]
) -> None:
    """Per day and workspace: the ledger charges the bill (plus the priority tier it omits),
    exactly to the nano-dollar of each bill row, and to the cent of the bill's exact sum."""
    with read_transaction(engine) as session:
        for day in days:
            bill = bill_of(simulator, day)
            charged, priority = charges_of(session, day)
            for workspace in set(bill) | set(charged):
                exact, rounded = bill.get(workspace, (Decimal(0), 0))
                without_priority = charged.get(workspace, 0) - priority.get(workspace, 0)
                assert without_priority == rounded, (day, workspace)
                assert abs(without_priority - exact) < Decimal(10**7), (day, workspace)
            total = sum(rounded for _, rounded in bill.values()) + sum(priority.values())
            assert ledger_day_total(session, day) == total, day


def test_the_ledger_charges_each_day_and_workspace_what_the_bill_says(
    simulator: SimulatorServer, db_url: str, clock: ManualClock
) -> None:
    """Price change, code execution, priority day: after reconcile, ledger == bill, exactly."""
    with Runtime(settings_for(simulator, db_url), retry=FAST_RETRY) as runtime:
        runtime.cycle(clock)
        result = runtime.reconcile(clock)
        adjusted = [d.day for d in result.days if d.status == "adjusted"]
        assert adjusted == [FIRST_DAY + k * DAY for k in range(11)]  # 08-07 .. 08-17
        assert_ledger_is_the_bill(runtime.engine, simulator, adjusted)
        with read_transaction(runtime.engine) as session:
            rows = {(r.day, r.workspace_id): r for r in session.scalars(select(BillAdjustment))}
            days = {day for day, _ in rows}
            assert FIRST_DAY - DAY not in days, "a day that begins before the starting balance"
            assert TODAY not in days, "today is never adjusted"
            adjustment_days = {
                at.replace(hour=0)
                for (at,) in session.execute(
                    select(LEDGER.c.at).where(LEDGER.c.kind == "adjustment")
                )
            }
            assert adjustment_days <= set(adjusted)
            # The priority tier keeps its estimate: charged beside the bill, not adjusted away.
            priority_day = [r for (day, _), r in rows.items() if day == PRIORITY_DAY]
            assert sum(r.priority_nanos for r in priority_day) > 0
            assert all(r.priority_nanos == 0 for (day, _), r in rows.items() if day != PRIORITY_DAY)
            # Code execution is only in the bill, in the first named workspace.
            workspace = simulator.workload.workspaces[0].id
            code = json.loads(rows[(CODE_FROM, workspace)].breakdown)
            assert ["", "code_execution", 1_500_000_000, 0] in code

            # The price change: Opus output billed at 1.25x from its date, not before.
            def opus_output(day: datetime) -> tuple[int, int]:
                lines = [
                    line
                    for (d, _), r in rows.items()
                    if d == day
                    for line in json.loads(r.breakdown)
                    if line[0] == OPUS and line[1] == "output_tokens"
                ]
                return sum(line[2] for line in lines), sum(line[3] for line in lines)

            billed, estimated = opus_output(PRICE_CHANGE)
            assert abs(Decimal(billed) / Decimal(estimated) - Decimal("1.25")) < Decimal("1e-6")
            billed, estimated = opus_output(PRICE_CHANGE - DAY)
            assert abs(billed - estimated) < 100


def test_a_second_run_books_nothing(
    simulator: SimulatorServer, db_url: str, clock: ManualClock
) -> None:
    """Re-running over the same bill and usage changes no entry, bill or balance."""
    with Runtime(settings_for(simulator, db_url), retry=FAST_RETRY) as runtime:
        runtime.cycle(clock)
        runtime.reconcile(clock)
        before = snapshot(runtime.engine)
        again = runtime.reconcile(clock)
        assert again.booked_nanos == 0
        assert [d.day for d in again.days] == [TODAY - k * DAY for k in (3, 2, 1)]
        assert snapshot(runtime.engine) == before


def test_a_revised_bill_books_only_the_new_difference(
    simulator: SimulatorServer, db_url: str, clock: ManualClock
) -> None:
    """Two days after 08-16 ended its bill grows 2%: one new entry per workspace for 08-16."""
    with Runtime(settings_for(simulator, db_url), retry=FAST_RETRY) as runtime:
        runtime.cycle(clock)
        runtime.reconcile(clock)
        old_bill = bill_of(simulator, REVISED_DAY)
        before = snapshot(runtime.engine)
        clock.advance(DAY)  # 08-19 12:30: the revision is out, 08-18 has finished
        runtime.cycle(clock)
        result = runtime.reconcile(clock)
        new_bill = bill_of(simulator, REVISED_DAY)
        assert all(new_bill[w][1] > old_bill[w][1] for w in old_bill)
        revised = next(d for d in result.days if d.day == REVISED_DAY)
        expected = sum(new_bill[w][1] - old_bill[w][1] for w in new_bill)
        assert revised.booked_nanos == expected
        after = snapshot(runtime.engine)
        added = after["entries"][len(before["entries"]) :]
        by_day: dict[datetime, int] = defaultdict(int)
        for kind, at, amount in added:
            if kind == "adjustment":
                by_day[at.replace(hour=0)] += -amount
        assert by_day[REVISED_DAY] == expected
        assert set(by_day) <= {REVISED_DAY, REVISED_DAY + 2 * DAY}, "only 08-16 and 08-18 moved"
        assert_ledger_is_the_bill(runtime.engine, simulator, [REVISED_DAY, REVISED_DAY + 2 * DAY])


def test_the_drift_alert_names_the_model_and_resolves_when_a_day_is_within_bounds(
    simulator: SimulatorServer, db_url: str, clock: ManualClock, tmp_path: Path
) -> None:
    """Opus output billed 1.25x: health:drift says so; once the price book knows the new rate
    the newest day is within 5% and the alert resolves (the ledger still equals the bill)."""
    with Runtime(settings_for(simulator, db_url), retry=FAST_RETRY) as runtime:
        runtime.cycle(clock)
        result = runtime.reconcile(clock)
    (alert,) = [a for a in result.alerts if a.identity.rule == "health:drift"]
    assert alert.kind == "alert"
    # The worst day of the re-check window (08-15..08-17) is named: 08-16, revised upwards.
    assert alert.content.title.startswith("The bill for 2025-08-16 differs from the estimate")
    summary = alert.content.summary
    assert "claude-opus-4-6 output: billed $" in summary
    assert "the bill's rate looks 1.25× the price book's" in summary
    assert "code execution: billed $1.50, not in the estimate" in summary
    prices = tmp_path / "prices.toml"
    prices.write_text(NEW_OPUS_OUTPUT)
    settings = settings_for(simulator, db_url, CREDITWATCH_PRICES_FILE=str(prices))
    clock.advance(DAY)
    with Runtime(settings, retry=FAST_RETRY) as runtime:
        runtime.cycle(clock)  # re-prices Opus output from 08-14
        result = runtime.reconcile(clock)
        assert_ledger_is_the_bill(
            runtime.engine, simulator, [PRICE_CHANGE + k * DAY for k in range(5)]
        )
    re_checked = {d.day for d in result.days}
    assert PRICE_CHANGE in re_checked, "re-priced days are compared with their stored bill again"
    kinds = [(a.identity.rule, a.kind) for a in result.alerts]
    # 08-16 is still off (its +2% revision and code execution): the alert holds while it is in
    # the window, and resolves once the window's days are all within bounds.
    assert ("health:drift", "resolved") not in kinds
    with Runtime(settings, retry=FAST_RETRY) as runtime:
        for _ in range(2):
            clock.advance(DAY)
            runtime.cycle(clock)
            result = runtime.reconcile(clock)
            kinds += [(a.identity.rule, a.kind) for a in result.alerts]
    assert ("health:drift", "resolved") in kinds


def test_a_bad_cost_page_is_rejected_without_touching_the_ledger(
    simulator: SimulatorServer, db_url: str, clock: ManualClock
) -> None:
    """A cost page that does not parse raises before anything is written."""
    with Runtime(settings_for(simulator, db_url), retry=FAST_RETRY) as runtime:
        runtime.cycle(clock)
        runtime.reconcile(clock)
        before = snapshot(runtime.engine)
        clock.advance(DAY)
        simulator.faults.add_malformed("string_int", path_prefix=COST)
        with pytest.raises(MalformedResponse, match="amount"):
            runtime.reconcile(clock)
        assert snapshot(runtime.engine) == before


def test_yesterday_waits_until_its_last_hours_have_settled(
    simulator: SimulatorServer, db_url: str, clock: ManualClock
) -> None:
    """At 00:05 yesterday's last buckets may still grow: it is adjusted only once collection
    has read past its end by the look-back window (3 h), never against growing hours."""
    clock.now = TODAY + timedelta(minutes=5)
    with Runtime(settings_for(simulator, db_url), retry=FAST_RETRY) as runtime:
        runtime.cycle(clock)
        early = runtime.reconcile(clock)
        yesterday = {d.day: d.status for d in early.days}[TODAY - DAY]
        assert yesterday == "not_collected"
        clock.now = TODAY + timedelta(hours=3, minutes=5)
        runtime.cycle(clock)
        later = runtime.reconcile(clock)
        assert {d.day: d.status for d in later.days}[TODAY - DAY] == "adjusted"


def test_days_whose_usage_is_not_collected_are_not_adjusted(
    simulator: SimulatorServer, db_url: str, clock: ManualClock
) -> None:
    """Before collection has read a day, its bill is stored but nothing is booked for it."""
    with Runtime(settings_for(simulator, db_url), retry=FAST_RETRY) as runtime:
        result = runtime.reconcile(clock)
        assert result.days
        assert {d.status for d in result.days} == {"not_collected"}
        assert result.booked_nanos == 0
        with read_transaction(runtime.engine) as session:
            assert session.scalars(select(BillAdjustment)).first() is None
            assert session.scalars(select(BilledCost)).first() is not None


@pytest.mark.parametrize("spec", [scripted(bill_adjustment=Decimal("0.9"))], ids=["discount"])
def test_the_walk_reloads_and_budgets_see_the_adjusted_ledger(
    simulator: SimulatorServer, db_url: str, clock: ManualClock
) -> None:
    """A bill 10% below the estimate books credits back; the balance walk (and the reloads it
    derives) and the monthly budget follow the adjusted ledger."""
    settings = settings_for(
        simulator,
        db_url,
        CREDITWATCH_STARTING_BALANCE="300",
        CREDITWATCH_AUTO_RELOAD_THRESHOLD="100",
        CREDITWATCH_AUTO_RELOAD_TO="400",
        CREDITWATCH_MONTHLY_BUDGET="5000",
    )
    with Runtime(settings, retry=FAST_RETRY) as runtime:
        runtime.cycle(clock)
        with read_transaction(runtime.engine) as session:
            budget_before = build_facts(session, settings, clock()).budgets[0].spent_nanos
        result = runtime.reconcile(clock)
        assert result.booked_nanos < 0, "the bill is below the estimate: credits back"
        with read_transaction(runtime.engine) as session:
            terms = ledger_terms(session, settings.ledger.credit_terms())
            walked = current_walk(session, "1h", terms, clock())
            assert walked is not None
            assert walked.balance_nanos == balance_nanos(session)
            booked_reloads = session.execute(
                select(LEDGER.c.at, LEDGER.c.amount_nanos)
                .where(LEDGER.c.kind == "reload")
                .order_by(LEDGER.c.at)
            ).all()
            whole = whole_walk(session, "1h", terms, clock())
            assert [(r.at, r.granted_nanos) for r in whole.reloads] == [
                tuple(row) for row in booked_reloads
            ]
            assert whole.balance_nanos == walked.balance_nanos
            budget = build_facts(session, settings, clock()).budgets[0]
            assert budget.spent_nanos == budget_before + result.booked_nanos


def test_a_later_starting_balance_takes_the_adjustments_of_earlier_days_back(
    simulator: SimulatorServer, db_url: str, clock: ManualClock
) -> None:
    """Days that now begin before the starting balance are no longer adjusted to their bill."""
    with Runtime(settings_for(simulator, db_url), retry=FAST_RETRY) as runtime:
        runtime.cycle(clock)
        runtime.reconcile(clock)
    later = settings_for(simulator, db_url, CREDITWATCH_STARTING_BALANCE_AT="2025-08-12T00:00:00Z")
    with Runtime(later, retry=FAST_RETRY) as runtime:
        runtime.cycle(clock)
        with read_transaction(runtime.engine) as session:
            days = {row.day for row in session.scalars(select(BillAdjustment))}
            assert min(days) == PRIORITY_DAY
            early = session.execute(
                select(func.coalesce(func.sum(LEDGER.c.amount_nanos), 0)).where(
                    LEDGER.c.kind == "adjustment", LEDGER.c.at < PRIORITY_DAY
                )
            ).scalar_one()
            assert early == 0
            walked = current_walk(session, "1h", later.ledger.credit_terms(), clock())
            assert walked is not None
            assert walked.balance_nanos == balance_nanos(session)
        assert_ledger_is_the_bill(
            runtime.engine, simulator, [PRIORITY_DAY + k * DAY for k in range(6)]
        )


class FixedBill:
    """A cost source answering with given rows (the tests' stand-in for the client)."""

    def __init__(self, rows: list[CostRow]) -> None:
        self.rows = rows

    def cost_report(
        self, starting_at: datetime, ending_at: datetime | None = None
    ) -> list[CostRow]:
        return self.rows


def cost_row(day: datetime, usd: str, currency: str = "USD") -> CostRow:
    return CostRow(day, Decimal(usd), currency, "tokens", "x", OPUS, "output_tokens", "standard",
                   None, None, None)  # fmt: skip


def test_a_bill_not_in_usd_is_refused_and_a_missing_bill_is_waited_for(
    simulator: SimulatorServer, db_url: str, clock: ManualClock
) -> None:
    """An amount in another currency books nothing; a day without bill lines is not adjusted."""
    settings = settings_for(simulator, db_url)
    with Runtime(settings, retry=FAST_RETRY) as runtime:
        runtime.cycle(clock)
        before = snapshot(runtime.engine)
        euro = FixedBill([cost_row(FIRST_DAY, "12.5", currency="EUR")])
        with pytest.raises(MalformedResponse, match="'EUR', not USD"):
            reconcile(runtime.engine, euro, runtime.book, settings, clock)
        assert snapshot(runtime.engine) == before
        result = reconcile(runtime.engine, FixedBill([]), runtime.book, settings, clock)
        assert {d.status for d in result.days} == {"awaiting_bill"}
        assert result.booked_nanos == 0
        assert snapshot(runtime.engine)["entries"] == before["entries"]
