"""Settings: read once in ``main()`` from the process environment and an env file, validated.

The process environment wins over the file. Every secret can also be read from ``<NAME>_FILE``
(systemd credentials, Docker secrets). A bad value raises :class:`ConfigError` naming the variable,
the problem and an example; the CLI turns that into exit status 78 (EX_CONFIG).
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import get_args

from dotenv import dotenv_values
from pydantic import SecretStr
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from service.errors import ConfigError
from service.usage import BucketWidth

ANTHROPIC_HOST = "api.anthropic.com"
DEFAULT_BASE_URL = f"https://{ANTHROPIC_HOST}"
SECRET_VARIABLES = ("ANTHROPIC_ADMIN_KEY",)

# Variables this version reads. Contract variables that later versions implement are listed in
# RESERVED_VARIABLES so that setting one is reported, never silently ignored or rejected as a typo.
KNOWN_VARIABLES = frozenset(
    {
        "ANTHROPIC_ADMIN_KEY",
        "ANTHROPIC_BASE_URL",
        "CREDITWATCH_DATABASE_URL",
        "CREDITWATCH_POLL_INTERVAL",
        "CREDITWATCH_STARTING_BALANCE",
        "CREDITWATCH_STARTING_BALANCE_AT",
        "CREDITWATCH_PRICES_FILE",
        "CREDITWATCH_LOG_LEVEL",
        "CREDITWATCH_LOG_FORMAT",
        "CREDITWATCH_BACKFILL_FROM",
        "CREDITWATCH_LOOKBACK",
        "CREDITWATCH_BUCKET_WIDTH",
        "CREDITWATCH_HTTP_TIMEOUT",
        "CREDITWATCH_AUTO_RELOAD_THRESHOLD",
        "CREDITWATCH_AUTO_RELOAD_TO",
        "CREDITWATCH_AUTO_RELOAD_MONTHLY_LIMIT",
        "CREDITWATCH_CREDIT_EXPIRY",
        "CREDITWATCH_CREDIT_UNIT_USD",
    }
)
RESERVED_VARIABLES = frozenset(
    {
        "CREDITWATCH_MONTHLY_BUDGET",
        "CREDITWATCH_ALERT_THRESHOLDS",
        "CREDITWATCH_LOW_BALANCE",
        "CREDITWATCH_RUNWAY_ALERT",
        "CREDITWATCH_SLACK_WEBHOOK_URL",
        "CREDITWATCH_WEBHOOK_URL",
        "CREDITWATCH_WEBHOOK_SECRET",
        "CREDITWATCH_SMTP_URL",
        "CREDITWATCH_EMAIL_FROM",
        "CREDITWATCH_EMAIL_TO",
        "CREDITWATCH_METRICS_ADDR",
        "CREDITWATCH_DRIFT_ALERT",
    }
)
RESERVED_PREFIXES = ("CREDITWATCH_BUDGET_", "CREDITWATCH_CHANNEL_")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")

_DURATION_RE = re.compile(r"(\d+)(ms|s|m|h|d|w)")
_DURATION_UNITS = {
    "ms": timedelta(milliseconds=1),
    "s": timedelta(seconds=1),
    "m": timedelta(minutes=1),
    "h": timedelta(hours=1),
    "d": timedelta(days=1),
    "w": timedelta(weeks=1),
}
NANOS_PER_USD = 1_000_000_000
# Signed 64-bit nano-dollars hold 9.2 billion; one amount stays well inside so sums do too.
MAX_USD = Decimal(1_000_000_000)


@dataclass(frozen=True)
class Settings:
    """The validated, effective configuration. Build it with :func:`load_settings`."""

    admin_key: SecretStr | None
    base_url: str
    database_url: str
    poll_interval: timedelta
    starting_balance: Decimal | None
    starting_balance_at: datetime | None
    prices_file: Path | None
    log_level: str
    log_format: str
    backfill_from: datetime | None
    lookback: timedelta
    bucket_width: BucketWidth
    http_timeout: timedelta
    auto_reload_threshold: Decimal | None = None
    auto_reload_to: Decimal | None = None
    auto_reload_monthly_limit: Decimal | None = None
    credit_expiry: timedelta = timedelta(days=365)
    credit_unit_usd: Decimal = Decimal(1)
    warnings: tuple[str, ...] = field(default=())
    sources: Mapping[str, str] = field(default_factory=dict)

    def require_admin_key(self) -> SecretStr:
        """The admin key, or ConfigError when it is missing (every mode but the demo needs it)."""
        if self.admin_key is None:
            raise ConfigError(
                "ANTHROPIC_ADMIN_KEY",
                "is not set; creditwatch needs an Admin API key (Console → Settings → Admin keys)",
                "sk-ant-admin01-…  (or ANTHROPIC_ADMIN_KEY_FILE=/run/credentials/creditwatch/key)",
            )
        return self.admin_key


def parse_duration(variable: str, raw: str, example: str, *, minimum: timedelta) -> timedelta:
    """Parse ``30s``, ``5m``, ``3h``, ``1d``, ``1h30m``; raise ConfigError below ``minimum``."""
    text = raw.strip().lower()
    pos = 0
    total = timedelta()
    for match in _DURATION_RE.finditer(text):
        if match.start() != pos:
            break
        total += int(match.group(1)) * _DURATION_UNITS[match.group(2)]
        pos = match.end()
    if not text or pos != len(text):
        raise ConfigError(
            variable, f"{raw!r} is not a duration (a number and a unit: s, m, h, d, w)", example
        )
    if total < minimum:
        raise ConfigError(
            variable, f"{raw!r} is shorter than the minimum {format_duration(minimum)}", example
        )
    return total


def parse_money(variable: str, raw: str, example: str) -> Decimal:
    """A non-negative USD amount with at most 9 decimals (the ledger's nano-dollar unit)."""
    try:
        value = Decimal(raw.strip())
    except InvalidOperation:
        raise ConfigError(
            variable, f"{raw!r} is not a number (USD, no currency sign)", example
        ) from None
    if not value.is_finite():
        raise ConfigError(variable, f"{raw!r} is not a finite amount", example)
    if value < 0:
        raise ConfigError(variable, f"{raw!r} is negative", example)
    if value > MAX_USD:
        raise ConfigError(variable, f"{raw!r} is more than the ledger holds ({MAX_USD})", example)
    if value != value.quantize(Decimal("1e-9")):
        raise ConfigError(variable, f"{raw!r} has more than 9 decimal places", example)
    return value


def parse_timestamp(variable: str, raw: str, example: str) -> datetime:
    """An RFC 3339 timestamp with an offset (``Z`` or ``+02:00``), returned as aware UTC."""
    text = raw.strip()
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise ConfigError(variable, f"{raw!r} is not an RFC 3339 timestamp", example) from None
    if value.tzinfo is None:
        raise ConfigError(
            variable, f"{raw!r} has no UTC offset; add Z or +HH:MM so the time is exact", example
        )
    return value.astimezone(UTC)


def mask_secret(value: str) -> str:
    """At most the first 4 characters of a secret, then a fixed mask."""
    return f"{value[:4]}…(masked)" if value else "(empty)"


def mask_url_password(url: str) -> str:
    try:
        parsed = make_url(url)
    except ArgumentError:
        return url
    if parsed.password is None:
        return url
    return parsed.render_as_string(hide_password=True)


def _read_env_file(path: Path | None, explicit: bool) -> dict[str, str]:
    if path is None:
        return {}
    if not path.is_file():
        if explicit:
            raise ConfigError("--env-file", f"{str(path)!r} does not exist", "/etc/creditwatch.env")
        return {}
    return {key: value for key, value in dotenv_values(path).items() if value is not None}


def _resolve_secrets(env: dict[str, str]) -> None:
    for name in SECRET_VARIABLES:
        file_var = f"{name}_FILE"
        if file_var not in env:
            continue
        if env.get(name):
            raise ConfigError(
                file_var, f"both {name} and {file_var} are set; keep one", "/run/credentials/key"
            )
        path = Path(env[file_var])
        try:
            env[name] = path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(
                file_var, f"cannot read {str(path)!r} ({exc.strerror})", "/run/credentials/key"
            ) from None


def _check_names(env: Mapping[str, str]) -> list[str]:
    warnings: list[str] = []
    accepted = KNOWN_VARIABLES | {f"{name}_FILE" for name in SECRET_VARIABLES}
    for name in sorted(env):
        if not name.startswith("CREDITWATCH_") or name in accepted:
            continue
        if name in RESERVED_VARIABLES or name.startswith(RESERVED_PREFIXES):
            warnings.append(f"{name} is not implemented in this version and is ignored")
            continue
        close = difflib.get_close_matches(name, sorted(KNOWN_VARIABLES | RESERVED_VARIABLES), 1)
        # Never echo the value: a misspelt secret variable still holds a secret.
        suggestion = f"did you mean {close[0]}?" if close else "every setting is in .env.example"
        raise ConfigError(
            name,
            f"is not a creditwatch setting; {suggestion}",
            "",
            example_line=f"{close[0] if close else 'CREDITWATCH_POLL_INTERVAL'}=…",
        )
    return warnings


def default_database_url(env: Mapping[str, str]) -> str:
    state_dir = env.get("STATE_DIRECTORY")
    # systemd may pass several colon-separated state directories; the first is ours.
    base = Path(state_dir.split(":")[0]) if state_dir else Path.cwd()
    return f"sqlite:///{base / 'creditwatch.db'}"


def load_settings(
    environ: Mapping[str, str] | None = None,
    env_file: Path | None = None,
    *,
    env_file_explicit: bool = False,
    demo: bool = False,
) -> Settings:
    """Merge ``env_file`` under ``environ`` (the environment wins) and validate every value.

    Raises ConfigError for the first bad value. ``demo`` allows a missing admin key.
    """
    env = _read_env_file(env_file, env_file_explicit)
    sources = dict.fromkeys(env, "env file")
    process_env = dict(os.environ if environ is None else environ)
    env.update(process_env)
    sources.update(dict.fromkeys(process_env, "environment"))
    _resolve_secrets(env)
    warnings = _check_names(env)

    def get(name: str) -> str | None:
        value = env.get(name)
        return value if value not in (None, "") else None

    admin_key = _parse_admin_key(get("ANTHROPIC_ADMIN_KEY"), demo=demo, warnings=warnings)

    base_url = (get("ANTHROPIC_BASE_URL") or DEFAULT_BASE_URL).rstrip("/")
    if not re.fullmatch(r"https?://[^\s/?#]+(/[^\s?#]*)?", base_url):
        raise ConfigError(
            "ANTHROPIC_BASE_URL", f"{base_url!r} is not an http(s) URL", DEFAULT_BASE_URL
        )
    if base_url.endswith("/v1"):
        raise ConfigError(
            "ANTHROPIC_BASE_URL",
            f"{base_url!r} ends in /v1; give the host only, creditwatch adds the API paths",
            DEFAULT_BASE_URL,
        )

    database_url = _parse_database_url(get("CREDITWATCH_DATABASE_URL") or default_database_url(env))

    poll_interval = parse_duration(
        "CREDITWATCH_POLL_INTERVAL",
        get("CREDITWATCH_POLL_INTERVAL") or "5m",
        "5m",
        minimum=timedelta(seconds=1),
    )
    if poll_interval < timedelta(minutes=1) and ANTHROPIC_HOST in base_url:
        warnings.append(
            f"CREDITWATCH_POLL_INTERVAL={poll_interval} polls Anthropic more often than the "
            "supported once a minute"
        )

    starting_balance, starting_balance_at = _parse_starting_balance(
        get("CREDITWATCH_STARTING_BALANCE"), get("CREDITWATCH_STARTING_BALANCE_AT")
    )

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

    log_level = (get("CREDITWATCH_LOG_LEVEL") or "INFO").upper()
    if log_level not in LOG_LEVELS:
        raise ConfigError(
            "CREDITWATCH_LOG_LEVEL", f"{log_level!r} is not one of {', '.join(LOG_LEVELS)}", "INFO"
        )
    log_format = (get("CREDITWATCH_LOG_FORMAT") or "text").lower()
    if log_format not in ("text", "json"):
        raise ConfigError("CREDITWATCH_LOG_FORMAT", f"{log_format!r} is not text or json", "json")

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
    )
    width = get("CREDITWATCH_BUCKET_WIDTH") or "1h"
    if width not in get_args(BucketWidth):
        raise ConfigError("CREDITWATCH_BUCKET_WIDTH", f"{width!r} is not 1m, 1h or 1d", "1h")
    http_timeout = parse_duration(
        "CREDITWATCH_HTTP_TIMEOUT",
        get("CREDITWATCH_HTTP_TIMEOUT") or "30s",
        "30s",
        minimum=timedelta(seconds=1),
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
    )
    unit_raw = get("CREDITWATCH_CREDIT_UNIT_USD")
    credit_unit = Decimal(1)
    if unit_raw is not None:
        credit_unit = parse_money("CREDITWATCH_CREDIT_UNIT_USD", unit_raw, "0.006")
        if credit_unit == 0:
            raise ConfigError("CREDITWATCH_CREDIT_UNIT_USD", "must be more than 0", "0.006")

    return Settings(
        admin_key=admin_key,
        base_url=base_url,
        database_url=database_url,
        poll_interval=poll_interval,
        starting_balance=starting_balance,
        starting_balance_at=starting_balance_at,
        prices_file=prices_file,
        log_level=log_level,
        log_format=log_format,
        backfill_from=backfill_from,
        lookback=lookback,
        bucket_width=width,  # type: ignore[arg-type]  # checked against BucketWidth above
        http_timeout=http_timeout,
        auto_reload_threshold=threshold,
        auto_reload_to=reload_to,
        auto_reload_monthly_limit=monthly_limit,
        credit_expiry=credit_expiry,
        credit_unit_usd=credit_unit,
        warnings=tuple(warnings),
        sources=sources,
    )


def _parse_admin_key(raw: str | None, *, demo: bool, warnings: list[str]) -> SecretStr | None:
    if raw is None:
        if not demo:
            Settings.require_admin_key(_EMPTY)
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


def _require_together(
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
    balance_raw: str | None, at_raw: str | None
) -> tuple[Decimal | None, datetime | None]:
    pair = _require_together(
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
    pair = _require_together(
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


def describe(settings: Settings) -> dict[str, str]:
    """The effective settings as printable strings, secrets masked."""
    key = settings.admin_key
    return {
        "ANTHROPIC_ADMIN_KEY": mask_secret(key.get_secret_value()) if key else "(not set)",
        "ANTHROPIC_BASE_URL": settings.base_url,
        "CREDITWATCH_DATABASE_URL": mask_url_password(settings.database_url),
        "CREDITWATCH_POLL_INTERVAL": format_duration(settings.poll_interval),
        "CREDITWATCH_STARTING_BALANCE": (
            str(settings.starting_balance) if settings.starting_balance is not None else "(not set)"
        ),
        "CREDITWATCH_STARTING_BALANCE_AT": (
            settings.starting_balance_at.isoformat()
            if settings.starting_balance_at
            else "(not set)"
        ),
        "CREDITWATCH_PRICES_FILE": str(settings.prices_file or "(built-in price book)"),
        "CREDITWATCH_LOG_LEVEL": settings.log_level,
        "CREDITWATCH_LOG_FORMAT": settings.log_format,
        "CREDITWATCH_BACKFILL_FROM": (
            settings.backfill_from.isoformat()
            if settings.backfill_from
            else "(earlier of the starting balance time and the start of the month)"
        ),
        "CREDITWATCH_LOOKBACK": format_duration(settings.lookback),
        "CREDITWATCH_BUCKET_WIDTH": settings.bucket_width,
        "CREDITWATCH_HTTP_TIMEOUT": format_duration(settings.http_timeout),
        "CREDITWATCH_AUTO_RELOAD_THRESHOLD": _or_unset(settings.auto_reload_threshold),
        "CREDITWATCH_AUTO_RELOAD_TO": _or_unset(settings.auto_reload_to),
        "CREDITWATCH_AUTO_RELOAD_MONTHLY_LIMIT": _or_unset(settings.auto_reload_monthly_limit),
        "CREDITWATCH_CREDIT_EXPIRY": format_duration(settings.credit_expiry),
        "CREDITWATCH_CREDIT_UNIT_USD": str(settings.credit_unit_usd),
    }


def _or_unset(value: Decimal | None) -> str:
    return "(not set)" if value is None else str(value)


def format_duration(value: timedelta) -> str:
    seconds = int(value.total_seconds())
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= size:
            parts.append(f"{seconds // size}{unit}")
            seconds %= size
    return "".join(parts) or "0s"


_EMPTY = Settings(
    admin_key=None,
    base_url=DEFAULT_BASE_URL,
    database_url="sqlite://",
    poll_interval=timedelta(minutes=5),
    starting_balance=None,
    starting_balance_at=None,
    prices_file=None,
    log_level="INFO",
    log_format="text",
    backfill_from=None,
    lookback=timedelta(hours=3),
    bucket_width="1h",
    http_timeout=timedelta(seconds=30),
)
