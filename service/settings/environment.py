"""Where settings come from: the process environment over an env file, secrets from ``*_FILE``.

An env file or a ``*_FILE`` that exists but cannot be read or decoded is a configuration error,
never a traceback: under systemd's ``DynamicUser=`` a root-only file is exactly that.
"""

from __future__ import annotations

import difflib
import io
from collections.abc import Mapping
from pathlib import Path

from dotenv import dotenv_values

from service.errors import ConfigError

# Variables this version reads.
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
        "CREDITWATCH_USAGE_SOURCE",
        "CREDITWATCH_HTTP_TIMEOUT",
        "CREDITWATCH_AUTO_RELOAD_THRESHOLD",
        "CREDITWATCH_AUTO_RELOAD_TO",
        "CREDITWATCH_AUTO_RELOAD_MONTHLY_LIMIT",
        "CREDITWATCH_CREDIT_EXPIRY",
        "CREDITWATCH_CREDIT_UNIT_USD",
        "CREDITWATCH_MONTHLY_BUDGET",
        "CREDITWATCH_ALERT_THRESHOLDS",
        "CREDITWATCH_LOW_BALANCE",
        "CREDITWATCH_RUNWAY_ALERT",
        "CREDITWATCH_SPIKE",
        "CREDITWATCH_REPEAT_INTERVAL",
        "CREDITWATCH_COLLECTION_ALERT",
        "CREDITWATCH_EXPIRY_WARNING",
        "CREDITWATCH_DRIFT_ALERT",
        "CREDITWATCH_SLACK_WEBHOOK_URL",
        "CREDITWATCH_WEBHOOK_URL",
        "CREDITWATCH_WEBHOOK_SECRET",
        "CREDITWATCH_SMTP_URL",
        "CREDITWATCH_EMAIL_FROM",
        "CREDITWATCH_EMAIL_TO",
        "CREDITWATCH_PAGERDUTY_URL",
        "CREDITWATCH_DELIVERY_LEASE",
        "CREDITWATCH_METRICS_ADDR",
    }
)
KNOWN_PREFIXES = ("CREDITWATCH_BUDGET_", "CREDITWATCH_CHANNEL_")
# Contract variables that later versions implement: setting one is reported, never silently
# ignored or rejected as a typo.
RESERVED_VARIABLES: frozenset[str] = frozenset()
RESERVED_PREFIXES: tuple[str, ...] = ()
# Every secret of the contract, each also readable from <NAME>_FILE.
SECRET_VARIABLES = frozenset(
    {
        "ANTHROPIC_ADMIN_KEY",
        "CREDITWATCH_DATABASE_URL",
        "CREDITWATCH_SLACK_WEBHOOK_URL",
        "CREDITWATCH_WEBHOOK_URL",
        "CREDITWATCH_WEBHOOK_SECRET",
        "CREDITWATCH_SMTP_URL",
    }
)
SECRET_PREFIXES = ("CREDITWATCH_CHANNEL_",)
FILE_SUFFIX = "_FILE"
_ENV_FILE_EXAMPLE = "--env-file /etc/creditwatch/creditwatch.env"
_CREDENTIAL_EXAMPLE = "/run/credentials/creditwatch.service/admin-key"


def is_secret(name: str) -> bool:
    """Whether ``name`` holds a credential (and may be given as ``<name>_FILE``)."""
    if name in SECRET_VARIABLES:
        return True
    return any(name.startswith(p) and len(name) > len(p) for p in SECRET_PREFIXES)


def read_env_file(path: Path | None, *, explicit: bool) -> dict[str, str]:
    """The variables of an env file; {} when the default ``.env`` is absent.

    Raises ConfigError when an explicit file is missing, or any file cannot be read or is not
    UTF-8 text.
    """
    if path is None:
        return {}
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        if explicit:
            raise _env_file_error(path, "does not exist") from None
        return {}
    except OSError as exc:
        # PermissionError here is what systemd's DynamicUser= meets with a root-only file.
        reason = exc.strerror or type(exc).__name__
        raise _env_file_error(path, f"cannot be read ({reason})") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise _env_file_error(path, f"is not UTF-8 text (byte {exc.start})") from None
    values = dotenv_values(stream=io.StringIO(text))
    return {key: value for key, value in values.items() if value is not None}


def _env_file_error(path: Path, problem: str) -> ConfigError:
    return ConfigError("--env-file", f"{str(path)!r} {problem}", "", example_line=_ENV_FILE_EXAMPLE)


def resolve_secret_files(env: dict[str, str]) -> dict[str, str]:
    """Replace each ``<SECRET>_FILE`` in ``env`` by ``<SECRET>`` read from that file.

    Returns ``{secret: file variable}`` for the secrets read from files.
    """
    resolved: dict[str, str] = {}
    for file_var in sorted(env):
        name = file_var.removesuffix(FILE_SUFFIX)
        if name == file_var or not is_secret(name):
            continue
        if env.get(name):
            raise ConfigError(
                file_var, f"both {name} and {file_var} are set; keep one", _CREDENTIAL_EXAMPLE
            )
        path = Path(env.pop(file_var))
        try:
            data = path.read_bytes()
        except OSError as exc:
            reason = exc.strerror or type(exc).__name__
            raise ConfigError(
                file_var, f"cannot read {str(path)!r} ({reason})", _CREDENTIAL_EXAMPLE
            ) from None
        try:
            env[name] = data.decode("utf-8-sig").strip()
        except UnicodeDecodeError:
            raise ConfigError(
                file_var, f"{str(path)!r} is not UTF-8 text", _CREDENTIAL_EXAMPLE
            ) from None
        resolved[name] = file_var
    return resolved


def check_names(env: Mapping[str, str]) -> list[str]:
    """Warnings for reserved variables; ConfigError for an unknown ``CREDITWATCH_*`` name."""
    warnings: list[str] = []
    for name in sorted(env):
        if not name.startswith("CREDITWATCH_") or name in KNOWN_VARIABLES:
            continue
        if any(name.startswith(p) and len(name) > len(p) for p in KNOWN_PREFIXES):
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
