"""Settings: read once in ``main()`` from the process environment and an env file, validated.

The process environment wins over the file. Every secret can also be read from ``<NAME>_FILE``
(systemd credentials, Docker secrets). A bad value raises :class:`ConfigError` naming the variable,
the problem and an example; the command edge turns that into exit status 78 (EX_CONFIG).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import get_args

from pydantic import SecretStr
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from service.domain.timefmt import format_duration, rfc3339
from service.domain.usage import BucketWidth, UsageSourceName
from service.errors import ConfigError
from service.settings.channels import ChannelSettings, parse_channels
from service.settings.database_url import database_credentials
from service.settings.environment import (
    check_names,
    is_secret,
    read_env_file,
    resolve_secret_files,
)
from service.settings.grammar import (
    parse_duration,
    parse_money,
    parse_timestamp,
    url_credentials,
)
from service.settings.metrics import parse_metrics_addr
from service.settings.model import (
    ApiSettings,
    CollectionSettings,
    LedgerSettings,
    LogSettings,
    Settings,
    missing_admin_key,
)
from service.settings.rules import parse_rules

ANTHROPIC_HOST = "api.anthropic.com"
DEFAULT_BASE_URL = f"https://{ANTHROPIC_HOST}"
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
MAX_CREDIT_EXPIRY = timedelta(days=3650)


def load_settings(
    environ: Mapping[str, str] | None = None,
    env_file: Path | None = None,
    *,
    env_file_explicit: bool = False,
    demo: bool = False,
    now: datetime | None = None,
) -> Settings:
    """Merge ``env_file`` under ``environ`` (the environment wins) and validate every value.

    Raises ConfigError for the first bad value. ``demo`` allows a missing admin key. ``now``
    (default: the system clock) is when the settings take effect: a starting balance cannot be
    stated for a moment that has not happened yet.
    """
    env = read_env_file(env_file, explicit=env_file_explicit)
    sources = dict.fromkeys(env, "env file")
    process_env = dict(os.environ if environ is None else environ)
    env.update(process_env)
    sources.update(dict.fromkeys(process_env, "environment"))
    for name, file_var in resolve_secret_files(env).items():
        sources[name] = f"{sources.get(file_var, 'environment')}: {file_var}"
    warnings = check_names(env)

    def get(name: str) -> str | None:
        value = env.get(name)
        return value if value not in (None, "") else None

    api = _api_settings(get, demo=demo, warnings=warnings)
    collection = _collection_settings(get, api.base_url, warnings)
    ledger = _ledger_settings(get, env, now or datetime.now(UTC))
    log = _log_settings(get)
    channels = parse_channels(get, env)
    if channels.delivery_lease < 2 * api.http_timeout:
        # A send still running when its claim lapses is sent again by the next pass.
        raise ConfigError(
            "CREDITWATCH_DELIVERY_LEASE",
            f"is shorter than twice CREDITWATCH_HTTP_TIMEOUT "
            f"({format_duration(api.http_timeout)}): a slow send would be sent twice",
            format_duration(max(timedelta(minutes=5), 2 * api.http_timeout)),
        )
    rules = parse_rules(get, env, channels.names)
    for budget in rules.budgets:
        if budget.attributed and collection.usage_source != "analytics":
            key = next(key for key, _ in budget.scope if key in ("actor", "product"))
            raise ConfigError(
                budget.variable,
                f"{key}= needs CREDITWATCH_USAGE_SOURCE=analytics: only the Usage and Cost "
                "Analytics API says who and what product is behind the spend",
                "",
                example_line="CREDITWATCH_USAGE_SOURCE=analytics",
            )
    metrics_addr = parse_metrics_addr(get("CREDITWATCH_METRICS_ADDR"))
    secrets = _secrets(env, api, ledger, channels)
    return Settings(
        api=api,
        collection=collection,
        ledger=ledger,
        log=log,
        rules=rules,
        channels=channels,
        metrics_addr=metrics_addr,
        secrets=secrets,
        warnings=tuple(warnings),
        sources=sources,
    )


_Getter = Callable[[str], str | None]


def _api_settings(get: _Getter, *, demo: bool, warnings: list[str]) -> ApiSettings:
    admin_key = _parse_admin_key(get("ANTHROPIC_ADMIN_KEY"), demo=demo, warnings=warnings)
    base_url = (get("ANTHROPIC_BASE_URL") or DEFAULT_BASE_URL).rstrip("/")
    if not re.fullmatch(r"https?://[^\s/?#]+(/[^\s?#]*)?", base_url):
        raise ConfigError(
            "ANTHROPIC_BASE_URL",
            "is not an http(s) URL (scheme, host, optional path)",
            DEFAULT_BASE_URL,
        )
    if base_url.endswith("/v1"):
        raise ConfigError(
            "ANTHROPIC_BASE_URL",
            "ends in /v1; give the host only, creditwatch adds the API paths",
            DEFAULT_BASE_URL,
        )
    http_timeout = parse_duration(
        "CREDITWATCH_HTTP_TIMEOUT",
        get("CREDITWATCH_HTTP_TIMEOUT") or "30s",
        "30s",
        minimum=timedelta(seconds=1),
        maximum=timedelta(minutes=10),
    )
    return ApiSettings(admin_key=admin_key, base_url=base_url, http_timeout=http_timeout)


def _collection_settings(get: _Getter, base_url: str, warnings: list[str]) -> CollectionSettings:
    poll_interval = parse_duration(
        "CREDITWATCH_POLL_INTERVAL",
        get("CREDITWATCH_POLL_INTERVAL") or "5m",
        "5m",
        minimum=timedelta(seconds=1),
        maximum=timedelta(days=1),
    )
    if poll_interval < timedelta(minutes=1) and ANTHROPIC_HOST in base_url:
        warnings.append(
            f"CREDITWATCH_POLL_INTERVAL={get('CREDITWATCH_POLL_INTERVAL')} polls Anthropic more "
            "often than the supported once a minute"
        )
    width = get("CREDITWATCH_BUCKET_WIDTH") or "1h"
    if width not in get_args(BucketWidth):
        raise ConfigError("CREDITWATCH_BUCKET_WIDTH", f"{width!r} is not 1m, 1h or 1d", "1h")
    backfill_raw = get("CREDITWATCH_BACKFILL_FROM")
    backfill_from = (
        parse_timestamp("CREDITWATCH_BACKFILL_FROM", backfill_raw, "2026-10-01T00:00:00Z")
        if backfill_raw is not None
        else None
    )
    lookback = parse_duration(
        "CREDITWATCH_LOOKBACK",
        get("CREDITWATCH_LOOKBACK") or "3h",
        "3h",
        minimum=timedelta(),
        maximum=timedelta(days=31),
    )
    source = (get("CREDITWATCH_USAGE_SOURCE") or "messages").strip().lower()
    if source not in get_args(UsageSourceName):
        raise ConfigError(
            "CREDITWATCH_USAGE_SOURCE",
            f"{get('CREDITWATCH_USAGE_SOURCE')!r} is not messages (the usage report) "
            "or analytics (the Usage and Cost Analytics API)",
            "analytics",
        )
    return CollectionSettings(
        poll_interval=poll_interval,
        bucket_width=width,  # type: ignore[arg-type]  # checked against BucketWidth above
        lookback=lookback,
        backfill_from=backfill_from,
        usage_source=source,  # type: ignore[arg-type]  # checked against UsageSourceName above
    )


def _ledger_settings(get: _Getter, env: Mapping[str, str], now: datetime) -> LedgerSettings:
    database_url = _parse_database_url(get("CREDITWATCH_DATABASE_URL") or default_database_url(env))
    prices_raw = get("CREDITWATCH_PRICES_FILE")
    prices_file = None
    if prices_raw is not None:
        prices_file = Path(prices_raw)
        if not prices_file.is_file():
            raise ConfigError(
                "CREDITWATCH_PRICES_FILE",
                f"{prices_raw!r} does not exist",
                "/etc/creditwatch/prices.toml",
            )
    starting_balance, starting_balance_at = _parse_starting_balance(
        get("CREDITWATCH_STARTING_BALANCE"), get("CREDITWATCH_STARTING_BALANCE_AT"), now
    )
    threshold, reload_to, monthly_limit = _parse_auto_reload(
        get("CREDITWATCH_AUTO_RELOAD_THRESHOLD"),
        get("CREDITWATCH_AUTO_RELOAD_TO"),
        get("CREDITWATCH_AUTO_RELOAD_MONTHLY_LIMIT"),
    )
    credit_expiry = parse_duration(
        "CREDITWATCH_CREDIT_EXPIRY",
        get("CREDITWATCH_CREDIT_EXPIRY") or "365d",
        "365d",
        minimum=timedelta(hours=1),
        maximum=MAX_CREDIT_EXPIRY,
    )
    unit_raw = get("CREDITWATCH_CREDIT_UNIT_USD")
    credit_unit = Decimal(1)
    if unit_raw is not None:
        credit_unit = parse_money("CREDITWATCH_CREDIT_UNIT_USD", unit_raw, "0.006")
        if credit_unit == 0:
            raise ConfigError("CREDITWATCH_CREDIT_UNIT_USD", "must be more than 0", "0.006")
    return LedgerSettings(
        database_url=database_url,
        prices_file=prices_file,
        starting_balance=starting_balance,
        starting_balance_at=starting_balance_at,
        auto_reload_threshold=threshold,
        auto_reload_to=reload_to,
        auto_reload_monthly_limit=monthly_limit,
        credit_expiry=credit_expiry,
        credit_unit_usd=credit_unit,
    )


def _log_settings(get: _Getter) -> LogSettings:
    level = (get("CREDITWATCH_LOG_LEVEL") or "INFO").upper()
    if level not in LOG_LEVELS:
        raise ConfigError(
            "CREDITWATCH_LOG_LEVEL", f"{level!r} is not one of {', '.join(LOG_LEVELS)}", "INFO"
        )
    fmt = (get("CREDITWATCH_LOG_FORMAT") or "text").lower()
    if fmt not in ("text", "json"):
        raise ConfigError("CREDITWATCH_LOG_FORMAT", f"{fmt!r} is not text or json", "json")
    return LogSettings(level=level, format=fmt)


def _secrets(
    env: Mapping[str, str], api: ApiSettings, ledger: LedgerSettings, channels: ChannelSettings
) -> tuple[str, ...]:
    """Every credential in the settings, for the log filter: keys, URL passwords and tokens."""
    found = [api.admin_key.get_secret_value()] if api.admin_key else []
    found += channels.secrets()
    found += url_credentials(api.base_url) + database_credentials(ledger.database_url)
    for name, value in env.items():
        if value and is_secret(name) and name != "CREDITWATCH_DATABASE_URL":
            found.append(value)
            found += url_credentials(value)
    return tuple(dict.fromkeys(found))


def default_database_url(env: Mapping[str, str]) -> str:
    state_dir = env.get("STATE_DIRECTORY")
    # systemd may pass several colon-separated state directories; the first is ours.
    base = Path(state_dir.split(":")[0]) if state_dir else Path.cwd()
    return f"sqlite:///{base / 'creditwatch.db'}"


def _parse_admin_key(raw: str | None, *, demo: bool, warnings: list[str]) -> SecretStr | None:
    if raw is None:
        if not demo:
            raise missing_admin_key()
        return None
    if any(ch.isspace() for ch in raw):
        raise ConfigError(
            "ANTHROPIC_ADMIN_KEY", "contains white space; paste the key alone", "sk-ant-admin01-…"
        )
    if not raw.isascii() or not raw.isprintable():
        raise ConfigError(
            "ANTHROPIC_ADMIN_KEY",
            "has characters an API key cannot have (non-ASCII or control characters)",
            "sk-ant-admin01-…",
        )
    if not raw.startswith("sk-ant-admin"):
        warnings.append(
            "ANTHROPIC_ADMIN_KEY does not start with sk-ant-admin: the usage and cost "
            "reports need an Admin API key, not a regular API key"
        )
    return SecretStr(raw)


def _parse_database_url(url: str) -> str:
    try:
        parsed = make_url(url)
        backend = parsed.get_backend_name()
        _ = parsed.port  # a non-numeric port only fails when read
    except (ArgumentError, ValueError):
        raise ConfigError(
            "CREDITWATCH_DATABASE_URL",
            "is not an SQLAlchemy database URL",
            "postgresql+psycopg://creditwatch@db.internal/creditwatch",
        ) from None
    if backend not in ("sqlite", "postgresql"):
        raise ConfigError(
            "CREDITWATCH_DATABASE_URL",
            f"backend {backend!r} is not supported (SQLite or PostgreSQL)",
            "sqlite:////var/lib/creditwatch/creditwatch.db",
        )
    return url


def require_together(
    first: str,
    first_raw: str | None,
    second: str,
    second_raw: str | None,
    *,
    examples: tuple[str, str],
    meaning: tuple[str, str],
) -> tuple[str, str] | None:
    """Both raw values, or None when neither is set; ConfigError naming the missing one."""
    if first_raw is None and second_raw is None:
        return None
    if first_raw is None:
        raise ConfigError(first, f"is required with {second}{meaning[0]}", examples[0])
    if second_raw is None:
        raise ConfigError(second, f"is required with {first}{meaning[1]}", examples[1])
    return first_raw, second_raw


def _parse_starting_balance(
    balance_raw: str | None, at_raw: str | None, now: datetime
) -> tuple[Decimal | None, datetime | None]:
    pair = require_together(
        "CREDITWATCH_STARTING_BALANCE",
        balance_raw,
        "CREDITWATCH_STARTING_BALANCE_AT",
        at_raw,
        examples=("250.00", "2026-11-01T00:00:00Z"),
        meaning=("", ": the moment that balance was read"),
    )
    if pair is None:
        return None, None
    balance_raw, at_raw = pair
    balance = parse_money("CREDITWATCH_STARTING_BALANCE", balance_raw, "250.00")
    at = parse_timestamp("CREDITWATCH_STARTING_BALANCE_AT", at_raw, "2026-11-01T00:00:00Z")
    if at > now:
        # A balance read in the future cannot be walked: it would show the balance beside a
        # runway of zero. State the balance the Console shows now, and now.
        raise ConfigError(
            "CREDITWATCH_STARTING_BALANCE_AT",
            f"{at_raw!r} is in the future (it is {rfc3339(now.replace(microsecond=0))} now); "
            "state the balance the Console showed at a moment that has passed",
            rfc3339(now.replace(minute=0, second=0, microsecond=0)),
        )
    return balance, at


def _parse_auto_reload(
    threshold_raw: str | None, to_raw: str | None, limit_raw: str | None
) -> tuple[Decimal | None, Decimal | None, Decimal | None]:
    """The simulated Console auto-reload: on when both the threshold and the target are set."""
    if threshold_raw is None and to_raw is None:
        if limit_raw is not None:
            raise ConfigError(
                "CREDITWATCH_AUTO_RELOAD_MONTHLY_LIMIT",
                "needs CREDITWATCH_AUTO_RELOAD_THRESHOLD and CREDITWATCH_AUTO_RELOAD_TO",
                "1000",
            )
        return None, None, None
    pair = require_together(
        "CREDITWATCH_AUTO_RELOAD_THRESHOLD",
        threshold_raw,
        "CREDITWATCH_AUTO_RELOAD_TO",
        to_raw,
        examples=("50", "200"),
        meaning=(" (the Console's minimum balance)", " (the balance to reload to)"),
    )
    if pair is None:
        return None, None, None
    threshold_raw, to_raw = pair
    threshold = parse_money("CREDITWATCH_AUTO_RELOAD_THRESHOLD", threshold_raw, "50")
    target = parse_money("CREDITWATCH_AUTO_RELOAD_TO", to_raw, "200")
    if threshold <= 0:
        raise ConfigError("CREDITWATCH_AUTO_RELOAD_THRESHOLD", "must be more than 0", "50")
    if target <= threshold:
        raise ConfigError(
            "CREDITWATCH_AUTO_RELOAD_TO",
            f"{to_raw!r} must be above CREDITWATCH_AUTO_RELOAD_THRESHOLD ({threshold_raw})",
            str(threshold * 4),
        )
    limit = None
    if limit_raw is not None:
        limit = parse_money("CREDITWATCH_AUTO_RELOAD_MONTHLY_LIMIT", limit_raw, "1000")
        if limit <= 0:
            raise ConfigError(
                "CREDITWATCH_AUTO_RELOAD_MONTHLY_LIMIT", "must be more than 0", "1000"
            )
    return threshold, target, limit
