"""How creditwatch writes times and durations for people and JSON: one way, everywhere."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


def rfc3339(moment: datetime) -> str:
    """``2026-11-05T09:30:00Z``: RFC 3339 in UTC with a ``Z`` (microseconds only when present)."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def rfc3339_or_none(moment: datetime | None) -> str | None:
    """:func:`rfc3339`, or None for None (JSON ``null``)."""
    return None if moment is None else rfc3339(moment)


def format_duration(value: timedelta) -> str:
    """``1d2h30m``: whole seconds in the largest units, ``0s`` for nothing."""
    seconds = int(value.total_seconds())
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= size:
            parts.append(f"{seconds // size}{unit}")
            seconds %= size
    return "".join(parts) or "0s"
