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
from service.credit_ledger import bucket_charges, reload_policy, stated_lots
from service.credits import Lot, ReloadPolicy, walk
from service.errors import CreditwatchError
from service.money import format_usd, usd_to_nanos

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
                f"reload below ${format_usd(self.policy.threshold_nanos)} "
                f"to ${format_usd(self.policy.target_nanos)}"
            )
            if self.policy.monthly_limit_nanos is not None:
                reload += f", at most ${format_usd(self.policy.monthly_limit_nanos)}/month"
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


def scenarios_from_flags(
    settings: Settings,
    *,
    thresholds: Sequence[str] | None,
    targets: Sequence[str] | None,
    limits: Sequence[str] | None,
    balances: Sequence[str] | None,
) -> list[Scenario]:
    """The current settings first, then one scenario per position of the repeated flags."""
    current = Scenario("current", None, reload_policy(settings))
    count = max(len(thresholds or ()), len(targets or ()), len(limits or ()), len(balances or ()))
    if count == 0:
        return [current]
    out = [current]
    rows = zip(
        _spread("--reload-threshold", thresholds, count),
        _spread("--reload-to", targets, count),
        _spread("--monthly-limit", limits, count),
        _spread("--starting-balance", balances, count),
        strict=True,
    )
    for index, (threshold_raw, target_raw, limit_raw, balance_raw) in enumerate(rows, start=1):
        threshold = _amount("--reload-threshold", threshold_raw) if threshold_raw else None
        target = _amount("--reload-to", target_raw) if target_raw else None
        limit = _amount("--monthly-limit", limit_raw) if limit_raw else None
        balance = _amount("--starting-balance", balance_raw) if balance_raw else None
        if threshold_raw is None and target_raw is None:
            threshold, target = settings.auto_reload_threshold, settings.auto_reload_to
            if limit_raw is None:
                limit = settings.auto_reload_monthly_limit
        policy = None
        if threshold is not None or target is not None:
            if threshold is None or target is None or target <= threshold:
                raise ScenarioError(
                    f"scenario {index}: --reload-to must be above --reload-threshold "
                    "(or set both to 'off')"
                )
            policy = ReloadPolicy(
                usd_to_nanos(threshold),
                usd_to_nanos(target),
                usd_to_nanos(limit) if limit is not None else None,
            )
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


def balance_at(session: Session, moment: datetime) -> int | None:
    """The ledger's balance just before ``moment`` (None without a starting balance)."""
    opening = ledger.opening_entry(session)
    if opening is None or moment < opening.at:
        return None
    entries = ledger.LEDGER
    total = session.execute(
        select(func.coalesce(func.sum(entries.c.amount_nanos), 0)).where(entries.c.at < moment)
    ).scalar_one()
    return int(total) + (opening.amount_nanos if moment == opening.at else 0)


def replay(
    session: Session,
    settings: Settings,
    scenarios: Sequence[Scenario],
    *,
    since: datetime,
    until: datetime,
) -> list[dict[str, Any]]:
    """One result object per scenario. Raises ScenarioError when a starting balance is unknown."""
    charges = bucket_charges(
        session, settings.bucket_width, charged_only=False, since=since, until=until
    )
    purchases = [
        lot
        for lot in stated_lots(session, settings.credit_expiry)
        if lot.kind == "purchase" and since <= lot.at < until
    ]
    known = balance_at(session, since)
    results = []
    for scenario in scenarios:
        start = scenario.starting_nanos if scenario.starting_nanos is not None else known
        if start is None:
            raise ScenarioError(
                f"no balance is known at {since.isoformat()}: pass --starting-balance"
            )
        lots = [Lot("start", "opening", since, start, since + settings.credit_expiry), *purchases]
        walked = walk(
            lots,
            charges,
            start=since,
            until=until,
            policy=scenario.policy,
            lot_lifetime=settings.credit_expiry,
            finish_pending_reload=False,
        )
        results.append(
            {
                "scenario": scenario.name,
                "settings": scenario.describe(),
                "starting_balance_usd": format_usd(start),
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


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat().replace("+00:00", "Z") if moment is not None else None
