"""``GET /v1/organizations/usage_report/messages``: token counts per time bucket.

A month of hourly buckets grouped by every dimension is ~900k result rows, so a page is written
straight to JSON bytes from one template per result group (the same bytes ``json.dumps`` with
compact separators gives the equivalent dicts). A bucket whose counts are final
(``Workload.final_from``) encodes to the same bytes for the same grouping under any later clock,
so those are kept in a byte-bounded LRU cache; a bucket still growing is encoded afresh.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import Any

from service.simulator.byte_cache import ByteLru
from service.simulator.catalog import Stream
from service.simulator.paging import plan_page
from service.simulator.wire import Query, format_timestamp, invalid
from service.simulator.workload import Counts, Workload

GROUP_DIMENSIONS = (
    "api_key_id",
    "workspace_id",
    "model",
    "service_tier",
    "context_window",
    "inference_geo",
)
FILTERS = {
    "api_key_ids[]": "api_key_id",
    "workspace_ids[]": "workspace_id",
    "models[]": "model",
    "service_tiers[]": "service_tier",
    "context_window[]": "context_window",
    "inference_geos[]": "inference_geo",
}
# bucket_width -> (seconds, default limit, maximum limit)
WIDTHS = {"1m": (60, 60, 1440), "1h": (3600, 24, 168), "1d": (86400, 7, 31)}
DEFAULT_CACHE_BYTES = 512 * 1024 * 1024
"""Enough for the final buckets of a month of hourly pages by every dimension for 200 keys × 6
models (~410 MB), the most a benchmark re-reads."""
_SINGLE = {"starting_at", "ending_at", "bucket_width", "limit", "page"}
# The counters of a result row in Anthropic's key order; the 1h cache write comes before the 5m.
# Rows and buckets are kept with the comma that precedes them in a list, so that a page is
# their concatenation, not a copy of each with a comma added.
_COUNTS_TEMPLATE = (
    b',{"uncached_input_tokens":%d,"cache_creation":{"ephemeral_1h_input_tokens":%d,'
    b'"ephemeral_5m_input_tokens":%d},"cache_read_input_tokens":%d,"output_tokens":%d,'
    b'"server_tool_use":{"web_search_requests":%d},'
)

Json = dict[str, Any]
GroupingKey = tuple[frozenset[str], tuple[int, ...]]
"""The grouped dimensions and the indices of the streams the filters select."""


def encode_json(value: object) -> bytes:
    """``value`` as the simulator writes every JSON body: compact, ASCII-only."""
    return json.dumps(value, separators=(",", ":")).encode()


class UsageReport:
    """The usage report of one workload, with a cache of its final buckets; thread-safe.

    ``cache_bytes`` bounds the encoded buckets kept (0 keeps none).
    """

    def __init__(self, workload: Workload, *, cache_bytes: int = DEFAULT_CACHE_BYTES) -> None:
        self.workload = workload
        self.cache = ByteLru(cache_bytes)
        self._visible: dict[int, Callable[[int, int], Sequence[Counts] | None]] = {
            60: workload.visible_minute,
            3600: workload.visible_hour,
            86400: workload.visible_day,
        }
        self._grouping = lru_cache(maxsize=32)(self._build_grouping)

    def body(self, pairs: list[tuple[str, str]], now: int, *, stuck: bool) -> list[bytes]:
        """The JSON response body for one request, in pieces to be sent in order (a page can
        be ~80 MB, too much to copy into one string); raises a 400 ApiError for a bad query."""
        query = Query(pairs, single=_SINGLE, multi={"group_by[]", *FILTERS})
        width_name = query.get("bucket_width") or "1d"
        if width_name not in WIDTHS:
            raise invalid(f"bucket_width: Input should be '1m', '1h' or '1d', got {width_name!r}")
        width, default_limit, max_limit = WIDTHS[width_name]
        limit = query.get_int("limit", default_limit, 1, max_limit)
        group_by = query.get_all("group_by[]")
        for dimension in group_by:
            if dimension not in GROUP_DIMENSIONS:
                raise invalid(
                    f"group_by[]: {dimension!r} is not one of {', '.join(GROUP_DIMENSIONS)}"
                )
        streams = _filtered(self.workload.streams, query)
        page = plan_page(query, kind="usage", width=width, limit=limit, now=now, stuck=stuck)
        grouping = self._grouping(frozenset(group_by), tuple(s.index for s in streams))
        pieces = [b'{"data":[']
        for position, start in enumerate(page.starts):
            bucket = self._bucket(grouping, width, start, now)
            pieces.append(bucket if position else bucket[1:])
        pieces.append(
            b'],"has_more":%b,"next_page":%b}'
            % (b"true" if page.has_more else b"false", encode_json(page.next_page))
        )
        return pieces

    def _bucket(self, grouping: UsageGrouping, width: int, start: int, now: int) -> bytes:
        """The bucket's JSON object, after a comma."""
        final = now >= self.workload.final_from(start, width)
        key = (width, start, grouping.key)
        if final:
            cached = self.cache.get(key)
            if cached is not None:
                return cached
        rows = grouping.encode(self._visible[width](start // width, now))
        if rows:
            rows[0] = rows[0][1:]
        head = b',{"starting_at":%b,"ending_at":%b,"results":[' % (
            encode_json(format_timestamp(start)),
            encode_json(format_timestamp(start + width)),
        )
        encoded = b"".join([head, *rows, b"]}"])
        if final:
            self.cache.put(key, encoded)
        return encoded

    def _build_grouping(self, group_by: frozenset[str], indices: tuple[int, ...]) -> UsageGrouping:
        return UsageGrouping([self.workload.streams[i] for i in indices], group_by)


def _filtered(streams: Sequence[Stream], query: Query) -> list[Stream]:
    selected = list(streams)
    for parameter, dimension in FILTERS.items():
        wanted = set(query.get_all(parameter))
        if wanted:
            selected = [s for s in selected if getattr(s, dimension) in wanted]
    return selected


class UsageGrouping:
    """Sums per-stream counters into one result row per distinct value of the grouped fields."""

    def __init__(self, streams: Sequence[Stream], group_by: frozenset[str]) -> None:
        self.key: GroupingKey = (group_by, tuple(s.index for s in streams))
        slots: dict[tuple[str | None, ...], int] = {}
        self._members: list[tuple[int, int]] = []
        self._templates: list[bytes] = []
        by_key = "api_key_id" in group_by
        for stream in streams:
            key = tuple(getattr(stream, d) if d in group_by else None for d in GROUP_DIMENSIONS)
            if key not in slots:
                slots[key] = len(slots)
                labels: Json = dict(zip(GROUP_DIMENSIONS, key, strict=True))
                # 2026 fields; present so clients prove they ignore what they do not know.
                labels["account_id"] = stream.account_id if by_key else None
                labels["service_account_id"] = stream.service_account_id if by_key else None
                # The labels follow the counters in the row: '"api_key_id":…}' after the comma.
                fields = encode_json(labels)[1:].replace(b"%", b"%%")
                self._templates.append(_COUNTS_TEMPLATE + fields)
            self._members.append((stream.index, slots[key]))
        self._one_per_stream = len(slots) == len(self._members)

    def encode(self, counts: Sequence[Counts] | None) -> list[bytes]:
        """The bucket's result rows as JSON objects, each after a comma, skipping all-zero
        groups; none while the bucket is invisible."""
        if counts is None:
            return []
        per_slot: Sequence[Sequence[int]]
        if self._one_per_stream:
            per_slot = [counts[index] for index, _ in self._members]
        else:
            sums = [[0, 0, 0, 0, 0, 0] for _ in self._templates]
            for index, slot in self._members:
                a, b, c, d, e, f = counts[index]
                total = sums[slot]
                total[0] += a
                total[1] += b
                total[2] += c
                total[3] += d
                total[4] += e
                total[5] += f
            per_slot = sums
        return [
            template % (a, c, b, d, e, f)
            for template, (a, b, c, d, e, f) in zip(self._templates, per_slot, strict=True)
            if a or b or c or d or e or f
        ]
