"""Discord webhooks: the headline as ``content`` and one embed holding the rest.

Discord answers 204 No Content when ``?wait`` is absent; a 429 carries ``Retry-After`` (and
``retry_after`` in its JSON), which :func:`post_json` turns into a transient failure; 400, 401
and 404 (a bad body, a wrong token, a deleted webhook) are permanent. ``allowed_mentions`` with
an empty ``parse`` list means no name in an alert can ping anyone, ``@everyone`` included
(https://discord.com/developers/docs/resources/webhook#execute-webhook).
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

from service.channels.base import ChannelContext, Sent, post_json
from service.render import wording
from service.render.view import AlertView
from service.render.wording import more_drivers
from service.settings.channels import ChannelSpec

# https://discord.com/developers/docs/resources/message#embed-object-embed-limits
TITLE_MAX = 256
DESCRIPTION_MAX = 4096
FIELDS_MAX = 25
FIELD_NAME_MAX = 256
FIELD_VALUE_MAX = 1024
FOOTER_MAX = 2048
EMBED_TOTAL_MAX = 6000
CONTENT_MAX = 2000
DRIVER_LINE_MAX = 300

SEVERITY_COLOR = {"info": 0x3498DB, "warning": 0xE67E22, "critical": 0xE74C3C}
RESOLVED_COLOR = 0x2ECC71

# Discord's markdown takes a backslash before any punctuation; these are the characters that
# format inline (bold, italic, underline, strike, code, spoiler, quote, masked link, mention).
_INLINE = re.compile(r"[\\*_~`|<>\[\]]")
# Headings, subtext and lists only start a line.
_LINE_START = re.compile(r"^([ \t]*)([#-])", re.MULTILINE)
_NUMBERED = re.compile(r"^([ \t]*\d+)\.", re.MULTILINE)


class DiscordChannel:
    def __init__(self, spec: ChannelSpec, context: ChannelContext) -> None:
        self.spec = spec
        self.context = context

    def send(self, alert: AlertView) -> Sent:
        response = post_json(
            self.context,
            self.spec.target,
            payload(alert, self.context.credit_unit),
            what=f"discord {self.spec.name}",
        )
        return Sent(str(response.status_code))


def payload(view: AlertView, credit_unit: Decimal = Decimal(1)) -> dict[str, Any]:
    """The execute-webhook body. ``content`` is what notifications and reply previews show."""
    return {
        "content": _clip(escape(wording.headline(view)), CONTENT_MAX),
        "embeds": [embed(view, credit_unit)],
        "allowed_mentions": {"parse": []},
    }


def embed(view: AlertView, credit_unit: Decimal = Decimal(1)) -> dict[str, Any]:
    """One embed within every per-part limit and the 6,000 characters all its parts share."""
    title = _clip(escape(wording.headline(view)), TITLE_MAX)
    # Footers show no markdown, so the freshness line goes in as written.
    footer = _clip(wording.freshness(view), FOOTER_MAX)
    fields = [
        {
            "name": _clip(fact.label, FIELD_NAME_MAX),
            "value": _clip(escape(fact.value), FIELD_VALUE_MAX),
            "inline": True,
        }
        for fact in wording.facts(view, credit_unit)
    ][:FIELDS_MAX]
    room = EMBED_TOTAL_MAX - len(title) - len(footer) - _length(fields)
    while fields and room < 0:
        room += _length(fields[-1:])
        fields.pop()
    found: dict[str, Any] = {
        "title": title,
        "color": RESOLVED_COLOR
        if view.kind == "resolved"
        else SEVERITY_COLOR.get(view.severity, SEVERITY_COLOR["warning"]),
        "fields": fields,
        "footer": {"text": footer},
        "timestamp": view.created_at.isoformat(),
    }
    description = _description(view, credit_unit, min(DESCRIPTION_MAX, room))
    if description:
        found["description"] = description
    return found


def escape(text: str) -> str:
    """``text`` that Discord shows as written: every markdown character backslashed."""
    text = _INLINE.sub(lambda match: "\\" + match.group(), text)
    text = _LINE_START.sub(lambda match: f"{match[1]}\\{match[2]}", text)
    return _NUMBERED.sub(lambda match: f"{match[1]}\\.", text)


def _description(view: AlertView, credit_unit: Decimal, room: int) -> str:
    """The summary, then as many drivers as ``room`` holds and a count of the rest."""
    summary = escape(view.summary)
    listed, _ = wording.listed_drivers(view)
    lines = [
        "- " + _clip(escape(wording.driver_line(driver, credit_unit)), DRIVER_LINE_MAX)
        for driver in listed
    ]
    if lines:
        head = [summary, "", "**Top drivers**"] if summary else ["**Top drivers**"]
        for keep in range(len(lines), -1, -1):
            rest = len(view.drivers) - keep
            text = "\n".join([*head, *lines[:keep], *([more_drivers(rest)] if rest else [])])
            if len(text) <= room:
                return text
    return _clip(summary, room)


def _length(fields: list[dict[str, Any]]) -> int:
    return sum(len(field["name"]) + len(field["value"]) for field in fields)


def _clip(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` with an ellipsis, never ending in half an escape."""
    if len(text) <= limit:
        return text
    if limit < 1:
        return ""
    cut = text[: limit - 1].rstrip()
    if (len(cut) - len(cut.rstrip("\\"))) % 2:
        cut = cut[:-1]
    return cut + "…"
