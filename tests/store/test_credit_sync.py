"""Derived credit events in the ledger, on SQLite and PostgreSQL: booked once, always balanced."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, func, select

from service.domain.credit_walk import walk
from service.domain.usage import TokenCounts, UsageKey, UsageRow
from service.settings import Settings, load_settings
from service.store import balance, usage_booking
from service.store.credit_sync import booked_reloads, current_walk, ledger_terms, sync_credits
from service.store.engine import transaction
from service.store.tables import (
    LedgerEntry,
    ReloadBlock,
)
from tests.helpers import empty_ledger, flat_price

T0 = datetime(2026, 11, 28, tzinfo=UTC)
H = timedelta(hours=1)
USD = 10**9


def make_settings(
    threshold: int | None = 50, to: int | None = 200, limit: int | None = None, expiry: str = "365d"
) -> Settings:
    env = {
        "ANTHROPIC_ADMIN_KEY": "sk-ant-admin01-credit-ledger-test",
        "CREDITWATCH_STARTING_BALANCE": "100",
        "CREDITWATCH_STARTING_BALANCE_AT": T0.isoformat(),
        "CREDITWATCH_CREDIT_EXPIRY": expiry,
    }
    if threshold is not None and to is not None:
        env["CREDITWATCH_AUTO_RELOAD_THRESHOLD"] = str(threshold)
        env["CREDITWATCH_AUTO_RELOAD_TO"] = str(to)
    if limit is not None:
        env["CREDITWATCH_AUTO_RELOAD_MONTHLY_LIMIT"] = str(limit)
    return load_settings(env, None)


def usage(hour: int, usd_micro: int) -> UsageRow:
    """A row whose flat price is ``usd_micro`` micro-dollars (1,000 nanos per token)."""
    key = UsageKey(T0 + hour * H, "1h", "claude-haiku-4-5", "k", "w", "standard", "0-200k", "g")
    return UsageRow(key, TokenCounts(uncached_input_tokens=usd_micro))


def cycle(engine: Engine, cfg: Settings, rows: list[UsageRow], now: datetime) -> None:
    """What a collection chunk does: book usage, then the derived credit events, together."""
    with transaction(engine) as session:
        balance.ensure_opening(session, 100 * USD, T0, now)
        usage_booking.book_usage(session, rows, flat_price, now=now)
        sync_credits(session, "1h", cfg.ledger.credit_terms(), now)


def ledger_state(engine: Engine) -> tuple[int, list[tuple[str, datetime, int]], int]:
    with transaction(engine) as session:
        total = balance.balance_nanos(session) or 0
        entries = sorted(
            (e.kind, e.at, e.amount_nanos)
            for e in session.scalars(select(LedgerEntry))
            if e.kind in ("reload", "expiry")
        )
        blocks = int(session.execute(select(func.count()).select_from(ReloadBlock)).scalar_one())
    return total, entries, blocks


def test_reload_is_booked_once_and_moves_when_a_bucket_grows(engine: Engine) -> None:
    """The ledger holds one reload per crossing; re-syncing changes nothing; growth re-sizes it."""
    cfg = make_settings()
    now = T0 + 3 * H
    cycle(engine, cfg, [usage(0, 30 * 10**6), usage(1, 30 * 10**6)], now)
    balance, entries, _ = ledger_state(engine)
    assert entries == [("reload", T0 + 2 * H, 160 * USD)]
    assert balance == 200 * USD
    cycle(engine, cfg, [usage(0, 30 * 10**6), usage(1, 30 * 10**6)], now)
    assert ledger_state(engine) == (balance, entries, 0)
    cycle(engine, cfg, [usage(1, 45 * 10**6)], now)
    balance, entries, _ = ledger_state(engine)
    assert entries == [("reload", T0 + 2 * H, 175 * USD)]
    assert balance == 200 * USD


def test_monthly_limit_books_a_partial_reload_and_a_block(engine: Engine) -> None:
    """With a 100 limit, the reload is cut to 100 and the cut is recorded for the alert rules."""
    cycle(engine, make_settings(limit=100), [usage(0, 60 * 10**6)], T0 + 2 * H)
    balance, entries, blocks = ledger_state(engine)
    assert entries == [("reload", T0 + H, 100 * USD)]
    assert blocks == 1
    assert balance == 140 * USD


def test_expiry_is_booked_and_the_lot_shows_it(engine: Engine) -> None:
    """A starting balance that expires after 2 days is removed then; usage before used it."""
    cfg = make_settings(threshold=None, to=None, expiry="2d")
    now = T0 + timedelta(days=3)
    cycle(engine, cfg, [usage(0, 30 * 10**6)], now)
    balance, entries, _ = ledger_state(engine)
    assert entries == [("expiry", T0 + timedelta(days=2), -70 * USD)]
    assert balance == 0
    with transaction(engine) as session:
        result = current_walk(session, "1h", ledger_terms(session, cfg.ledger.credit_terms()), now)
    assert result is not None
    assert result.remaining == {"opening": 0}


def test_turning_auto_reload_off_removes_the_simulated_reloads(engine: Engine) -> None:
    """Reloads are derived from settings: without the settings they are not in the balance."""
    cycle(engine, make_settings(), [usage(0, 60 * 10**6)], T0 + 2 * H)
    assert ledger_state(engine)[1] != []
    cycle(engine, make_settings(threshold=None, to=None), [], T0 + 2 * H)
    balance, entries, _ = ledger_state(engine)
    assert (balance, entries) == (40 * USD, [])


streams = st.lists(
    st.lists(st.tuples(st.integers(0, 47), st.integers(0, 90 * 10**6)), max_size=8),
    min_size=1,
    max_size=6,
)


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    cycles=streams,
    threshold=st.integers(1, 100),
    extra=st.integers(1, 300),
    limit=st.one_of(st.none(), st.integers(1, 400)),
    expiry_hours=st.integers(6, 100),
)
def test_random_usage_keeps_the_ledger_balanced_and_above_the_threshold(
    engine: Engine,
    cycles: list[list[tuple[int, int]]],
    threshold: int,
    extra: int,
    limit: int | None,
    expiry_hours: int,
) -> None:
    """Balance = sum of entries = the walk; ≥ threshold unless a block was booked; idempotent."""
    empty_ledger(engine)
    cfg = make_settings(threshold, threshold + extra, limit, f"{expiry_hours}h")
    now = T0
    for batch in cycles:
        now += 6 * H
        rows = [usage(hour, micro) for hour, micro in batch if T0 + hour * H < now]
        cycle(engine, cfg, rows, now)
        balance, entries, blocks = ledger_state(engine)
        with transaction(engine) as session:
            derived = current_walk(
                session, "1h", ledger_terms(session, cfg.ledger.credit_terms()), now
            )
            assert derived is not None
            assert balance == derived.balance_nanos
            assert balance == sum(e.amount_nanos for e in session.scalars(select(LedgerEntry)))
        if blocks == 0:
            assert balance >= threshold * USD
        cycle(engine, cfg, [], now)
        assert ledger_state(engine) == (balance, entries, blocks)


def test_walk_from_the_database_equals_the_pure_walk(engine: Engine) -> None:
    """The stored lots and charges replay to the same result as the pure walk on the same data."""
    cfg = make_settings(limit=150)
    rows = [usage(h, (h % 7) * 11 * 10**6) for h in range(30)]
    cycle(engine, cfg, rows, T0 + 31 * H)
    with transaction(engine) as session:
        stored = current_walk(
            session, "1h", ledger_terms(session, cfg.ledger.credit_terms()), T0 + 31 * H
        )
    assert stored is not None
    from service.domain.credit_walk import Charge, Lot, ReloadPolicy

    pure = walk(
        [Lot("opening", "opening", T0, 100 * USD, T0 + timedelta(days=365))],
        [
            Charge(T0 + h * H, T0 + (h + 1) * H, (h % 7) * 11 * 10**6 * 1000)
            for h in range(30)
            if h % 7
        ],
        start=T0,
        until=T0 + 31 * H,
        policy=ReloadPolicy(50 * USD, 200 * USD, 150 * USD),
    )
    # The stored walk resumes from a checkpoint: what it derived before is in the ledger.
    with transaction(engine) as session:
        booked = booked_reloads(session, T0)
        blocks = [
            (b.at, b.wanted_nanos, b.granted_nanos) for b in session.scalars(select(ReloadBlock))
        ]
    assert booked == [(r.at, r.granted_nanos) for r in pure.reloads]
    assert sorted(blocks) == [(b.at, b.wanted_nanos, b.granted_nanos) for b in pure.blocked]
    assert stored.balance_nanos == pure.balance_nanos
    assert stored.remaining == pure.remaining


def test_a_side_command_keeps_the_terms_the_ledger_was_booked_under(engine: Engine) -> None:
    """`credits add` from a shell without auto-reload settings keeps the daemon's reloads."""
    cycle(engine, make_settings(), [usage(0, 60 * 10**6)], T0 + 2 * H)
    booked = ledger_state(engine)[1]
    assert booked == [("reload", T0 + H, 160 * USD)]
    shell = make_settings(threshold=None, to=None)
    with transaction(engine) as session:
        balance.add_purchase(session, 10 * USD, T0 + 2 * H, "", T0 + 2 * H)
        sync_credits(session, "1h", shell.ledger.credit_terms(), T0 + 2 * H, authoritative=False)
        assert (
            current_walk(
                session, "1h", ledger_terms(session, shell.ledger.credit_terms()), T0 + 2 * H
            )
            is not None
        )
    assert ledger_state(engine)[1] == booked
    assert ledger_state(engine)[0] == 210 * USD


def test_a_purchase_before_a_moved_starting_balance_is_not_counted_twice(engine: Engine) -> None:
    """Moving the starting balance time past a recorded purchase folds it into that balance."""
    cfg = make_settings(threshold=None, to=None)
    with transaction(engine) as session:
        balance.ensure_opening(session, 100 * USD, T0, T0)
        balance.add_purchase(session, 50 * USD, T0 + H, "", T0)
        sync_credits(session, "1h", cfg.ledger.credit_terms(), T0 + 2 * H)
        assert balance.balance_nanos(session) == 150 * USD
        balance.ensure_opening(session, 150 * USD, T0 + 2 * H, T0 + 2 * H)
        result = sync_credits(session, "1h", cfg.ledger.credit_terms(), T0 + 3 * H)
        assert balance.balance_nanos(session) == 150 * USD
        assert result is not None
        assert result.balance_nanos == 150 * USD


def test_purchase_expiry_date_is_kept(engine: Engine) -> None:
    """`credits add --expires-at` sets that lot's expiry; the walk removes what is left then."""
    cfg = make_settings(threshold=None, to=None)
    with transaction(engine) as session:
        balance.ensure_opening(session, 100 * USD, T0, T0)
        balance.add_purchase(session, 50 * USD, T0 + H, "promo", T0, expires_at=T0 + 5 * H)
        result = sync_credits(session, "1h", cfg.ledger.credit_terms(), T0 + 6 * H)
    assert result is not None
    assert [(e.at, e.amount_nanos) for e in result.expiries] == [(T0 + 5 * H, 50 * USD)]
    assert ledger_state(engine)[0] == 100 * USD
