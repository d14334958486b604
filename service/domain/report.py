"""What `creditwatch report` shows, as plain data: breakdown lines, daily spend, the balance.

The store fills it, the renderers (terminal, CSV, JSON, HTML) only format it. Amounts are
nano-USD. A window is half-open and bucket-exact: a bucket belongs to it when its start does.

Billed amounts come from Anthropic's cost report, which is daily and knows workspaces and models
but not API keys or hours. A line's ``billed_nanos`` is None where no bill covers it; otherwise
it is the bill of the *billed days* of the window (days wholly inside it that Anthropic has
billed), and ``compared_nanos`` is creditwatch's estimate of the same days without priority-tier
usage, which the cost report leaves out. The difference is the one of those two, exactly.

With the Analytics API, ``estimated_nanos`` already holds the hourly bill where there is one:
``hourly_billed_nanos`` is that part and ``hourly_list_nanos`` its list price, so the discount
is their difference. ``--by actor`` and ``--by product`` read the usage it attributes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

ReportBy = Literal["model", "api_key", "workspace", "day", "hour", "actor", "product"]
REPORT_BY: tuple[ReportBy, ...] = (
    "model",
    "api_key",
    "workspace",
    "day",
    "hour",
    "actor",
    "product",
)
ATTRIBUTED_BY: tuple[ReportBy, ...] = ("actor", "product")
"""Breakdowns read from usage attributed by the Analytics API (not from the usage rows)."""
DAY = timedelta(days=1)


@dataclass
class UsageLine:
    """One row of the breakdown: a model, key, workspace, day or hour (``key``), or the total."""

    key: str
    name: str = ""
    uncached_input_tokens: int = 0
    cache_write_tokens: int = 0  # 5-minute and 1-hour cache writes
    cache_read_tokens: int = 0
    output_tokens: int = 0
    web_search_requests: int = 0
    estimated_nanos: int = 0
    priced_estimate: bool = False  # some usage priced on an assumption (unknown model, tiers)
    billed_nanos: int | None = None
    compared_nanos: int | None = None
    # The part billed by the hour (the Analytics API's cost): that bill, and its list price.
    hourly_billed_nanos: int = 0
    hourly_list_nanos: int = 0

    @property
    def discount_nanos(self) -> int:
        """List price less the hourly bill, over the usage billed by the hour."""
        return self.hourly_list_nanos - self.hourly_billed_nanos

    @property
    def difference_nanos(self) -> int | None:
        """Billed minus the estimate of the same days; None where nothing is billed."""
        if self.billed_nanos is None or self.compared_nanos is None:
            return None
        return self.billed_nanos - self.compared_nanos

    def add_usage(self, other: UsageLine) -> None:
        self.uncached_input_tokens += other.uncached_input_tokens
        self.cache_write_tokens += other.cache_write_tokens
        self.cache_read_tokens += other.cache_read_tokens
        self.output_tokens += other.output_tokens
        self.web_search_requests += other.web_search_requests
        self.estimated_nanos += other.estimated_nanos
        self.priced_estimate = self.priced_estimate or other.priced_estimate
        self.hourly_billed_nanos += other.hourly_billed_nanos
        self.hourly_list_nanos += other.hourly_list_nanos

    def add_billed(self, billed: int, compared: int) -> None:
        self.billed_nanos = (self.billed_nanos or 0) + billed
        self.compared_nanos = (self.compared_nanos or 0) + compared


@dataclass(frozen=True)
class DaySpend:
    """One UTC day of the window: its estimate (buckets in the window only), its bill when the
    whole day is in the window and billed, and the budget's share of the day."""

    day: datetime
    estimated_nanos: int
    billed_nanos: int | None = None
    budget_nanos: int | None = None


@dataclass(frozen=True)
class BudgetLine:
    """The organization-wide budget drawn over daily spend, as a per-day amount."""

    name: str
    label: str  # "daily budget $100.00", "monthly budget $3,000.00 per day of the month"
    limit_nanos: int
    period: str
    tz: str
    spent_nanos: int | None = None  # in the budget's current period (as of the report)
    period_label: str = ""  # "2026-11", "2026-W46", "2026-11-20"

    @property
    def daily(self) -> bool:
        """A daily budget: a day above it is over; above a longer budget's share is only a
        faster pace than the period allows."""
        return self.period == "day"


@dataclass(frozen=True)
class BalancePoint:
    at: datetime
    balance_nanos: int


@dataclass(frozen=True)
class BalanceEvent:
    """Credits in: a (simulated) auto-reload or a recorded purchase, booked or projected."""

    at: datetime
    amount_nanos: int
    kind: Literal["reload", "purchase"]
    projected: bool = False


@dataclass(frozen=True)
class BalanceHistory:
    """The ledger's balance over the window and, when the window reaches now, its projection.

    ``points`` hold the balance at each step (hour or day) boundary from the starting balance
    on; ``projection`` continues from ``now`` on expected spend until the balance reaches zero
    (``zero_at``) or the projection's horizon. ``runway_note`` says why there is no zero time.
    """

    points: tuple[BalancePoint, ...]
    events: tuple[BalanceEvent, ...]
    projection: tuple[BalancePoint, ...] = ()
    zero_at: datetime | None = None
    runway_note: str | None = None
    now: datetime | None = None
    balance_nanos: int | None = None
    reload_rule: str | None = None  # "auto-reload below $500.00 to $2,000.00"
    reload_threshold_nanos: int | None = None


@dataclass(frozen=True)
class Report:
    by: ReportBy
    since: datetime
    until: datetime
    generated_at: datetime
    bucket_width: str
    lines: tuple[UsageLine, ...]
    total: UsageLine
    billed_days: tuple[datetime, ...]
    days: tuple[DaySpend, ...]
    budget: BudgetLine | None = None
    balance: BalanceHistory | None = None
    organization: str = ""
    priority_unbilled_nanos: int = 0  # priority-tier estimate on billed days, not in the bill

    @property
    def billed_by_line(self) -> bool:
        """Whether the cost report can split this breakdown (it has no keys and no hours)."""
        return self.by in ("model", "workspace", "day")


def whole_days(since: datetime, until: datetime, bucket_seconds: int) -> list[datetime]:
    """UTC days whose every bucket starts in ``[since, until)``: the days a bill can be compared
    with. A day is whole when it starts at or after ``since`` and its last bucket before
    ``until``."""
    first = since.replace(hour=0, minute=0, second=0, microsecond=0)
    if first < since:
        first += DAY
    last_bucket = DAY - timedelta(seconds=bucket_seconds)
    days = []
    day = first
    while day + last_bucket < until:
        days.append(day)
        day += DAY
    return days
