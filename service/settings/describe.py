"""The effective settings as `check-config` prints them: every value a string, secrets masked."""

from __future__ import annotations

from decimal import Decimal

from service.domain.money import percent_text
from service.domain.timefmt import format_duration, rfc3339
from service.settings.database_url import mask_database_url
from service.settings.grammar import mask_secret, mask_url
from service.settings.model import Settings

NOT_SET = "(not set)"


def describe(settings: Settings) -> dict[str, str]:
    """``{variable: printable value}`` for every variable this version reads."""
    api, collection, ledger, log = settings.api, settings.collection, settings.ledger, settings.log
    rules = settings.rules
    key = api.admin_key
    return {
        "ANTHROPIC_ADMIN_KEY": mask_secret(key.get_secret_value()) if key else NOT_SET,
        "ANTHROPIC_BASE_URL": mask_url(api.base_url),
        "CREDITWATCH_DATABASE_URL": mask_database_url(ledger.database_url),
        "CREDITWATCH_POLL_INTERVAL": format_duration(collection.poll_interval),
        "CREDITWATCH_STARTING_BALANCE": _or_unset(ledger.starting_balance),
        "CREDITWATCH_STARTING_BALANCE_AT": (
            rfc3339(ledger.starting_balance_at) if ledger.starting_balance_at else NOT_SET
        ),
        "CREDITWATCH_PRICES_FILE": str(ledger.prices_file or "(built-in price book)"),
        "CREDITWATCH_LOG_LEVEL": log.level,
        "CREDITWATCH_LOG_FORMAT": log.format,
        "CREDITWATCH_BACKFILL_FROM": (
            rfc3339(collection.backfill_from)
            if collection.backfill_from
            else "(earlier of the starting balance time and the start of the month)"
        ),
        "CREDITWATCH_LOOKBACK": format_duration(collection.lookback),
        "CREDITWATCH_BUCKET_WIDTH": collection.bucket_width,
        "CREDITWATCH_USAGE_SOURCE": (
            "messages (the usage report)"
            if collection.usage_source == "messages"
            else "analytics (the Usage and Cost Analytics API, beta; token usage only)"
        ),
        "CREDITWATCH_HTTP_TIMEOUT": format_duration(api.http_timeout),
        "CREDITWATCH_AUTO_RELOAD_THRESHOLD": _or_unset(ledger.auto_reload_threshold),
        "CREDITWATCH_AUTO_RELOAD_TO": _or_unset(ledger.auto_reload_to),
        "CREDITWATCH_AUTO_RELOAD_MONTHLY_LIMIT": _or_unset(ledger.auto_reload_monthly_limit),
        "CREDITWATCH_CREDIT_EXPIRY": format_duration(ledger.credit_expiry),
        "CREDITWATCH_CREDIT_UNIT_USD": str(ledger.credit_unit_usd),
        "CREDITWATCH_LOW_BALANCE": _or_unset(rules.low_balance),
        "CREDITWATCH_RUNWAY_ALERT": format_duration(rules.runway) if rules.runway else NOT_SET,
        "CREDITWATCH_REPEAT_INTERVAL": (
            format_duration(rules.repeat_interval) if rules.repeat_interval else "0 (never)"
        ),
        "CREDITWATCH_COLLECTION_ALERT": format_duration(rules.collection_alert),
        "CREDITWATCH_EXPIRY_WARNING": format_duration(rules.expiry_warning),
        "CREDITWATCH_DRIFT_ALERT": percent_text(rules.drift_percent),
        "CREDITWATCH_METRICS_ADDR": (
            f"{settings.metrics_addr} (/metrics and /healthz)"
            if settings.metrics_addr
            else "(not set: no metrics server)"
        ),
    }


def _or_unset(value: Decimal | None) -> str:
    return NOT_SET if value is None else str(value)
