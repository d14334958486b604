"""Value grammars shared by env variables and command flags: durations, money, times, masking.

Each parser raises :class:`ConfigError` naming the variable (or flag), the problem and an example;
the command flags reuse the same parsers and report ``ConfigError.problem``. Every value has
bounds: a number that parses can still be one no clock, ledger or timestamp can hold.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit

from service.domain.timefmt import format_duration
from service.errors import ConfigError

_DURATION_RE = re.compile(r"(\d+)(ms|s|m|h|d|w)")
_UNIT_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}
# No setting means anything beyond ten years; the bound keeps every sum of times representable.
MAX_DURATION = timedelta(days=3650)
# Signed 64-bit nano-dollars hold 9.2 billion; one amount stays well inside so sums do too.
MAX_USD = Decimal(1_000_000_000)
NANO = Decimal("1e-9")
# Anthropic's API did not exist before 2000; a time after 2100 is a typo, not a plan.
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
LATEST = datetime(2100, 1, 1, tzinfo=UTC)
# Query parameters that carry credentials in database and service URLs.
SECRET_QUERY_KEYS = frozenset({"password", "pass", "pwd", "secret", "token", "key", "api_key"})


def parse_duration(
    variable: str,
    raw: str,
    example: str,
    *,
    minimum: timedelta,
    maximum: timedelta = MAX_DURATION,
) -> timedelta:
    """Parse ``30s``, ``5m``, ``3h``, ``1d``, ``1h30m`` within ``[minimum, maximum]``."""
    text = raw.strip().lower()
    pos = 0
    total_ms = 0
    for match in _DURATION_RE.finditer(text):
        if match.start() != pos:
            break
        total_ms += int(match.group(1)) * _UNIT_MS[match.group(2)]
        pos = match.end()
    if not text or pos != len(text):
        raise ConfigError(
            variable, f"{raw!r} is not a duration (a number and a unit: s, m, h, d, w)", example
        )
    # Compared as integers first: 99999999999d does not fit a timedelta at all.
    if total_ms > maximum // timedelta(milliseconds=1):
        raise ConfigError(
            variable, f"{raw!r} is longer than the maximum {format_duration(maximum)}", example
        )
    total = timedelta(milliseconds=total_ms)
    if total < minimum:
        raise ConfigError(
            variable, f"{raw!r} is shorter than the minimum {format_duration(minimum)}", example
        )
    return total


def parse_money(variable: str, raw: str, example: str) -> Decimal:
    """A non-negative USD amount up to ``MAX_USD`` with at most 9 decimals (nano-dollars)."""
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
    # Quantizing is safe once the value is bounded; 1e999999 would overflow the context.
    if value != value.quantize(NANO):
        raise ConfigError(variable, f"{raw!r} has more than 9 decimal places", example)
    return value


def parse_timestamp(variable: str, raw: str, example: str) -> datetime:
    """An RFC 3339 timestamp with an offset (``Z`` or ``+02:00``) in 2000–2100, as aware UTC."""
    text = raw.strip()
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise ConfigError(variable, f"{raw!r} is not an RFC 3339 timestamp", example) from None
    if value.tzinfo is None:
        raise ConfigError(
            variable, f"{raw!r} has no UTC offset; add Z or +HH:MM so the time is exact", example
        )
    return check_time_bounds(variable, raw, value.astimezone(UTC), example)


def check_time_bounds(variable: str, raw: str, value: datetime, example: str) -> datetime:
    """``value`` when it lies in 2000–2100; ConfigError otherwise."""
    if not EARLIEST <= value < LATEST:
        raise ConfigError(variable, f"{raw!r} is outside the years 2000 to 2100", example)
    return value


def mask_secret(value: str) -> str:
    """At most the first 4 characters of a secret, then a fixed mask."""
    return f"{value[:4]}…(masked)" if value else "(empty)"


def mask_url(url: str) -> str:
    """``url`` with its password, credential query parameters and any user token masked.

    ``postgresql://cw:pw@db/cw?password=x`` → ``postgresql://cw:***@db/cw?password=***``.
    """
    try:
        parts = urlsplit(url)
    except ValueError:
        return "(not shown: not a URL)"
    masked = url
    if "@" in parts.netloc:
        userinfo, host = parts.netloc.rsplit("@", 1)
        user, has_password, _ = userinfo.partition(":")
        shown = f"{user}:***@{host}" if has_password else f"{mask_secret(user)}@{host}"
        masked = masked.replace(parts.netloc, shown, 1)
    if parts.query:
        pairs = parse_qsl(parts.query, keep_blank_values=True)
        query = urlencode(
            [(k, "***" if k.lower() in SECRET_QUERY_KEYS else v) for k, v in pairs], safe="*/:"
        )
        masked = masked.replace(f"?{parts.query}", f"?{query}", 1)
    # Rebuilt by replacement, not urlunsplit: sqlite:////var/lib/x.db keeps its four slashes.
    return masked


_TOKEN_PIECE = re.compile(r"[^/:@?&=#]{6,}")


def url_tokens(url: str, *, every_word: bool = False) -> list[str]:
    """Every piece of a channel's ``url`` that may be its secret, for the log filter.

    A webhook URL's secret is a path segment (Slack's, Discord's), a query value (Teams'
    ``sig``) or, in Apprise URLs, the host or user part (``tgram://<bot token>/…``): each piece
    of eight characters or more with a digit, mixed case, or sixteen characters or more, and
    every query value of eight or more. Hostnames with dots and plain words (``services``,
    ``webhooks``, ``creditwatch``) are left readable, except
    with ``every_word`` (Apprise, where a plain word can be the secret: an ntfy topic), where
    every piece of six characters or more counts.
    """
    try:
        parts = urlsplit(url)
    except ValueError:
        return [url]
    pieces = url_credentials(url)
    netloc = parts.netloc.rsplit("@", 1)[-1]
    candidates = [*parts.netloc.rsplit("@", 1)[0].split(":")] if "@" in parts.netloc else []
    if "." not in netloc:
        candidates.append(netloc)
    candidates += unquote(parts.path).split("/")
    candidates += unquote(parts.fragment).split("/")
    pieces += [
        piece
        for candidate in candidates
        for piece in _TOKEN_PIECE.findall(candidate)
        if every_word or (len(piece) >= 8 and _looks_like_a_token(piece))
    ]
    pieces += [v for _, v in parse_qsl(parts.query, keep_blank_values=True) if len(v) >= 8]
    return list(dict.fromkeys(piece for piece in pieces if piece))


def _looks_like_a_token(piece: str) -> bool:
    return (
        len(piece) >= 16
        or any(ch.isdigit() for ch in piece)
        or (any(ch.isupper() for ch in piece) and any(ch.islower() for ch in piece))
    )


def url_credentials(url: str) -> list[str]:
    """The credential strings inside a web ``url`` (user token, password, secret query values)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return []
    found = []
    if "@" in parts.netloc:
        userinfo = parts.netloc.rsplit("@", 1)[0]
        user, has_password, password = userinfo.partition(":")
        found.append(password if has_password else user)
    found += [
        v
        for k, v in parse_qsl(parts.query, keep_blank_values=True)
        if k.lower() in SECRET_QUERY_KEYS
    ]
    return [value for value in found if value]
