"""Spend by person and product (the Analytics API's ``actor`` and ``product``), end to end.

Against the simulator over real sockets, on both databases: collection attributes the same
money and tokens as it books, budgets scoped by ``actor=``/``product=`` alert with the people
named, ``report --by actor|product`` shows them, and the settings refuse what cannot work.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from msgspec.structs import replace
from sqlalchemy import Engine, func, select

from service.admin_api.analytics import AnalyticsRead
from service.admin_api.analytics_wire import (
    AnalyticsActor,
    AnalyticsCostRow,
    AnalyticsGroup,
    AnalyticsUsageRow,
)
from service.domain.usage import (
    AttributedRow,
    AttributionKey,
    BilledCost,
    TokenCounts,
    UsagePage,
)
from service.errors import ConfigError
from service.pricing import PriceBook
from service.runtime.collector import make_pricer
from service.runtime.cycle import Runtime
from service.runtime.usage_source import UsageFetcher
from service.simulator import ManualClock, SimulatorServer, Workload, WorkloadSpec
from service.simulator.analytics_attribution import Attribution
from service.store import tables
from service.store.attribution import book_attribution, reprice_attribution
from service.store.engine import transaction
from service.store.names import load_names
from tests.helpers import flat_price, run_cli
from tests.receivers import Receiver
from tests.runtime.test_usage_source import FAST_RETRY, KEY, MONTH, make_settings

NOW = MONTH + timedelta(days=9, hours=15, minutes=10)
ADA = "ada.lovelace@example.com"


@pytest.fixture
def workload() -> Workload:
    return Workload(WorkloadSpec(seed=3, start=MONTH - timedelta(days=1), n_keys=6))


@pytest.fixture
def simulator(workload: Workload) -> Iterator[SimulatorServer]:
    with SimulatorServer(workload, admin_key=KEY, clock=ManualClock(NOW)) as server:
        yield server


def hourly(engine: Engine, table_name: str) -> dict[datetime, tuple[int, int]]:
    """(cost, output tokens) per hour of a table."""
    table = tables.USAGE if table_name == "usage" else tables.ATTRIBUTED
    with transaction(engine) as session:
        rows = session.execute(
            select(
                table.c.bucket_start, func.sum(table.c.cost_nanos), func.sum(table.c.output_tokens)
            ).group_by(table.c.bucket_start)
        ).all()
    return {start: (int(cost), int(tokens)) for start, cost, tokens in rows}


def by_actor(engine: Engine) -> Counter[str]:
    attributed = tables.ATTRIBUTED
    with transaction(engine) as session:
        rows = session.execute(
            select(attributed.c.actor, func.sum(attributed.c.cost_nanos)).group_by(
                attributed.c.actor
            )
        ).all()
    return Counter({actor: int(cost) for actor, cost in rows})


def test_attribution_holds_the_same_money_and_tokens_as_the_ledger(
    simulator: SimulatorServer, db_url: str, workload: Workload
) -> None:
    """Every hour: attributed cost and tokens equal the booked ones; people have names."""
    settings = make_settings(
        simulator, db_url, "analytics", CREDITWATCH_BACKFILL_FROM="2026-02-06T00Z"
    )
    with Runtime(settings, retry=FAST_RETRY) as runtime:
        runtime.cycle(lambda: NOW)
        engine = runtime.engine
        booked, attributed = hourly(engine, "usage"), hourly(engine, "attributed")
        assert len(booked) > 4 * 24
        assert attributed == booked
        with transaction(engine) as session:
            names = load_names(session, "actor")
            products = set(session.scalars(select(tables.ATTRIBUTED.c.product).distinct()).all())
    people = {
        actor["user_id"]: actor
        for actor in Attribution(workload).actors.values()
        if actor["type"] == "user_actor"
    }
    assert people
    for user_id, actor in people.items():
        if user_id in names:
            assert names[user_id] == f"{actor['name']} <{actor['email_address']}>"
    assert any(ADA in name for name in names.values())
    assert {"claude_code", "messages_api"} <= products
    assert "message_batches_api" in products or "claude_console" in products


def test_a_budget_for_one_person_alerts_with_the_people_named(
    simulator: SimulatorServer, db_url: str
) -> None:
    """``actor=<e-mail>``: the budget counts only that person's spend, its alert names them and
    their products and models; the organization's budget names the top people too."""
    with Receiver() as receiver:
        settings = make_settings(
            simulator,
            db_url,
            "analytics",
            CREDITWATCH_BACKFILL_FROM="2026-02-07T00Z",
            CREDITWATCH_BUDGET_ADA=f"limit=0.01 period=month actor={ADA} thresholds=100",
            CREDITWATCH_BUDGET_CODE="limit=0.01 period=month product=claude_code thresholds=100",
            CREDITWATCH_MONTHLY_BUDGET="1",
            CREDITWATCH_ALERT_THRESHOLDS="100",
            CREDITWATCH_WEBHOOK_URL=receiver.url,
        )
        with Runtime(settings, retry=FAST_RETRY) as runtime:
            runtime.cycle(lambda: NOW)
            runtime.deliver()
            engine = runtime.engine
            with transaction(engine) as session:
                names = load_names(session, "actor")
                key_names = load_names(session, "api_key")
                attributed = tables.ATTRIBUTED
                product_spend = defaultdict(int)
                for product, cost in session.execute(
                    select(attributed.c.product, func.sum(attributed.c.cost_nanos)).group_by(
                        attributed.c.product
                    )
                ):
                    product_spend[product] = int(cost)
            spend = by_actor(engine)
        alerts = {body["rule"]: body for body in (r.json() for r in receiver.received)}
    ada = next(actor for actor, name in names.items() if ADA in name)
    personal = alerts["budget:ada"]
    assert _nanos(personal["value_usd"]) == spend[ada]
    dimensions = {d["dimension"] for d in personal["drivers"]}
    assert dimensions == {"actor", "product", "model"}
    actors = [d for d in personal["drivers"] if d["dimension"] == "actor"]
    assert [d["id"] for d in actors] == [ada]
    assert ADA in actors[0]["name"]
    assert _nanos(alerts["budget:code"]["value_usd"]) == product_spend["claude_code"]
    org_people = [d for d in alerts["budget:monthly"]["drivers"] if d["dimension"] == "actor"]
    assert len(org_people) == 3
    assert [d["id"] for d in org_people] == [a for a, _ in spend.most_common(3)]
    for driver in org_people:
        expected = names.get(driver["id"]) or key_names.get(driver["id"]) or driver["id"]
        assert driver["name"] == expected, "a person by name and e-mail, an API key by its name"


def _nanos(usd: str) -> int:
    whole, _, fraction = usd.partition(".")
    return int(whole) * 10**9 + int((fraction + "0" * 9)[:9])


def test_report_by_actor_and_product(
    simulator: SimulatorServer, db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``report --by actor`` lists people by name and id, ``--by product`` the products, each
    totalling the ledger's cost, with the hourly bill noted."""
    env_file = tmp_path / "creditwatch.env"
    settings_env = {
        "ANTHROPIC_ADMIN_KEY": KEY,
        "ANTHROPIC_BASE_URL": simulator.base_url,
        "CREDITWATCH_DATABASE_URL": db_url,
        "CREDITWATCH_USAGE_SOURCE": "analytics",
        "CREDITWATCH_BACKFILL_FROM": "2026-02-07T00:00:00Z",
        "CREDITWATCH_STARTING_BALANCE": "1000",
        "CREDITWATCH_STARTING_BALANCE_AT": "2026-02-01T00:00:00Z",
    }
    env_file.write_text("".join(f"{k}={v}\n" for k, v in settings_env.items()))
    settings = make_settings(
        simulator, db_url, "analytics", CREDITWATCH_BACKFILL_FROM="2026-02-07T00Z"
    )
    with Runtime(settings, retry=FAST_RETRY) as runtime:
        runtime.cycle(lambda: NOW)
        total = sum(cost for cost, _ in hourly(runtime.engine, "usage").values())
    window = ["--since", "2026-02-07", "--until", "2026-02-11"]

    def report(*args: str) -> str:
        code, out, err = run_cli(capsys, "--env-file", str(env_file), "report", *args, now=NOW)
        assert code == 0, err
        return out

    for by in ("actor", "product"):
        report_json = json.loads(report("--by", by, *window, "--json"))
        assert report_json["by"] == by
        assert _nanos(report_json["total"]["cost_usd"]) == total
        assert sum(_nanos(row["cost_usd"]) for row in report_json["rows"]) == total
        assert _nanos(report_json["total"]["hourly_billed_usd"]) > 0
    people = report("--by", "actor", *window, "--no-charts")
    assert "Ada Lovelace <ada.lovelace@example.com>" in people
    assert "hourly bill (Analytics API)" in people
    assert "claude_code" in report("--by", "product", *window, "--no-charts")


def test_actor_budgets_need_the_analytics_source_and_no_workspace(
    simulator: SimulatorServer, db_url: str
) -> None:
    """Refused with the variable named: an actor budget on the usage report, and one that also
    names a workspace (the Analytics API cannot group by both beside the pricing dimensions)."""
    with pytest.raises(ConfigError) as refused:
        make_settings(simulator, db_url, "messages", CREDITWATCH_BUDGET_ADA=f"limit=5 actor={ADA}")
    assert refused.value.variable == "CREDITWATCH_BUDGET_ADA"
    assert "CREDITWATCH_USAGE_SOURCE=analytics" in str(refused.value)
    with pytest.raises(ConfigError) as both:
        make_settings(
            simulator,
            db_url,
            "analytics",
            CREDITWATCH_BUDGET_ADA=f"limit=5 actor={ADA} workspace=Production",
        )
    assert "cannot be combined with workspace=" in str(both.value)


class _OneHourClient:
    """Analytics answers of one hour: usage with no actor and with an actor of a kind newer
    than this reader (no id), and their bills; no other groups."""

    def __init__(self, hour: datetime) -> None:
        self.hour = hour

    def _group(self, actor: AnalyticsActor | None) -> AnalyticsGroup:
        return AnalyticsGroup(actor=actor, product="messages_api", model="claude-haiku-4-5")

    def analytics_usage(self, *args: object, **kwargs: object) -> AnalyticsRead[AnalyticsUsageRow]:
        end = self.hour + timedelta(hours=1)
        rows = tuple(
            AnalyticsUsageRow(
                self.hour, end, self._group(actor), TokenCounts(output_tokens=tokens), tokens, 1
            )
            for actor, tokens in ((None, 100), (AnalyticsActor("future_actor", None), 50))
        )
        return AnalyticsRead(rows, None)

    def analytics_cost(self, *args: object, **kwargs: object) -> AnalyticsRead[AnalyticsCostRow]:
        end = self.hour + timedelta(hours=1)
        rows = tuple(
            AnalyticsCostRow(self.hour, end, self._group(actor), cents / 100, cents / 100, "USD", 1)
            for actor, cents in (
                (None, Decimal("0.05")),
                (AnalyticsActor("future_actor", None), Decimal("0.025")),
            )
        )
        return AnalyticsRead(rows, None)

    def usage_pages(self, *args: object, **kwargs: object) -> Iterator[UsagePage]:
        return iter(())

    def workspace_names(self) -> dict[str, str]:
        return {}


def test_groups_that_fold_into_one_stored_key_are_summed(engine: Engine) -> None:
    """No actor and an actor without an id are one stored row: their usage and bills add up
    (booking twice into one natural key failed the whole cycle), and a re-read changes nothing."""
    hour = datetime(2026, 2, 3, 10, tzinfo=UTC)
    fetcher = UsageFetcher(
        engine, _OneHourClient(hour), "analytics", "1h", hour + timedelta(hours=3)
    )
    fetched = fetcher.fetch(hour, hour + timedelta(hours=1))
    assert len(fetched.attributed) == 1
    (row,) = fetched.attributed
    assert row.key.actor is None
    assert row.counts.output_tokens == 150
    assert row.billed == BilledCost(750_000, 750_000)
    price = make_pricer(PriceBook.load())
    for _ in range(2):
        with transaction(engine) as session:
            book_attribution(session, fetched.attributed, price, now=hour)
    with transaction(engine) as session:
        stored = session.execute(
            select(tables.ATTRIBUTED.c.output_tokens, tables.ATTRIBUTED.c.cost_nanos)
        ).all()
    assert stored == [(150, 750_000)]


def test_a_price_book_change_reprices_attributed_estimates_not_bills(engine: Engine) -> None:
    """Attribution follows the price book like the ledger: estimates change, bills stay."""
    hour = datetime(2026, 2, 3, 10, tzinfo=UTC)
    key = AttributionKey(
        hour, "1h", "user_a", "user_actor", "claude_code", "claude-haiku-4-5", None, None
    )
    billed_key = replace(key, actor="user_b")
    counts = TokenCounts(output_tokens=1_000_000)
    with transaction(engine) as session:
        book_attribution(
            session,
            [AttributedRow(key, counts), AttributedRow(billed_key, counts, BilledCost(4, 5))],
            make_pricer(PriceBook.load()),
            now=hour,
        )
    with transaction(engine) as session:
        changed = reprice_attribution(session, flat_price, now=hour)
        costs = dict(
            session.execute(select(tables.ATTRIBUTED.c.actor, tables.ATTRIBUTED.c.cost_nanos)).all()
        )
    assert changed == 1
    assert costs == {"user_a": 1_000_000 * 1_000, "user_b": 4}


def test_the_source_error_shows_the_setting_to_use(simulator: SimulatorServer, db_url: str) -> None:
    with pytest.raises(ConfigError) as refused:
        make_settings(simulator, db_url, "messages", CREDITWATCH_BUDGET_ADA=f"limit=5 actor={ADA}")
    assert str(refused.value).endswith("(example: CREDITWATCH_USAGE_SOURCE=analytics)")


def test_status_flags_a_product_or_actor_scope_that_matches_nothing(
    simulator: SimulatorServer, db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``product=claude-code`` (a typo of ``claude_code``) would count $0 forever, silently:
    `status` names it, and the right spelling is not flagged."""
    budgets = {
        "CREDITWATCH_BUDGET_TYPO": "limit=5 product=claude-code",
        "CREDITWATCH_BUDGET_CODE": "limit=5 product=claude_code",
        "CREDITWATCH_BUDGET_NOBODY": "limit=5 actor=nobody@example.com",
        "CREDITWATCH_BUDGET_ADA": f"limit=5 actor={ADA}",
    }
    settings = make_settings(
        simulator, db_url, "analytics", CREDITWATCH_BACKFILL_FROM="2026-02-09T00Z", **budgets
    )
    with Runtime(settings, retry=FAST_RETRY) as runtime:
        runtime.cycle(lambda: NOW)
    env_file = tmp_path / "creditwatch.env"
    lines = {
        "ANTHROPIC_ADMIN_KEY": KEY,
        "CREDITWATCH_DATABASE_URL": db_url,
        "CREDITWATCH_USAGE_SOURCE": "analytics",
        **{name: f'"{value}"' for name, value in budgets.items()},
    }
    env_file.write_text("".join(f"{k}={v}\n" for k, v in lines.items()))
    code, out, err = run_cli(capsys, "--env-file", str(env_file), "status", "--json", now=NOW)
    assert code == 0, err
    flagged = {b["name"]: b["scope_unknown"] for b in json.loads(out)["budgets"]}
    assert flagged == {
        "typo": ["product=claude-code"],
        "code": [],
        "nobody": ["actor=nobody@example.com"],
        "ada": [],
    }
