"""The Analytics API's pages decoded straight from bytes by a validating decoder (msgspec).

``/analytics/usage`` and ``/analytics/cost`` answer rows, not buckets: a day of hourly rows for
a few hundred keys is tens of thousands of them, each with its own group and (on cost rows) two
amounts. Decoding them into dicts (``json.loads``) and checking every value by hand
(:mod:`service.admin_api.analytics_wire`) cost most of the fetch. Here each page is decoded once
into typed structs, which checks every type on the way, and the rules a type cannot say are
checked on the structs. The rules are those of ``analytics_wire``:

- a group dimension is a string or null (absent is null); ``cost_type``/``token_type`` are read
  on cost rows only; an actor needs the id field of its kind (``user_id``, ...), a federated
  actor's ``subject`` may be null, an actor of a newer kind has no id;
- counts are non-negative integers (not booleans, not floats); a missing ``cache_creation`` or
  ``server_tool_use`` (or a key inside one) counts as zero, a null is refused; ``requests`` may
  be null;
- amounts are cents, a decimal string or a JSON number (kept exact: a number is read as
  ``Decimal``, never ``float``), finite and not negative; the currency is ``USD``;
- timestamps are what ``datetime.fromisoformat`` reads, with an offset (parsed by it, not by
  msgspec, whose RFC 3339 reader accepts lowercase ``t``/``z`` and rounds nanoseconds);
- a bucket ends after it starts; a second row for one bucket and group is refused;
- unknown fields are ignored; the page is rejected whole on the first value out of shape.

The decoder is never more lenient than the hand-written parser: a page it refuses is parsed
again by that parser, whose error names the value and what was wrong with it (and which,
should it accept what the decoder did not, is the answer). Nothing here does I/O.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Generic, NamedTuple, TypeVar

import httpx
import msgspec

from service.admin_api.analytics_wire import (
    ACTOR_ID_FIELDS,
    AnalyticsActor,
    AnalyticsCostRow,
    AnalyticsGroup,
    AnalyticsPage,
    AnalyticsUsageRow,
    parse_analytics_cost_page,
    parse_analytics_usage_page,
)
from service.admin_api.answers import decode_json
from service.admin_api.usage_decoder import CacheCreation, Count, ServerToolUse
from service.domain.usage import TokenCounts
from service.memory import paused_gc


class _Actor(msgspec.Struct):
    type: str
    user_id: str | None = None
    service_account_id: str | None = None
    api_key_id: str | None = None
    subject: str | None = None
    email_address: str | None = None
    name: str | None = None


class _UsageGroup(msgspec.Struct):
    actor: _Actor | None = None
    actor_type: str | None = None
    api_key_id: str | None = None
    context_window: str | None = None
    inference_geo: str | None = None
    model: str | None = None
    product: str | None = None
    service_tier: str | None = None
    speed: str | None = None
    workspace_id: str | None = None


class _CostGroup(_UsageGroup):
    cost_type: str | None = None
    token_type: str | None = None


class _Usage(msgspec.Struct):
    uncached_input_tokens: Count
    cache_read_input_tokens: Count
    output_tokens: Count
    total_tokens: Count
    cache_creation: CacheCreation = msgspec.field(default_factory=CacheCreation)
    server_tool_use: ServerToolUse = msgspec.field(default_factory=ServerToolUse)
    requests: Count | None = None


class _Cost(msgspec.Struct):
    # Untyped, so a JSON number arrives as int or (through float_hook) Decimal, a string as str.
    amount: object
    list_amount: object
    currency: str
    requests: Count | None = None


class _UsageRow(msgspec.Struct):
    starting_at: str
    ending_at: str
    group: _UsageGroup
    usage: _Usage


class _CostRow(msgspec.Struct):
    starting_at: str
    ending_at: str
    group: _CostGroup
    cost: _Cost


_WireRow = TypeVar("_WireRow", _UsageRow, _CostRow)
PageT = TypeVar("PageT")


class _Page(msgspec.Struct, Generic[_WireRow]):
    data: list[_WireRow]
    has_more: bool
    next_page: str | None = None
    data_refreshed_at: str | None = None


# float_hook: a JSON number with a fraction or exponent becomes Decimal(its text), as
# decode_json's parse_float does, so an amount never passes through float.
_USAGE_DECODER = msgspec.json.Decoder(_Page[_UsageRow], float_hook=Decimal)
_COST_DECODER = msgspec.json.Decoder(_Page[_CostRow], float_hook=Decimal)


class _Refused(Exception):
    """A value the structs took but the rules refuse; the hand-written parser says where."""


def decode_analytics_usage_page(
    response: httpx.Response, label: str, path: str
) -> AnalyticsPage[AnalyticsUsageRow]:
    """One ``analytics/usage`` page from a successful answer; raise Invalid (MalformedResponse
    when the body is not JSON at all) as
    :func:`~service.admin_api.analytics_wire.parse_analytics_usage_page` does."""
    return _decoded(response, label, path, _USAGE_PAGES)


def decode_analytics_cost_page(
    response: httpx.Response, label: str, path: str
) -> AnalyticsPage[AnalyticsCostRow]:
    """One ``analytics/cost`` page from a successful answer; raise as
    :func:`~service.admin_api.analytics_wire.parse_analytics_cost_page` does."""
    return _decoded(response, label, path, _COST_PAGES)


class _PageKind(NamedTuple, Generic[PageT]):
    """How one kind of page is read: ``decoder`` into structs, ``build`` the page of those,
    or the hand-written ``parse`` of the decoded JSON."""

    decoder: msgspec.json.Decoder[Any]
    build: Callable[[Any], PageT]
    parse: Callable[[object], PageT]


def _decoded(response: httpx.Response, label: str, path: str, kind: _PageKind[PageT]) -> PageT:
    """The page ``kind.build`` makes of what ``kind.decoder`` reads, or, when either refuses
    it, what the hand-written ``kind.parse`` says of the same body (its error names the
    value)."""
    with paused_gc():
        try:
            return kind.build(kind.decoder.decode(response.content))
        except (msgspec.ValidationError, msgspec.DecodeError, _Refused):
            return kind.parse(decode_json(response, label, path))


def _usage_page(page: _Page[_UsageRow]) -> AnalyticsPage[AnalyticsUsageRow]:
    moment, group_of = _moments(), _groups()
    rows: list[AnalyticsUsageRow] = []
    seen: set[tuple[object, ...]] = set()
    for row in page.data:
        starting_at, ending_at = _bounds(moment, row.starting_at, row.ending_at)
        key, group = group_of(row.group, None, None)
        _unique(seen, (starting_at, key), len(rows))
        usage = row.usage
        cache = usage.cache_creation
        rows.append(
            AnalyticsUsageRow(
                starting_at,
                ending_at,
                group,
                TokenCounts(
                    usage.uncached_input_tokens,
                    cache.ephemeral_5m_input_tokens,
                    cache.ephemeral_1h_input_tokens,
                    usage.cache_read_input_tokens,
                    usage.output_tokens,
                    usage.server_tool_use.web_search_requests,
                ),
                usage.total_tokens,
                usage.requests,
            )
        )
    return AnalyticsPage(tuple(rows), page.has_more, page.next_page, _refreshed(page, moment))


def _cost_page(page: _Page[_CostRow]) -> AnalyticsPage[AnalyticsCostRow]:
    moment, group_of = _moments(), _groups()
    rows: list[AnalyticsCostRow] = []
    seen: set[tuple[object, ...]] = set()
    for row in page.data:
        starting_at, ending_at = _bounds(moment, row.starting_at, row.ending_at)
        wire_group = row.group
        key, group = group_of(wire_group, wire_group.cost_type, wire_group.token_type)
        _unique(seen, (starting_at, key), len(rows))
        cost = row.cost
        # Amounts are cents of this currency; any other would need a rate the ledger lacks.
        if cost.currency != "USD":
            raise _Refused
        rows.append(
            AnalyticsCostRow(
                starting_at,
                ending_at,
                group,
                _cents_as_usd(cost.amount),
                _cents_as_usd(cost.list_amount),
                cost.currency,
                cost.requests,
            )
        )
    return AnalyticsPage(tuple(rows), page.has_more, page.next_page, _refreshed(page, moment))


def _moments() -> Callable[[str], datetime]:
    """A timestamp reader for one page: every row of a bucket repeats the same two strings."""
    parsed: dict[str, datetime] = {}

    def moment(text: str) -> datetime:
        value = parsed.get(text)
        if value is None:
            try:
                value = datetime.fromisoformat(text)
            except ValueError:
                raise _Refused from None
            if value.tzinfo is None:
                raise _Refused
            value = parsed[text] = value.astimezone(UTC)
        return value

    return moment


def _groups() -> Callable[
    [_UsageGroup, str | None, str | None], tuple[tuple[object, ...], AnalyticsGroup]
]:
    """A group reader for one page: (a plain tuple to key rows by, the group), one
    ``AnalyticsGroup`` per distinct group (a row of every hour shares its group)."""
    made: dict[tuple[object, ...], AnalyticsGroup] = {}

    def group_of(
        wire: _UsageGroup, cost_type: str | None, token_type: str | None
    ) -> tuple[tuple[object, ...], AnalyticsGroup]:
        actor = wire.actor
        actor_key = None if actor is None else _actor_key(actor)
        # Plain tuples hash in C; a dataclass hashes in Python.
        key = (
            actor_key,
            wire.actor_type,
            wire.api_key_id,
            wire.context_window,
            wire.inference_geo,
            wire.model,
            wire.product,
            wire.service_tier,
            wire.speed,
            wire.workspace_id,
            cost_type,
            token_type,
        )
        group = made.get(key)
        if group is None:
            group = made[key] = AnalyticsGroup(
                None if actor_key is None else AnalyticsActor(*actor_key), *key[1:]
            )
        return key, group

    return group_of


def _actor_key(actor: _Actor) -> tuple[str, str | None, str | None, str | None]:
    """(type, id, email_address, name), the fields of ``AnalyticsActor``."""
    kind = actor.type
    actor_id: str | None = None
    if kind == "federated_actor":
        actor_id = actor.subject  # the SDK types the subject as optional
    elif kind in ACTOR_ID_FIELDS:
        actor_id = getattr(actor, ACTOR_ID_FIELDS[kind])
        if actor_id is None:  # missing or null: this kind's id is required
            raise _Refused
    return kind, actor_id, actor.email_address, actor.name


def _bounds(moment: Callable[[str], datetime], start: str, end: str) -> tuple[datetime, datetime]:
    starting_at, ending_at = moment(start), moment(end)
    if ending_at <= starting_at:
        raise _Refused
    return starting_at, ending_at


def _unique(seen: set[tuple[object, ...]], key: tuple[object, ...], count: int) -> None:
    # Two rows with one key would overwrite each other when booked by natural key.
    seen.add(key)
    if len(seen) == count:
        raise _Refused


def _refreshed(page: _Page[_WireRow], moment: Callable[[str], datetime]) -> datetime | None:
    # The SDK's page model has it optional; when present it must be a timestamp.
    return None if page.data_refreshed_at is None else moment(page.data_refreshed_at)


def _cents_as_usd(value: object) -> Decimal:
    """Cents (a decimal string, an int or an exact Decimal) as exact USD; never negative."""
    if isinstance(value, bool) or not isinstance(value, str | int | Decimal):
        raise _Refused
    try:
        cents = Decimal(value.strip() if isinstance(value, str) else value)
    except InvalidOperation:
        raise _Refused from None
    # After discounts and before credits, a charge cannot be below zero.
    if not cents.is_finite() or cents < 0:
        raise _Refused
    return cents.scaleb(-2)  # exact: moves the decimal point, no rounding


_USAGE_PAGES = _PageKind(_USAGE_DECODER, _usage_page, parse_analytics_usage_page)
_COST_PAGES = _PageKind(_COST_DECODER, _cost_page, parse_analytics_cost_page)
