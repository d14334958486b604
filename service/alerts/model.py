"""The alert model: what every alert says, whatever channel carries it (DESIGN §2).

An alert's identity is (rule, scope, period, threshold). Rules report what they see as
:class:`Finding` s; the dedup stage (:mod:`service.alerts.dedup`) decides which become
notifications: the first ``alert``, a ``reminder`` while a condition persists, one ``resolved``
notice when it clears. Amounts are integer nano-dollars; times aware UTC.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

from service.domain.money import format_usd, usd_to_nanos
from service.domain.timefmt import rfc3339, rfc3339_or_none

Severity = Literal["info", "warning", "critical"]
NoticeKind = Literal["alert", "reminder", "resolved"]
Dimension = Literal["model", "api_key", "workspace", "actor", "product"]
SCHEMA_VERSION = 1


@dataclass(frozen=True, order=True)
class Identity:
    """What makes two alerts the same alert."""

    rule: str
    scope: str = "org"
    period: str = ""
    threshold: str = ""

    @property
    def key(self) -> str:
        return f"{self.rule}/{self.scope}/{self.period}/{self.threshold}"


@dataclass(frozen=True)
class Driver:
    """One contributor to the spend behind an alert, and its change since the rule's last alert."""

    dimension: Dimension
    id: str
    name: str
    amount_nanos: int
    change_nanos: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "dimension": self.dimension,
            "id": self.id,
            "name": self.name,
            "amount_usd": format_usd(self.amount_nanos),
            "change_usd": format_usd(self.change_nanos) if self.change_nanos is not None else None,
        }


@dataclass(frozen=True)
class Freshness:
    """How current the data behind an alert is."""

    newest_bucket_start: datetime | None
    last_collected_at: datetime | None


@dataclass(frozen=True)
class Content:
    """Everything an alert says, before the dedup stage gives it an id and a kind."""

    severity: Severity
    title: str
    summary: str
    rule_name: str
    value_nanos: int | None = None
    limit_nanos: int | None = None
    threshold_nanos: int | None = None
    percent: Decimal | None = None
    period_label: str | None = None
    period_start: datetime | None = None
    period_end: datetime | None = None
    projection: bool = False
    drivers: tuple[Driver, ...] = ()
    channels: tuple[str, ...] = ()
    # Channels this alert must not go to (a channel's own failure goes to the others).
    exclude_channels: tuple[str, ...] = ()
    details: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Finding:
    """What a rule sees this cycle.

    ``persistent`` findings are conditions: they repeat while they hold and resolve when they
    clear (``holds`` False). The others are events, produced once per identity; events that
    share a ``group`` (one budget's thresholds in one period) send only the highest ``rank``
    crossed, and a threshold at or below one already alerted in the group is never sent.
    """

    identity: Identity
    content: Content
    persistent: bool = False
    holds: bool = True
    group: str | None = None
    rank: int | None = None


@dataclass(frozen=True)
class Situation:
    """What every alert reports beside its own subject: the balance, runway and freshness."""

    now: datetime
    balance_nanos: int | None
    runway_until: datetime | None
    runway_note: str | None
    freshness: Freshness


@dataclass(frozen=True)
class Alert:
    """One notification: an identity's first alert, a reminder, or its resolved notice."""

    dedup_id: str
    message_id: str
    kind: NoticeKind
    identity: Identity
    content: Content
    situation: Situation
    episode: int = 1
    previous_message_id: str | None = None
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def severity(self) -> Severity:
        return "info" if self.kind == "resolved" else self.content.severity

    def with_driver_changes(self, previous: tuple[Driver, ...]) -> Alert:
        """The drivers with how each changed since ``previous`` (the rule's last alert)."""
        before = {(d.dimension, d.id): d.amount_nanos for d in previous}
        drivers = tuple(
            replace(d, change_nanos=d.amount_nanos - before[(d.dimension, d.id)])
            if (d.dimension, d.id) in before
            else d
            for d in self.content.drivers
        )
        return replace(self, content=replace(self.content, drivers=drivers))

    def to_json(self) -> dict[str, Any]:
        """The versioned JSON form, stored in the outbox and (later) sent to webhooks."""
        c, s = self.content, self.situation
        return {
            "schema": SCHEMA_VERSION,
            "dedup_id": self.dedup_id,
            "message_id": self.message_id,
            "kind": self.kind,
            "episode": self.episode,
            "previous_message_id": self.previous_message_id,
            "rule": self.identity.rule,
            "rule_name": c.rule_name,
            "scope": self.identity.scope,
            "period": self.identity.period or None,
            "threshold": self.identity.threshold or None,
            "severity": self.severity,
            "title": c.title,
            "summary": c.summary,
            "value_usd": _usd(c.value_nanos),
            "limit_usd": _usd(c.limit_nanos),
            "threshold_usd": _usd(c.threshold_nanos),
            "percent_of_limit": f"{c.percent:f}" if c.percent is not None else None,
            "period_start": rfc3339_or_none(c.period_start),
            "period_end": rfc3339_or_none(c.period_end),
            "projection": c.projection,
            "drivers": [d.to_json() for d in c.drivers],
            "channels": list(c.channels),
            "exclude_channels": list(c.exclude_channels),
            "details": dict(c.details),
            "balance_usd": _usd(s.balance_nanos),
            "runway_until": rfc3339_or_none(s.runway_until),
            "runway_note": s.runway_note,
            "newest_bucket_start": rfc3339_or_none(s.freshness.newest_bucket_start),
            "last_collected_at": rfc3339_or_none(s.freshness.last_collected_at),
            "created_at": rfc3339(s.now),
        }


def _usd(nanos: int | None) -> str | None:
    return format_usd(nanos) if nanos is not None else None


def dumps(alert: Alert) -> str:
    return json.dumps(alert.to_json(), sort_keys=True)


def drivers_from_json(payload: dict[str, Any]) -> tuple[Driver, ...]:
    """The drivers of a stored alert, to compare the next alert of the rule with."""
    return tuple(
        Driver(d["dimension"], d["id"], d["name"], usd_to_nanos(Decimal(d["amount_usd"])))
        for d in payload.get("drivers", [])
    )
