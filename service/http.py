"""The one place that builds an ``httpx.Client``: explicit timeouts, our User-Agent, no redirects.

Tests pass ``transport=httpx.MockTransport(...)``; everything else gets a real connection pool.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import httpx

from service import __version__

USER_AGENT = f"creditwatch/{__version__}"
CONNECT_TIMEOUT = 10.0

# httpx logs every request URL at INFO and httpcore logs headers at DEBUG: URLs (Slack webhooks)
# and headers (x-api-key) are secrets.
_NOISY_LOGGERS = ("httpx", "httpcore")


def quiet_http_loggers() -> None:
    """Raise the httpx and httpcore loggers to WARNING so that no URL or header reaches the logs."""
    for name in _NOISY_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)


def build_http_client(
    base_url: str,
    *,
    timeout: float = 30.0,
    transport: httpx.BaseTransport | None = None,
    headers: Mapping[str, str] | None = None,
) -> httpx.Client:
    """Return a client for ``base_url``; ``timeout`` bounds each read, write and pool wait.

    Connecting gets at most ``CONNECT_TIMEOUT`` seconds. Redirects are not followed: an API that
    answers 3xx is misconfigured, and following it could carry credentials to another host.
    """
    quiet_http_loggers()
    merged = {"User-Agent": USER_AGENT}
    merged.update(headers or {})
    return httpx.Client(
        base_url=base_url,
        timeout=httpx.Timeout(timeout, connect=min(CONNECT_TIMEOUT, timeout)),
        headers=merged,
        transport=transport,
        follow_redirects=False,
    )


def retry_after_seconds(value: str | None) -> float | None:
    """Seconds from a ``retry-after`` header (delta-seconds or HTTP-date); None if unusable."""
    if value is None:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - datetime.now(UTC)).total_seconds()
    if not math.isfinite(seconds):
        return None
    return max(0.0, seconds)
