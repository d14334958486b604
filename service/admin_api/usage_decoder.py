"""The usage report's pages decoded straight from bytes by a validating decoder (msgspec).

A month for a few hundred keys is hundreds of thousands of rows: decoding them into Python
dicts (``json.loads``) and then checking every value by hand (:func:`~service.admin_api.wire.
parse_usage_page`) cost most of the fetch. Here each page is decoded once into typed structs,
which checks every type on the way, and the few rules a type cannot say (a bucket's end after
its start, one row per key) are checked on the structs. The rules are the same:

- a missing ``cache_creation`` or ``server_tool_use`` (or a key inside one) counts as zero, a
  null is refused; counts are non-negative integers (not booleans, not floats);
- timestamps are RFC 3339 with an offset; unknown fields are ignored;
- the page is rejected whole on the first value out of shape.

The decoder is never more lenient than the hand-written parser: a page it refuses is parsed
again by that parser, whose error names the value and what was wrong with it (and which,
should it accept what the decoder did not, is the answer). Nothing here does I/O.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import httpx
import msgspec

from service.admin_api.answers import decode_json
from service.admin_api.wire import Invalid, parse_usage_page
from service.domain.usage import BucketWidth, TokenCounts, UsageKey, UsagePage, UsageRow
from service.memory import paused_gc

Count = Annotated[int, msgspec.Meta(ge=0)]
Moment = Annotated[datetime, msgspec.Meta(tz=True)]


class CacheCreation(msgspec.Struct):
    ephemeral_5m_input_tokens: Count = 0
    ephemeral_1h_input_tokens: Count = 0


class ServerToolUse(msgspec.Struct):
    web_search_requests: Count = 0


class _Result(msgspec.Struct):
    uncached_input_tokens: Count
    cache_read_input_tokens: Count
    output_tokens: Count
    cache_creation: CacheCreation = msgspec.field(default_factory=CacheCreation)
    server_tool_use: ServerToolUse = msgspec.field(default_factory=ServerToolUse)
    model: str | None = None
    api_key_id: str | None = None
    workspace_id: str | None = None
    service_tier: str | None = None
    context_window: str | None = None
    inference_geo: str | None = None


class _Bucket(msgspec.Struct):
    starting_at: Moment
    ending_at: Moment
    results: list[_Result]


class _Page(msgspec.Struct):
    data: list[_Bucket]
    has_more: bool
    next_page: str | None = None


_DECODER = msgspec.json.Decoder(_Page)


def decode_usage_page(
    response: httpx.Response, width: BucketWidth, label: str, path: str
) -> UsagePage:
    """One usage report page from a successful answer; raise Invalid (MalformedResponse when
    the body is not JSON at all) as :func:`~service.admin_api.wire.parse_usage_page` does."""
    with paused_gc():
        return _decode(response, width, label, path)


def _decode(response: httpx.Response, width: BucketWidth, label: str, path: str) -> UsagePage:
    try:
        page = _DECODER.decode(response.content)
    except (msgspec.ValidationError, msgspec.DecodeError):
        # The hand-written parser says what and where; the decoder only that something is.
        return parse_usage_page(decode_json(response, label, path), width)
    rows: list[UsageRow] = []
    seen: set[tuple[object, ...]] = set()  # plain tuples: a dataclass hashes in Python
    starts: list[datetime] = []
    for b, bucket in enumerate(page.data):
        if bucket.ending_at <= bucket.starting_at:
            raise Invalid(f"data[{b}]", "ending_at is not after starting_at")
        start = bucket.starting_at.astimezone(UTC)
        starts.append(start)
        for r, result in enumerate(bucket.results):
            group = (
                start,
                result.model,
                result.api_key_id,
                result.workspace_id,
                result.service_tier,
                result.context_window,
                result.inference_geo,
            )
            seen.add(group)
            if len(seen) != len(rows) + 1:
                # Two rows with one key would overwrite each other when booked by natural key.
                where = f"data[{b}].results[{r}]"
                raise Invalid(where, "a second row for the same bucket and grouping")
            cache = result.cache_creation
            rows.append(
                UsageRow(
                    UsageKey(start, width, *group[1:]),
                    TokenCounts(
                        result.uncached_input_tokens,
                        cache.ephemeral_5m_input_tokens,
                        cache.ephemeral_1h_input_tokens,
                        result.cache_read_input_tokens,
                        result.output_tokens,
                        result.server_tool_use.web_search_requests,
                    ),
                )
            )
    return UsagePage(tuple(rows), tuple(starts), page.has_more, page.next_page)
