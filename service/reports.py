"""Read-only views of the ledger for `status` and `report`. Work without the API."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Literal

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session
from sqlmodel import col

from service import ledger
from service.collector import floor_to_bucket, month_start
from service.config import Settings
from service.models import CollectionState, OutboxAlert, UnknownModel
from service.money import credits_of, format_usd
from service.outlook import balance_in_credits, credit_outlook
from service.usage import BUCKET_SECONDS

ReportBy = Literal["model", "api_key", "workspace", "day"]
OUTBOX_STATES = ("pending", "sending", "sent", "failed")
USAGE = ledger.USAGE


def build_status(session: Session, settings: Settings, now: datetime) -> dict[str, Any]:
    """Everything `status` shows; amounts as decimal strings, times as RFC 3339 or null."""
    width = settings.bucket_width
    balance = ledger.balance_nanos(session)
    state = session.get(CollectionState, width)
    day_start = now.replace(hour=0, minute=0, second=0, microsecond=0)
    latest = session.execute(
        select(func.max(USAGE.c.bucket_start)).where(USAGE.c.bucket_width == width)
    ).scalar_one()
    outbox = dict.fromkeys(OUTBOX_STATES, 0)
    for state_name, count in session.execute(
        select(col(OutboxAlert.state), func.count()).group_by(col(OutboxAlert.state))
    ):
        outbox[str(state_name)] = int(count)
    unknown = list(session.scalars(select(UnknownModel).order_by(col(UnknownModel.model))))
    estimated_mtd = session.execute(
        select(func.coalesce(func.sum(USAGE.c.cost_nanos), 0)).where(
            USAGE.c.bucket_width == width,
            USAGE.c.bucket_start >= month_start(now),
            USAGE.c.estimated.is_(True),
        )
    ).scalar_one()
    outlook = credit_outlook(session, settings, now)
    return {
        "balance_usd": format_usd(balance) if balance is not None else None,
        "balance_known": balance is not None,
        "balance_credits": balance_in_credits(balance, settings),
        "credit_unit_usd": str(settings.credit_unit_usd),
        "starting_balance_usd": (
            str(settings.starting_balance) if settings.starting_balance is not None else None
        ),
        "starting_balance_at": _iso(settings.starting_balance_at),
        "spend": {
            "today_usd": format_usd(ledger.period_spend_nanos(session, day_start, now, width)),
            "month_to_date_usd": format_usd(
                ledger.period_spend_nanos(session, month_start(now), now, width)
            ),
            "month_to_date_estimated_usd": format_usd(int(estimated_mtd)),
        },
        "budgets": [],
        "last_collected_at": _iso(state.last_success_at if state else None),
        "last_attempt_at": _iso(state.last_attempt_at if state else None),
        "collection_failing_since": _iso(state.failing_since if state else None),
        "last_error": state.last_error if state else None,
        "watermark": _iso(state.watermark if state else None),
        "data_until": _iso(
            min(latest + timedelta(seconds=BUCKET_SECONDS[width]), state.last_success_at)
            if latest is not None and state is not None and state.last_success_at is not None
            else None
        ),
        "unknown_models": [
            {"model": u.model, "priced_as": u.priced_as, "first_seen_at": _iso(u.first_seen_at)}
            for u in unknown
        ],
        "outbox": outbox,
        "credits": outlook["credits"],
        "forecast": outlook["forecast"],
        "as_of": _iso(now),
    }


@dataclass
class BreakdownRow:
    key: str
    name: str
    uncached_input_tokens: int = 0
    cache_write_tokens: int = 0
    cache_read_tokens: int = 0
    output_tokens: int = 0
    web_search_requests: int = 0
    cost_nanos: int = 0
    estimated: bool = False

    def as_json(self, credit_unit_usd: Decimal = Decimal(1)) -> dict[str, Any]:
        credits = (
            {"cost_credits": credits_of(self.cost_nanos, credit_unit_usd)}
            if credit_unit_usd != 1
            else {}
        )
        return {
            "key": self.key,
            "name": self.name,
            "uncached_input_tokens": self.uncached_input_tokens,
            "cache_write_tokens": self.cache_write_tokens,
            "cache_read_tokens": self.cache_read_tokens,
            "output_tokens": self.output_tokens,
            "web_search_requests": self.web_search_requests,
            "cost_usd": format_usd(self.cost_nanos),
            **credits,
            "estimated": self.estimated,
        }


def usage_breakdown(
    session: Session, settings: Settings, by: ReportBy, since: datetime, until: datetime
) -> list[BreakdownRow]:
    """Tokens and cost by ``by`` for buckets starting in ``[since, until)``, costliest first."""
    width = settings.bucket_width
    group = USAGE.c.bucket_start if by == "day" else USAGE.c[_COLUMN[by]]
    statement = (
        select(
            group,
            func.sum(USAGE.c.uncached_input_tokens),
            func.sum(USAGE.c.cache_creation_5m_tokens + USAGE.c.cache_creation_1h_tokens),
            func.sum(USAGE.c.cache_read_tokens),
            func.sum(USAGE.c.output_tokens),
            func.sum(USAGE.c.web_search_requests),
            func.sum(USAGE.c.cost_nanos),
            func.max(case((USAGE.c.estimated.is_(True), 1), else_=0)),
        )
        .where(
            USAGE.c.bucket_width == width,
            USAGE.c.bucket_start >= floor_to_bucket(since, width),
            USAGE.c.bucket_start < until,
        )
        .group_by(group)
    )
    names = _names(session, by)
    rows: dict[str, BreakdownRow] = {}
    for value, uncached, write, read, output, search, cost, estimated in session.execute(statement):
        key = value.date().isoformat() if by == "day" else str(value)
        row = rows.setdefault(key, BreakdownRow(key=key, name=names(key)))
        row.uncached_input_tokens += int(uncached)
        row.cache_write_tokens += int(write)
        row.cache_read_tokens += int(read)
        row.output_tokens += int(output)
        row.web_search_requests += int(search)
        row.cost_nanos += int(cost)
        row.estimated = row.estimated or bool(estimated)
    ordered = list(rows.values())
    if by == "day":
        return sorted(ordered, key=lambda r: r.key)
    return sorted(ordered, key=lambda r: (-r.cost_nanos, r.key))


_COLUMN = {"model": "model", "api_key": "api_key_id", "workspace": "workspace_id"}


def _names(session: Session, by: ReportBy) -> Any:
    if by == "api_key":
        known = ledger.load_names(session, "api_key")
        return lambda key: known.get(key, "Console (no API key)" if key == "" else "")
    if by == "workspace":
        known = ledger.load_names(session, "workspace")
        return lambda key: known.get(key, "Default workspace" if key == "" else "")
    return lambda key: ""


def totals(rows: list[BreakdownRow]) -> BreakdownRow:
    total = BreakdownRow(key="total", name="")
    for row in rows:
        total.uncached_input_tokens += row.uncached_input_tokens
        total.cache_write_tokens += row.cache_write_tokens
        total.cache_read_tokens += row.cache_read_tokens
        total.output_tokens += row.output_tokens
        total.web_search_requests += row.web_search_requests
        total.cost_nanos += row.cost_nanos
        total.estimated = total.estimated or row.estimated
    return total


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat().replace("+00:00", "Z") if moment is not None else None
