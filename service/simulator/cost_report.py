"""``GET /v1/organizations/cost_report``: what the organization is billed, per UTC day, in cents.

Billed at the simulator's own list prices times ``WorkloadSpec.bill_adjustment``. As in
Anthropic's report, priority-tier usage is absent and a day in progress shows its cost so far.
A spec can script where the bill departs from list prices: price changes from a date
(``bill_price_changes``), code execution (``code_execution``, only in the bill) and revisions
of a day's bill after the fact (``bill_revisions``).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Context, Decimal, localcontext
from typing import Any

from service.simulator.paging import plan_page
from service.simulator.prices import TOKEN_TYPES, WEB_SEARCH, cents_per_unit, describe
from service.simulator.wire import Query, format_timestamp, invalid
from service.simulator.workload import Counts, Workload, WorkloadSpec

_DAY = 86400
_GROUPS = ("workspace_id", "description")
_PRECISE = Context(prec=60)

Json = dict[str, Any]
PriceClass = tuple[str | None, str, str, str, str]
"""(workspace_id, model, service_tier, context_window, inference_geo): one set of unit prices."""


class CostBook:
    """Prices of every stream of a workload, computed once per server."""

    def __init__(self, workload: Workload) -> None:
        self.spec = workload.spec
        self.workspace_ids = tuple(w.id for w in workload.workspaces)
        adjustment = workload.spec.bill_adjustment
        classes: dict[PriceClass, int] = {}
        self.members: list[tuple[int, int]] = []
        self.classes: list[PriceClass] = []
        self.cents: list[tuple[Decimal, ...]] = []
        for stream in workload.streams:
            if stream.service_tier == "priority":
                continue
            key: PriceClass = (
                stream.workspace_id,
                stream.model,
                stream.service_tier,
                stream.context_window,
                stream.inference_geo,
            )
            if key not in classes:
                classes[key] = len(classes)
                self.classes.append(key)
                with localcontext(_PRECISE):
                    self.cents.append(tuple(c * adjustment for c in cents_per_unit(*key[1:])))
            self.members.append((stream.index, classes[key]))

    def rows(
        self, counts: Sequence[Counts] | None, group_by: set[str], *, day: int = 0, now: int = 0
    ) -> list[Json]:
        """Cost rows of one day (``day`` in epoch days, at ``now`` in epoch seconds); [] while
        nothing of it is visible."""
        if counts is None:
            return []
        spec = self.spec
        sums = [[0, 0, 0, 0, 0, 0] for _ in self.classes]
        for index, slot in self.members:
            total = sums[slot]
            for counter, value in enumerate(counts[index]):
                total[counter] += value
        by_workspace = "workspace_id" in group_by
        by_description = "description" in group_by
        amounts: dict[tuple[str | None, tuple[str, str, str, str, int] | None], Decimal] = {}
        with localcontext(_PRECISE):
            for price_class, cents, totals in zip(self.classes, self.cents, sums, strict=True):
                workspace, model, tier, window, geo = price_class
                for counter, tokens in enumerate(totals):
                    if not tokens:
                        continue
                    key = (
                        workspace if by_workspace else None,
                        (model, tier, window, geo, counter) if by_description else None,
                    )
                    factor = _price_change(spec, day, model, counter)
                    amounts[key] = amounts.get(key, Decimal(0)) + tokens * cents[counter] * factor
            for run in spec.code_execution:
                share = _code_execution_share(run.start, day, now)
                if share:
                    owner = None if run.workspace is None else self.workspace_ids[run.workspace]
                    key = (
                        owner if by_workspace else None,
                        CODE_EXECUTION if by_description else None,
                    )
                    amounts[key] = amounts.get(key, Decimal(0)) + run.usd_per_day * 100 * share
            revised = _revision(spec, day, now)
            return [
                _row(workspace, item, amount * revised)
                for (workspace, item), amount in amounts.items()
            ]


# The description key of code execution rows (it has no model, tier or token type).
CODE_EXECUTION = ("", "", "", "", -1)


def _price_change(spec: WorkloadSpec, day: int, model: str, counter: int) -> Decimal:
    factor = Decimal(1)
    kind = "web_search" if counter == WEB_SEARCH else TOKEN_TYPES[counter]
    for change in spec.bill_price_changes:
        if (
            int(change.effective_from.timestamp()) // _DAY <= day
            and model.startswith(change.model)
            and change.token_type in (None, kind)
        ):
            factor *= change.factor
    return factor


def _code_execution_share(start: datetime | None, day: int, now: int) -> Decimal:
    """How much of a day's code execution the bill shows at ``now`` (0 before ``start``)."""
    if start is not None and day < int(start.timestamp()) // _DAY:
        return Decimal(0)
    elapsed = min(max(now - day * _DAY, 0), _DAY)
    return Decimal(elapsed) / _DAY


def _revision(spec: WorkloadSpec, day: int, now: int) -> Decimal:
    factor = Decimal(1)
    for revision in spec.bill_revisions:
        due = int(revision.day.timestamp()) + _DAY + int(revision.after.total_seconds())
        if int(revision.day.timestamp()) // _DAY == day and now >= due:
            factor *= revision.factor
    return factor


def _row(
    workspace: str | None, item: tuple[str, str, str, str, int] | None, amount: Decimal
) -> Json:
    row: Json = {"amount": format_cents(amount), "currency": "USD", "workspace_id": workspace}
    if item == CODE_EXECUTION:
        row.update(
            cost_type="code_execution",
            description="Code Execution Usage",
            model=None,
            token_type=None,
            service_tier=None,
            context_window=None,
            inference_geo=None,
        )
        return row
    if item is None:
        row.update(
            cost_type=None,
            description=None,
            model=None,
            token_type=None,
            service_tier=None,
            context_window=None,
            inference_geo=None,
        )
        return row
    model, tier, window, geo, counter = item
    row.update(
        cost_type="web_search" if counter == WEB_SEARCH else "tokens",
        description=describe(model, tier, window, counter),
        model=model,
        token_type=None if counter == WEB_SEARCH else TOKEN_TYPES[counter],
        service_tier=tier,
        context_window=window,
        inference_geo=geo,
    )
    return row


def format_cents(amount: Decimal) -> str:
    """A plain decimal string (never exponent notation): ``"123.78912"``, ``"100"``."""
    text = format(amount.normalize(_PRECISE), "f")
    return "0" if text in {"-0", "0"} else text


def cost_report(
    workload: Workload, book: CostBook, pairs: list[tuple[str, str]], now: int, *, stuck: bool
) -> Json:
    """The response body for one request; raises a 400 ApiError for a bad query."""
    query = Query(
        pairs,
        single={"starting_at", "ending_at", "bucket_width", "limit", "page"},
        multi={"group_by[]"},
    )
    width_name = query.get("bucket_width") or "1d"
    if width_name != "1d":
        raise invalid(f"bucket_width: Input should be '1d', got {width_name!r}")
    limit = query.get_int("limit", 7, 1, 31)
    group_by = set(query.get_all("group_by[]"))
    for dimension in group_by:
        if dimension not in _GROUPS:
            raise invalid(f"group_by[]: {dimension!r} is not one of {', '.join(_GROUPS)}")
    page = plan_page(query, kind="cost", width=_DAY, limit=limit, now=now, stuck=stuck)
    data = [
        {
            "starting_at": format_timestamp(start),
            "ending_at": format_timestamp(start + _DAY),
            "results": book.rows(
                workload.visible_day(start // _DAY, now), group_by, day=start // _DAY, now=now
            ),
        }
        for start in page.starts
    ]
    return {"data": data, "has_more": page.has_more, "next_page": page.next_page}
