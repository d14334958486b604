"""The state the rules read: a snapshot taken after booking, in the same transaction.

Plain values only, built by :mod:`service.runtime.facts` from the ledger; the rules are pure
functions of these facts and the rule settings.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from service.alerts.model import Driver, Situation
from service.domain.periods import Period
from service.settings.rules import BudgetRule


@dataclass(frozen=True)
class BudgetFacts:
    """One budget's spend in its current period, and the end-of-period projection if any."""

    rule: BudgetRule
    period: Period
    spent_nanos: int
    projected_nanos: int | None
    projection_note: str | None
    drivers: tuple[Driver, ...] = ()


@dataclass(frozen=True)
class SpikeFacts:
    """The last complete hour against the median of the same hour on the days before."""

    hour_start: datetime
    spent_nanos: int
    baseline_nanos: int
    days: int
    drivers: tuple[Driver, ...] = ()


@dataclass(frozen=True)
class CollectionFacts:
    failing_since: datetime | None
    last_error: str | None
    last_success_at: datetime | None
    newest_bucket_start: datetime | None
    bucket: timedelta


@dataclass(frozen=True)
class ReloadBlockFact:
    at: datetime
    wanted_nanos: int
    granted_nanos: int


@dataclass(frozen=True)
class ExpiringLot:
    key: str
    kind: str
    bought_at: datetime
    remaining_nanos: int
    expires_at: datetime


@dataclass(frozen=True)
class ConfigRefusal:
    """A reload (SIGHUP) refused the edited settings; the daemon runs on the previous ones."""

    at: datetime
    reason: str


@dataclass(frozen=True)
class ChannelFailure:
    name: str
    reason: str  # refused | expired | retrying
    since: datetime | None
    error: str | None


@dataclass(frozen=True)
class DriftLine:
    """One model and kind (token type or cost type) of a reconciled day."""

    model: str
    kind: str
    billed_nanos: int
    estimated_nanos: int


@dataclass(frozen=True)
class DriftFacts:
    """The newest reconciled day: its bill against the estimate (priority tier left out, as
    the bill omits it), with the lines that say where a difference comes from."""

    day: datetime
    billed_nanos: int
    estimated_nanos: int
    priority_nanos: int
    lines: tuple[DriftLine, ...] = ()


@dataclass(frozen=True)
class Facts:
    situation: Situation
    budgets: tuple[BudgetFacts, ...] = ()
    spike: SpikeFacts | None = None
    collection: CollectionFacts | None = None
    unknown_models: tuple[tuple[str, str], ...] = ()
    reload_blocks: tuple[ReloadBlockFact, ...] = ()
    month_label: str = ""
    expiring_lots: tuple[ExpiringLot, ...] = field(default=())
    channels: tuple[str, ...] = ()
    # Channels that, since their last delivery, refused one for good, gave one up after the
    # maximum age, or have been retrying one for an hour.
    failing_channels: tuple[ChannelFailure, ...] = ()
    # The daemon's last reload, when it was refused (None: the running settings are the file's).
    config_refused: ConfigRefusal | None = None
    # The newest day reconciled with the bill (None before the first reconcile).
    drift: tuple[DriftFacts, ...] = ()  # the recently reconciled days, oldest first

    @property
    def now(self) -> datetime:
        return self.situation.now
