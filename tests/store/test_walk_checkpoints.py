"""The checkpointed walk against the whole walk, on SQLite and PostgreSQL.

Random histories of what a ledger lives through: usage booked as time passes, buckets that
grow late (up to three days back, behind every recent checkpoint), purchases dated in the past,
bill adjustments of past days, auto-reload and expiry terms that change, a starting balance
whose amount and time change. After each step, the walk a reading command does (before the
booking walk has dropped anything) and the ledger the booking walk leaves must both equal the
walk from the starting balance over every stored charge.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, select

from service.domain.credit_terms import CreditTerms
from service.domain.credit_walk import WalkCheckpoint, WalkResult
from service.domain.periods import day_start
from service.domain.usage import TokenCounts, UsageKey, UsageRow
from service.settings import load_settings
from service.store import balance, usage_booking
from service.store.bills import Comparison, book_adjustment
from service.store.credit_sync import current_walk, ledger_terms, sync_credits
from service.store.engine import read_transaction, transaction
from service.store.ledger_entries import opening_entry
from service.store.tables import (
    LedgerEntry,
    ReloadBlock,
    WalkChange,
)
from service.store.walk_checkpoints import (
    decode_checkpoint,
    encode_checkpoint,
    stored_instants,
    usable_checkpoint,
    walk_basis,
)
from tests.helpers import empty_ledger, flat_price, whole_walk

T0 = datetime(2026, 11, 27, 5, tzinfo=UTC)
H = timedelta(hours=1)
USD = 10**9
TOKENS_PER_USD = 10**6  # flat_price: 1,000 nano-USD a token


def terms_of(threshold: int, extra: int, limit: int | None, expiry: str) -> CreditTerms:
    env = {
        "ANTHROPIC_ADMIN_KEY": "sk-ant-admin01-walk-checkpoint-test",
        "CREDITWATCH_STARTING_BALANCE": "100",
        "CREDITWATCH_STARTING_BALANCE_AT": T0.isoformat(),
        "CREDITWATCH_CREDIT_EXPIRY": expiry,
        "CREDITWATCH_AUTO_RELOAD_THRESHOLD": str(threshold),
        "CREDITWATCH_AUTO_RELOAD_TO": str(threshold + extra),
    }
    if limit is not None:
        env["CREDITWATCH_AUTO_RELOAD_MONTHLY_LIMIT"] = str(limit)
    return load_settings(env, None).ledger.credit_terms()


steps = st.one_of(
    st.tuples(st.just("usage"), st.integers(1, 72), st.integers(0, 2), st.integers(1, 40)),
    st.tuples(st.just("advance"), st.integers(1, 30)),
    st.tuples(st.just("purchase"), st.integers(1, 72), st.integers(1, 150)),
    st.tuples(st.just("bill"), st.integers(1, 3), st.integers(-20, 20)),
    st.tuples(
        st.just("terms"),
        st.integers(1, 60),
        st.integers(1, 200),
        st.none() | st.integers(1, 500),
        st.sampled_from(["30h", "3d", "365d"]),
    ),
    st.tuples(st.just("opening"), st.integers(20, 200), st.integers(0, 30)),
)


class Ledger:
    """The history under test: what a collection cycle and the operator do to the ledger."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.now = T0 + H
        self.opening = (100 * USD, T0)
        self.terms = terms_of(50, 150, None, "365d")
        self.tokens: dict[tuple[datetime, str], int] = {}

    def apply(self, step: tuple[Any, ...]) -> None:
        kind, *args = step
        with transaction(self.engine) as session:
            if kind == "usage":
                back, key, usd = args
                start = self.now.replace(minute=0) - back * H
                self.tokens[(start, f"k{key}")] = (
                    self.tokens.get((start, f"k{key}"), 0) + usd * TOKENS_PER_USD
                )
                row = UsageRow(
                    UsageKey(start, "1h", "claude-haiku-4-5", f"k{key}", "w", "standard", "", ""),
                    TokenCounts(uncached_input_tokens=self.tokens[(start, f"k{key}")]),
                )
                usage_booking.book_usage(session, [row], flat_price, now=self.now)
            elif kind == "advance":
                self.now += args[0] * H
            elif kind == "purchase":
                back, usd = args
                at = self.now - back * H
                if at >= self.opening[1]:
                    balance.add_purchase(session, usd * USD, at, "bought", self.now)
            elif kind == "bill":
                back, usd = args
                day = day_start(self.now) - timedelta(days=back)
                compared = Comparison("w", max(0, 30 + usd) * USD, 30 * USD, 0)
                book_adjustment(session, day, compared, self.now)
            elif kind == "terms":
                self.terms = terms_of(*args)
            else:
                amount, hours = args
                # Before now: the walk to now leaves out what happens at now.
                self.opening = (amount * USD, min(T0 + hours * H, self.now - H))
                balance.ensure_opening(session, *self.opening, self.now)

    def sync(self) -> None:
        """What every collection chunk does after booking."""
        with transaction(self.engine) as session:
            balance.ensure_opening(session, *self.opening, self.now)
            sync_credits(session, "1h", self.terms, self.now)


def agreeing(resumed: WalkResult, whole: WalkResult) -> None:
    assert resumed.balance_nanos == whole.balance_nanos
    assert resumed.remaining == whole.remaining
    assert resumed.lots == whole.lots
    assert resumed.reloaded_by_month == whole.reloaded_by_month
    assert (resumed.lowest_nanos, resumed.lowest_at) == (whole.lowest_nanos, whole.lowest_at)


def check(ledger: Ledger) -> None:
    """The reading walk and the booked ledger both equal the whole walk."""
    with read_transaction(ledger.engine) as session:
        terms = ledger_terms(session, ledger.terms)
        whole = whole_walk(session, "1h", terms, ledger.now)
        resumed = current_walk(session, "1h", terms, ledger.now)
        assert resumed is not None
        agreeing(resumed, whole)
    ledger.sync()
    with read_transaction(ledger.engine) as session:
        whole = whole_walk(session, "1h", ledger.terms, ledger.now)
        derived = sorted(
            [("reload", r.at, r.granted_nanos) for r in whole.reloads]
            + [("expiry", e.at, -e.amount_nanos) for e in whole.expiries]
        )
        booked = sorted(
            (e.kind, e.at, e.amount_nanos)
            for e in session.scalars(
                select(LedgerEntry).where(LedgerEntry.kind.in_(("reload", "expiry")))  # type: ignore[attr-defined]
            )
        )
        assert booked == derived
        blocks = sorted(
            (b.at, b.wanted_nanos, b.granted_nanos) for b in session.scalars(select(ReloadBlock))
        )
        assert blocks == sorted((b.at, b.wanted_nanos, b.granted_nanos) for b in whole.blocked)
        assert balance.balance_nanos(session) == whole.balance_nanos
        resumed = current_walk(session, "1h", ledger.terms, ledger.now)
        assert resumed is not None
        agreeing(resumed, whole)


def resume_point(ledger: Ledger) -> WalkCheckpoint:
    """The checkpoint the next walk resumes from (there must be one)."""
    with read_transaction(ledger.engine) as session:
        opening = opening_entry(session)
        assert opening is not None
        basis = walk_basis(opening, ledger.terms, "1h")
        resume = usable_checkpoint(session, "1h", basis, ledger.now)
    assert resume is not None
    return resume


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(history=st.lists(steps, min_size=1, max_size=14))
def test_the_checkpointed_walk_equals_the_whole_walk(
    engine: Engine, history: list[tuple[Any, ...]]
) -> None:
    empty_ledger(engine)
    ledger = Ledger(engine)
    ledger.sync()
    for step in history:
        ledger.apply(step)
        check(ledger)
    # A day on, with a bucket in the look-back: the walk resumes from a checkpoint.
    ledger.apply(("advance", 30))
    ledger.apply(("usage", 1, 0, 1))
    check(ledger)
    resume = resume_point(ledger)
    assert ledger.now - 2 * H <= resume.at <= ledger.now
    assert decode_checkpoint(encode_checkpoint(resume)) == resume
    with read_transaction(engine) as session:
        assert stored_instants(session, "1h")[0] >= day_start(ledger.now) - timedelta(days=8)


def test_a_late_bill_resumes_from_the_midnight_before_it(engine: Engine) -> None:
    """A bill adjustment of yesterday is behind the hourly checkpoints: the next walk starts
    from yesterday's midnight, and the checkpoints after it are taken again."""
    ledger = Ledger(engine)
    ledger.sync()
    for _ in range(50):
        ledger.apply(("usage", 1, 0, 3))
        ledger.apply(("advance", 1))
        ledger.sync()
    ledger.apply(("advance", 8))  # the hourly checkpoints begin after yesterday's 23:00
    ledger.sync()
    with read_transaction(engine) as session:
        before = stored_instants(session, "1h")
    yesterday = day_start(ledger.now) - timedelta(days=1)
    assert yesterday in before
    ledger.apply(("bill", 1, -5))
    assert resume_point(ledger).at == yesterday
    check(ledger)
    with read_transaction(engine) as session:
        assert stored_instants(session, "1h") == before
        assert session.scalars(select(WalkChange)).all() == []
