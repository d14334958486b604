"""The synthetic workload: determinism, shape, rhythm, spikes, splits and growing buckets."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from service.simulator import Spike, TokenCounts, Workload, WorkloadSpec
from service.simulator.workload import Counts
from tests.helpers import START, VISIBILITY_CASES

HOUR = 3600
# 2025-08-06 (a Wednesday) 00:00 UTC in epoch hours.
WEDNESDAY = int(datetime(2025, 8, 6, tzinfo=UTC).timestamp()) // HOUR
SATURDAY = WEDNESDAY + 3 * 24
SMALL = Workload(WorkloadSpec(seed=7, start=START, n_workspaces=2, n_keys=5))
SPIKED_KEYS = Workload(WorkloadSpec(seed=11, n_keys=40))


def org_total(counts: Sequence[Counts] | None) -> tuple[int, ...]:
    """Counter-wise total over streams (zeros when invisible)."""
    if counts is None:
        return (0,) * 6
    return tuple(sum(column) for column in zip(*counts, strict=True))


def test_same_seed_same_usage_and_ids() -> None:
    """Two workloads from equal specs have identical ids and counts."""
    again = Workload(WorkloadSpec(seed=7, start=START, n_workspaces=2, n_keys=5))
    assert [k.id for k in again.api_keys] == [k.id for k in SMALL.api_keys]
    assert again.truth_hour(WEDNESDAY + 14) == SMALL.truth_hour(WEDNESDAY + 14)


def test_other_seed_other_usage() -> None:
    """A different seed gives a different organization."""
    other = Workload(WorkloadSpec(seed=8, start=START, n_workspaces=2, n_keys=5))
    assert other.truth_hour(WEDNESDAY + 14) != SMALL.truth_hour(WEDNESDAY + 14)
    assert {k.id for k in other.api_keys}.isdisjoint({k.id for k in SMALL.api_keys})


def test_key_ids_depend_only_on_seed_and_index() -> None:
    """Adding keys keeps the existing keys' ids, so a spike can name a key in advance."""
    bigger = Workload(WorkloadSpec(seed=7, start=START, n_workspaces=2, n_keys=9))
    assert [k.id for k in bigger.api_keys[:5]] == [k.id for k in SMALL.api_keys]


def test_keys_belong_to_one_workspace_and_console_is_in_default() -> None:
    """Every key has one workspace (some the default); Console streams have no key or workspace."""
    workspace_ids = {w.id for w in SMALL.workspaces}
    assert all(k.workspace_id is None or k.workspace_id in workspace_ids for k in SMALL.api_keys)
    assert any(k.workspace_id is None for k in SMALL.api_keys)
    assert any(k.workspace_id is not None for k in SMALL.api_keys)
    console = [s for s in SMALL.streams if s.api_key_id is None]
    assert len(console) == len(SMALL.spec.models)
    assert all(s.workspace_id is None for s in console)


def test_one_stream_per_key_and_model_with_fixed_dimensions() -> None:
    """(key or Console, model) identifies a stream; dimensions vary across streams."""
    pairs = [(s.api_key_id, s.model) for s in SMALL.streams]
    assert len(pairs) == len(set(pairs)) == (5 + 1) * 6
    big = Workload(WorkloadSpec(seed=3, n_keys=60))
    assert {s.service_tier for s in big.streams} == {"standard", "batch", "priority"}
    assert {s.inference_geo for s in big.streams} == {"global", "us"}
    long_context = {s.model for s in big.streams if s.context_window == "200k-1M"}
    assert long_context == {"claude-sonnet-4-5-20250929", "claude-sonnet-4-20250514"}


def test_nearly_every_key_model_hour_has_usage() -> None:
    """200 keys x 6 models: at least 99% of (key, model, hour) rows are non-zero over a day."""
    big = Workload(WorkloadSpec(seed=1, n_keys=200, n_workspaces=8))
    hours = [big.truth_hour(SATURDAY + h) for h in range(24)]
    non_zero = sum(1 for hour in hours for counts in hour if any(counts))
    assert non_zero >= 0.99 * 200 * 6 * 24


def test_no_usage_before_start() -> None:
    """Hours before ``start`` are all zero; the first hour at or after it is not."""
    first = int(START.timestamp()) // HOUR
    assert not any(any(c) for c in SMALL.truth_hour(first - 1))
    assert any(any(c) for c in SMALL.truth_hour(first))


def test_daily_rhythm_and_weekends() -> None:
    """Working hours are busier than night, and weekdays busier than weekends."""
    afternoon = org_total(SMALL.truth_hour(WEDNESDAY + 15))[4]
    night = org_total(SMALL.truth_hour(WEDNESDAY + 3))[4]
    saturday = org_total(SMALL.truth_hour(SATURDAY + 15))[4]
    assert afternoon > 2 * night
    assert afternoon > 2 * saturday


def test_spike_multiplies_one_key_in_its_window() -> None:
    """A key's spike multiplies that key's hours in [start, end) and nobody else's."""
    key = SMALL.api_keys[2].id
    at = datetime(2025, 8, 6, 14, tzinfo=UTC)
    spike = Spike(start=at, end=at + timedelta(hours=2), multiplier=10, api_key_id=key)
    spiked = Workload(WorkloadSpec(seed=7, start=START, n_workspaces=2, n_keys=5, spike=spike))
    for hour, inside in ((WEDNESDAY + 13, False), (WEDNESDAY + 14, True), (WEDNESDAY + 16, False)):
        for stream, before, after in zip(
            SMALL.streams, SMALL.truth_hour(hour), spiked.truth_hour(hour), strict=True
        ):
            if inside and stream.api_key_id == key:
                assert all(10 * b <= a < 10 * b + 10 for a, b in zip(after, before, strict=True))
            else:
                assert after == before


def test_org_wide_spike() -> None:
    """A spike without a key multiplies every stream."""
    at = datetime(2025, 8, 6, 14, tzinfo=UTC)
    spike = Spike(start=at, end=at + timedelta(hours=1), multiplier=Decimal("2.5"))
    spiked = Workload(WorkloadSpec(seed=7, start=START, n_workspaces=2, n_keys=5, spike=spike))
    before = org_total(SMALL.truth_hour(WEDNESDAY + 14))[4]
    after = org_total(spiked.truth_hour(WEDNESDAY + 14))[4]
    assert abs(after - Decimal("2.5") * before) <= 3 * len(SMALL.streams)


def test_minutes_sum_exactly_to_the_hour_and_hours_to_the_day() -> None:
    """Final 1m buckets sum to their hour and final hours sum to their day, per stream."""
    later = int(datetime(2025, 9, 1, tzinfo=UTC).timestamp())
    hour = WEDNESDAY + 10
    minutes = [SMALL.visible_minute(hour * 60 + m, later) for m in range(60)]
    assert all(m is not None for m in minutes)
    summed = [
        tuple(sum(col) for col in zip(*per_stream, strict=True))
        for per_stream in zip(*[m for m in minutes if m is not None], strict=True)
    ]
    assert summed == list(SMALL.truth_hour(hour))
    day = SMALL.visible_day(WEDNESDAY // 24, later)
    assert day is not None
    hours = [SMALL.truth_hour(WEDNESDAY + h) for h in range(24)]
    assert list(day) == [
        tuple(sum(col) for col in zip(*per_stream, strict=True))
        for per_stream in zip(*hours, strict=True)
    ]


def test_bucket_invisible_then_growing_then_final() -> None:
    """An hour shows nothing until 5 minutes in, part of itself at its end, all 1 h later."""
    start = (WEDNESDAY + 10) * HOUR
    truth = org_total(SMALL.truth_hour(WEDNESDAY + 10))
    assert SMALL.visible_hour(WEDNESDAY + 10, start + 299) is None
    at_end = org_total(SMALL.visible_hour(WEDNESDAY + 10, start + HOUR))
    assert 0 < at_end[0] < truth[0]
    assert org_total(SMALL.visible_hour(WEDNESDAY + 10, start + 2 * HOUR)) == truth
    assert org_total(SMALL.visible_hour(WEDNESDAY + 10, start + 2 * HOUR - 1)) != truth


@pytest.mark.parametrize(("delay", "growth"), VISIBILITY_CASES)
@pytest.mark.parametrize("width", [60, HOUR, 24 * HOUR])
def test_final_from_is_when_visible_counts_stop_changing(
    delay: timedelta, growth: timedelta, width: int
) -> None:
    """From ``final_from`` on a bucket shows what it shows forever; a second earlier it did not."""
    workload = Workload(
        WorkloadSpec(
            seed=7,
            start=START,
            n_workspaces=2,
            n_keys=5,
            visibility_delay=delay,
            growth_window=growth,
        )
    )
    visible = {60: workload.visible_minute, HOUR: workload.visible_hour}.get(
        width, workload.visible_day
    )
    index = (WEDNESDAY + 15) * HOUR // width
    final = workload.final_from(index * width, width)
    forever = visible(index, final + 30 * 24 * HOUR)
    assert visible(index, final) == forever
    assert visible(index, final - 1) != forever


@pytest.mark.parametrize(
    ("key_index", "digest"),
    [
        (None, "ac699428ddfe171fa6c7f9c48a8ea7f8a3e09109b46e73810eb699821a88e340"),
        (3, "6a6543e2e750b7748f6c72041bdcdf11e2713fcd5863f73a6b5b5be83befcfed"),
    ],
)
def test_truth_is_pinned(key_index: int | None, digest: str) -> None:
    """Four days of hourly truth (a spike, a priority day, the start) hash as they always have:
    a faster computation must not change one count."""
    key = None if key_index is None else SPIKED_KEYS.api_keys[key_index].id
    start = datetime(2026, 10, 1, tzinfo=UTC)
    workload = Workload(
        WorkloadSpec(
            seed=11,
            start=start,
            n_keys=40,
            n_workspaces=3,
            spike=Spike(
                start + timedelta(days=1, hours=9),
                start + timedelta(days=1, hours=15),
                Decimal("2.5"),
                api_key_id=key,
            ),
            priority_days=(start + timedelta(days=2),),
        )
    )
    first = int(start.timestamp()) // HOUR - 4
    hours = [workload.truth_hour(h) for h in range(first, first + 4 * 24)]
    assert hashlib.sha256(repr(hours).encode()).hexdigest() == digest


def test_truth_totals_whole_hours() -> None:
    """``Workload.truth`` sums the organization's counters over whole hours."""
    start = datetime(2025, 8, 6, 10, tzinfo=UTC)
    counts = SMALL.truth(start, start + timedelta(hours=2))
    assert isinstance(counts, TokenCounts)
    expected = [
        a + b
        for a, b in zip(
            org_total(SMALL.truth_hour(WEDNESDAY + 10)),
            org_total(SMALL.truth_hour(WEDNESDAY + 11)),
            strict=True,
        )
    ]
    assert list(counts) == expected


@settings(max_examples=60, deadline=None)
@given(
    first=st.integers(min_value=0, max_value=3 * HOUR),
    step=st.integers(min_value=0, max_value=3 * HOUR),
    width=st.sampled_from(["minute", "hour", "day"]),
)
def test_visible_counts_never_decrease(first: int, step: int, width: str) -> None:
    """As now advances, every stream's visible counters only grow."""
    base = (WEDNESDAY + 23) * HOUR - HOUR // 2
    earlier, later = base + first, base + first + step

    def visible(now: int) -> Sequence[Counts] | None:
        if width == "minute":
            return SMALL.visible_minute((WEDNESDAY + 23) * 60 + 7, now)
        if width == "hour":
            return SMALL.visible_hour(WEDNESDAY + 23, now)
        return SMALL.visible_day(WEDNESDAY // 24, now)

    before, after = visible(earlier), visible(later)
    assume(before is not None)  # the bucket has not started yet at ``earlier``
    assert before is not None
    assert after is not None
    for old, new in zip(before, after, strict=True):
        assert all(o <= n for o, n in zip(old, new, strict=True))


def test_spec_rejects_naive_start() -> None:
    """A naive ``start`` is refused."""
    with pytest.raises(ValueError, match="aware UTC"):
        WorkloadSpec(start=datetime(2025, 8, 1))  # noqa: DTZ001 - the point of the test
