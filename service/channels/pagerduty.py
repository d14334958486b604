"""PagerDuty Events API v2: an alert or a reminder triggers, the resolved notice resolves.

The event's ``dedup_key`` is the alert's dedup id, so a reminder lands on the alert PagerDuty
already holds and the resolved notice closes it. The routing key travels in the JSON body only.
PagerDuty answers 202 for an accepted event, 400 for an invalid one (not retried), 429 and 5xx
when it wants the event again later
(https://developer.pagerduty.com/docs/events-api-v2/overview/#response-codes--retry-logic).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import httpx

from service.channels.base import ChannelContext, Sent, post_json
from service.domain.timefmt import rfc3339
from service.errors import DeliveryError
from service.render import wording
from service.render.view import AlertView
from service.render.wording import clip
from service.settings.channels import ChannelSpec

# The Events API v2 permits at most 1024 characters in payload.summary.
SUMMARY_LIMIT = 1024
SOURCE = "creditwatch"
# PD-CEF severities are critical, error, warning and info; ours map one to one.
SEVERITY = {"critical": "critical", "warning": "warning", "info": "info"}
_KEY_MASK = "(routing key)"


class PagerDutyChannel:
    def __init__(self, spec: ChannelSpec, context: ChannelContext) -> None:
        self.spec = spec
        self.context = context

    def send(self, alert: AlertView) -> Sent:
        routing_key = self.spec.target
        try:
            response = post_json(
                self.context,
                self.context.settings.pagerduty_url,
                event(alert, routing_key, self.context.credit_unit),
                what=f"pagerduty {self.spec.name}",
            )
        except DeliveryError as exc:
            raise _without_key(exc, routing_key) from None
        return Sent(str(response.status_code), _accepted_detail(response, routing_key))


def event(alert: AlertView, routing_key: str, credit_unit: Decimal = Decimal(1)) -> dict[str, Any]:
    """The Events API v2 body: ``resolve`` for a resolved notice, ``trigger`` otherwise."""
    if alert.kind == "resolved":
        return {"routing_key": routing_key, "event_action": "resolve", "dedup_key": alert.dedup_id}
    return {
        "routing_key": routing_key,
        "event_action": "trigger",
        "dedup_key": alert.dedup_id,
        "client": SOURCE,
        "payload": {
            "summary": clip(wording.headline(alert), SUMMARY_LIMIT),
            "source": SOURCE,
            # An unknown severity still pages, one step below critical.
            "severity": SEVERITY.get(alert.severity, "error"),
            "timestamp": rfc3339(alert.created_at),
            "component": alert.rule,
            "group": alert.scope,
            "class": alert.rule_name,
            "custom_details": {
                "summary": alert.summary,
                "facts": {f.label: f.value for f in wording.facts(alert, credit_unit)},
                "drivers": [wording.driver_line(d, credit_unit) for d in alert.drivers],
                "freshness": wording.freshness(alert),
            },
        },
    }


def _without_key(exc: DeliveryError, routing_key: str) -> DeliveryError:
    """``exc`` with the routing key masked, should PagerDuty's error body have echoed it."""
    return DeliveryError(
        str(exc).replace(routing_key, _KEY_MASK),
        permanent=exc.permanent,
        status=exc.status,
        retry_after=exc.retry_after,
    )


def _accepted_detail(response: httpx.Response, routing_key: str) -> str:
    """PagerDuty's answer to an accepted event: ``Event processed (dedup_key …)``, or ""."""
    try:
        answer = response.json()
    except ValueError:
        return ""
    if not isinstance(answer, dict):
        return ""
    detail = str(answer.get("message") or answer.get("status") or "")
    if answer.get("dedup_key"):
        detail += f" (dedup_key {answer['dedup_key']})"
    return detail.strip().replace(routing_key, _KEY_MASK)
