"""The channel protocol: render the alert in the channel's wire format, send it, classify a
failure. Retrying is the outbox worker's job (:mod:`service.runtime.delivery`), never a channel's.

Failures are :class:`DeliveryError` with ``permanent`` set when trying again cannot help (a
webhook's 400/401/403/404/410, Slack's ``invalid_token``, an SMTP 5xx, a rejected recipient)
and clear otherwise (timeouts, connection errors, 5xx, 429 with its ``Retry-After``, SMTP 4xx).
No message ever holds the channel's URL, routing key or password.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Protocol

import httpx

from service.errors import DeliveryError
from service.http import retry_after_seconds
from service.render.view import AlertView
from service.settings.channels import ChannelSettings, ChannelSpec

Clock = Callable[[], datetime]
# Answers that say the request itself is wrong or the endpoint is gone: retrying cannot help.
PERMANENT_STATUSES = frozenset({400, 401, 403, 404, 405, 410, 413, 422})
_MAX_BODY = 200


@dataclass(frozen=True)
class Sent:
    """A delivery the receiver accepted: its status (HTTP or SMTP) and any detail it gave."""

    status: str | None = None
    detail: str = ""


@dataclass
class ChannelContext:
    """What every channel is built with: the shared HTTP client, the clock, the settings."""

    http: httpx.Client
    settings: ChannelSettings
    clock: Clock = field(default=lambda: datetime.now(UTC))
    credit_unit: Decimal = Decimal(1)
    timeout: float = 30.0


class Channel(Protocol):
    """One destination. ``send`` returns on success and raises DeliveryError otherwise."""

    spec: ChannelSpec

    def send(self, alert: AlertView) -> Sent: ...


def post_json(
    context: ChannelContext,
    url: str,
    payload: Mapping[str, Any] | list[Any],
    *,
    what: str,
    headers: Mapping[str, str] | None = None,
    content: bytes | None = None,
) -> httpx.Response:
    """POST ``payload`` (or raw ``content``) to a secret ``url`` and classify the answer.

    Returns the 2xx response; raises DeliveryError naming ``what`` and never the URL.
    """
    try:
        if content is not None:
            response = context.http.post(url, content=content, headers=headers)
        else:
            response = context.http.post(url, json=payload, headers=headers)
    except httpx.TimeoutException:
        raise DeliveryError(f"{what}: timed out", permanent=False) from None
    except httpx.TransportError as exc:
        raise DeliveryError(
            f"{what}: could not connect ({type(exc).__name__})", permanent=False
        ) from None
    except httpx.HTTPError as exc:
        raise DeliveryError(f"{what}: {type(exc).__name__}", permanent=True) from None
    if response.is_success:
        return response
    raise http_failure(what, response)


def http_failure(what: str, response: httpx.Response) -> DeliveryError:
    """The DeliveryError for a non-2xx answer: transient for 408, 429 and 5xx."""
    status = response.status_code
    text = "".join(c if c.isprintable() else " " for c in response.text)
    body = " ".join(text.split())[:_MAX_BODY]
    detail = f"{what}: HTTP {status}" + (f" {body}" if body else "")
    if status in {429, 503}:
        # Retry-After comes with 429 and with 503 (RFC 9110 §10.2.3): either way it is honoured.
        wait = retry_after_seconds(response.headers.get("retry-after"))
        return DeliveryError(detail, permanent=False, status=str(status), retry_after=wait)
    permanent = status in PERMANENT_STATUSES or (400 <= status < 500 and status != 408)
    if 300 <= status < 400:
        detail = f"{what}: HTTP {status} redirect (redirects are not followed)"
        permanent = True
    return DeliveryError(detail, permanent=permanent, status=str(status))
