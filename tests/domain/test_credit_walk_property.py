"""The O(events) walk against the reference walk it replaced, on random histories.

Random lots (an opening, purchases, at random instants and amounts), charges of random sizes
with credits back among them, reload policies with and without a monthly limit, short lot
lifetimes so that lots expire mid-walk, walks starting mid-history: every field of the result
is the same.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from service.domain.credit_walk import Charge, Lot, LotKind, ReloadPolicy, WalkResult, walk
from tests.domain import reference_walk

T0 = datetime(2026, 1, 30, tzinfo=UTC)
HOUR = timedelta(hours=1)
USD = 10**9


@st.composite
def histories(draw: st.DrawFn) -> dict[str, object]:
    lifetime = timedelta(hours=draw(st.integers(24, 24 * 40)))
    n_lots = draw(st.integers(1, 6))
    lots = []
    for index in range(n_lots):
        at = T0 + HOUR * (0 if index == 0 else draw(st.integers(0, 24 * 30)))
        amount = draw(st.integers(0, 200)) * USD
        kind: LotKind = "opening" if index == 0 else "purchase"
        lots.append(Lot(f"{kind}:{index}", kind, at, amount, at + lifetime))
    hours = draw(st.integers(1, 24 * 45))
    amounts = draw(
        st.lists(st.integers(-30, 60), min_size=hours, max_size=hours).map(
            lambda xs: [x * USD // 4 for x in xs]
        )
    )
    charges = [
        Charge(T0 + HOUR * h, T0 + HOUR * (h + 1), amount)
        for h, amount in enumerate(amounts)
        if amount
    ]
    policy = None
    if draw(st.booleans()):
        threshold = draw(st.integers(1, 100)) * USD
        target = threshold + draw(st.integers(1, 200)) * USD
        limit = draw(st.none() | st.integers(0, 600).map(lambda x: x * USD))
        policy = ReloadPolicy(threshold, target, limit)
    start = T0 + HOUR * draw(st.integers(0, 24 * 5))
    until = T0 + HOUR * (hours + draw(st.integers(0, 24 * 3)))
    return {
        "lots": lots,
        "charges": charges,
        "start": start,
        "until": until,
        "policy": policy,
        "lot_lifetime": lifetime,
        "initial_deficit_nanos": draw(st.integers(0, 50)) * USD,
        "finish_pending_reload": draw(st.booleans()),
    }


def fields(result: WalkResult) -> dict[str, object]:
    return {
        "reloads": result.reloads,
        "blocked": result.blocked,
        "expiries": result.expiries,
        "lots": sorted(result.lots, key=lambda lot: lot.key),
        "remaining": result.remaining,
        "balance": result.balance_nanos,
        "lowest": (result.lowest_nanos, result.lowest_at),
        "zero": (result.zero_seconds, result.first_zero_at),
        "months": result.reloaded_by_month,
    }


@settings(max_examples=200, deadline=None)
@given(histories())
def test_the_walk_equals_the_reference_walk(history: dict[str, object]) -> None:
    assert fields(walk(**history)) == fields(reference_walk.walk(**history))  # type: ignore[arg-type]
