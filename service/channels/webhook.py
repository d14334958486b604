"""The generic JSON webhook: the alert's versioned JSON, signed per Standard Webhooks.

Headers (https://www.standardwebhooks.com): ``webhook-id`` is the notification's id (the alert's
dedup id; ``<dedup id>:<n>`` for its reminders and resolved notice), the same on every retry;
``webhook-timestamp`` the seconds since the epoch at this attempt; ``webhook-signature``
``v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`` with the key of
``CREDITWATCH_WEBHOOK_SECRET`` (``whsec_`` + base64), present when a secret is set. A retry
signs again with a fresh timestamp. An id with characters beyond printable ASCII (a workspace
named ``Équipe``) is percent-encoded in the header (UTF-8), as-is in the body. The schema is
documented in ``docs/webhook.md``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import asdict
from datetime import datetime
from decimal import Decimal
from typing import Any
from urllib.parse import quote

from service.channels.base import ChannelContext, Sent, post_json
from service.domain.timefmt import rfc3339_or_none
from service.render.view import AlertView
from service.settings.channels import ChannelSpec


class WebhookChannel:
    def __init__(self, spec: ChannelSpec, context: ChannelContext) -> None:
        self.spec = spec
        self.context = context
        secret = context.settings.webhook_secret
        self._key = base64.b64decode(secret.removeprefix("whsec_")) if secret else None

    def send(self, alert: AlertView) -> Sent:
        body = json.dumps(payload(alert), sort_keys=True, separators=(",", ":")).encode()
        headers = {"content-type": "application/json"}
        headers.update(self.signature_headers(alert.message_id, body))
        response = post_json(
            self.context,
            self.spec.target,
            {},
            what=f"webhook {self.spec.name}",
            headers=headers,
            content=body,
        )
        return Sent(str(response.status_code))

    def signature_headers(self, message_id: str, body: bytes) -> dict[str, str]:
        timestamp = str(int(self.context.clock().timestamp()))
        webhook_id = header_id(message_id)
        headers = {"webhook-id": webhook_id, "webhook-timestamp": timestamp}
        if self._key is not None:
            signed = f"{webhook_id}.{timestamp}.".encode() + body
            digest = hmac.new(self._key, signed, hashlib.sha256).digest()
            headers["webhook-signature"] = "v1," + base64.b64encode(digest).decode()
        return headers


def header_id(message_id: str) -> str:
    """The ``webhook-id`` header: the message id, percent-encoded where it is not printable
    ASCII (a budget scoped to workspace ``Équipe``), since headers carry ASCII only."""
    return quote(message_id, safe=_PRINTABLE)


# Printable ASCII stays as it is ("80%" included): ids are the same as in the body.
_PRINTABLE = "".join(chr(c) for c in range(0x21, 0x7F))


def payload(alert: AlertView) -> dict[str, Any]:
    """The webhook body: ``docs/webhook.md``'s schema 1, amounts as decimal strings."""
    return {
        "schema": 1,
        "type": f"creditwatch.alert.{alert.kind}",
        "test": alert.test,
        "dedup_id": alert.dedup_id,
        "message_id": alert.message_id,
        "previous_message_id": alert.previous_message_id,
        "kind": alert.kind,
        "episode": alert.episode,
        "rule": alert.rule,
        "rule_name": alert.rule_name,
        "scope": alert.scope,
        "period": alert.period,
        "threshold": alert.threshold,
        "severity": alert.severity,
        "title": alert.title,
        "summary": alert.summary,
        "value_usd": _usd(alert.value),
        "limit_usd": _usd(alert.limit),
        "threshold_usd": _usd(alert.threshold_amount),
        "percent_of_limit": _usd(alert.percent_of_limit),
        "period_start": _time(alert.period_start),
        "period_end": _time(alert.period_end),
        "projection": alert.projection,
        "balance_usd": _usd(alert.balance),
        "runway_until": _time(alert.runway_until),
        "runway_note": alert.runway_note,
        "drivers": [
            {
                **{k: v for k, v in asdict(d).items() if k not in ("amount", "change")},
                "amount_usd": _usd(d.amount),
                "change_usd": _usd(d.change),
            }
            for d in alert.drivers
        ],
        "newest_bucket_start": _time(alert.newest_bucket_start),
        "last_collected_at": _time(alert.last_collected_at),
        "created_at": _time(alert.created_at),
    }


def _usd(value: Decimal | None) -> str | None:
    return None if value is None else f"{value:f}"


def _time(value: datetime | None) -> str | None:
    return rfc3339_or_none(value)
