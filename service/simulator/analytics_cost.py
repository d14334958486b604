"""``GET /v1/organizations/analytics/cost``: what the usage costs, per bucket and combination.

A row is ``{"starting_at", "ending_at", "group": {…}, "cost": {"amount", "list_amount",
"currency", "requests"}}`` with both amounts as decimal strings in cents. ``list_amount`` is the
simulator's list price (``prices.py``); ``amount`` is what the bill says, list ×
``WorkloadSpec.bill_adjustment``, the same per-token price the legacy ``cost_report`` bills, so
an hour's analytics cost is the billed amount and a day's sums to the legacy day exactly.

With a ``WorkloadSpec.cost_delay``, a bucket's cost rows appear that long after its end; without
one (the default) they come with its usage, growing as it grows.

Priority-tier usage has no row here, as in the legacy cost report: it has no public per-token
price (Priority Tier is paid for by commitment), so both cost sources leave it out.

``cost_type`` / ``token_type`` fan a row out by component and do not count toward ``limit``:
``cost_type`` alone gives a ``tokens`` and a ``web_search`` row, ``token_type`` alone one row
per token type (each ``cost_type: tokens``), both together the token rows and web search.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Context, Decimal, localcontext
from typing import Any

from service.simulator.analytics_attribution import StreamLabels
from service.simulator.analytics_query import (
    AnalyticsQuery,
    RankedRow,
    data_refreshed_at,
    ordered,
    page_of,
    parse_query,
    tiebreak,
)
from service.simulator.analytics_rows import AnalyticsData, Sums
from service.simulator.cost_report import format_cents
from service.simulator.prices import TOKEN_TYPES, WEB_SEARCH, cents_per_unit
from service.simulator.wire import format_timestamp

Json = dict[str, Any]
GroupKey = tuple[str | None, ...]
_PRECISE = Context(prec=60)
_ZERO = Decimal(0)


class AnalyticsCostBook:
    """List and billed cents per unit of every price class of a workload (once per server)."""

    def __init__(self, data: AnalyticsData) -> None:
        self.data = data
        adjustment = data.workload.spec.bill_adjustment
        slots: dict[tuple[str, str, str, str], int] = {}
        self.list_cents: list[tuple[Decimal, ...]] = []
        self.billed_cents: list[tuple[Decimal, ...]] = []
        self.class_of: dict[int, int] = {}
        """Stream index → price class; priority-tier streams have none (no row in the bill)."""
        for stream in data.workload.streams:
            if stream.service_tier == "priority":
                continue
            price_class = (
                stream.model,
                stream.service_tier,
                stream.context_window,
                stream.inference_geo,
            )
            if price_class not in slots:
                slots[price_class] = len(slots)
                cents = cents_per_unit(*price_class)
                self.list_cents.append(cents)
                with localcontext(_PRECISE):
                    self.billed_cents.append(tuple(c * adjustment for c in cents))
            self.class_of[stream.index] = slots[price_class]


CostRow = tuple[tuple[int, int, GroupKey], "_Base", list["_Component"]]
"""((bucket start, bucket end, group key), its cents, the rows it fans out to)."""


def analytics_cost(
    book: AnalyticsCostBook, pairs: list[tuple[str, str]], now: int, *, stuck: bool
) -> Json:
    """The response body for one request; raises a 400 ApiError for a bad query."""
    data = book.data
    query = parse_query(pairs, now, endpoint="cost")
    rows = data.ranked(query, lambda: _ranked_rows(book, query))
    page = page_of(len(rows), query, stuck=stuck)
    return {
        "data": [
            {
                "starting_at": format_timestamp(start),
                "ending_at": format_timestamp(end),
                "group": _group(data, query, key, component),
                "cost": {
                    "amount": format_cents(component.billed),
                    "list_amount": format_cents(component.listed),
                    "currency": "USD",
                    "requests": None if query.components else base.requests,
                },
            }
            for (start, end, key), base, components in rows[page.start : page.stop]
            for component in components
        ],
        "has_more": page.next_page is not None,
        "next_page": page.next_page,
        "data_refreshed_at": data_refreshed_at(query, data.visibility_delay),
    }


def _ranked_rows(book: AnalyticsCostBook, query: AnalyticsQuery) -> list[CostRow]:
    def key_of(index: int, labels: StreamLabels) -> tuple[GroupKey, int] | None:
        price_class = book.class_of.get(index)
        return None if price_class is None else (query.group_key(labels), price_class)

    bases: dict[tuple[int, int, GroupKey], _Base] = {}
    delay = int(book.data.workload.spec.cost_delay.total_seconds())
    billed_to = query.snapshot - delay if delay else None
    with localcontext(_PRECISE):
        for (start, end, (key, price_class)), sums in book.data.sums(query, key_of).items():
            if billed_to is not None and end > billed_to:
                continue  # not billed yet (WorkloadSpec.cost_delay)
            base = bases.get((start, end, key))
            if base is None:
                base = bases[start, end, key] = _Base()
            base.add(sums, book.list_cents[price_class], book.billed_cents[price_class])
    shown = [(k, b, b.components(query)) for k, b in bases.items()]
    by_list = query.order_by == "list_amount"

    def rank(item: CostRow) -> RankedRow:
        (start, _end, key), base, _components = item
        with localcontext(_PRECISE):
            billed = sum(base.billed, _ZERO)
            metric = sum(base.listed, _ZERO) if by_list else billed
        return RankedRow(start, metric, billed, tiebreak(key))

    return ordered([item for item in shown if item[2]], rank, query)


class _Component:
    """One fan-out row: its cost type, token type and amounts."""

    def __init__(
        self, cost_type: str | None, token_type: str | None, billed: Decimal, listed: Decimal
    ) -> None:
        self.cost_type, self.token_type = cost_type, token_type
        self.billed, self.listed = billed, listed


class _Base:
    """Cents per usage counter (list and billed) and requests of one bucket and group."""

    def __init__(self) -> None:
        self.listed = [_ZERO] * 6
        self.billed = [_ZERO] * 6
        self.requests = 0

    def add(
        self, sums: Sums, list_cents: Sequence[Decimal], billed_cents: Sequence[Decimal]
    ) -> None:
        for counter in range(6):
            tokens = sums[counter]
            if tokens:
                self.listed[counter] += tokens * list_cents[counter]
                self.billed[counter] += tokens * billed_cents[counter]
        self.requests += sums[6]

    def components(self, query: AnalyticsQuery) -> list[_Component]:
        """The rows this base fans out to, highest amount first; none with a zero amount."""
        by_type, by_token = "cost_type" in query.components, "token_type" in query.components
        with localcontext(_PRECISE):
            if by_token:
                parts = [
                    _Component("tokens", TOKEN_TYPES[c], self.billed[c], self.listed[c])
                    for c in range(WEB_SEARCH)
                ]
            elif by_type:
                parts = [
                    _Component(
                        "tokens",
                        None,
                        sum(self.billed[:WEB_SEARCH], _ZERO),
                        sum(self.listed[:WEB_SEARCH], _ZERO),
                    )
                ]
            else:
                parts = [_Component(None, None, sum(self.billed, _ZERO), sum(self.listed, _ZERO))]
            if by_type:
                parts.append(
                    _Component("web_search", None, self.billed[WEB_SEARCH], self.listed[WEB_SEARCH])
                )
        kept = [p for p in parts if p.listed]
        return sorted(kept, key=lambda p: -p.billed)


def _group(
    data: AnalyticsData, query: AnalyticsQuery, key: GroupKey, component: _Component
) -> Json:
    group = data.group(query, key)
    group["cost_type"] = component.cost_type
    group["token_type"] = component.token_type
    return group
