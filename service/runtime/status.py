"""What `status` shows, read from the ledger alone (it works without the API, and never writes).

The starting balance shown is the one the ledger was booked with, not the shell's settings.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session
from sqlmodel import col

from service.alerts.rules.budget import group_key, percent_of, thresholds
from service.domain.money import format_usd, usd_to_nanos
from service.domain.periods import day_start, month_start
from service.domain.timefmt import rfc3339, rfc3339_or_none
from service.domain.usage import BUCKET_SECONDS
from service.runtime.delivery import CHANNEL_RETRYING_ALERT
from service.runtime.facts import Names, budget_facts
from service.runtime.outlook import balance_in_credits, credit_outlook, recent_history
from service.runtime.usage_source import REFRESHED_SETTING, SOURCES_SETTING
from service.settings import Settings
from service.store.alerts import crossed_thresholds
from service.store.balance import balance_nanos
from service.store.bills import adjustments_total_nanos, latest_reconciled_day
from service.store.leadership import current_leader
from service.store.ledger_entries import opening_entry
from service.store.outbox import channel_health, outbox_counts
from service.store.stored_settings import stored_value
from service.store.tables import CollectionState, UnknownModel
from service.store.usage_queries import (
    estimated_spend_nanos,
    latest_bucket_start,
    period_spend_nanos,
)


def build_status(session: Session, settings: Settings, now: datetime) -> dict[str, Any]:
    """Everything `status` shows; amounts as decimal strings, times as RFC 3339 or null."""
    width = settings.collection.bucket_width
    balance = balance_nanos(session)
    opening = opening_entry(session)
    state = session.get(CollectionState, width)
    latest = latest_bucket_start(session, width)
    unknown = list(session.scalars(select(UnknownModel).order_by(col(UnknownModel.model))))
    month = month_start(now)
    outlook = credit_outlook(session, settings, now)
    data_until = None
    if latest is not None and state is not None and state.last_success_at is not None:
        data_until = min(latest + timedelta(seconds=BUCKET_SECONDS[width]), state.last_success_at)
    return {
        "balance_usd": format_usd(balance) if balance is not None else None,
        "balance_known": balance is not None,
        "balance_credits": balance_in_credits(balance, settings),
        "credit_unit_usd": str(settings.ledger.credit_unit_usd),
        "starting_balance_usd": format_usd(opening.amount_nanos) if opening else None,
        "starting_balance_at": rfc3339(opening.at) if opening else None,
        "spend": {
            "today_usd": format_usd(period_spend_nanos(session, day_start(now), now, width)),
            "month_to_date_usd": format_usd(period_spend_nanos(session, month, now, width)),
            "month_to_date_estimated_usd": format_usd(
                estimated_spend_nanos(session, month, now, width)
            ),
        },
        "budgets": budgets_status(session, settings, now),
        "last_collected_at": rfc3339_or_none(state.last_success_at if state else None),
        "last_attempt_at": rfc3339_or_none(state.last_attempt_at if state else None),
        "collection_failing_since": rfc3339_or_none(state.failing_since if state else None),
        "last_error": state.last_error if state else None,
        "watermark": rfc3339_or_none(state.watermark if state else None),
        "data_until": rfc3339_or_none(data_until),
        **usage_source_status(session, settings),
        "unknown_models": [
            {"model": u.model, "priced_as": u.priced_as, "first_seen_at": rfc3339(u.first_seen_at)}
            for u in unknown
        ],
        "outbox": outbox_counts(session),
        "channels": channels_status(session, settings, now),
        "leader": leader_status(session),
        "credits": outlook["credits"],
        "forecast": outlook["forecast"],
        "reconciliation": reconciliation_status(session),
        "as_of": rfc3339(now),
    }


def usage_source_status(session: Session, settings: Settings) -> dict[str, Any]:
    """Where usage comes from: the source the ledger was last collected from (the configured
    one before any collection), the bucket it took over from after a switch (None: from the
    start), the configured source, and the Analytics API's newest ``data_refreshed_at`` while
    it is the source (None otherwise)."""
    configured = settings.collection.usage_source
    raw = stored_value(session, SOURCES_SETTING)
    # The segments, ``[[from, source], …]`` in order: the last one is read from now on.
    segments: list[list[str]] = json.loads(raw) if raw else []
    source, since = (segments[-1][1], segments[-1][0]) if segments else (configured, None)
    return {
        "usage_source": source,
        "usage_source_since": since if len(segments) > 1 else None,
        "usage_source_configured": configured,
        "data_refreshed_at": (
            stored_value(session, REFRESHED_SETTING) if source == "analytics" else None
        ),
    }


def reconciliation_status(session: Session) -> dict[str, Any]:
    """The newest day adjusted to Anthropic's bill, and every adjustment booked, in total."""
    latest = latest_reconciled_day(session)
    return {
        "last_reconciled_day": f"{latest.day:%Y-%m-%d}" if latest else None,
        "last_checked_at": rfc3339(latest.checked_at) if latest else None,
        "last_day_billed_usd": format_usd(latest.billed_nanos) if latest else None,
        "last_day_estimated_usd": format_usd(latest.estimated_nanos) if latest else None,
        "adjustments_usd": format_usd(adjustments_total_nanos(session)),
    }


def budgets_status(session: Session, settings: Settings, now: datetime) -> list[dict[str, Any]]:
    """Each budget's current period: spend, limit, projection and the thresholds alerted."""
    history = (
        recent_history(session, settings, now)
        if any(b.forecast_percents for b in settings.rules.budgets)
        else None
    )
    budgets = budget_facts(session, settings, now, history)
    names = Names(session)
    groups = [group_key(b, kind) for b in budgets for kind in ("spend", "forecast")]
    alerted = crossed_thresholds(session, groups)
    out = []
    for budget in budgets:
        rule, period = budget.rule, budget.period
        limit = usd_to_nanos(rule.limit)
        out.append(
            {
                "name": rule.name,
                "scope": rule.scope_text,
                "scope_unknown": names.unknown_scope(rule),
                "period": period.kind,
                "period_label": period.label,
                "tz": rule.tz,
                "period_start": rfc3339(period.start),
                "period_end": rfc3339(period.end),
                "spent_usd": format_usd(budget.spent_nanos),
                "limit_usd": format_usd(limit),
                "percent_of_limit": f"{percent_of(budget.spent_nanos, limit):f}",
                "thresholds": [label for label, _ in thresholds(budget)],
                "thresholds_crossed": [
                    label for label, amount in thresholds(budget) if budget.spent_nanos >= amount
                ],
                "thresholds_alerted": alerted.get(group_key(budget, "spend"), []),
                "forecast_usd": (
                    format_usd(budget.projected_nanos)
                    if budget.projected_nanos is not None
                    else None
                ),
                "forecast_note": budget.projection_note,
                "forecast_alerted": alerted.get(group_key(budget, "forecast"), []),
            }
        )
    return out


def leader_status(session: Session) -> dict[str, Any] | None:
    """Which instance collects and delivers: the leader lock's holder on PostgreSQL (None when
    no instance runs), the one instance on SQLite."""
    if session.get_bind().dialect.name != "postgresql":
        return {"instance": "the only instance (SQLite)", "since": None}
    leader = current_leader(session)
    if leader is None:
        return None
    return {"instance": leader.instance, "since": rfc3339_or_none(leader.since)}


def channels_status(session: Session, settings: Settings, now: datetime) -> list[dict[str, Any]]:
    """Each configured channel: how its last delivery went, and whether it is failing."""
    health = channel_health(session, settings.channels.names, now, CHANNEL_RETRYING_ALERT)
    return [
        {
            "name": spec.name,
            "kind": spec.kind,
            "last_delivery": health[spec.name].last_delivery,
            "failing": health[spec.name].failing,
            "failing_reason": health[spec.name].reason or None,
            "failing_since": rfc3339_or_none(health[spec.name].since)
            if health[spec.name].failing
            else None,
        }
        for spec in settings.channels.channels
    ]
