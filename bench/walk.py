"""`make bench`: the credit walk over a year of hourly charges with thousands of reloads.

A year of hourly charges (8,760 buckets, a weekday rhythm, $2-$9 an hour) from one opening lot,
with an auto-reload whose small top-up makes it fire every few hours (thousands of reloads,
each a lot of its own), and a credit back (a bill below the estimate) every day. Timed: the
walk as the ledger runs it; the reference walk it replaced (a sort of every lot per debit and a
sum per balance, kept in ``tests/domain/reference_walk.py``) on the same input, for the
speed-up; and the floor, a bare loop over the same charges keeping a running balance (no lots,
no events), measured in the same run. Figures are printed and written to
``bench/results/walk.json``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from bench.figures import results_path, write_figures
from service.domain.credit_walk import Charge, Lot, ReloadPolicy, WalkResult, walk
from tests.domain import reference_walk

START = datetime(2026, 1, 1, tzinfo=UTC)
HOURS = 24 * 365
USD = 10**9
RESULTS = results_path("walk")


def year_of_charges() -> list[Charge]:
    charges = []
    for hour in range(HOURS):
        at = START + timedelta(hours=hour)
        busy = 9 <= at.hour < 18 and at.weekday() < 5
        amount = (9 if busy else 2) * USD + (hour * 7919 % 1000) * USD // 1000
        charges.append(Charge(at, at + timedelta(hours=1), amount))
        if at.hour == 23:
            charges.append(Charge(at, at + timedelta(hours=1), -3 * USD))
    return charges


def timed(run: Callable[[], Any], repeat: int = 3) -> tuple[float, Any]:
    best, result = float("inf"), None
    for _ in range(repeat):
        began = time.perf_counter()
        result = run()
        best = min(best, time.perf_counter() - began)
    return best, result


def main() -> int:
    charges = year_of_charges()
    lots = [Lot("opening", "opening", START, 100 * USD, START + timedelta(days=365))]
    policy = ReloadPolicy(threshold_nanos=50 * USD, target_nanos=65 * USD)
    until = START + timedelta(hours=HOURS)

    def ours() -> WalkResult:
        return walk(lots, charges, start=START, until=until, policy=policy)

    def reference() -> WalkResult:
        return reference_walk.walk(lots, charges, start=START, until=until, policy=policy)

    def floor() -> int:
        balance, lowest = 100 * USD, 100 * USD
        for charge in charges:
            balance -= charge.amount_nanos
            if balance < policy.threshold_nanos:
                balance = policy.target_nanos
            lowest = min(lowest, balance)
        return lowest

    seconds, result = timed(ours)
    reference_seconds, expected = timed(reference, repeat=1)
    floor_seconds, _ = timed(floor)
    assert result.balance_nanos == expected.balance_nanos
    assert len(result.reloads) == len(expected.reloads)
    figures = {
        "charges": len(charges),
        "reloads": len(result.reloads),
        "walk_seconds": round(seconds, 4),
        "reference_walk_seconds": round(reference_seconds, 4),
        "speedup_over_reference": round(reference_seconds / seconds, 1),
        "floor_seconds": round(floor_seconds, 4),
        "ratio_to_floor": round(seconds / floor_seconds, 1),
    }
    print(
        f"credit walk, a year: {len(charges):,} charges, {len(result.reloads):,} reloads: "
        f"{seconds * 1000:.0f} ms ({figures['ratio_to_floor']}x a bare running-balance loop of "
        f"{floor_seconds * 1000:.1f} ms); the walk it replaced {reference_seconds * 1000:.0f} ms "
        f"({figures['speedup_over_reference']}x slower)"
    )
    write_figures(RESULTS, figures)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
