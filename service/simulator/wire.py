"""Wire-level helpers of the simulated Admin API: errors, query strings, timestamps, cursors."""

from __future__ import annotations

import base64
import binascii
import zlib
from collections.abc import Set
from datetime import UTC, datetime

ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    504: "timeout_error",
    529: "overloaded_error",
}


class ApiError(Exception):
    """An error the simulated API answers with; the server renders it as Anthropic's error JSON."""

    def __init__(self, status: int, message: str, error_type: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.error_type = error_type or ERROR_TYPES.get(status, "api_error")


def invalid(message: str) -> ApiError:
    """A 400 ``invalid_request_error``."""
    return ApiError(400, message)


class Query:
    """The query string of one request, checked against the parameters an endpoint accepts."""

    def __init__(
        self, pairs: list[tuple[str, str]], *, single: Set[str], multi: Set[str] = frozenset()
    ) -> None:
        self._values: dict[str, list[str]] = {}
        for name, value in pairs:
            if name not in single and name not in multi:
                raise invalid(f"{name}: Extra inputs are not permitted")
            if name in single and name in self._values:
                raise invalid(f"{name}: only one value is allowed")
            self._values.setdefault(name, []).append(value)

    def get(self, name: str) -> str | None:
        """The parameter's value, or None when absent."""
        values = self._values.get(name)
        return values[0] if values else None

    def get_all(self, name: str) -> list[str]:
        """Every value of a repeated (``name[]``) parameter, in order."""
        return list(self._values.get(name, []))

    def get_int(self, name: str, default: int, low: int, high: int) -> int:
        """An integer parameter within [low, high]; raises a 400 otherwise."""
        raw = self.get(name)
        if raw is None:
            return default
        try:
            value = int(raw)
        except ValueError:
            raise invalid(f"{name}: Input should be a valid integer") from None
        if not low <= value <= high:
            raise invalid(f"{name}: Input should be between {low} and {high}, got {value}")
        return value


def parse_timestamp(name: str, raw: str) -> datetime:
    """An RFC 3339 timestamp with an offset, as aware UTC; raises a 400 otherwise."""
    try:
        parsed = datetime.fromisoformat(raw)
    except ValueError:
        raise invalid(f"{name}: Input should be a valid RFC 3339 datetime") from None
    if parsed.tzinfo is None:
        raise invalid(f"{name}: timezone offset is required (RFC 3339)")
    return parsed.astimezone(UTC)


def format_timestamp(epoch_seconds: int) -> str:
    """``2025-08-01T00:00:00Z`` for a whole second."""
    return datetime.fromtimestamp(epoch_seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def format_datetime(moment: datetime) -> str:
    """``2025-08-01T00:00:00Z`` for an aware datetime (whole seconds)."""
    return format_timestamp(int(moment.timestamp()))


def encode_cursor(kind: str, position: int) -> str:
    """An opaque ``page_…`` token naming the next bucket; clients must not decode it."""
    payload = f"{kind}|{position}"
    check = zlib.crc32(payload.encode()) & 0xFFFFFFFF
    raw = f"{payload}|{check:08x}".encode()
    return "page_" + base64.b64encode(raw).decode()


def decode_cursor(kind: str, token: str) -> int:
    """The position in a token from :func:`encode_cursor`; raises a 400 if it was tampered with
    or belongs to another kind of report."""
    error = invalid("page: invalid page token")
    if not token.startswith("page_"):
        raise error
    try:
        raw = base64.b64decode(token[5:], validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        raise error from None
    parts = raw.split("|")
    if len(parts) != 3 or parts[0] != kind or not parts[1].lstrip("-").isdigit():
        raise error
    payload = f"{parts[0]}|{parts[1]}"
    if f"{zlib.crc32(payload.encode()) & 0xFFFFFFFF:08x}" != parts[2]:
        raise error
    return int(parts[1])
