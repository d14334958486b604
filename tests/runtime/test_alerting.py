"""Alerting on the real ledger (SQLite and PostgreSQL): one alert per real event, across
threshold edits, new periods, restarts, repeats and resolves, and never without its booking."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, delete, event, func, select
from sqlalchemy.orm import Session
from sqlmodel import col

from service.alerts.rules.health import RELOAD_BLOCKED, UNKNOWN_MODEL
from service.domain.usage import TokenCounts, UsageKey, UsageRow
from service.runtime.alerting import Evaluation, evaluate
from service.settings import Settings, load_settings
from service.store.balance import add_purchase, ensure_opening
from service.store.credit_sync import sync_credits
from service.store.engine import make_engine, transaction
from service.store.tables import USAGE, AlertRecord, OutboxAlert, UnknownModel
from service.store.usage_booking import book_usage
from tests.helpers import flat_price

T0 = datetime(2026, 11, 1, tzinfo=UTC)
H = timedelta(hours=1)
USD = 10**9
KEY = "sk-ant-admin01-alerting-test-key"


def settings_with(db_url: str, **env: str) -> Settings:
    return load_settings(
        {"ANTHROPIC_ADMIN_KEY": KEY, "CREDITWATCH_DATABASE_URL": db_url, **env}, None, now=T0
    )


def spend(
    engine: Engine,
    hour: datetime,
    usd: int,
    *,
    key: str = "apikey_a",
    model: str = "claude-haiku-4-5",
) -> None:
    """Book ``usd`` of usage in the bucket starting at ``hour`` (flat price: $1 per 1M tokens)."""
    row = UsageRow(
        UsageKey(hour, "1h", model, key, "wrkspc_a", "standard", "0-200k", "global"),
        TokenCounts(uncached_input_tokens=usd * 10**6),
    )
    with transaction(engine) as session:
        book_usage(session, [row], flat_price, now=hour)


def run(engine: Engine, settings: Settings, now: datetime) -> Evaluation:
    with transaction(engine) as session:
        return evaluate(session, settings, now)


def sent(result: Evaluation) -> list[tuple[str, str]]:
    return [(a.kind, a.identity.threshold or a.identity.rule) for a in result.alerts]


def outbox(engine: Engine) -> list[dict[str, Any]]:
    with transaction(engine) as session:
        return [
            json.loads(o.payload)
            for o in session.scalars(select(OutboxAlert).order_by(col(OutboxAlert.id)))
        ]


def test_threshold_edits_never_resend_and_never_send_what_is_already_exceeded(
    engine: Engine, db_url: str
) -> None:
    """DESIGN §2 Dedup, case by case, on one budget of $500 with spend at $425 (85%)."""
    base = settings_with(db_url, CREDITWATCH_MONTHLY_BUDGET="500")
    spend(engine, T0 + H, 425)
    now = T0 + 3 * H
    # 50% and 80% crossed at once: one alert names the highest.
    assert sent(run(engine, base, now)) == [("alert", "80%")]
    # The same data again, and a restart (a new engine on the same database): nothing.
    assert sent(run(engine, base, now + H)) == []
    restarted = make_engine(db_url)
    assert sent(run(restarted, base, now + H)) == []
    restarted.dispose()
    # A threshold added below the one alerted is never sent.
    lower = settings_with(
        db_url, CREDITWATCH_MONTHLY_BUDGET="500", CREDITWATCH_ALERT_THRESHOLDS="50,60,80,100"
    )
    assert sent(run(engine, lower, now + 2 * H)) == []
    # One added above it but below spend is sent once.
    higher = settings_with(
        db_url, CREDITWATCH_MONTHLY_BUDGET="500", CREDITWATCH_ALERT_THRESHOLDS="50,80,84,100"
    )
    assert sent(run(engine, higher, now + 3 * H)) == [("alert", "84%")]
    assert sent(run(engine, higher, now + 4 * H)) == []
    # The limit lowered to $400: spend is over 100% of it, which is above the 84% alerted.
    lowered = settings_with(
        db_url, CREDITWATCH_MONTHLY_BUDGET="400", CREDITWATCH_ALERT_THRESHOLDS="50,80,84,100"
    )
    assert sent(run(engine, lowered, now + 5 * H)) == [("alert", "100%")]
    # A new period re-arms the budget.
    december = datetime(2026, 12, 1, tzinfo=UTC)
    spend(engine, december + H, 250)
    assert sent(run(engine, base, december + 3 * H)) == [("alert", "50%")]
    dedup_ids = [a["dedup_id"] for a in outbox(engine)]
    assert dedup_ids == [
        "budget:monthly/org/2026-11/80%",
        "budget:monthly/org/2026-11/84%",
        "budget:monthly/org/2026-11/100%",
        "budget:monthly/org/2026-12/50%",
    ]


def test_an_alert_names_its_drivers_and_how_they_changed(engine: Engine, db_url: str) -> None:
    """The top models, keys and workspaces, with names; the next alert of the rule says how
    each changed since this one."""
    settings = settings_with(db_url, CREDITWATCH_MONTHLY_BUDGET="500")
    spend(engine, T0 + H, 200, key="apikey_a", model="claude-haiku-4-5")
    spend(engine, T0 + H, 60, key="apikey_b", model="claude-opus-4-6")
    first = run(engine, settings, T0 + 3 * H).alerts[0]
    assert [(d.dimension, d.id, d.amount_nanos) for d in first.content.drivers] == [
        ("model", "claude-haiku-4-5", 200 * USD),
        ("model", "claude-opus-4-6", 60 * USD),
        ("api_key", "apikey_a", 200 * USD),
        ("api_key", "apikey_b", 60 * USD),
        ("workspace", "wrkspc_a", 260 * USD),
    ]
    assert all(d.change_nanos is None for d in first.content.drivers)
    spend(engine, T0 + 2 * H, 150, key="apikey_b", model="claude-opus-4-6")
    second = run(engine, settings, T0 + 4 * H).alerts[0]
    assert second.identity.threshold == "80%"
    changes = {(d.dimension, d.id): d.change_nanos for d in second.content.drivers}
    assert changes[("api_key", "apikey_b")] == 150 * USD
    assert changes[("api_key", "apikey_a")] == 0
    payload = outbox(engine)[-1]
    assert payload["drivers"][0]["change_usd"] == "150.00"
    assert payload["value_usd"] == "410.00"
    assert payload["limit_usd"] == "500.00"
    assert payload["percent_of_limit"] == "82.0"
    assert payload["last_collected_at"] is None, "no collection ran in this test"


def test_low_balance_alerts_repeats_resolves_and_returns_as_a_new_alert(
    engine: Engine, db_url: str
) -> None:
    """Below $25: alert; a day later still below: reminder; back above: resolved; below again:
    a new episode with its own dedup id, and reminders reply to their episode's first alert."""
    settings = settings_with(
        db_url,
        CREDITWATCH_LOW_BALANCE="25",
        CREDITWATCH_STARTING_BALANCE="100",
        CREDITWATCH_STARTING_BALANCE_AT=T0.isoformat(),
    )
    with transaction(engine) as session:
        ensure_opening(session, 100 * USD, T0, T0)
    spend(engine, T0 + H, 80)
    now = T0 + 3 * H
    assert sent(run(engine, settings, now)) == [("alert", "$25.00")]
    assert sent(run(engine, settings, now + 23 * H)) == []
    assert sent(run(engine, settings, now + 24 * H)) == [("reminder", "$25.00")]
    with transaction(engine) as session:
        add_purchase(session, 50 * USD, now + 25 * H, "top-up", now + 25 * H)
    assert sent(run(engine, settings, now + 26 * H)) == [("resolved", "$25.00")]
    spend(engine, now + 27 * H, 60)
    again = run(engine, settings, now + 29 * H).alerts
    assert [(a.kind, a.episode) for a in again] == [("alert", 2)]
    payloads = outbox(engine)
    assert [p["dedup_id"] for p in payloads] == ["low_balance/org//$25.00#1"] * 3 + [
        "low_balance/org//$25.00#2"
    ]
    assert [p["message_id"] for p in payloads] == [
        "low_balance/org//$25.00#1",
        "low_balance/org//$25.00#1:2",
        "low_balance/org//$25.00#1:3",
        "low_balance/org//$25.00#2",
    ]
    assert payloads[1]["previous_message_id"] == payloads[0]["message_id"]
    assert payloads[2]["kind"] == "resolved"
    assert payloads[2]["severity"] == "info"


def test_an_unknown_model_alert_resolves_when_the_book_learns_the_model(
    engine: Engine, db_url: str
) -> None:
    """The health rule enumerates unknown models: one that leaves the list has resolved."""
    settings = settings_with(db_url)
    with transaction(engine) as session:
        session.add(
            UnknownModel(
                model="claude-nova-1",
                priced_as="claude-opus-4-6",
                first_seen_at=T0,
                last_seen_at=T0,
            )
        )
    assert sent(run(engine, settings, T0 + H)) == [("alert", UNKNOWN_MODEL)]
    assert sent(run(engine, settings, T0 + 2 * H)) == []
    with transaction(engine) as session:
        session.execute(delete(UnknownModel))
    assert sent(run(engine, settings, T0 + 3 * H)) == [("resolved", UNKNOWN_MODEL)]
    assert sent(run(engine, settings, T0 + 4 * H)) == []


def test_a_blocked_reload_alerts_once_a_month_though_its_rows_are_re_derived(
    engine: Engine, db_url: str
) -> None:
    """Every cycle re-derives the reload rows (new ids); the alert is keyed by the month."""
    settings = settings_with(
        db_url,
        CREDITWATCH_STARTING_BALANCE="100",
        CREDITWATCH_STARTING_BALANCE_AT=T0.isoformat(),
        CREDITWATCH_AUTO_RELOAD_THRESHOLD="50",
        CREDITWATCH_AUTO_RELOAD_TO="100",
        CREDITWATCH_AUTO_RELOAD_MONTHLY_LIMIT="60",
    )
    with transaction(engine) as session:
        ensure_opening(session, 100 * USD, T0, T0)
    terms = settings.ledger.credit_terms()
    for hour in range(1, 6):
        spend(engine, T0 + hour * H, 40)
        with transaction(engine) as session:
            sync_credits(session, "1h", terms, T0 + (hour + 1) * H)
    first = run(engine, settings, T0 + 7 * H)
    assert [(a.kind, a.identity.rule, a.identity.period) for a in first.alerts] == [
        ("alert", RELOAD_BLOCKED, "2026-11")
    ]
    for hour in range(7, 10):
        with transaction(engine) as session:
            sync_credits(session, "1h", terms, T0 + hour * H)
        assert run(engine, settings, T0 + hour * H).alerts == []


def test_alerts_commit_with_their_booking_or_not_at_all(engine: Engine, db_url: str) -> None:
    """A crash at commit time (after evaluation) leaves neither the booking nor its alerts."""
    settings = settings_with(db_url, CREDITWATCH_MONTHLY_BUDGET="100")

    def note_alerts(session: Session, _flush: object, _instances: object) -> None:
        if any(isinstance(obj, OutboxAlert) for obj in session.new):
            session.info["alerts"] = True

    def power_cut(session: Session) -> None:
        if session.info.pop("alerts", False):
            raise RuntimeError("power cut")

    row = UsageRow(
        UsageKey(T0 + H, "1h", "claude-haiku-4-5", "k", "w", "standard", "0-200k", "global"),
        TokenCounts(uncached_input_tokens=90 * 10**6),
    )
    produced: list[str] = []

    def cycle_that_crashes_at_commit() -> None:
        with transaction(engine) as session:
            book_usage(session, [row], flat_price, now=T0 + 2 * H)
            produced.extend(
                a.identity.threshold for a in evaluate(session, settings, T0 + 2 * H).alerts
            )

    event.listen(Session, "before_flush", note_alerts)
    event.listen(Session, "before_commit", power_cut)
    try:
        with pytest.raises(RuntimeError, match="power cut"):
            cycle_that_crashes_at_commit()
    finally:
        event.remove(Session, "before_commit", power_cut)
        event.remove(Session, "before_flush", note_alerts)
    assert produced == ["80%"], "the alerts were made, in the transaction that was lost"
    with transaction(engine) as session:
        for table in (OutboxAlert, AlertRecord):
            assert session.execute(select(func.count()).select_from(table)).scalar_one() == 0
        assert session.execute(select(func.count()).select_from(USAGE)).scalar_one() == 0
    with transaction(engine) as session:
        book_usage(session, [row], flat_price, now=T0 + 3 * H)
        assert sent(evaluate(session, settings, T0 + 3 * H)) == [("alert", "80%")]
