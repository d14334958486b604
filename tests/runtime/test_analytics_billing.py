"""CREDITWATCH_USAGE_SOURCE=analytics charges the hourly bill: exact, and only the difference.

Against the simulator over real sockets, on both databases. What the simulator bills is read
with the official ``anthropic`` SDK's own client (an independent reader of the wire format and
of its cents), and compared with the ledger hour by hour.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal

import anthropic
import pytest
from sqlalchemy import Engine, func, select
from sqlmodel import col

from service.runtime.cycle import Runtime
from service.runtime.reconciling import reconcile_due
from service.simulator import ManualClock, SimulatorServer, Workload, WorkloadSpec
from service.store import tables
from service.store.engine import transaction
from tests.runtime.test_usage_source import (
    FAST_RETRY,
    KEY,
    MONTH,
    NEXT_MONTH,
    ledger_is_consistent,
    make_settings,
    report_totals,
    stored_totals,
)

BOOKING = ["model", "api_key_id", "workspace_id", "service_tier", "context_window"]
NANOS = Decimal("1e-9")
HALF = datetime(2026, 2, 22, tzinfo=UTC)


def sdk_bill(
    simulator: SimulatorServer, start: datetime, end: datetime
) -> tuple[dict[datetime, int], dict[datetime, Decimal]]:
    """The simulator's bill per hour, read by the SDK grouped as creditwatch books: each row's
    cents as whole nano-USD (half to even), and the exact total in USD."""
    per_row: dict[datetime, int] = defaultdict(int)
    exact: dict[datetime, Decimal] = defaultdict(Decimal)
    with anthropic.Anthropic(api_key=KEY, base_url=simulator.base_url, max_retries=0) as sdk:
        for item in sdk.beta.organization.analytics.cost.list(
            starting_at=start.strftime("%Y-%m-%dT%H:%M:%SZ"),
            ending_at=end.strftime("%Y-%m-%dT%H:%M:%SZ"),
            time_bucket_width="1h",
            group_by=BOOKING,  # type: ignore[arg-type]
            limit=1000,
        ):
            assert item.cost.currency == "USD"
            usd = Decimal(item.cost.amount) / 100
            hour = datetime.fromisoformat(str(item.starting_at).replace("Z", "+00:00"))
            per_row[hour.astimezone(UTC)] += int(usd.quantize(NANOS, ROUND_HALF_EVEN) / NANOS)
            exact[hour.astimezone(UTC)] += usd
    return dict(per_row), dict(exact)


def ledger_hours(engine: Engine, *, priority: bool) -> dict[datetime, tuple[int, int]]:
    """(cost, charged) per hour of the usage rows, priority tier or the rest."""
    usage = tables.USAGE_ROWS
    tier = usage.c.service_tier == "priority"
    with transaction(engine) as session:
        rows = session.execute(
            select(
                usage.c.bucket_start, func.sum(usage.c.cost_nanos), func.sum(usage.c.charged_nanos)
            )
            .where(tier if priority else ~tier)
            .group_by(usage.c.bucket_start)
        ).all()
    return {start: (int(cost), int(charged)) for start, cost, charged in rows}


def usage_entries(engine: Engine) -> dict[datetime, list[int]]:
    ledger = tables.LEDGER
    with transaction(engine) as session:
        rows = session.execute(
            select(ledger.c.at, ledger.c.amount_nanos)
            .where(ledger.c.kind == "usage")
            .order_by(ledger.c.id)
        ).all()
    found: dict[datetime, list[int]] = defaultdict(list)
    for at, amount in rows:
        found[at].append(int(amount))
    return dict(found)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(NEXT_MONTH + timedelta(hours=4))


def serve(spec: WorkloadSpec, clock: ManualClock) -> Iterator[SimulatorServer]:
    with SimulatorServer(Workload(spec), admin_key=KEY, clock=clock) as server:
        yield server


@pytest.fixture
def exact_sim(clock: ManualClock) -> Iterator[SimulatorServer]:
    """List price billed as is (every hour's bill is whole nano-dollars); 3 priority streams."""
    yield from serve(WorkloadSpec(seed=4, start=MONTH - timedelta(days=1), n_keys=5), clock)


@pytest.fixture
def discount_sim(clock: ManualClock) -> Iterator[SimulatorServer]:
    """A 3% discount: bills below list price, with fractions of a nano-dollar per row."""
    spec = WorkloadSpec(
        seed=7, start=MONTH - timedelta(days=1), n_keys=4, bill_adjustment=Decimal("0.97")
    )
    yield from serve(spec, clock)


def test_a_week_on_analytics_charges_each_hour_its_bill_exactly(
    exact_sim: SimulatorServer, db_url: str
) -> None:
    """February's last week through the Analytics API: every hour's charge is the bill, to the
    nano-dollar, tokens are the usage report's, priority tier (no cost rows) stays an estimate.
    (A whole month of tokens through each source: ``test_usage_source.py``.)"""
    settings = make_settings(
        exact_sim, db_url, "analytics", CREDITWATCH_BACKFILL_FROM="2026-02-22T00Z"
    )
    with Runtime(settings, retry=FAST_RETRY) as runtime:
        runtime.cycle(lambda: NEXT_MONTH + timedelta(hours=4))
        engine = runtime.engine
        per_row, exact = sdk_bill(exact_sim, HALF, NEXT_MONTH)
        hours = ledger_hours(engine, priority=False)
        in_month = {h: cost for h, (cost, _) in hours.items() if h < NEXT_MONTH}
        assert len(in_month) == 7 * 24
        assert in_month == per_row
        assert in_month == {h: int(usd / NANOS) for h, usd in exact.items()}
        assert all(charged == cost for cost, charged in hours.values())
        assert stored_totals(engine, NEXT_MONTH) == report_totals(exact_sim, HALF, NEXT_MONTH)
        with transaction(engine) as session:
            usage = tables.USAGE_ROWS
            tiers = session.execute(
                select(usage.c.service_tier, usage.c.billed_nanos.is_(None), func.count())
                .where(usage.c.bucket_start < NEXT_MONTH)
                .group_by(usage.c.service_tier, usage.c.billed_nanos.is_(None))
            ).all()
        assert {(tier == "priority", bool(unbilled)) for tier, unbilled, _ in tiers} == {
            (False, False),
            (True, True),
        }, "every row but the priority tier's carries its bill"
        assert ledger_hours(engine, priority=True)
        ledger_is_consistent(engine)


def test_a_discounted_bill_is_charged_and_its_list_price_kept(
    discount_sim: SimulatorServer, db_url: str
) -> None:
    """The bill after a discount is what is charged, each row's cents rounded once to the
    nano-dollar; list_amount is kept beside it (the discount report reads it)."""
    settings = make_settings(
        discount_sim, db_url, "analytics", CREDITWATCH_BACKFILL_FROM="2026-02-25T00Z"
    )
    with Runtime(settings, retry=FAST_RETRY) as runtime:
        runtime.cycle(lambda: NEXT_MONTH + timedelta(hours=4))
        engine = runtime.engine
        start = datetime(2026, 2, 25, tzinfo=UTC)
        per_row, exact = sdk_bill(discount_sim, start, NEXT_MONTH)
        hours = {
            h: c for h, (c, _) in ledger_hours(engine, priority=False).items() if h < NEXT_MONTH
        }
        assert hours == per_row
        assert any(Decimal(hours[h]) * NANOS != exact[h] for h in hours), (
            "a 3% discount leaves fractions of a nano-dollar: the test would not see rounding"
        )
        with transaction(engine) as session:
            usage = tables.USAGE_ROWS
            billed, listed = session.execute(
                select(func.sum(usage.c.billed_nanos), func.sum(usage.c.list_nanos)).where(
                    usage.c.bucket_start >= start, usage.c.bucket_start < NEXT_MONTH
                )
            ).one()
        assert abs(int(billed) - int(listed) * Decimal("0.97")) < len(hours) * 100
        assert int(billed) < int(listed)
        ledger_is_consistent(engine)


def test_an_hour_is_estimated_until_its_bill_then_books_only_the_difference(
    db_url: str,
) -> None:
    """Cost rows that lag the usage by two hours: the newest hours are charged the estimate,
    and once their bill is read one more entry per hour brings the charge to the bill."""
    clock = ManualClock(datetime(2026, 2, 10, 12, 10, tzinfo=UTC))
    spec = WorkloadSpec(
        seed=11,
        start=datetime(2026, 2, 9, tzinfo=UTC),
        n_keys=3,
        bill_adjustment=Decimal("0.9"),
        cost_delay=timedelta(hours=2),
        growth_window=timedelta(0),
    )
    for simulator in serve(spec, clock):
        settings = make_settings(
            simulator, db_url, "analytics", CREDITWATCH_BACKFILL_FROM="2026-02-10T00Z"
        )
        with Runtime(settings, retry=FAST_RETRY) as runtime:
            runtime.cycle(clock)
            engine = runtime.engine
            ten, eleven, noon = (datetime(2026, 2, 10, h, tzinfo=UTC) for h in (10, 11, 12))
            with transaction(engine) as session:
                usage = tables.USAGE_ROWS
                unbilled = {
                    start
                    for (start,) in session.execute(
                        select(usage.c.bucket_start)
                        .where(usage.c.service_tier != "priority", usage.c.billed_nanos.is_(None))
                        .distinct()
                    )
                }
            assert unbilled == {ten, eleven, noon}, "hours not ended 2 h ago have no bill yet"
            estimate = ledger_hours(engine, priority=False)[ten][0]
            clock.advance(timedelta(hours=2))
            runtime.cycle(clock)
            bill, _ = sdk_bill(simulator, ten, eleven + timedelta(hours=1))
            after = ledger_hours(engine, priority=False)
            assert after[ten][0] == bill[ten]
            assert after[eleven][0] == bill[eleven]
            assert bill[ten] < estimate, "a 10% discount: the bill is below the list estimate"
            entries = usage_entries(engine)[ten]
            priority = ledger_hours(engine, priority=True).get(ten, (0, 0))[1]
            assert len(entries) == 2
            assert -sum(entries) == bill[ten] + priority
            assert entries[1] == estimate - bill[ten], "the switch books only the difference"
            ledger_is_consistent(engine)


def test_a_bill_read_after_its_day_was_reconciled_is_not_counted_twice(db_url: str) -> None:
    """Bills 5 h late, a 3 h look-back: reconcile adjusts the day to the cost report; a later
    re-read (a longer look-back) brings the hourly bills, and the next reconcile takes back the
    part of the adjustment they now cover (at once, not when collection has moved on), and
    the daemon's hourly look sees that it is due."""
    day = datetime(2026, 2, 10, tzinfo=UTC)
    clock = ManualClock(datetime(2026, 2, 11, 4, 10, tzinfo=UTC))
    spec = WorkloadSpec(
        seed=11,
        start=datetime(2026, 2, 9, tzinfo=UTC),
        n_keys=3,
        bill_adjustment=Decimal("0.9"),
        cost_delay=timedelta(hours=5),
        growth_window=timedelta(0),
    )

    def gap(engine: Engine) -> tuple[int, int]:
        """(charged + adjustment − bill for the day, unbilled rows of the day)."""
        usage, day_end = tables.USAGE_ROWS, day + timedelta(days=1)
        in_day = (
            usage.c.bucket_start >= day,
            usage.c.bucket_start < day_end,
            usage.c.service_tier != "priority",
        )
        with transaction(engine) as session:
            charged = session.execute(select(func.sum(usage.c.charged_nanos)).where(*in_day))
            unbilled = session.execute(
                select(func.count()).where(*in_day, usage.c.billed_nanos.is_(None))
            ).scalar_one()
            adjusted = session.execute(
                select(func.sum(tables.BillAdjustment.adjusted_nanos)).where(
                    col(tables.BillAdjustment.day) == day
                )
            ).scalar_one()
            bill = session.execute(
                select(func.sum(tables.BilledCost.amount_nanos)).where(
                    col(tables.BilledCost.day) == day
                )
            ).scalar_one()
        return int(charged.scalar_one()) + int(adjusted) - int(bill), int(unbilled)

    for simulator in serve(spec, clock):
        backfill = {"CREDITWATCH_BACKFILL_FROM": "2026-02-10T00Z"}
        with Runtime(make_settings(simulator, db_url, "analytics", **backfill)) as runtime:
            runtime.cycle(clock)
            runtime.reconcile(clock)
            difference, unbilled = gap(runtime.engine)
            assert unbilled > 0, "the day's last hours were not billed within the look-back"
            assert difference == 0
        clock.advance(timedelta(hours=8))
        longer = make_settings(
            simulator, db_url, "analytics", CREDITWATCH_LOOKBACK="20h", **backfill
        )
        with Runtime(longer, retry=FAST_RETRY) as runtime:
            runtime.cycle(clock)
            difference, unbilled = gap(runtime.engine)
            assert unbilled == 0
            assert difference != 0, "the hourly bills and the old adjustment overlap"
            assert reconcile_due(runtime.engine, "1h")
            outcome = {d.day: d.status for d in runtime.reconcile(clock).days}
            assert outcome[day] == "adjusted"
            assert gap(runtime.engine) == (0, 0)
            assert not reconcile_due(runtime.engine, "1h")
            ledger_is_consistent(runtime.engine)
