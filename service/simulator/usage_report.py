"""``GET /v1/organizations/usage_report/messages``: token counts per time bucket."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

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
_SINGLE = {"starting_at", "ending_at", "bucket_width", "limit", "page"}

Json = dict[str, Any]


def usage_report(
    workload: Workload, pairs: list[tuple[str, str]], now: int, *, stuck: bool
) -> Json:
    """The response body for one request; raises a 400 ApiError for a bad query."""
    query = Query(pairs, single=_SINGLE, multi={"group_by[]", *FILTERS})
    width_name = query.get("bucket_width") or "1d"
    if width_name not in WIDTHS:
        raise invalid(f"bucket_width: Input should be '1m', '1h' or '1d', got {width_name!r}")
    width, default_limit, max_limit = WIDTHS[width_name]
    limit = query.get_int("limit", default_limit, 1, max_limit)
    group_by = query.get_all("group_by[]")
    for dimension in group_by:
        if dimension not in GROUP_DIMENSIONS:
            raise invalid(f"group_by[]: {dimension!r} is not one of {', '.join(GROUP_DIMENSIONS)}")
    streams = _filtered(workload.streams, query)
    page = plan_page(query, kind="usage", width=width, limit=limit, now=now, stuck=stuck)
    grouping = UsageGrouping(streams, set(group_by))
    visible: Callable[[int, int], Sequence[Counts] | None] = {
        60: workload.visible_minute,
        3600: workload.visible_hour,
        86400: workload.visible_day,
    }[width]
    data = [
        {
            "starting_at": format_timestamp(start),
            "ending_at": format_timestamp(start + width),
            "results": grouping.rows(visible(start // width, now)),
        }
        for start in page.starts
    ]
    return {"data": data, "has_more": page.has_more, "next_page": page.next_page}


def _filtered(streams: Sequence[Stream], query: Query) -> list[Stream]:
    selected = list(streams)
    for parameter, dimension in FILTERS.items():
        wanted = set(query.get_all(parameter))
        if wanted:
            selected = [s for s in selected if getattr(s, dimension) in wanted]
    return selected


class UsageGrouping:
    """Sums per-stream counters into one result row per distinct value of the grouped fields."""

    def __init__(self, streams: Sequence[Stream], group_by: set[str]) -> None:
        slots: dict[tuple[str | None, ...], int] = {}
        self._members: list[tuple[int, int]] = []
        self._labels: list[Json] = []
        by_key = "api_key_id" in group_by
        for stream in streams:
            key = tuple(getattr(stream, d) if d in group_by else None for d in GROUP_DIMENSIONS)
            if key not in slots:
                slots[key] = len(slots)
                labels: Json = dict(zip(GROUP_DIMENSIONS, key, strict=True))
                # 2026 fields; present so clients prove they ignore what they do not know.
                labels["account_id"] = stream.account_id if by_key else None
                labels["service_account_id"] = stream.service_account_id if by_key else None
                self._labels.append(labels)
            self._members.append((stream.index, slots[key]))
        self._one_per_stream = len(slots) == len(self._members)

    def rows(self, counts: Sequence[Counts] | None) -> list[Json]:
        """Result rows of one bucket, skipping all-zero groups; [] while it is invisible."""
        if counts is None:
            return []
        if self._one_per_stream:
            per_slot: Sequence[Sequence[int]] = [counts[index] for index, _ in self._members]
        else:
            sums = [[0, 0, 0, 0, 0, 0] for _ in self._labels]
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
        rows = []
        for (a, b, c, d, e, f), labels in zip(per_slot, self._labels, strict=True):
            if a or b or c or d or e or f:
                row: Json = {
                    "uncached_input_tokens": a,
                    "cache_creation": {
                        "ephemeral_1h_input_tokens": c,
                        "ephemeral_5m_input_tokens": b,
                    },
                    "cache_read_input_tokens": d,
                    "output_tokens": e,
                    "server_tool_use": {"web_search_requests": f},
                }
                row.update(labels)
                rows.append(row)
        return rows
