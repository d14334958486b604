"""Microsoft Teams through a Workflows webhook: a message holding one Adaptive Card 1.4.

The Workflows trigger ("When a Teams webhook request is received") answers 202 Accepted and
posts the card later; its errors are 4xx (permanent) or 429/5xx (transient, via
:func:`post_json`). Teams refuses a message past about 28 KB, so the card is measured as it is
sent and loses drivers, counted, until it fits.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from service.channels.base import ChannelContext, Sent, post_json
from service.render import wording
from service.render.view import AlertView
from service.render.wording import clip, more_drivers
from service.settings.channels import ChannelSpec

CARD_VERSION = "1.4"
# Under Teams' 28 KB, leaving room for what Teams wraps around the card.
MAX_BYTES = 25_000
# The card without drivers stays under MAX_BYTES even at four bytes a character: 5,700
# characters of text (title, summary, eight facts, freshness) are at most 22,800 bytes.
TITLE_MAX = 1000
SUMMARY_MAX = 2000
FACT_VALUE_MAX = 300
DRIVER_LINE_MAX = 300

TITLE_COLOR = {"info": "Accent", "warning": "Warning", "critical": "Attention"}


class TeamsChannel:
    def __init__(self, spec: ChannelSpec, context: ChannelContext) -> None:
        self.spec = spec
        self.context = context

    def send(self, alert: AlertView) -> Sent:
        response = post_json(
            self.context,
            self.spec.target,
            {},
            what=f"teams {self.spec.name}",
            headers={"content-type": "application/json"},
            content=encode(message(alert, self.context.credit_unit)),
        )
        return Sent(str(response.status_code))


def message(view: AlertView, credit_unit: Decimal = Decimal(1)) -> dict[str, Any]:
    """The Workflows body: a ``message`` with the card as its one attachment, within MAX_BYTES."""
    lines = [
        _text(
            "• " + clip(wording.driver_line(driver, credit_unit), DRIVER_LINE_MAX), spacing="None"
        )
        for driver in wording.listed_drivers(view)[0]
    ]
    for keep in range(len(lines), -1, -1):
        rest = len(view.drivers) - keep
        drivers = lines[:keep] + ([_text(more_drivers(rest), isSubtle=True)] if rest else [])
        found = _message(view, credit_unit, drivers)
        if len(encode(found)) <= MAX_BYTES:
            return found
    return found


def encode(body: dict[str, Any]) -> bytes:
    """The bytes sent, so that the size checked is the size posted."""
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()


def _message(
    view: AlertView, credit_unit: Decimal, drivers: list[dict[str, Any]]
) -> dict[str, Any]:
    color = "Good" if view.kind == "resolved" else TITLE_COLOR.get(view.severity, "Default")
    body = [
        _text(clip(wording.headline(view), TITLE_MAX), weight="Bolder", size="Medium", color=color),
        *([_text(clip(view.summary, SUMMARY_MAX))] if view.summary else []),
        {
            "type": "FactSet",
            "facts": [
                {"title": fact.label, "value": clip(fact.value, FACT_VALUE_MAX)}
                for fact in wording.facts(view, credit_unit)
            ],
        },
        *([_text("Top drivers", weight="Bolder", spacing="Medium")] if drivers else []),
        *drivers,
        _text(
            clip(wording.freshness(view), FACT_VALUE_MAX),
            isSubtle=True,
            size="Small",
            spacing="Medium",
        ),
    ]
    card = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": CARD_VERSION,
        "body": body,
        "msteams": {"width": "Full"},
    }
    return {
        "type": "message",
        "attachments": [
            {"contentType": "application/vnd.microsoft.card.adaptive", "content": card}
        ],
    }


def _text(text: str, **style: Any) -> dict[str, Any]:
    return {"type": "TextBlock", "text": text, "wrap": True, **style}
