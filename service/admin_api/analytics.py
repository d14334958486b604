"""A read of the Usage and Cost Analytics API (beta): its requests, and the rows they add up to.

DESIGN §1: ``ending_at`` is exclusive and required with ``time_bucket_width``; one request spans
at most 31 days (24 hours at ``1m``); ``group_by[]`` takes at most 5 dimensions (on the cost
endpoint ``cost_type`` and ``token_type`` do not count); ``limit`` counts rows, at most 1000.
A longer read is split into windows that start on bucket boundaries, so no bucket straddles two
requests. Rows are requested oldest bucket first (``order_by=time``, ``order=asc``): the
default order ranks by tokens or amount, so a bucket that grows between two page requests could
move a row across the page boundary; by time, only the newest bucket's rows can still move, and
a row seen twice is caught (``combine_pages``). Nothing here does I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Generic

from service.admin_api.analytics_wire import AnalyticsGroup, AnalyticsPage, RowT
from service.domain.usage import BUCKET_SECONDS, BucketWidth
from service.errors import AdminAPIError

ANALYTICS_BETA = "analytics-usage-cost-2026-08-24"
"""The ``anthropic-beta`` value both analytics endpoints require."""
ANALYTICS_USAGE_PATH = "/v1/organizations/analytics/usage"
ANALYTICS_COST_PATH = "/v1/organizations/analytics/cost"

# The dimensions AnalyticsGroup holds. Grouping by another one (agent_id, session_id, ...) would
# split rows along a dimension the row cannot tell apart, so it is refused, not merged.
ANALYTICS_GROUP_BY = (
    "actor",
    "actor_type",
    "api_key_id",
    "context_window",
    "inference_geo",
    "model",
    "product",
    "service_tier",
    "speed",
    "workspace_id",
)
COST_COMPONENTS = ("cost_type", "token_type")
"""Cost-only dimensions that split a row by cost component; they do not count toward the 5."""
DEFAULT_ANALYTICS_GROUP_BY = (
    "model",
    "api_key_id",
    "workspace_id",
    "service_tier",
    "context_window",
)
"""The booking dimensions (``inference_geo`` would be a sixth)."""
ATTRIBUTION_GROUP_BY = ("actor", "product", "model", "service_tier", "context_window")
"""Who and what is behind the usage, with the dimensions that price it (key and workspace do
not fit beside them: at most 5)."""
MAX_GROUPS = 5
MAX_PAGE_ROWS = 1000
_MAX_SPAN: dict[str, timedelta] = {
    "1m": timedelta(hours=24),
    "1h": timedelta(days=31),
    "1d": timedelta(days=31),
}
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class AnalyticsRead(Generic[RowT]):
    """Every row of a read, and how fresh the data behind it is.

    ``data_refreshed_at`` is the earliest ``data_refreshed_at`` of the read's pages (None when no
    page gave one): every row is complete at least up to it, whichever page it came from.
    """

    rows: tuple[RowT, ...]
    data_refreshed_at: datetime | None


def analytics_windows(
    starting_at: datetime, ending_at: datetime, width: BucketWidth
) -> list[tuple[datetime, datetime]]:
    """The ``[start, end)`` windows of one request each, covering the read in order.

    ``starting_at`` is snapped down to its bucket's start (as the API does), so every window
    but the last is a whole number of buckets. Raises ValueError for naive datetimes, an unknown
    width or an empty range.
    """
    if width not in _MAX_SPAN:
        raise ValueError(f"time_bucket_width must be one of 1m, 1h, 1d, not {width!r}")
    start, end = _utc(starting_at, "starting_at"), _utc(ending_at, "ending_at")
    if end <= start:
        raise ValueError("ending_at must be after starting_at")
    bucket = BUCKET_SECONDS[width]
    start = _EPOCH + timedelta(seconds=(start - _EPOCH) // timedelta(seconds=bucket) * bucket)
    windows: list[tuple[datetime, datetime]] = []
    while start < end:
        stop = min(start + _MAX_SPAN[width], end)
        windows.append((start, stop))
        start = stop
    return windows


def analytics_queries(
    starting_at: datetime,
    ending_at: datetime,
    width: BucketWidth,
    group_by: Sequence[str],
    *,
    cost: bool,
    page_size: int = MAX_PAGE_ROWS,
) -> list[list[tuple[str, str]]]:
    """The query of each window's first page (see ``analytics_windows``).

    Raises ValueError for a grouping the endpoint or ``AnalyticsGroup`` does not take, more than
    5 counted dimensions, or a page size outside 1-1000; TypeError for a bare string.
    """
    check_group_by(group_by, cost=cost)
    if not 1 <= page_size <= MAX_PAGE_ROWS:
        raise ValueError(f"page_size must be between 1 and {MAX_PAGE_ROWS}, not {page_size}")
    common = [
        ("time_bucket_width", width),
        ("limit", str(page_size)),
        ("order_by", "time"),
        ("order", "asc"),
        *(("group_by[]", dimension) for dimension in group_by),
    ]
    return [
        [("starting_at", _format(start)), ("ending_at", _format(end)), *common]
        for start, end in analytics_windows(starting_at, ending_at, width)
    ]


def check_group_by(group_by: Sequence[str], *, cost: bool) -> None:
    """Raise ValueError (TypeError for a bare string) unless the endpoint accepts ``group_by``."""
    if isinstance(group_by, str):
        raise TypeError("group_by takes a sequence of strings, not a string")
    allowed = (*ANALYTICS_GROUP_BY, *COST_COMPONENTS) if cost else ANALYTICS_GROUP_BY
    unknown = [dimension for dimension in group_by if dimension not in allowed]
    if unknown:
        raise ValueError(f"group_by does not support {unknown}; choose from {list(allowed)}")
    if len(set(group_by)) != len(group_by):
        raise ValueError(f"group_by names a dimension twice: {list(group_by)}")
    counted = [dimension for dimension in group_by if dimension not in COST_COMPONENTS]
    if len(counted) > MAX_GROUPS:
        extra = " (cost_type and token_type do not count)" if cost else ""
        raise ValueError(
            f"group_by takes at most {MAX_GROUPS} dimensions{extra}, got {len(counted)}"
        )


def combine_pages(pages: Iterable[AnalyticsPage[RowT]], what: str) -> AnalyticsRead[RowT]:
    """The rows of every page and the earliest ``data_refreshed_at``.

    Raises a transient AdminAPIError when a row comes back on a later page: the data moved
    while paging, and a read from the watermark again gets one consistent answer.
    """
    rows: list[RowT] = []
    seen: set[tuple[datetime, AnalyticsGroup]] = set()
    refreshed: datetime | None = None
    for page in pages:
        if page.data_refreshed_at is not None and (
            refreshed is None or page.data_refreshed_at < refreshed
        ):
            refreshed = page.data_refreshed_at
        for row in page.rows:
            key = (row.starting_at, row.group)
            if key in seen:
                raise AdminAPIError(
                    f"{what}: the row of bucket {_format(row.starting_at)} and group "
                    f"{row.group} came back on a later page; the data moved while paging",
                    transient=True,
                )
            seen.add(key)
            rows.append(row)
    return AnalyticsRead(tuple(rows), refreshed)


def _utc(value: datetime, name: str) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be an aware datetime (UTC), got naive {value.isoformat()}")
    return value.astimezone(UTC)


def _format(value: datetime) -> str:
    """RFC 3339 in UTC with a ``Z``, to the second (what the API snaps to)."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
