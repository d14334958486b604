"""`creditwatch simulate`: replay stored usage under other auto-reload settings. Read-only.

Each scenario starts from one balance at ``since`` (plus the purchases recorded after it) and is
walked over the usage cost of every stored bucket in the window, with
:func:`service.domain.credit_walk.walk`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from service.domain.credit_terms import CreditTerms
from service.domain.credit_walk import Lot, WalkResult, walk
from service.domain.money import format_usd
from service.domain.timefmt import rfc3339, rfc3339_or_none
from service.domain.usage import BucketWidth
from service.errors import ScenarioError
from service.runtime.scenarios import Scenario
from service.store.credit_sync import bucket_charges, stated_lots
from service.store.ledger_entries import opening_entry
from service.store.usage_queries import first_bucket_start


def default_since(session: Session, width: BucketWidth) -> datetime | None:
    """The starting balance's time, or the first stored bucket without one."""
    opening = opening_entry(session)
    if opening is not None:
        return opening.at
    return first_bucket_start(session, width)


def replay(
    session: Session,
    width: BucketWidth,
    terms: CreditTerms,
    scenarios: Sequence[Scenario],
    *,
    since: datetime,
    until: datetime,
) -> list[dict[str, Any]]:
    """One result object per scenario. Raises ScenarioError when a starting balance is unknown.

    Without ``--starting-balance`` a scenario starts from the ledger's real state at ``since``:
    its lots and what is left of them, and the reloads already made that month.
    """
    charges = bucket_charges(session, width, charged_only=False, since=since, until=until)
    stated = [lot for lot in stated_lots(session, terms.lifetime) if since <= lot.at < until]
    purchases = [lot for lot in stated if lot.kind == "purchase"]
    state = _state_at(session, width, terms, since)
    results = []
    for scenario in scenarios:
        if scenario.starting_nanos is not None:
            start_lots = [
                Lot("start", "opening", since, scenario.starting_nanos, since + terms.lifetime)
            ]
            before: dict[tuple[int, int], int] = {}
            deficit = 0
        elif state is not None:
            start_lots = [lot for lot in state.lots if state.remaining.get(lot.key, 0) > 0]
            start_lots = [
                Lot(lot.key, lot.kind, lot.at, state.remaining[lot.key], lot.expires_at)
                for lot in start_lots
            ]
            # The starting balance itself, when the window opens at its time.
            start_lots += [lot for lot in stated if lot.kind == "opening"]
            before = state.reloaded_by_month
            deficit = max(0, -state.balance_nanos)
        else:
            raise ScenarioError(
                f"no balance is known at {rfc3339(since)} (it is before the starting balance, or "
                "none is set): pass --starting-balance (given once, it starts every column, "
                "the current settings too)"
            )
        walked = walk(
            [*start_lots, *purchases],
            charges,
            start=since,
            until=until,
            policy=scenario.policy,
            lot_lifetime=terms.lifetime,
            reloaded_before=before,
            initial_deficit_nanos=deficit,
            finish_pending_reload=False,
        )
        opening_balance = sum(lot.amount_nanos for lot in start_lots) - deficit
        results.append(
            {
                "scenario": scenario.name,
                "settings": scenario.describe(),
                "starting_balance_usd": format_usd(opening_balance),
                "usage_usd": format_usd(sum(c.amount_nanos for c in charges)),
                "reloads": len(walked.reloads),
                "reloaded_usd": format_usd(walked.reloaded_nanos),
                "blocked_reloads": len(walked.blocked),
                "lowest_balance_usd": format_usd(walked.lowest_nanos),
                "lowest_at": rfc3339_or_none(walked.lowest_at),
                "hours_at_zero": f"{walked.zero_seconds / 3600:.1f}",
                "first_zero_at": rfc3339_or_none(walked.first_zero_at),
                "final_balance_usd": format_usd(walked.balance_nanos),
            }
        )
    return results


def _state_at(
    session: Session, width: BucketWidth, terms: CreditTerms, since: datetime
) -> WalkResult | None:
    """The ledger's walk up to ``since`` (None before the starting balance or without one)."""
    opening = opening_entry(session)
    if opening is None or since < opening.at:
        return None
    return walk(
        stated_lots(session, terms.lifetime),
        bucket_charges(session, width, until=since),
        start=opening.at,
        until=since,
        policy=terms.policy,
        lot_lifetime=terms.lifetime,
        finish_pending_reload=False,
    )
