"""An alert as a Slack message: Block Kit blocks and the plain ``text`` fallback. Pure: an
:class:`AlertView` and the credit unit in, the incoming-webhook payload out.

Layout: a header (the headline), the summary, the facts as section fields, the top drivers as
a compact list, and a context line with the data's freshness and the alert id: five blocks
for the eight facts there can be, far from Slack's 50. The other limits are Slack's documented
ones (https://docs.slack.dev/reference/block-kit/blocks): 150 characters of header, 3,000 of
section text, 10 fields per section, 2,000 per field.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

from service.render import wording
from service.render.view import AlertView
from service.render.wording import clip, more_drivers

HEADER_MAX = 150
SECTION_TEXT_MAX = 3000
FIELDS_PER_SECTION = 10
FIELD_TEXT_MAX = 2000
# Slack advises at most 4,000 characters of top-level text (and cuts it at 40,000).
FALLBACK_MAX = 4000
# Twelve lines of 230, their bullets and newlines, the heading and the count stay under 3,000.
DRIVER_LINE_MAX = 230

_ENTITIES = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}
# mrkdwn has no escape character, and a zero-width space beside a marker makes Slack format
# (it counts as a word boundary: jsx-slack's "exact mode" relies on it), so markers become
# look-alike characters. An underscore between two letters or digits cannot open or close
# italics (Slack formats only at word boundaries), so snake_case names stay as they are.
_MARKER = re.compile(r"[*~`]|(?<![A-Za-z0-9])_|_(?![A-Za-z0-9])")
_LOOKALIKE = {"*": "\u2217", "~": "\u223c", "`": "\u02cb", "_": "\u02cd"}
# "&gt;" at the start of a line is still a quote; a soft hyphen before it is invisible.
_QUOTE = re.compile(r"^&gt;", re.MULTILINE)
_PARTIAL_ENTITY = re.compile(r"&[a-z]*$")


def message(view: AlertView, credit_unit: Decimal = Decimal(1)) -> dict[str, Any]:
    """The incoming-webhook body: ``text`` (notifications, old clients) and ``blocks``."""
    blocks = [
        {
            "type": "header",
            "text": {"type": "plain_text", "text": clip(wording.headline(view), HEADER_MAX)},
        },
        *([_section(escape(view.summary))] if view.summary else []),
        *fact_sections(wording.facts(view, credit_unit)),
        *([_drivers(view, credit_unit)] if view.drivers else []),
        {
            "type": "context",
            "elements": [_mrkdwn(_clip_mrkdwn(escape(wording.freshness(view)), SECTION_TEXT_MAX))],
        },
    ]
    fallback = _clip_mrkdwn(escape(wording.plain_text(view, credit_unit)), FALLBACK_MAX)
    return {"text": fallback, "blocks": blocks}


def escape(text: str) -> str:
    """``text`` that Slack's mrkdwn shows as written: no markup, links, mentions or quotes."""
    text = _MARKER.sub(lambda match: _LOOKALIKE[match.group()], text)
    text = "".join(_ENTITIES.get(char, char) for char in text)
    return _QUOTE.sub("\u00ad&gt;", text)


def fact_sections(facts: list[wording.Fact]) -> list[dict[str, Any]]:
    """The facts as mrkdwn fields, ten to a section (Slack's most)."""
    fields = [
        _mrkdwn(_clip_mrkdwn(f"*{fact.label}*\n{escape(fact.value)}", FIELD_TEXT_MAX))
        for fact in facts
    ]
    return [
        {"type": "section", "fields": fields[start : start + FIELDS_PER_SECTION]}
        for start in range(0, len(fields), FIELDS_PER_SECTION)
    ]


def _drivers(view: AlertView, credit_unit: Decimal) -> dict[str, Any]:
    listed, rest = wording.listed_drivers(view)
    lines = [
        "• " + _clip_mrkdwn(escape(wording.driver_line(driver, credit_unit)), DRIVER_LINE_MAX)
        for driver in listed
    ]
    if rest:
        lines.append(more_drivers(rest))
    return _section("\n".join(["*Top drivers*", *lines]))


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": _mrkdwn(_clip_mrkdwn(text, SECTION_TEXT_MAX))}


def _mrkdwn(text: str) -> dict[str, Any]:
    # verbatim: no automatic links for bare URLs, #channel or @here in names.
    return {"type": "mrkdwn", "text": text, "verbatim": True}


def _clip_mrkdwn(text: str, limit: int) -> str:
    """``_clip`` that never leaves half an entity (``&am``) before the ellipsis."""
    if len(text) <= limit:
        return text
    return _PARTIAL_ENTITY.sub("", text[: limit - 1]).rstrip() + "…"
