"""Which time buckets one page of a report holds, shared by the usage and cost reports.

Anthropic's reference: ``starting_at`` selects the bucket that contains it (snapped down to the
bucket start, UTC) and ``ending_at`` returns buckets that *start* before it; ``limit`` counts
buckets. The simulator also never returns a bucket that starts after its clock's ``now``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from service.simulator.wire import Query, decode_cursor, encode_cursor, invalid, parse_timestamp

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class BucketPage:
    """Bucket starts (epoch seconds) of one page and the cursor of the next, if any."""

    width: int
    starts: tuple[int, ...]
    next_page: str | None

    @property
    def has_more(self) -> bool:
        """Whether a later page exists (now, under the simulator's clock)."""
        return self.next_page is not None


def _epoch_seconds(moment: datetime) -> int:
    return (moment - _EPOCH) // timedelta(seconds=1)


def plan_page(
    query: Query, *, kind: str, width: int, limit: int, now: int, stuck: bool
) -> BucketPage:
    """The buckets of the page the query asks for.

    ``kind`` names the report in the cursor so a token from one report (or width) is rejected by
    another. ``stuck`` makes the page point at itself forever (a fault). Raises a 400 ApiError.
    """
    raw_start = query.get("starting_at")
    if raw_start is None:
        raise invalid("starting_at: Field required")
    start_moment = parse_timestamp("starting_at", raw_start)
    start = _epoch_seconds(start_moment) // width * width
    bound = (now // width + 1) * width  # buckets start at or before now
    raw_end = query.get("ending_at")
    if raw_end is not None:
        end_moment = parse_timestamp("ending_at", raw_end)
        if end_moment <= start_moment:
            raise invalid("ending_at: must be after starting_at")
        end_seconds = -(-(end_moment - _EPOCH) // timedelta(microseconds=1) // 1_000_000)
        bound = min(bound, end_seconds)
    position = start
    token = query.get("page")
    if token is not None:
        position = decode_cursor(f"{kind}:{width}", token)
        if position % width or position < start:
            raise invalid("page: the page token does not belong to this query")
    starts = tuple(s for s in range(position, position + limit * width, width) if s < bound)
    following = position + limit * width
    if stuck:
        return BucketPage(width, starts, encode_cursor(f"{kind}:{width}", position))
    next_page = encode_cursor(f"{kind}:{width}", following) if following < bound else None
    return BucketPage(width, starts, next_page)
