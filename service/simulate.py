"""`creditwatch simulate`: replay stored usage under other auto-reload settings. Read-only.

Each scenario starts from one balance at ``since`` (plus the purchases recorded after it) and is
walked over the usage cost of every stored bucket in the window, with :func:`credits.walk`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from service import ledger
from service.config import Settings
from service.credit_ledger import CreditTerms, bucket_charges, ledger_terms, stated_lots
from service.credits import Lot, ReloadPolicy, WalkResult, walk
from service.errors import CreditwatchError
from service.money import format_usd, usd_text, usd_to_nanos

OFF = ("off", "none", "no")


class ScenarioError(CreditwatchError):
    """The scenario flags do not describe a replay (the CLI prints this as a usage error)."""


@dataclass(frozen=True)
class Scenario:
    name: str
    starting_nanos: int | None
    policy: ReloadPolicy | None

    def describe(self) -> str:
        if self.policy is None:
            reload = "no auto-reload"
        else:
            reload = (
                f"reload below {usd_text(self.policy.threshold_nanos)} "
                f"to {usd_text(self.policy.target_nanos)}"
            )
            if self.policy.monthly_limit_nanos is not None:
                reload += f", at most {usd_text(self.policy.monthly_limit_nanos)}/month"
        return reload


def _amount(flag: str, raw: str) -> Decimal | None:
    if raw.lower() in OFF:
        return None
    try:
        value = Decimal(raw)
    except ArithmeticError:
        raise ScenarioError(f"{flag} {raw!r} is not an amount in USD (or 'off')") from None
    if not value.is_finite() or value < 0:
        raise ScenarioError(f"{flag} {raw!r} must be a non-negative amount")
    return value


def _spread(flag: str, values: Sequence[str] | None, count: int) -> list[str | None]:
    if not values:
        return [None] * count
    if len(values) == 1:
        return [values[0]] * count
    if len(values) != count:
        raise ScenarioError(
            f"{flag} is given {len(values)} times; give it once or once per scenario ({count})"
        )
    return list(values)


_OFF = object()


def _setting(flag: str, raw: str | None, inherited: int | None) -> int | object | None:
    """A flag's value in nano-USD, the inherited one when absent, or _OFF for 'off'."""
    if raw is None:
        return inherited
    value = _amount(flag, raw)
    return _OFF if value is None else usd_to_nanos(value)


def scenarios_from_flags(
    base: ReloadPolicy | None,
    *,
    thresholds: Sequence[str] | None,
    targets: Sequence[str] | None,
    limits: Sequence[str] | None,
    balances: Sequence[str] | None,
) -> list[Scenario]:
    """``base`` (the ledger's current policy) first, then one scenario per flag position.

    A flag not given in a scenario keeps ``base``'s value; 'off' turns auto-reload (threshold
    or target) or the monthly limit off.
    """
    current = Scenario("current", None, base)
    count = max(len(thresholds or ()), len(targets or ()), len(limits or ()), len(balances or ()))
    out = [current]
    rows = zip(
        _spread("--reload-threshold", thresholds, count),
        _spread("--reload-to", targets, count),
        _spread("--monthly-limit", limits, count),
        _spread("--starting-balance", balances, count),
        strict=True,
    )
    for index, (threshold_raw, target_raw, limit_raw, balance_raw) in enumerate(rows, start=1):
        threshold = _setting(
            "--reload-threshold", threshold_raw, base.threshold_nanos if base else None
        )
        target = _setting("--reload-to", target_raw, base.target_nanos if base else None)
        limit = _setting("--monthly-limit", limit_raw, base.monthly_limit_nanos if base else None)
        balance = _amount("--starting-balance", balance_raw) if balance_raw else None
        policy = None
        if threshold is not _OFF and target is not _OFF and (threshold, target) != (None, None):
            if not isinstance(threshold, int) or not isinstance(target, int):
                raise ScenarioError(
                    f"scenario {index}: give both --reload-threshold and --reload-to "
                    "(no auto-reload is configured to take the other from)"
                )
            if target <= threshold:
                raise ScenarioError(
                    f"scenario {index}: --reload-to must be above --reload-threshold"
                )
            policy = ReloadPolicy(threshold, target, limit if isinstance(limit, int) else None)
        out.append(
            Scenario(
                f"scenario {index}",
                usd_to_nanos(balance) if balance is not None else None,
                policy,
            )
        )
    return out


def default_since(session: Session, settings: Settings) -> datetime | None:
    opening = ledger.opening_entry(session)
    if opening is not None:
        return opening.at
    u = ledger.USAGE
    first: datetime | None = session.execute(
        select(func.min(u.c.bucket_start)).where(u.c.bucket_width == settings.bucket_width)
    ).scalar_one()
    return first


def replay(
    session: Session,
    settings: Settings,
    scenarios: Sequence[Scenario],
    *,
    since: datetime,
    until: datetime,
) -> list[dict[str, Any]]:
    """One result object per scenario. Raises ScenarioError when a starting balance is unknown.

    Without ``--starting-balance`` a scenario starts from the ledger's real state at ``since``:
    its lots and what is left of them, and the reloads already made that month.
    """
    terms = ledger_terms(session, settings)
    charges = bucket_charges(
        session, settings.bucket_width, charged_only=False, since=since, until=until
    )
    stated = [lot for lot in stated_lots(session, terms.lifetime) if since <= lot.at < until]
    purchases = [lot for lot in stated if lot.kind == "purchase"]
    state = _state_at(session, settings, terms, since)
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
                f"no balance is known at {since.isoformat()} (it is before the starting balance,"
                " or none is set): pass --starting-balance"
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
                "lowest_at": _iso(walked.lowest_at),
                "hours_at_zero": f"{walked.zero_seconds / 3600:.1f}",
                "first_zero_at": _iso(walked.first_zero_at),
                "final_balance_usd": format_usd(walked.balance_nanos),
            }
        )
    return results


def _state_at(
    session: Session, settings: Settings, terms: CreditTerms, since: datetime
) -> WalkResult | None:
    """The ledger's walk up to ``since`` (None before the starting balance or without one)."""
    opening = ledger.opening_entry(session)
    if opening is None or since < opening.at:
        return None
    return walk(
        stated_lots(session, terms.lifetime),
        bucket_charges(session, settings.bucket_width, until=since),
        start=opening.at,
        until=since,
        policy=terms.policy,
        lot_lifetime=terms.lifetime,
        finish_pending_reload=False,
    )


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat().replace("+00:00", "Z") if moment is not None else None
