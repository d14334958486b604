"""A synthetic, deterministic Claude workload: exact hourly ground truth and what is visible when.

The ground truth is defined per (stream, hour) as integers. Minutes split an hour exactly and
days are exact sums of hours. At simulator time ``now`` an hour is invisible until
``visibility_delay`` after its start, then its counts grow linearly (integer floor of
``truth * elapsed / span``, hence monotonic) until ``growth_window`` after its end. A day is the
sum of its visible hours; a minute grows the same way over its own window.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from functools import lru_cache
from typing import NamedTuple

from service.simulator.catalog import M64, ApiKey, Stream, Workspace, build_catalog, mix64

Counts = tuple[int, int, int, int, int, int]
"""Usage counters in order: uncached input, 5m cache write, 1h cache write, cache read, output,
web search requests."""

ZERO: Counts = (0, 0, 0, 0, 0, 0)
DEFAULT_MODELS = (
    "claude-sonnet-4-5-20250929",
    "claude-opus-4-6",
    "claude-haiku-4-5-20251001",
    "claude-sonnet-4-20250514",
    "claude-3-5-haiku-20241022",
    "claude-opus-4-1-20250805",
)
_HOUR = 3600
_DAY = 86400
# Busy in European/US working hours (UTC), quiet at night; permille of full activity.
_RHYTHM = (200, 200, 200, 200, 200, 250, 450, 600, 900, 900, 900, 900,
           800, 800, 1000, 1000, 1000, 1000, 700, 600, 500, 400, 300, 250)  # fmt: skip
_WEEKEND_PERMILLE = 350


class TokenCounts(NamedTuple):
    """One stream's (or a sum of streams') usage counters."""

    uncached_input_tokens: int
    ephemeral_5m_input_tokens: int
    ephemeral_1h_input_tokens: int
    cache_read_input_tokens: int
    output_tokens: int
    web_search_requests: int


@dataclass(frozen=True)
class Spike:
    """Multiply usage in hours that start in [start, end), for one key or (None) for everyone."""

    start: datetime
    end: datetime
    multiplier: Decimal | int
    api_key_id: str | None = None


@dataclass(frozen=True)
class BillPriceChange:
    """From the UTC day of ``effective_from`` on, the bill charges ``factor`` × the list price
    for ``model`` (an id prefix) and ``token_type`` (a cost-report token type such as
    ``output_tokens``; None: all of the model's usage): a price change the client's price book
    does not know about."""

    effective_from: datetime
    model: str
    factor: Decimal
    token_type: str | None = None


@dataclass(frozen=True)
class CodeExecution:
    """Code execution billed per UTC day (a cost only the cost report has), from ``start`` on,
    in the named workspace at ``workspace`` (an index into the workspaces; None: the default
    workspace). A day in progress shows the share of the day elapsed."""

    usd_per_day: Decimal
    workspace: int | None = None
    start: datetime | None = None


@dataclass(frozen=True)
class BillRevision:
    """The bill of the UTC day starting at ``day`` is multiplied by ``factor`` once ``after``
    has passed since that day ended (Anthropic revises bills after the fact)."""

    day: datetime
    factor: Decimal
    after: timedelta = timedelta(days=2)


@dataclass(frozen=True)
class WorkloadSpec:
    """The knobs of a synthetic organization. Equal specs give byte-identical reports."""

    seed: int = 1
    start: datetime = datetime(2025, 8, 1, tzinfo=UTC)
    """Usage begins with the first hour that starts at or after this instant."""
    n_workspaces: int = 3
    """Named workspaces, in addition to the default workspace."""
    n_keys: int = 12
    models: tuple[str, ...] = DEFAULT_MODELS
    hourly_spend_usd: Decimal = Decimal(10)
    """Approximate list-price spend of the whole organization in a busy weekday hour."""
    spike: Spike | None = None
    visibility_delay: timedelta = timedelta(minutes=5)
    growth_window: timedelta = timedelta(hours=1)
    cost_delay: timedelta = timedelta(0)
    """When set, the Analytics API's cost rows of a bucket appear this long after its end (the
    bill lags the usage); 0 serves them with the usage. Usage rows never wait for it."""
    bill_adjustment: Decimal = Decimal(1)
    """Multiplier from list price to what ``cost_report`` bills (e.g. ``Decimal("0.97")``)."""
    bill_price_changes: tuple[BillPriceChange, ...] = ()
    code_execution: tuple[CodeExecution, ...] = ()
    bill_revisions: tuple[BillRevision, ...] = ()
    priority_days: tuple[datetime, ...] | None = None
    """When set, priority-tier streams have usage only on these UTC days (their midnights)."""

    def __post_init__(self) -> None:
        if self.start.utcoffset() != timedelta(0):
            raise ValueError("WorkloadSpec.start must be an aware UTC datetime")
        if self.n_workspaces < 0 or self.n_keys < 0 or not self.models:
            raise ValueError("WorkloadSpec needs n_workspaces >= 0, n_keys >= 0 and a model")
        if min(self.visibility_delay, self.growth_window, self.cost_delay) < timedelta(0):
            raise ValueError("visibility_delay, growth_window and cost_delay must not be negative")
        for day in (*(r.day for r in self.bill_revisions), *(self.priority_days or ())):
            if day.utcoffset() != timedelta(0) or int(day.timestamp()) % _DAY:
                raise ValueError("bill revision and priority days must be UTC midnights")


@dataclass
class _MinuteSplit:
    prefix: list[int]
    total: int
    offsets: list[int] = field(default_factory=list)


class Workload:
    """Ground truth and visibility for one :class:`WorkloadSpec`; thread-safe, read-only."""

    def __init__(self, spec: WorkloadSpec) -> None:
        self.spec = spec
        catalog = build_catalog(
            seed=spec.seed,
            start=spec.start,
            n_workspaces=spec.n_workspaces,
            n_keys=spec.n_keys,
            models=spec.models,
            hourly_spend_usd=Fraction(spec.hourly_spend_usd),
        )
        self.workspaces: tuple[Workspace, ...] = catalog.workspaces
        self.api_keys: tuple[ApiKey, ...] = catalog.api_keys
        self.streams: tuple[Stream, ...] = catalog.streams
        self._first_hour = -(-int(spec.start.timestamp()) // _HOUR)
        self._delay = int(spec.visibility_delay.total_seconds())
        self._growth = int(spec.growth_window.total_seconds())
        self._hour_seed = mix64(spec.seed * 0xA24BAED4963EE407)
        self._spike = _spike_window(spec.spike)
        self._rows = [(s.seed, s.api_key_id, *s.base) for s in self.streams]
        self._priority = [s.index for s in self.streams if s.service_tier == "priority"]
        self._priority_days = (
            None
            if spec.priority_days is None
            else frozenset(int(d.timestamp()) // _DAY for d in spec.priority_days)
        )
        self.truth_hour = lru_cache(maxsize=96)(self._compute_truth_hour)
        self._truth_day = lru_cache(maxsize=64)(self._compute_truth_day)
        self._minute_split = lru_cache(maxsize=8)(self._compute_minute_split)

    def _compute_truth_hour(self, hour: int) -> Sequence[Counts]:
        """Final counters of every stream (in ``streams`` order) for the hour ``hour`` (epoch h)."""
        if hour < self._first_hour:
            return [ZERO] * len(self.streams)
        days_since_epoch, hour_of_day = divmod(hour, 24)
        factor = _RHYTHM[hour_of_day]
        if (days_since_epoch + 3) % 7 >= 5:  # 1970-01-01 was a Thursday
            factor = factor * _WEEKEND_PERMILLE // 1000
        spike_key, spike_permille = None, 1000
        if self._spike is not None and self._spike[0] <= hour < self._spike[1]:
            spike_key, spike_permille = self._spike[2], self._spike[3]
        everyone = factor * (spike_permille if spike_key is None else 1000)
        keyed = factor * spike_permille
        hour_seed = mix64(self._hour_seed ^ hour)
        result: list[Counts] = []
        append = result.append
        for seed, key_id, b0, b1, b2, b3, b4, b5 in self._rows:
            x = (seed ^ hour_seed) & M64
            x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & M64
            x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & M64
            x ^= x >> 31
            f = keyed if key_id is not None and key_id == spike_key else everyone
            # Noise of 0.7-1.21 per counter, from 9 bits each of one hash. Most streams have no
            # cache writes, many no cache reads and nearly all no web search: ``b and`` skips
            # the arithmetic of a zero base (the result is that 0).
            append(
                (
                    b0 * f * (700 + (x & 511)) // 1_000_000_000,
                    b1 and b1 * f * (700 + ((x >> 9) & 511)) // 1_000_000_000,
                    b2 and b2 * f * (700 + ((x >> 18) & 511)) // 1_000_000_000,
                    b3 and b3 * f * (700 + ((x >> 27) & 511)) // 1_000_000_000,
                    b4 * f * (700 + ((x >> 36) & 511)) // 1_000_000_000,
                    b5 and b5 * f * (700 + ((x >> 45) & 511)) // 1_000_000_000,
                )
            )
        if self._priority_days is not None and days_since_epoch not in self._priority_days:
            for index in self._priority:
                result[index] = ZERO
        return result

    def _compute_truth_day(self, day: int) -> Sequence[Counts]:
        return _sum_columns([self.truth_hour(h) for h in range(day * 24, day * 24 + 24)])

    def _progress(self, start: int, width: int, now: int) -> tuple[int, int]:
        """(elapsed, span) of a bucket's growth at ``now``: 0 is invisible, equal is final."""
        visible_from = start + self._delay
        final_at = start + width + self._growth
        if now < visible_from:
            return 0, 1
        if now >= final_at or final_at <= visible_from:
            return 1, 1
        return now - visible_from, final_at - visible_from

    def final_from(self, start: int, width: int) -> int:
        """The first ``now`` (epoch seconds) from which the bucket of ``width`` seconds at
        ``start`` shows its final counts: ``visible_*`` answer the same for every later now."""
        return max(start + self._delay, start + width + self._growth)

    def visible_hour(self, hour: int, now: int) -> Sequence[Counts] | None:
        """Counters per stream of the hour (epoch hours) as the API shows them at ``now``
        (epoch seconds), or None while the hour is invisible."""
        elapsed, span = self._progress(hour * _HOUR, _HOUR, now)
        if elapsed == 0:
            return None
        truth = self.truth_hour(hour)
        if elapsed == span:
            return truth
        return [
            (
                a * elapsed // span,
                b * elapsed // span,
                c * elapsed // span,
                d * elapsed // span,
                e * elapsed // span,
                f * elapsed // span,
            )
            for a, b, c, d, e, f in truth
        ]

    def visible_day(self, day: int, now: int) -> Sequence[Counts] | None:
        """The sum of the day's visible hours (``day`` in epoch days), or None if none is."""
        if self._progress(day * _DAY, _DAY, now) == (1, 1):
            return self._truth_day(day)
        hours = [self.visible_hour(h, now) for h in range(day * 24, day * 24 + 24)]
        shown = [h for h in hours if h is not None]
        return _sum_columns(shown) if shown else None

    def visible_minute(self, minute: int, now: int) -> Sequence[Counts] | None:
        """The minute's share of its hour (exact: an hour's minutes sum to the hour), grown
        over the minute's own window; None while invisible."""
        elapsed, span = self._progress(minute * 60, 60, now)
        if elapsed == 0:
            return None
        hour, index = divmod(minute, 60)
        truth = self.truth_hour(hour)
        split = self._minute_split(hour)
        prefix, total = split.prefix, split.total
        result: list[Counts] = []
        for counts, offset in zip(truth, split.offsets, strict=True):
            low = prefix[offset + index] - prefix[offset]
            high = low + prefix[offset + index + 1] - prefix[offset + index]
            result.append(
                tuple(  # type: ignore[arg-type]
                    (v * high // total - v * low // total) * elapsed // span for v in counts
                )
            )
        return result

    def _compute_minute_split(self, hour: int) -> _MinuteSplit:
        # Minute weights are shared by the hour's streams, each starting at its own offset.
        seed = mix64(self._hour_seed ^ hour ^ 0x5851F42D4C957F2D)
        weights = [(mix64(seed + i) >> 40) % 16 for i in range(60)]
        weights[0] += 1  # never all zero
        prefix = [0]
        for w in weights + weights:
            prefix.append(prefix[-1] + w)
        offsets = [mix64(seed ^ s.seed) % 60 for s in self.streams]
        return _MinuteSplit(prefix=prefix, total=prefix[60], offsets=offsets)

    def truth(self, start: datetime, end: datetime) -> TokenCounts:
        """Final counters of the whole organization over the whole hours in [start, end)."""
        first = -(-int(start.timestamp()) // _HOUR)
        last = int(end.timestamp()) // _HOUR
        hours = [self.truth_hour(h) for h in range(first, last)]
        totals = [sum(col) for col in zip(*_sum_columns(hours), strict=True)] if hours else [0] * 6
        return TokenCounts(*totals)


def _sum_columns(parts: Sequence[Sequence[Counts]]) -> Sequence[Counts]:
    """Stream-wise sums of several per-stream count lists."""
    return [
        tuple(sum(column) for column in zip(*per_stream, strict=True))
        for per_stream in zip(*parts, strict=True)
    ]


def _spike_window(spike: Spike | None) -> tuple[int, int, str | None, int] | None:
    if spike is None:
        return None
    first = -(-int(spike.start.timestamp()) // _HOUR)
    last = -(-int(spike.end.timestamp()) // _HOUR)
    return first, last, spike.api_key_id, int(Decimal(spike.multiplier) * 1000)
