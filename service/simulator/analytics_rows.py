"""The workload as the Analytics API sees it: per-bucket sums of the selected streams, by group.

Both analytics endpoints read the same :class:`Workload` as the legacy reports, through the same
``visible_*`` views (visibility delay, growing buckets), so summing analytics rows over any
grouping gives the legacy report's totals for the same window.

``requests`` has no counterpart in the workload: each stream has a fixed mean output per request
(from its seed) and a bucket's requests are its output tokens divided by that, rounded up (at
least one when the bucket has any usage). It is summed per stream and bucket, so it agrees
across the groupings of one width, not to the unit across widths.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterator, Sequence
from typing import Any, TypeVar, cast

from service.simulator.analytics_attribution import DIMENSIONS, Attribution, StreamLabels
from service.simulator.analytics_query import AnalyticsQuery
from service.simulator.catalog import mix64
from service.simulator.workload import Counts, Workload

Json = dict[str, Any]
Sums = list[int]
"""The six usage counters (``Counts`` order), then requests."""
K = TypeVar("K", bound=Hashable)
R = TypeVar("R")
_CACHED_READS = 8

_HOUR = 3600
_MIN_OUTPUT_PER_REQUEST = 150
_OUTPUT_PER_REQUEST_SPREAD = 1351


class AnalyticsData:
    """Labels of every stream and bucket sums of a workload; built once per server."""

    def __init__(self, workload: Workload) -> None:
        self.workload = workload
        self.attribution = Attribution(workload)
        self._output_per_request = [
            _MIN_OUTPUT_PER_REQUEST + mix64(s.seed ^ 0x5EED) % _OUTPUT_PER_REQUEST_SPREAD
            for s in workload.streams
        ]
        self._reads: OrderedDict[tuple[str, int], object] = OrderedDict()
        self._reads_lock = threading.Lock()

    @property
    def visibility_delay(self) -> int:
        """Seconds between usage happening and the API showing it."""
        return int(self.workload.spec.visibility_delay.total_seconds())

    def sums(
        self, query: AnalyticsQuery, key_of: Callable[[int, StreamLabels], K | None]
    ) -> dict[tuple[int, int, K], Sums]:
        """Sums per (bucket start, bucket end, key) over the streams the query selects (epoch
        seconds), skipping all-zero ones. ``key_of`` gives a stream's key from its index and labels;
        None leaves the stream out.
        """
        selected: list[tuple[int, K, int]] = []
        for index, labels in enumerate(self.attribution.labels):
            if query.selects(labels):
                key = key_of(index, labels)
                if key is not None:
                    selected.append((index, key, self._output_per_request[index]))
        result: dict[tuple[int, int, K], Sums] = {}
        for start, end, parts in self._windows(query):
            for counts in parts:
                for index, key, per_request in selected:
                    a, b, c, d, e, f = counts[index]
                    if not (a or b or c or d or e or f):
                        continue
                    total = result.get((start, end, key))
                    if total is None:
                        total = result[start, end, key] = [0, 0, 0, 0, 0, 0, 0]
                    total[0] += a
                    total[1] += b
                    total[2] += c
                    total[3] += d
                    total[4] += e
                    total[5] += f
                    total[6] += max(1, -(-e // per_request))
        return result

    def ranked(self, query: AnalyticsQuery, compute: Callable[[], list[R]]) -> list[R]:
        """The ranked rows of a paged read, computed on its first page and kept for the next
        ones (a read answers at one snapshot, so its rows never change)."""
        key = (query.canonical, query.snapshot)
        with self._reads_lock:
            if key in self._reads:
                self._reads.move_to_end(key)
                return cast("list[R]", self._reads[key])
        rows = compute()
        with self._reads_lock:
            self._reads[key] = rows
            while len(self._reads) > _CACHED_READS:
                self._reads.popitem(last=False)
        return rows

    def _windows(self, query: AnalyticsQuery) -> Iterator[tuple[int, int, list[Sequence[Counts]]]]:
        """(start, end, the visible per-stream counts that make it up) of every row period."""
        workload, now = self.workload, query.snapshot
        if query.width is None:
            span = range(query.first // _HOUR, query.end // _HOUR)
            hours = (workload.visible_hour(h, now) for h in span)
            parts = [h for h in hours if h is not None]
            if parts:
                yield query.first, query.end, parts
            return
        width = query.width
        visible: Callable[[int, int], Sequence[Counts] | None] = {
            60: workload.visible_minute,
            3600: workload.visible_hour,
            86400: workload.visible_day,
        }[width]
        last = min(query.end, (now // width + 1) * width)  # no bucket starts after now
        for start in range(query.first, last, width):
            counts = visible(start // width, now)
            if counts is not None:
                yield start, start + width, [counts]

    def group(self, query: AnalyticsQuery, key: tuple[str | None, ...]) -> Json:
        """The ``group`` object of a row: every dimension, null unless grouped."""
        values = dict(zip(query.group_by, key, strict=True))
        group: Json = {
            d: self.attribution.render(d, values[d]) if d in values else None for d in DIMENSIONS
        }
        for dimension in query.absent:
            group[dimension] = None
        return group


def usage_object(sums: Sums) -> Json:
    """The ``usage`` object of a row."""
    a, b, c, d, e, f, requests = sums
    return {
        "uncached_input_tokens": a,
        "cache_creation": {"ephemeral_1h_input_tokens": c, "ephemeral_5m_input_tokens": b},
        "cache_read_input_tokens": d,
        "output_tokens": e,
        "server_tool_use": {"web_search_requests": f},
        "total_tokens": a + b + c + d + e,
        "requests": requests,
    }
