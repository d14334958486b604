"""The Usage and Cost Analytics API's wire format: decoded pages in, typed rows out.

``GET /v1/organizations/analytics/usage`` and ``/cost`` (beta) answer
``{"data": [row…], "has_more", "next_page", "data_refreshed_at"}`` where a row is flat:
``{"starting_at", "ending_at", "group": {dimension: value|null…}, "usage"|"cost": {…}}``.
Strict like ``service.admin_api.wire`` (whose primitives it reuses): a value out of shape
raises ``Invalid`` naming where, the whole page is rejected, unknown fields are ignored.
The client reads pages through ``service.admin_api.analytics_decoder``, which decodes the bytes
into typed structs and parses a page here again only to say what is wrong with one it refuses.
Nothing here does I/O.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Generic, TypeVar

from service.admin_api.wire import (
    Invalid,
    _amount_usd,
    _describe,
    _opt_str,
    _page_envelope,
    _req_count,
    _required,
    _timestamp,
    as_object,
    req_str,
    token_counts,
)
from service.domain.money import usd_to_nanos
from service.domain.usage import TokenCounts


@dataclass(frozen=True, slots=True)
class AnalyticsActor:
    """Who a row's usage is attributed to: ``type`` is ``user_actor``, ``service_account_actor``,
    ``api_actor`` or ``federated_actor`` (or a newer kind, then ``id`` is None).

    ``id`` is the user, service account or API key id, or the federated subject.
    """

    type: str
    id: str | None
    email_address: str | None = None
    name: str | None = None


@dataclass(frozen=True, slots=True)
class AnalyticsGroup:
    """A row's dimensions; None when not grouped by one (or, for ``api_key_id``, when no key
    authenticated the request). ``workspace_id`` is a real id even for the default workspace
    (the legacy report says null there). ``cost_type``/``token_type`` exist on cost rows only."""

    actor: AnalyticsActor | None = None
    actor_type: str | None = None
    api_key_id: str | None = None
    context_window: str | None = None
    inference_geo: str | None = None
    model: str | None = None
    product: str | None = None
    service_tier: str | None = None
    speed: str | None = None
    workspace_id: str | None = None
    cost_type: str | None = None
    token_type: str | None = None


@dataclass(frozen=True, slots=True)
class AnalyticsUsageRow:
    """One usage row: a bucket, one combination of dimensions, its counts."""

    starting_at: datetime
    ending_at: datetime
    group: AnalyticsGroup
    counts: TokenCounts
    total_tokens: int
    requests: int | None


@dataclass(frozen=True, slots=True)
class AnalyticsCostRow:
    """One cost row, amounts converted from Anthropic's cents to exact USD.

    ``amount`` is after discounts and before credits (the bill); ``list_amount`` at list price.
    """

    starting_at: datetime
    ending_at: datetime
    group: AnalyticsGroup
    amount_usd: Decimal
    list_amount_usd: Decimal
    currency: str
    requests: int | None

    @property
    def amount_nanos(self) -> int:
        """``amount_usd`` in whole nano-dollars (half to even), as the ledger books it."""
        return usd_to_nanos(self.amount_usd)

    @property
    def list_amount_nanos(self) -> int:
        """``list_amount_usd`` in whole nano-dollars (half to even)."""
        return usd_to_nanos(self.list_amount_usd)


RowT = TypeVar("RowT", "AnalyticsUsageRow", "AnalyticsCostRow")


@dataclass(frozen=True, slots=True)
class AnalyticsPage(Generic[RowT]):
    """One validated page; ``data_refreshed_at`` is None when the page does not say."""

    rows: tuple[RowT, ...]
    has_more: bool
    next_page: str | None
    data_refreshed_at: datetime | None


_GROUP_STRINGS = (
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
_COST_COMPONENTS = ("cost_type", "token_type")
# The id field of each actor kind (the SDK's BetaAnalyticsActor union, discriminated by type).
ACTOR_ID_FIELDS = {
    "user_actor": "user_id",
    "service_account_actor": "service_account_id",
    "api_actor": "api_key_id",
}


@dataclass(frozen=True)
class _Row:
    """What every analytics row has: its place (for errors), bucket, group and the section
    (``usage`` or ``cost``) with its own place."""

    starting_at: datetime
    ending_at: datetime
    group: AnalyticsGroup
    section: Mapping[str, object]
    where: str


def _rows(data: list[object], section: str, *, cost: bool) -> Iterator[_Row]:
    """Each row of a page, validated up to its section; a second row for one bucket and group
    is refused."""
    seen: set[tuple[datetime, AnalyticsGroup]] = set()
    for i, raw in enumerate(data):
        where = f"data[{i}]"
        row = as_object(raw, where)
        starting_at, ending_at = _bounds(row, where)
        group = _group(row, where, cost=cost)
        section_where = f"{where}.{section}"
        body = as_object(_required(row, section, where), section_where)
        _unique(seen, (starting_at, group), where)
        yield _Row(starting_at, ending_at, group, body, section_where)


def parse_analytics_usage_page(body: object) -> AnalyticsPage[AnalyticsUsageRow]:
    """Validate one ``analytics/usage`` page; raise Invalid on the first value out of shape."""
    data, has_more, next_page, refreshed = _envelope(body)
    rows = tuple(
        AnalyticsUsageRow(
            starting_at=row.starting_at,
            ending_at=row.ending_at,
            group=row.group,
            counts=token_counts(row.section, row.where),
            total_tokens=_req_count(row.section, "total_tokens", row.where),
            requests=_opt_count(row.section, "requests", row.where),
        )
        for row in _rows(data, "usage", cost=False)
    )
    return AnalyticsPage(rows, has_more, next_page, refreshed)


def parse_analytics_cost_page(body: object) -> AnalyticsPage[AnalyticsCostRow]:
    """Validate one ``analytics/cost`` page (USD only); raise Invalid if out of shape."""
    data, has_more, next_page, refreshed = _envelope(body)
    rows: list[AnalyticsCostRow] = []
    for row in _rows(data, "cost", cost=True):
        currency = req_str(row.section, "currency", row.where)
        # Amounts are cents of this currency; any other would need a rate the ledger lacks.
        if currency != "USD":
            raise Invalid(f"{row.where}.currency", f"expected 'USD', got {currency!r}")
        rows.append(
            AnalyticsCostRow(
                starting_at=row.starting_at,
                ending_at=row.ending_at,
                group=row.group,
                amount_usd=_cents_as_usd(row.section, "amount", row.where),
                list_amount_usd=_cents_as_usd(row.section, "list_amount", row.where),
                currency=currency,
                requests=_opt_count(row.section, "requests", row.where),
            )
        )
    return AnalyticsPage(tuple(rows), has_more, next_page, refreshed)


def _envelope(body: object) -> tuple[list[object], bool, str | None, datetime | None]:
    data, has_more, next_page = _page_envelope(body)
    page = as_object(body, "body")
    # The SDK's page model has it optional; when present it must be a timestamp.
    refreshed = None
    if page.get("data_refreshed_at") is not None:
        refreshed = _timestamp(page, "data_refreshed_at", "body")
    return data, has_more, next_page, refreshed


def _bounds(row: Mapping[str, object], where: str) -> tuple[datetime, datetime]:
    starting_at = _timestamp(row, "starting_at", where)
    ending_at = _timestamp(row, "ending_at", where)
    if ending_at <= starting_at:
        raise Invalid(where, "ending_at is not after starting_at")
    return starting_at, ending_at


def _group(row: Mapping[str, object], where: str, *, cost: bool) -> AnalyticsGroup:
    group_where = f"{where}.group"
    group = as_object(_required(row, "group", where), group_where)
    values = {name: _opt_str(group, name, group_where) for name in _GROUP_STRINGS}
    if cost:
        values |= {name: _opt_str(group, name, group_where) for name in _COST_COMPONENTS}
    return AnalyticsGroup(actor=_actor(group, group_where), **values)


def _actor(group: Mapping[str, object], where: str) -> AnalyticsActor | None:
    raw = group.get("actor")
    if raw is None:
        return None
    where = f"{where}.actor"
    actor = as_object(raw, where)
    kind = req_str(actor, "type", where)
    id_field = ACTOR_ID_FIELDS.get(kind)
    actor_id: str | None = None
    if kind == "federated_actor":
        actor_id = _opt_str(actor, "subject", where)  # the SDK types the subject as optional
    elif id_field is not None:
        actor_id = req_str(actor, id_field, where)
    return AnalyticsActor(
        type=kind,
        id=actor_id,
        email_address=_opt_str(actor, "email_address", where),
        name=_opt_str(actor, "name", where),
    )


def _opt_count(obj: Mapping[str, object], key: str, where: str) -> int | None:
    """A non-negative count or null (the SDK types ``requests`` as optional)."""
    if obj.get(key) is None:
        return None
    return _req_count(obj, key, where)


def _cents_as_usd(cost: Mapping[str, object], key: str, where: str) -> Decimal:
    """The legacy cost parser's cents → exact USD conversion, for ``key``; never negative."""
    try:
        usd = _amount_usd({"amount": _required(cost, key, where)}, where)
    except Invalid as exc:
        raise Invalid(f"{where}.{key}", exc.problem) from None
    # After discounts and before credits, a charge cannot be below zero.
    if usd < 0:
        raise Invalid(f"{where}.{key}", f"negative amount {_describe(cost[key])}")
    return usd


def _unique(
    seen: set[tuple[datetime, AnalyticsGroup]], key: tuple[datetime, AnalyticsGroup], where: str
) -> None:
    # Two rows with one key would overwrite each other when booked by natural key.
    if key in seen:
        raise Invalid(where, "a second row for the same bucket and group")
    seen.add(key)
