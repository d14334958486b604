"""An alert as the channels read it: the outbox's versioned JSON (``schema: 1``), typed.

Every channel renders from this one view, so a notification reads the same everywhere and a
payload stored before a restart renders exactly as it would have before it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

SCHEMA_VERSION = 1


@dataclass(frozen=True)
class DriverView:
    dimension: str
    id: str
    name: str
    amount: Decimal
    change: Decimal | None


@dataclass(frozen=True)
class AlertView:
    """What every channel says. Amounts are exact Decimal USD; times aware UTC."""

    dedup_id: str
    message_id: str
    kind: str  # alert, reminder, resolved
    episode: int
    previous_message_id: str | None
    rule: str
    rule_name: str
    scope: str
    period: str | None
    threshold: str | None
    severity: str  # info, warning, critical
    title: str
    summary: str
    value: Decimal | None
    limit: Decimal | None
    threshold_amount: Decimal | None
    percent_of_limit: Decimal | None
    period_start: datetime | None
    period_end: datetime | None
    projection: bool
    drivers: tuple[DriverView, ...]
    channels: tuple[str, ...]
    details: dict[str, str]
    balance: Decimal | None
    runway_until: datetime | None
    runway_note: str | None
    newest_bucket_start: datetime | None
    last_collected_at: datetime | None
    created_at: datetime
    test: bool = False

    @classmethod
    def from_json(cls, payload: dict[str, Any]) -> AlertView:
        """Read a stored payload; raises ValueError for another schema version."""
        if payload.get("schema") != SCHEMA_VERSION:
            raise ValueError(
                f"alert payload schema {payload.get('schema')!r} is not {SCHEMA_VERSION}"
            )
        return cls(
            dedup_id=payload["dedup_id"],
            message_id=payload["message_id"],
            kind=payload["kind"],
            episode=int(payload["episode"]),
            previous_message_id=payload.get("previous_message_id"),
            rule=payload["rule"],
            rule_name=payload["rule_name"],
            scope=payload["scope"],
            period=payload.get("period"),
            threshold=payload.get("threshold"),
            severity=payload["severity"],
            title=payload["title"],
            summary=payload["summary"],
            value=_decimal(payload.get("value_usd")),
            limit=_decimal(payload.get("limit_usd")),
            threshold_amount=_decimal(payload.get("threshold_usd")),
            percent_of_limit=_decimal(payload.get("percent_of_limit")),
            period_start=_time(payload.get("period_start")),
            period_end=_time(payload.get("period_end")),
            projection=bool(payload.get("projection")),
            drivers=tuple(
                DriverView(
                    d["dimension"],
                    d["id"],
                    d["name"],
                    Decimal(d["amount_usd"]),
                    _decimal(d.get("change_usd")),
                )
                for d in payload.get("drivers", [])
            ),
            channels=tuple(payload.get("channels", [])),
            details=dict(payload.get("details", {})),
            balance=_decimal(payload.get("balance_usd")),
            runway_until=_time(payload.get("runway_until")),
            runway_note=payload.get("runway_note"),
            newest_bucket_start=_time(payload.get("newest_bucket_start")),
            last_collected_at=_time(payload.get("last_collected_at")),
            created_at=datetime.fromisoformat(payload["created_at"].replace("Z", "+00:00")),
            test=bool(payload.get("test")),
        )


def _decimal(value: str | None) -> Decimal | None:
    return Decimal(value) if value is not None else None


def _time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None
