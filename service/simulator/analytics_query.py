"""The query of ``/v1/organizations/analytics/usage`` and ``/cost``: parsing, cursors, paging.

Anthropic's reference (and the SDK's docstrings): ``starting_at`` is required, not before
2026-01-01 and within the last 365 days; ``ending_at`` is exclusive and required with
``time_bucket_width`` (``1d``, ``1h``, ``1m``); a range spans at most 31 days, 24 hours at
``1m``. Without a width one row per combination covers the whole hours of the range, and a
missing ``ending_at`` is the earlier of now and ``starting_at`` + 31 days. ``group_by[]`` takes
at most 5 dimensions (on the cost endpoint ``cost_type`` and ``token_type`` do not count);
``limit`` counts rows (1-1000, default 20); rows are ranked by a metric, not by time, unless
``order_by=time``.

The simulator's cursor pins the instant of the first page, so a paged read is one consistent
snapshot even while buckets grow: every row appears exactly once across its pages.
"""

from __future__ import annotations

import base64
import binascii
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import TypeVar

from service.simulator.analytics_attribution import DIMENSIONS, StreamLabels
from service.simulator.wire import Query, format_timestamp, invalid, parse_timestamp

ANALYTICS_BETA = "analytics-usage-cost-2026-08-24"
"""The ``anthropic-beta`` value both endpoints require."""
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_EARLIEST = datetime(2026, 1, 1, tzinfo=UTC)
_LOOKBACK = timedelta(days=365)
_MAX_RANGE = timedelta(days=31)
_MAX_MINUTE_RANGE = timedelta(hours=24)
_HOUR = 3600
WIDTHS = {"1m": 60, "1h": 3600, "1d": 86400}
MAX_GROUPS = 5
COMPONENTS = ("cost_type", "token_type")
"""Cost-only dimensions that fan a row out by cost component (and do not count to limits)."""

ABSENT_DIMENSIONS = (
    "agent_id",
    "claude_tag_category",
    "claude_tag_user_id",
    "deployment_id",
    "environment_id",
    "organization_id",
    "rbac_group_id",
    "session_id",
    "slack_channel_id",
    "user_profile_id",
)
"""Dimensions the API knows that the simulated organization never has (managed agents, Slack,
child organizations, teams, user profiles): grouping by one gives ``null``."""

FILTERS = {
    "actor_ids[]": "actor",
    "actor_types[]": "actor_type",
    "api_key_ids[]": "api_key_id",
    "context_windows[]": "context_window",
    "inference_geos[]": "inference_geo",
    "models[]": "model",
    "products[]": "product",
    "service_tiers[]": "service_tier",
    "speeds[]": "speed",
    "workspace_ids[]": "workspace_id",
}
_ENUM_FILTERS = {
    "actor_types[]": {"api_actor", "federated_actor", "service_account_actor", "user_actor"},
    "context_windows[]": {"0-200k", "200k-1M"},
    "inference_geos[]": {"global", "us", "not_available"},
    "products[]": {
        "chat",
        "chat_cowork_unified",
        "claude_code",
        "claude_console",
        "claude_design",
        "claude_in_chrome",
        "claude_tag",
        "cowork",
        "managed_agents_api",
        "message_batches_api",
        "messages_api",
        "office_agent",
    },
    "service_tiers[]": {
        "batch",
        "flex",
        "flex_discount",
        "priority",
        "priority_on_demand",
        "standard",
    },
    "speeds[]": {"fast", "standard"},
}
USAGE_METRICS = ("output_tokens", "requests", "time", "total_tokens", "uncached_input_tokens")
COST_METRICS = ("amount", "list_amount", "time")
_SINGLE = {
    "starting_at",
    "ending_at",
    "time_bucket_width",
    "limit",
    "page",
    "order_by",
    "order",
    "exclude_deleted_users",
}

T = TypeVar("T")


def _absent_filter(dimension: str) -> str:
    """``agent_id`` → ``agent_ids[]``, ``claude_tag_category`` → ``claude_tag_categories[]``."""
    if dimension.endswith("y"):
        return f"{dimension[:-1]}ies[]"
    return f"{dimension}s[]"


_ABSENT_FILTERS = tuple(_absent_filter(d) for d in ABSENT_DIMENSIONS)


@dataclass(frozen=True)
class AnalyticsQuery:
    """One validated request. Times are epoch seconds; ``end`` is exclusive."""

    endpoint: str
    width: int | None
    """Bucket seconds, or None for one row per combination over the whole range."""
    first: int
    """The first bucket's start (without a width: ``starting_at`` rounded down to the hour)."""
    end: int
    """Buckets start before this (without a width: ``ending_at`` rounded down to the hour)."""
    group_by: tuple[str, ...]
    """Grouped dimensions the organization has values for, in ``DIMENSIONS`` order."""
    absent: tuple[str, ...]
    """Grouped dimensions that are always null here."""
    components: frozenset[str]
    """``cost_type`` / ``token_type`` when grouped (the cost endpoint only)."""
    filters: dict[str, frozenset[str | None]]
    """Dimension → the values a stream must have."""
    matches_nothing: bool
    """A filter on a dimension the organization never has values for was given."""
    limit: int
    offset: int
    snapshot: int
    """The simulated now the whole paged read answers at (pinned by the cursor)."""
    order_by: str
    descending: bool
    canonical: str
    """The query without ``page`` and ``limit``: the same for every page of one read."""

    @property
    def fingerprint(self) -> str:
        """A short checksum of ``canonical``, carried in cursors."""
        return f"{zlib.crc32(self.canonical.encode()) & 0xFFFFFFFF:08x}"

    def selects(self, labels: StreamLabels) -> bool:
        """Whether a stream passes every filter."""
        if self.matches_nothing:
            return False
        return all(labels.value(d) in wanted for d, wanted in self.filters.items())

    def group_key(self, labels: StreamLabels) -> tuple[str | None, ...]:
        """The stream's values of the grouped dimensions."""
        return tuple(labels.value(d) for d in self.group_by)


def parse_query(pairs: list[tuple[str, str]], now: int, *, endpoint: str) -> AnalyticsQuery:
    """Validate one request of ``endpoint`` (``usage`` or ``cost``) at simulated ``now``.

    Raises a 400 ApiError for anything Anthropic would refuse.
    """
    cost = endpoint == "cost"
    query = Query(pairs, single=_SINGLE, multi={"group_by[]", *FILTERS, *_ABSENT_FILTERS})
    token = query.get("page")
    canonical = _canonical(endpoint, pairs)
    offset, snapshot = 0, now
    if token is not None:
        offset, snapshot = _decode_cursor(token, endpoint, canonical)
    width_name = query.get("time_bucket_width")
    if width_name is not None and width_name not in WIDTHS:
        raise invalid(f"time_bucket_width: Input should be '1d', '1h' or '1m', got {width_name!r}")
    width = WIDTHS[width_name] if width_name is not None else None
    first, end = _window(query, snapshot, width)
    group_by, absent, components = _groups(query.get_all("group_by[]"), cost=cost)
    filters: dict[str, frozenset[str | None]] = {}
    for parameter, dimension in FILTERS.items():
        values = query.get_all(parameter)
        allowed = _ENUM_FILTERS.get(parameter)
        for value in values:
            if allowed is not None and value not in allowed:
                raise invalid(f"{parameter}: {value!r} is not one of {', '.join(sorted(allowed))}")
        if values:
            empty_means_none = parameter == "api_key_ids[]"
            filters[dimension] = frozenset(
                None if empty_means_none and not v else v for v in values
            )
    matches_nothing = any(query.get_all(p) for p in _ABSENT_FILTERS)
    exclude_deleted = query.get("exclude_deleted_users")
    if exclude_deleted not in {None, "true", "false"}:
        raise invalid("exclude_deleted_users: Input should be a valid boolean")
    if exclude_deleted == "true" and "actor" not in group_by:
        raise invalid("exclude_deleted_users: requires group_by[]=actor")
    metrics = COST_METRICS if cost else USAGE_METRICS
    order_by = query.get("order_by") or ("amount" if cost else "total_tokens")
    if order_by not in metrics:
        raise invalid(f"order_by: Input should be one of {', '.join(metrics)}, got {order_by!r}")
    order = query.get("order") or "desc"
    if order not in {"asc", "desc"}:
        raise invalid(f"order: Input should be 'asc' or 'desc', got {order!r}")
    return AnalyticsQuery(
        endpoint=endpoint,
        width=width,
        first=first,
        end=end,
        group_by=group_by,
        absent=absent,
        components=components,
        filters=filters,
        matches_nothing=matches_nothing,
        limit=query.get_int("limit", 20, 1, 1000),
        offset=offset,
        snapshot=snapshot,
        order_by=order_by,
        descending=order == "desc",
        canonical=canonical,
    )


def _window(query: Query, now: int, width: int | None) -> tuple[int, int]:
    raw_start = query.get("starting_at")
    if raw_start is None:
        raise invalid("starting_at: Field required")
    start = parse_timestamp("starting_at", raw_start)
    now_moment = _EPOCH + timedelta(seconds=now)
    if start < _EARLIEST:
        raise invalid("starting_at: must be no earlier than 2026-01-01T00:00:00Z")
    if start < now_moment - _LOOKBACK:
        raise invalid("starting_at: must be within the last 365 days")
    raw_end = query.get("ending_at")
    if raw_end is None:
        if width is not None:
            raise invalid("ending_at: Field required when time_bucket_width is set")
        end = min(now_moment, start + _MAX_RANGE)
    else:
        end = parse_timestamp("ending_at", raw_end)
        if end <= start:
            raise invalid("ending_at: must be after starting_at")
        if end - start > _MAX_RANGE:
            raise invalid("ending_at: the range may span at most 31 days")
        if width == WIDTHS["1m"] and end - start > _MAX_MINUTE_RANGE:
            raise invalid(
                "ending_at: with time_bucket_width=1m the range may span at most 24 hours"
            )
    start_s = _seconds(start)
    if width is None:
        return start_s // _HOUR * _HOUR, _seconds(end) // _HOUR * _HOUR
    end_s = -(-(end - _EPOCH) // timedelta(microseconds=1) // 1_000_000)  # ceil to a second
    return start_s // width * width, end_s


def _groups(
    requested: list[str], *, cost: bool
) -> tuple[tuple[str, ...], tuple[str, ...], frozenset[str]]:
    known = {*DIMENSIONS, *ABSENT_DIMENSIONS, *(COMPONENTS if cost else ())}
    for dimension in requested:
        if dimension not in known:
            raise invalid(f"group_by[]: {dimension!r} is not one of {', '.join(sorted(known))}")
    wanted = set(requested)
    counted = wanted - set(COMPONENTS)
    if len(counted) > MAX_GROUPS:
        extra = " (cost_type and token_type do not count)" if cost else ""
        raise invalid(f"group_by[]: at most {MAX_GROUPS} dimensions{extra}, got {len(counted)}")
    return (
        tuple(d for d in DIMENSIONS if d in wanted),
        tuple(d for d in ABSENT_DIMENSIONS if d in wanted),
        frozenset(wanted & set(COMPONENTS)),
    )


def _seconds(moment: datetime) -> int:
    return (moment - _EPOCH) // timedelta(seconds=1)


@dataclass(frozen=True)
class RankedRow:
    """A row with what it is ordered by: its bucket, the requested and the default metric."""

    start: int
    metric: int | Decimal
    default_metric: int | Decimal
    tiebreak: tuple[tuple[bool, str], ...]


def ordered(rows: Sequence[T], rank: Callable[[T], RankedRow], query: AnalyticsQuery) -> list[T]:
    """Rows in the order the query asks for, with a total order so pages never overlap.

    ``order_by=time`` orders buckets in the ``order`` direction and, within a bucket, by the
    default metric, highest first; a metric ranks rows by it, ties by bucket then group.
    """
    by_time = query.order_by == "time" and query.width is not None
    sign = -1 if query.descending else 1

    def key(row: T) -> tuple[object, ...]:
        ranked = rank(row)
        if by_time:
            return (sign * ranked.start, _neg(ranked.default_metric), ranked.tiebreak)
        metric = ranked.default_metric if query.order_by == "time" else ranked.metric
        value = _neg(metric) if query.descending else metric
        return (value, ranked.start, ranked.tiebreak)

    return sorted(rows, key=key)


def _neg(value: int | Decimal) -> int | Decimal:
    return -value


def tiebreak(key: tuple[str | None, ...]) -> tuple[tuple[bool, str], ...]:
    """A sortable form of a group key (nulls first)."""
    return tuple((v is not None, v or "") for v in key)


@dataclass(frozen=True)
class Page:
    """The rows of one page and the cursor of the next."""

    start: int
    stop: int
    next_page: str | None


def page_of(total: int, query: AnalyticsQuery, *, stuck: bool) -> Page:
    """Which of ``total`` ranked rows the page holds; ``stuck`` names this page again (a fault)."""
    stop = min(query.offset + query.limit, total)
    if stuck:
        return Page(query.offset, stop, _encode_cursor(query, query.offset))
    next_page = _encode_cursor(query, stop) if stop < total else None
    return Page(query.offset, stop, next_page)


def data_refreshed_at(query: AnalyticsQuery, visibility_delay: int) -> str:
    """Usage shows up ``visibility_delay`` after it happens, so the data is as of then."""
    return format_timestamp(query.snapshot - visibility_delay)


def _canonical(endpoint: str, pairs: list[tuple[str, str]]) -> str:
    kept = "&".join(f"{k}={v}" for k, v in sorted(pairs) if k not in {"page", "limit"})
    return f"{endpoint}?{kept}"


def _encode_cursor(query: AnalyticsQuery, offset: int) -> str:
    payload = f"analytics|{query.endpoint}|{query.fingerprint}|{query.snapshot}|{offset}"
    check = zlib.crc32(payload.encode()) & 0xFFFFFFFF
    return "page_" + base64.urlsafe_b64encode(f"{payload}|{check:08x}".encode()).decode()


def _decode_cursor(token: str, endpoint: str, canonical: str) -> tuple[int, int]:
    """(offset, snapshot) of a token from this query; raises a 400 otherwise."""
    error = invalid("page: invalid page token")
    if not token.startswith("page_"):
        raise error
    try:
        raw = base64.urlsafe_b64decode(token[5:].encode()).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise error from None
    parts = raw.split("|")
    if len(parts) != 6 or parts[0] != "analytics" or not all(p.isdigit() for p in parts[3:5]):
        raise error
    payload = "|".join(parts[:5])
    if f"{zlib.crc32(payload.encode()) & 0xFFFFFFFF:08x}" != parts[5]:
        raise error
    fingerprint = f"{zlib.crc32(canonical.encode()) & 0xFFFFFFFF:08x}"
    if parts[1] != endpoint or parts[2] != fingerprint:
        raise invalid("page: the page token does not belong to this query")
    return int(parts[4]), int(parts[3])
