"""A walk resumed from a checkpoint equals the walk from the start, on random histories.

The histories are the reference-walk property's: lots that expire mid-walk, credits back,
reload policies with and without a monthly limit, initial deficits. Checkpoints are taken at
random instants (event instants and month starts among them), each resumed to the end, and
one resumed walk takes a checkpoint of its own that is resumed again.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from service.domain.credit_walk import WalkResult, walk
from tests.domain.test_credit_walk_property import HOUR, T0, histories

MONTH_STARTS = [datetime(2026, 2, 1, tzinfo=UTC), datetime(2026, 3, 1, tzinfo=UTC)]


def later_fields(result: WalkResult) -> dict[str, object]:
    """What a resumed walk must give exactly as the whole walk does."""
    return {
        "lots": result.lots,
        "remaining": result.remaining,
        "balance": result.balance_nanos,
        "lowest": (result.lowest_nanos, result.lowest_at),
        "first_zero_at": result.first_zero_at,
        "months": result.reloaded_by_month,
    }


def events_from(result: WalkResult, at: datetime) -> tuple[object, ...]:
    return (
        [r for r in result.reloads if r.at >= at],
        [b for b in result.blocked if b.at >= at],
        [e for e in result.expiries if e.at >= at],
    )


def assert_resumes_to(full: WalkResult, resumed: WalkResult, at: datetime) -> None:
    assert later_fields(resumed) == later_fields(full)
    assert (resumed.reloads, resumed.blocked, resumed.expiries) == events_from(full, at)
    assert math.isclose(resumed.zero_seconds, full.zero_seconds, abs_tol=1e-6)


@st.composite
def checkpointed(draw: st.DrawFn) -> tuple[dict[str, object], list[datetime]]:
    history = draw(histories())
    start, until = history["start"], history["until"]
    assert isinstance(start, datetime)
    assert isinstance(until, datetime)
    assume(until > start + HOUR)
    span = int((until - start) / HOUR)
    instants = draw(st.lists(st.integers(0, span), min_size=1, max_size=4))
    moments = [start + HOUR * k for k in instants]
    moments += [m for m in MONTH_STARTS if start < m <= until and draw(st.booleans())]
    return history, [m for m in moments if start < m <= until] or [until]


@settings(max_examples=400, deadline=None)
@given(checkpointed())
def test_a_walk_resumed_from_any_checkpoint_equals_the_whole_walk(
    case: tuple[dict[str, object], list[datetime]],
) -> None:
    history, moments = case
    full = walk(**history, capture=moments)  # type: ignore[arg-type]
    plain = walk(**history)  # type: ignore[arg-type]
    assert later_fields(full) == later_fields(plain), "taking checkpoints changes nothing"
    assert [c.at for c in full.checkpoints] == sorted(set(moments))
    rest = {k: v for k, v in history.items() if k not in ("start", "initial_deficit_nanos")}
    for checkpoint in full.checkpoints:
        resumed = walk(**rest, start=T0, resume=checkpoint)  # type: ignore[arg-type]
        assert_resumes_to(full, resumed, checkpoint.at)
    # A resumed walk's own checkpoint resumes the same way.
    first, last = full.checkpoints[0], full.checkpoints[-1]
    if last.at > first.at:
        chained = walk(**rest, start=T0, resume=first, capture=[last.at])  # type: ignore[arg-type]
        assert chained.checkpoints == [last]
        again = walk(**rest, start=T0, resume=chained.checkpoints[0])  # type: ignore[arg-type]
        assert_resumes_to(full, again, last.at)
