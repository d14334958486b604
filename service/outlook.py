"""The credit and forecast part of `status`: lots, reloads this month, burn rate, runway."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session
from sqlmodel import col

from service import ledger
from service.collector import month_start
from service.config import Settings
from service.credit_ledger import CreditTerms, current_walk, ledger_terms, terms_of
from service.credits import WalkResult, month_of
from service.forecast import (
    NotEnoughHistory,
    SpendProfile,
    build_profile,
    projected_period_spend,
    runway,
)
from service.models import CollectionState, ReloadBlock
from service.money import credits_of, format_usd, usd_to_nanos
from service.usage import BUCKET_SECONDS

HOUR = timedelta(hours=1)


def hourly_spend(session: Session, width: str, since: datetime) -> dict[datetime, int]:
    """Usage cost per UTC hour from ``since``: minutes summed, days spread evenly over 24 hours."""
    u = ledger.USAGE
    rows = session.execute(
        select(u.c.bucket_start, func.sum(u.c.cost_nanos))
        .where(u.c.bucket_width == width, u.c.bucket_start >= since)
        .group_by(u.c.bucket_start)
    )
    hours: dict[datetime, int] = defaultdict(int)
    for start, total in rows:
        if BUCKET_SECONDS[width] <= 3600:
            hours[start.replace(minute=0, second=0, microsecond=0)] += int(total)
            continue
        share, rest = divmod(int(total), 24)
        for h in range(24):
            hours[start + h * HOUR] += share + (1 if h < rest else 0)
    return dict(hours)


def spend_profile(
    session: Session, settings: Settings, now: datetime
) -> SpendProfile | NotEnoughHistory:
    state = session.get(CollectionState, settings.bucket_width)
    first = state.collected_from if state is not None else None
    hourly = hourly_spend(session, settings.bucket_width, now - timedelta(days=15))
    cut = now
    if settings.bucket_width == "1d":
        # Today's daily bucket is still filling: spread over 24 hours it would read as a lull.
        cut = now.replace(hour=0, minute=0, second=0, microsecond=0) + HOUR
    return build_profile(hourly, cut, history_start=first)


def credit_outlook(session: Session, settings: Settings, now: datetime) -> dict[str, Any]:
    """The `credits` and `forecast` objects of `status --json`."""
    terms = ledger_terms(session, settings)
    walked = current_walk(session, settings, now, terms)
    profile = spend_profile(session, settings, now)
    credits = _credits(session, terms, walked, now)
    if terms != terms_of(settings):
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
    month = month_of(now)
    reloads = [r for r in walked.reloads if month_of(r.at) == month] if walked else []
    reloaded = sum(r.granted_nanos for r in reloads)
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
                        "at": _iso(lot.at),
                        "amount_usd": format_usd(lot.amount_nanos),
                        "remaining_usd": format_usd(left),
                        "expires_at": _iso(lot.expires_at),
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
    last_day = ledger.period_spend_nanos(
        session, now - timedelta(hours=24), now, settings.bucket_width
    )
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
    month_end = _next_month(now)
    start = month_start(now)
    spent_before = ledger.period_spend_nanos(
        session, start, max(start, profile.as_of), settings.bucket_width
    )
    out["month_projected_usd"] = format_usd(
        projected_period_spend(
            profile, spent_before_as_of=spent_before, period_end=month_end, period_start=start
        )
    )
    if walked is None:
        out["note"] = "runway needs CREDITWATCH_STARTING_BALANCE"
        return out
    ahead = runway(
        profile,
        now=now,
        lots=walked.lots,
        remaining=walked.remaining,
        balance_nanos=walked.balance_nanos,
        policy=terms.policy,
        reloaded_by_month=walked.reloaded_by_month,
        lot_lifetime=terms.lifetime,
    )
    left = ahead.remaining(now)
    if left is None:
        days = ahead.horizon.days
        out["note"] = f"the balance stays above zero for the next {days} days at this rate"
    else:
        out["runway_until"] = _iso(ahead.zero_at)
        out["runway_hours"] = f"{left.total_seconds() / 3600:.2f}"
        out["at_zero_now"] = left == timedelta(0)
    return out


def balance_in_credits(balance_nanos: int | None, settings: Settings) -> str | None:
    if balance_nanos is None or settings.credit_unit_usd == 1:
        return None
    return credits_of(balance_nanos, settings.credit_unit_usd)


def _next_month(now: datetime) -> datetime:
    year, month = month_of(now)
    return datetime(year + month // 12, month % 12 + 1, 1, tzinfo=UTC)


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat().replace("+00:00", "Z") if moment is not None else None


__all__ = ["balance_in_credits", "credit_outlook", "hourly_spend", "usd_to_nanos"]
