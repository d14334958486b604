"""Builds `creditwatch report`'s :class:`~service.domain.report.Report` from the ledger alone.

Reading only: it works without the API, like `status`, and from the terms the ledger was booked
under. The balance's projection is the runway forecast's walk (auto-reload and its monthly
limit included), drawn only when the window reaches the present.
"""

from __future__ import annotations

import calendar
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from service.domain.money import usd_text, usd_to_nanos
from service.domain.periods import day_start
from service.domain.report import (
    ATTRIBUTED_BY,
    DAY,
    BalanceEvent,
    BalanceHistory,
    BalancePoint,
    BudgetLine,
    DaySpend,
    Report,
    ReportBy,
    UsageLine,
    whole_days,
)
from service.domain.usage import BUCKET_SECONDS
from service.runtime.facts import budget_facts
from service.runtime.outlook import recent_history, runway_ahead
from service.settings import Settings
from service.settings.rules import BudgetRule
from service.store import report_queries as q
from service.store.balance import balance_nanos
from service.store.credit_sync import current_walk, ledger_terms
from service.store.ledger_entries import opening_entry

HOUR = timedelta(hours=1)
HOURLY_UP_TO = timedelta(days=62)  # longer windows draw the balance per day
PROJECTION_MOST = timedelta(days=30)
PROJECTION_CALM = timedelta(days=14)  # when the balance does not reach zero within the most
_PERIOD_ORDER = {"day": 0, "week": 1, "month": 2}


def build_report(
    session: Session,
    settings: Settings,
    *,
    by: ReportBy,
    since: datetime,
    until: datetime,
    now: datetime,
) -> Report:
    """The breakdown of ``[since, until)`` with the bill beside it, daily spend against the
    organization's budget, and the balance (projected on when ``until`` is not before now)."""
    width = settings.collection.bucket_width
    lines = {line.key: line for line in q.usage_lines(session, width, by, since, until)}
    days = q.billed_days(session, whole_days(since, until, BUCKET_SECONDS[width]))
    total = UsageLine(key="total")
    for line in lines.values():
        total.add_usage(line)
    by_day_billed = q.billed_by(session, "day", days)
    by_day_compared = q.compared_by(session, width, "day", days)
    if days and by not in ATTRIBUTED_BY:
        # The bill is compared with the usage rows; attributed usage is another cut of them.
        total.add_billed(sum(by_day_billed.values()), sum(by_day_compared.values()))
    if by in ("model", "workspace", "day"):
        _attach_bill(
            session,
            settings,
            by,
            lines=lines,
            days=days,
            by_day_billed=by_day_billed,
            by_day_compared=by_day_compared,
        )
    ordered = sorted(lines.values(), key=_order(by))
    budget = budget_line(settings.rules.budgets)
    if budget is not None:
        facts = [f for f in budget_facts(session, settings, now) if f.rule.name == budget.name]
        if facts:
            budget = replace(
                budget, spent_nanos=facts[0].spent_nanos, period_label=facts[0].period.label
            )
    return Report(
        by=by,
        since=since,
        until=until,
        generated_at=now,
        bucket_width=width,
        lines=tuple(ordered),
        total=total,
        billed_days=tuple(days),
        days=tuple(
            _days(
                session,
                settings,
                since=since,
                until=until,
                now=now,
                billed_days=days,
                by_day_billed=by_day_billed,
                budget=budget,
            )
        ),
        budget=budget,
        balance=balance_history(session, settings, since, until, now),
        organization=q.organization_name(session),
        priority_unbilled_nanos=q.priority_estimate(session, width, days),
    )


def _attach_bill(
    session: Session,
    settings: Settings,
    by: ReportBy,
    *,
    lines: dict[str, UsageLine],
    days: list[datetime],
    by_day_billed: dict[str, int],
    by_day_compared: dict[str, int],
) -> None:
    width = settings.collection.bucket_width
    if by == "day":
        billed = {d.date().isoformat(): by_day_billed.get(d.date().isoformat(), 0) for d in days}
        compared = by_day_compared
    else:
        billed = q.billed_by(session, by, days)
        compared = q.compared_by(session, width, by, days)
        if by == "model":
            billed = q.match_models(billed, [*lines, *compared])
    name = q.namer(session, by)
    for key in sorted(billed.keys() | compared.keys()):
        line = lines.get(key)
        if line is None:
            label = name(key)
            if by == "model" and key == q.NO_MODEL:
                kinds = ", ".join(k.replace("_", " ") for k in q.billed_cost_types(session, days))
                label = f"Billed without a model: {kinds}"
            line = lines[key] = UsageLine(key=key, name=label)
        line.add_billed(billed.get(key, 0), compared.get(key, 0))


def _order(by: ReportBy) -> Callable[[UsageLine], tuple[int, int, str]]:
    """Days and hours in time order; the others costliest first."""
    if by in ("day", "hour"):
        return lambda line: (0, 0, line.key)
    return lambda line: (-line.estimated_nanos, -(line.billed_nanos or 0), line.key)


def budget_line(budgets: tuple[BudgetRule, ...]) -> BudgetLine | None:
    """The organization-wide budget with the shortest period (a daily one reads directly)."""
    org = [b for b in budgets if not b.scope]
    if not org:
        return None
    rule = min(org, key=lambda b: _PERIOD_ORDER[b.period])
    limit = usd_to_nanos(rule.limit)
    if rule.period == "day":
        label = f"daily budget {usd_text(limit)}"
    elif rule.period == "week":
        label = f"weekly budget {usd_text(limit)}, a seventh a day"
    else:
        label = f"monthly budget {usd_text(limit)}, spread over the days of the month"
    if rule.tz != "UTC":
        label += f" (its periods run in {rule.tz}; these days are UTC)"
    return BudgetLine(rule.name, label, limit, rule.period, rule.tz)


def budget_share(budget: BudgetLine, day: datetime) -> int:
    """The budget's amount for one day: the limit, a seventh, or a share of the month's days."""
    if budget.period == "day":
        return budget.limit_nanos
    if budget.period == "week":
        return budget.limit_nanos // 7
    return budget.limit_nanos // calendar.monthrange(day.year, day.month)[1]


def _days(
    session: Session,
    settings: Settings,
    *,
    since: datetime,
    until: datetime,
    now: datetime,
    billed_days: list[datetime],
    by_day_billed: dict[str, int],
    budget: BudgetLine | None,
) -> list[DaySpend]:
    width = settings.collection.bucket_width
    estimates = q.daily_estimates(session, width, since, until)
    billed = set(billed_days)
    out = []
    day = day_start(since)
    # Days yet to come have no spend to draw (an --until far ahead would draw years of them).
    while day < min(until, now):
        key = day.date().isoformat()
        out.append(
            DaySpend(
                day=day,
                estimated_nanos=estimates.get(day, 0),
                billed_nanos=by_day_billed.get(key, 0) if day in billed else None,
                budget_nanos=budget_share(budget, day) if budget else None,
            )
        )
        day += DAY
    return out


def balance_history(
    session: Session, settings: Settings, since: datetime, until: datetime, now: datetime
) -> BalanceHistory | None:
    """The balance through the window, its credits in, and the runway projection from now."""
    opening = opening_entry(session)
    if opening is None:
        return None
    end = min(until, now)
    step = HOUR if end - since <= HOURLY_UP_TO else DAY
    start = max(since, opening.at)
    points = q.balance_points(session, _steps(start, end, step)) if start < end else []
    events = q.credit_events(session, since, end)
    terms = ledger_terms(session, settings.ledger.credit_terms())
    policy = terms.policy
    rule = (
        f"auto-reload below {usd_text(policy.threshold_nanos)} to {usd_text(policy.target_nanos)}"
        if policy is not None
        else None
    )
    threshold = policy.threshold_nanos if policy is not None else None
    current = balance_nanos(session)
    if until < now or current is None:
        return BalanceHistory(
            tuple(points),
            tuple(events),
            now=now,
            reload_rule=rule,
            reload_threshold_nanos=threshold,
        )
    walked = current_walk(session, settings.collection.bucket_width, terms, now)
    ahead = runway_ahead(walked, recent_history(session, settings, now).profile, terms, now)
    if isinstance(ahead, str):
        return BalanceHistory(
            tuple(points),
            tuple(events),
            runway_note=ahead,
            now=now,
            balance_nanos=current,
            reload_rule=rule,
            reload_threshold_nanos=threshold,
        )
    reach = ahead.zero_at if ahead.zero_at and ahead.zero_at <= now + PROJECTION_MOST else None
    horizon = reach or now + PROJECTION_CALM
    ahead_times = [now, *_steps(now, horizon, step)[1:]]
    if ahead_times[-1] < horizon:
        ahead_times.append(horizon)
    path = ahead.path(current, ahead_times)
    projection = [BalancePoint(t, b) for t, b in zip(ahead_times, path, strict=True)]
    if reach is not None:
        projection[-1] = BalancePoint(reach, min(0, projection[-1].balance_nanos))
    planned = [
        BalanceEvent(r.at, r.granted_nanos, "reload", projected=True)
        for r in ahead.projection.reloads
        if r.at <= horizon
    ]
    note = None
    if ahead.zero_at is None:
        note = f"the balance stays above zero for the next {ahead.horizon.days} days at this rate"
    return BalanceHistory(
        points=tuple(points),
        events=tuple(events + planned),
        projection=tuple(projection),
        zero_at=ahead.zero_at,
        runway_note=note,
        now=now,
        balance_nanos=current,
        reload_rule=rule,
        reload_threshold_nanos=threshold,
    )


def _steps(start: datetime, end: datetime, step: timedelta) -> list[datetime]:
    """``start`` rounded up to the step, each step up to ``end``, then ``end`` itself."""
    first = start.replace(minute=0, second=0, microsecond=0)
    if step == DAY:
        first = day_start(start)
    if first < start:
        first += step
    times = [start] if first > start else []
    moment = first
    while moment < end:
        times.append(moment)
        moment += step
    times.append(end)
    return times
