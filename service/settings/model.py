"""The validated settings, grouped by concern. Built by :func:`service.settings.load_settings`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

from pydantic import SecretStr

from service.domain.credit_terms import CreditTerms
from service.domain.credit_walk import ReloadPolicy
from service.domain.money import usd_to_nanos
from service.domain.usage import BucketWidth, UsageSourceName
from service.errors import ConfigError
from service.settings.channels import ChannelSettings
from service.settings.metrics import MetricsAddress
from service.settings.rules import RuleSettings


@dataclass(frozen=True)
class ApiSettings:
    """How to reach the Admin API."""

    admin_key: SecretStr | None
    base_url: str
    http_timeout: timedelta


@dataclass(frozen=True)
class CollectionSettings:
    """What each cycle fetches, and how often."""

    poll_interval: timedelta
    bucket_width: BucketWidth
    lookback: timedelta
    backfill_from: datetime | None
    # Where token usage is read: the legacy usage report ("messages") or the Analytics API.
    usage_source: UsageSourceName = "messages"


@dataclass(frozen=True)
class LedgerSettings:
    """Where the ledger lives and the facts and terms the balance is computed from."""

    database_url: str
    prices_file: Path | None
    starting_balance: Decimal | None
    starting_balance_at: datetime | None
    auto_reload_threshold: Decimal | None = None
    auto_reload_to: Decimal | None = None
    auto_reload_monthly_limit: Decimal | None = None
    credit_expiry: timedelta = timedelta(days=365)
    credit_unit_usd: Decimal = Decimal(1)

    @property
    def starting_balance_nanos(self) -> int | None:
        amount = self.starting_balance
        return usd_to_nanos(amount) if amount is not None else None

    def reload_policy(self) -> ReloadPolicy | None:
        """The simulated Console auto-reload, or None when it is off."""
        if self.auto_reload_threshold is None or self.auto_reload_to is None:
            return None
        limit = self.auto_reload_monthly_limit
        return ReloadPolicy(
            threshold_nanos=usd_to_nanos(self.auto_reload_threshold),
            target_nanos=usd_to_nanos(self.auto_reload_to),
            monthly_limit_nanos=usd_to_nanos(limit) if limit is not None else None,
        )

    def credit_terms(self) -> CreditTerms:
        return CreditTerms(self.reload_policy(), self.credit_expiry)


@dataclass(frozen=True)
class LogSettings:
    level: str = "INFO"
    format: str = "text"


@dataclass(frozen=True)
class Settings:
    """The effective configuration. ``secrets`` holds every credential, for log masking."""

    api: ApiSettings
    collection: CollectionSettings
    ledger: LedgerSettings
    log: LogSettings
    rules: RuleSettings = field(default_factory=RuleSettings)
    channels: ChannelSettings = field(default_factory=ChannelSettings)
    # Where the daemon serves /metrics and /healthz; None: no server.
    metrics_addr: MetricsAddress | None = None
    secrets: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    sources: Mapping[str, str] = field(default_factory=dict)

    def require_admin_key(self) -> SecretStr:
        """The admin key, or ConfigError when it is missing (every mode but the demo needs it)."""
        if self.api.admin_key is None:
            raise missing_admin_key()
        return self.api.admin_key


def missing_admin_key() -> ConfigError:
    return ConfigError(
        "ANTHROPIC_ADMIN_KEY",
        "is not set; creditwatch needs an Admin API key (Console → Settings → Admin keys)",
        "sk-ant-admin01-…  (or ANTHROPIC_ADMIN_KEY_FILE=/run/credentials/<unit>/admin-key)",
    )
