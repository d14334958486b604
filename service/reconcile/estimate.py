"""The estimate of one day split by workspace, model and the cost report's token types.

The ledger keeps one priced cost per usage row; the bill has one line per model and token
type. Splitting the estimate the same way is what lets a drift name its cause: the model and
the rate that differ. Each part is priced at the rates the price book used for the row, so the
parts of a row add up to its cost (to the nano-dollar, per part).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime

from msgspec.structs import astuple

from service.domain.billing import PRIORITY_TIER, TOKEN_TYPES, WEB_SEARCH, DayUsage
from service.domain.money import usd_to_nanos
from service.domain.usage import TokenCounts
from service.pricing import PriceBook

LineKey = tuple[str, str, str]
"""(workspace id, model, kind): the grain at which the bill and the estimate are compared."""


def estimate_lines(usage: Iterable[DayUsage], book: PriceBook, day: datetime) -> dict[LineKey, int]:
    """Estimated nano-USD per (workspace, model, kind) of the day's usage, priority tier left
    out (the bill omits it, so there is nothing to compare it with)."""
    lines: dict[LineKey, int] = defaultdict(int)
    for group in usage:
        if group.service_tier == PRIORITY_TIER:
            continue
        rates = book.rates_for(
            group.model or None,
            day,
            service_tier=group.service_tier or None,
            context_window=group.context_window or None,
            inference_geo=group.inference_geo or None,
        )
        kinds = [kind for _, kind in TOKEN_TYPES] + [WEB_SEARCH]
        for position, (kind, count) in enumerate(zip(kinds, astuple(group.counts), strict=True)):
            if count:
                alone = [0] * len(kinds)
                alone[position] = count
                cost = rates.cost(TokenCounts(*alone))
                lines[(group.workspace_id, group.model, kind)] += usd_to_nanos(cost)
    return dict(lines)
