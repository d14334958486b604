"""The credit and forecast part of `status`: lots, reloads this month, burn rate, runway."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session
from sqlmodel import col

from service.domain.credit_terms import CreditTerms
from service.domain.credit_walk import WalkResult
from service.domain.forecast import (
    NotEnoughHistory,
    Runway,
    SpendProfile,
    build_profile,
    projected_period_spend,
    runway,
)
from service.domain.money import credits_of, format_usd
from service.domain.periods import day_start, month_start, next_month_start
from service.domain.timefmt import rfc3339, rfc3339_or_none
from service.settings import Settings
from service.store.credit_sync import booked_reloads, current_walk, ledger_terms
from service.store.tables import CollectionState, ReloadBlock
from service.store.usage_queries import hourly_spend, period_spend_nanos

HOUR = timedelta(hours=1)


@dataclass(frozen=True)
class History:
    """The hourly spend the forecast and the spike rule read, and the profile built from it."""

    hourly: dict[datetime, int]
    collected_from: datetime | None
    profile: SpendProfile | NotEnoughHistory


def recent_history(session: Session, settings: Settings, now: datetime) -> History:
    """Hourly spend over the last 15 days and the daily-rhythm profile of it."""
    width = settings.collection.bucket_width
    state = session.get(CollectionState, width)
    first = state.collected_from if state is not None else None
    hourly = hourly_spend(session, width, now - timedelta(days=15))
    cut = now
    if width == "1d":
        # Today's daily bucket is still filling: spread over 24 hours it would read as a lull.
        cut = day_start(now) + HOUR
    return History(hourly, first, build_profile(hourly, cut, history_start=first))


def spend_profile(
    session: Session, settings: Settings, now: datetime
) -> SpendProfile | NotEnoughHistory:
    return recent_history(session, settings, now).profile


@dataclass(frozen=True)
class RunwayView:
    """When the balance reaches zero on expected spend (None: not within the horizon), or why
    there is no runway to show."""

    until: datetime | None
    note: str | None


def runway_ahead(
    walked: WalkResult | None,
    profile: SpendProfile | NotEnoughHistory,
    terms: CreditTerms,
    now: datetime,
) -> Runway | str:
    """The forward walk on expected spend, or why there is none."""
    if isinstance(profile, NotEnoughHistory):
        return profile.reason
    if walked is None:
        return "runway needs CREDITWATCH_STARTING_BALANCE"
    return runway(
        profile,
        now=now,
        lots=walked.lots,
        remaining=walked.remaining,
        balance_nanos=walked.balance_nanos,
        policy=terms.policy,
        reloaded_by_month=walked.reloaded_by_month,
        lot_lifetime=terms.lifetime,
    )


def runway_of(
    walked: WalkResult | None,
    profile: SpendProfile | NotEnoughHistory,
    terms: CreditTerms,
    now: datetime,
) -> RunwayView:
    ahead = runway_ahead(walked, profile, terms, now)
    if isinstance(ahead, str):
        return RunwayView(None, ahead)
    if ahead.zero_at is None:
        days = ahead.horizon.days
        return RunwayView(
            None, f"the balance stays above zero for the next {days} days at this rate"
        )
    return RunwayView(ahead.zero_at, None)


def credit_outlook(session: Session, settings: Settings, now: datetime) -> dict[str, Any]:
    """The `credits` and `forecast` objects of `status --json`."""
    configured = settings.ledger.credit_terms()
    terms = ledger_terms(session, configured)
    walked = current_walk(session, settings.collection.bucket_width, terms, now)
    profile = spend_profile(session, settings, now)
    credits = _credits(session, terms, walked, now)
    if terms != configured:
        credits["settings_note"] = (
            "these auto-reload or expiry settings differ from the ones the ledger was booked "
            "with; shown as booked until the next `once` or daemon cycle applies them"
        )
    return {
        "credits": credits,
        "forecast": _forecast(
            session, settings, terms=terms, walked=walked, profile=profile, now=now
        ),
    }


def _credits(
    session: Session, terms: CreditTerms, walked: WalkResult | None, now: datetime
) -> dict[str, Any]:
    policy = terms.policy
    # As booked: the walk resumed from a checkpoint lists only its own recent reloads.
    reloads = booked_reloads(session, month_start(now)) if walked else []
    reloaded = sum(amount for _, amount in reloads)
    allowance = None
    if policy is not None and policy.monthly_limit_nanos is not None:
        allowance = format_usd(max(0, policy.monthly_limit_nanos - reloaded))
    blocked = session.execute(
        select(func.count()).where(col(ReloadBlock.at) >= month_start(now))
    ).scalar_one()
    lots = []
    spent = 0
    if walked is not None:
        for lot in sorted(walked.lots, key=lambda lot: (lot.at, lot.key)):
            left = walked.remaining.get(lot.key, 0)
            spent += left == 0
            if left > 0:
                lots.append(
                    {
                        "key": lot.key,
                        "kind": lot.kind,
                        "at": rfc3339(lot.at),
                        "amount_usd": format_usd(lot.amount_nanos),
                        "remaining_usd": format_usd(left),
                        "expires_at": rfc3339(lot.expires_at),
                    }
                )
    return {
        "lots": lots,
        "lots_used_up": spent,
        "auto_reload": None
        if policy is None
        else {
            "threshold_usd": format_usd(policy.threshold_nanos),
            "to_usd": format_usd(policy.target_nanos),
            "monthly_limit_usd": (
                format_usd(policy.monthly_limit_nanos)
                if policy.monthly_limit_nanos is not None
                else None
            ),
        },
        "reloads_this_month": len(reloads),
        "reloaded_this_month_usd": format_usd(reloaded),
        "reload_allowance_left_usd": allowance,
        "blocked_reloads_this_month": int(blocked),
    }


def _forecast(
    session: Session,
    settings: Settings,
    *,
    terms: CreditTerms,
    walked: WalkResult | None,
    profile: SpendProfile | NotEnoughHistory,
    now: datetime,
) -> dict[str, Any]:
    width = settings.collection.bucket_width
    last_day = period_spend_nanos(session, now - timedelta(hours=24), now, width)
    out: dict[str, Any] = {
        "spend_last_24h_usd": format_usd(last_day),
        "burn_rate_usd_per_hour": None,
        "runway_until": None,
        "runway_hours": None,
        "month_projected_usd": None,
        "at_zero_now": False,
        "note": None,
    }
    if isinstance(profile, NotEnoughHistory):
        out["note"] = profile.reason
        return out
    out["burn_rate_usd_per_hour"] = format_usd(profile.burn_rate_per_hour(now))
    month_end = next_month_start(now)
    start = month_start(now)
    spent_before = period_spend_nanos(session, start, max(start, profile.as_of), width)
    out["month_projected_usd"] = format_usd(
        projected_period_spend(
            profile, spent_before_as_of=spent_before, period_end=month_end, period_start=start
        )
    )
    view = runway_of(walked, profile, terms, now)
    if view.until is None:
        out["note"] = view.note
    else:
        left = max(timedelta(0), view.until - now)
        out["runway_until"] = rfc3339_or_none(view.until)
        out["runway_hours"] = f"{left.total_seconds() / 3600:.2f}"
        out["at_zero_now"] = left == timedelta(0)
    return out


def balance_in_credits(balance_nanos: int | None, settings: Settings) -> str | None:
    unit = settings.ledger.credit_unit_usd
    if balance_nanos is None or unit == 1:
        return None
    return credits_of(balance_nanos, unit)
