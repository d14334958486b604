"""The alert as an email: a text/plain part and an HTML alternative, threaded by Message-ID.

Pure: an :class:`AlertView`, the sender, the recipients, the credit unit and the sending time
in, an :class:`email.message.EmailMessage` out. The HTML is a table layout with inline CSS only
and no external resources (mail clients strip ``<style>`` and block remote images); every string
that came from a user (titles, names, ids) is escaped. Titles are folded to one line before they
reach a header, so no name can add a header of its own.
"""

from __future__ import annotations

import dataclasses
import hashlib
import unicodedata
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from email.message import EmailMessage
from email.utils import parseaddr
from html import escape

from service.render import wording
from service.render.view import AlertView

SUBJECT_MARKER = {
    "info": "[creditwatch] ",
    "warning": "[creditwatch warning] ",
    "critical": "[creditwatch CRITICAL] ",
}
ACCENT = {"info": "#175cd3", "warning": "#b54708", "critical": "#b42318"}
RESOLVED_ACCENT = "#067647"
_MAX_SUBJECT = 200
_FONT = "-apple-system,'Segoe UI',Roboto,Helvetica,Arial,sans-serif"
_RULE = "border-top:1px solid #eaecf0;"
_NOWRAP_WORD = 30


def render_email(
    view: AlertView,
    *,
    sender: str,
    recipients: Sequence[str],
    date: datetime,
    credit_unit: Decimal = Decimal(1),
) -> EmailMessage:
    """The whole message, ready for ``smtplib.SMTP.send_message``.

    ``date`` (aware) is this attempt's time; the Message-ID is the same on every attempt.
    Raises ValueError when there are no recipients.
    """
    if not recipients:
        raise ValueError("an email needs at least one recipient")
    view = dataclasses.replace(view, title=one_line(view.title))
    message = EmailMessage()
    message["Subject"] = subject(view)
    message["From"] = sender
    message["To"] = ", ".join(recipients)
    message["Date"] = date
    message["Message-ID"] = message_id_header(view.message_id, sender)
    if view.kind != "alert" and view.previous_message_id:
        first = message_id_header(view.previous_message_id, sender)
        message["In-Reply-To"] = first
        message["References"] = first
    # RFC 3834: vacation responders and ticket systems must not answer an automatic message.
    message["Auto-Submitted"] = "auto-generated"
    # Quoted-printable keeps both parts 7-bit: smtplib does not ask for 8BITMIME on its own.
    message.set_content(wording.plain_text(view, credit_unit), cte="quoted-printable")
    message.add_alternative(html_body(view, credit_unit), subtype="html", cte="quoted-printable")
    return message


def subject(view: AlertView) -> str:
    """``[creditwatch warning] Budget 'monthly' crossed 80%: …``, one line, at most 200 chars.

    A resolved notice is marked plainly: it is good news whatever the alert's severity was.
    """
    marker = (
        SUBJECT_MARKER["info"]
        if view.kind == "resolved"
        else SUBJECT_MARKER.get(view.severity, SUBJECT_MARKER["info"])
    )
    text = marker + one_line(wording.headline(view))
    return text if len(text) <= _MAX_SUBJECT else text[: _MAX_SUBJECT - 1] + "…"


def message_id_header(message_id: str, sender: str) -> str:
    """``<32 hex digits@sender's domain>``: the same for a notification on every retry.

    The sender is hashed in so that two installations mailing one inbox with the same rules
    (and so the same dedup ids) do not collide: mail stores drop a repeated Message-ID.
    """
    address = parseaddr(sender)[1]
    digest = hashlib.sha256(f"{address}\n{message_id}".encode()).hexdigest()[:32]
    return f"<{digest}@{_id_domain(address)}>"


def one_line(text: str) -> str:
    """``text`` with every control character and line break (CR, LF, U+2028, …) as one space."""
    spaced = "".join(" " if unicodedata.category(ch) in ("Cc", "Zl", "Zp") else ch for ch in text)
    return " ".join(spaced.split())


def html_body(view: AlertView, credit_unit: Decimal = Decimal(1)) -> str:
    """The HTML alternative: a 600px card with the headline, the facts, the drivers, a footer."""
    accent = RESOLVED_ACCENT if view.kind == "resolved" else ACCENT.get(view.severity, "#475467")
    headline = one_line(wording.headline(view))
    rows = [
        f'<tr><td style="background:{accent};height:6px;line-height:6px;font-size:0;'
        f'border-radius:8px 8px 0 0;">&nbsp;</td></tr>',
        f'<tr><td style="padding:20px 24px 0 24px;">'
        f'<div style="font-size:12px;font-weight:bold;letter-spacing:0.06em;'
        f'text-transform:uppercase;color:{accent};">{escape(_badge(view))}</div>'
        f'<h1 style="margin:6px 0 0 0;font-size:20px;line-height:1.35;font-weight:bold;'
        f'color:#101828;word-break:break-word;">{_text(headline)}</h1></td></tr>',
    ]
    if view.test:
        rows.append(
            '<tr><td style="padding:12px 24px 0 24px;"><div style="background:#fffaeb;'
            "border:1px solid #fedf89;border-radius:6px;padding:8px 12px;font-size:13px;"
            'color:#93370d;">A test notification: it checks that this channel delivers.</div>'
            "</td></tr>"
        )
    rows.append(
        '<tr><td style="padding:12px 24px 0 24px;font-size:15px;line-height:1.5;'
        f'color:#344054;word-break:break-word;">{_text(view.summary)}</td></tr>'
    )
    rows.append(f'<tr><td style="padding:16px 24px 0 24px;">{_facts_table(view, credit_unit)}')
    rows[-1] += "</td></tr>"
    if view.drivers:
        rows.append(
            f'<tr><td style="padding:20px 24px 0 24px;">{_drivers_table(view, credit_unit)}'
            "</td></tr>"
        )
    rows.append(
        '<tr><td style="padding:20px 24px 20px 24px;"><div style="border-top:1px solid #eaecf0;'
        'padding-top:12px;font-size:12px;line-height:1.5;color:#667085;word-break:break-word;">'
        f"{_text(wording.freshness(view))}<br>Sent by creditwatch.</div></td></tr>"
    )
    body = "\n".join(rows)
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta name="color-scheme" content="light">'
        f"<title>{escape(headline)}</title></head>\n"
        f'<body style="margin:0;padding:0;background:#f2f4f7;">\n'
        '<table role="presentation" width="100%" cellpadding="0" cellspacing="0" border="0" '
        'style="background:#f2f4f7;"><tr><td align="center" style="padding:24px 12px;">\n'
        '<table role="presentation" width="600" cellpadding="0" cellspacing="0" border="0" '
        'style="width:100%;max-width:600px;background:#ffffff;border:1px solid #d0d5dd;'
        f'border-radius:8px;border-collapse:separate;font-family:{_FONT};color:#101828;">\n'
        f"{body}\n</table>\n</td></tr></table>\n</body></html>\n"
    )


def _badge(view: AlertView) -> str:
    """The line above the headline: the severity, or ``Resolved`` (the headline says Reminder)."""
    if view.kind == "resolved":
        return "Resolved"
    return wording.SEVERITY_LABEL.get(view.severity, view.severity)


def _text(text: str) -> str:
    """``text`` escaped, each short hyphenated word (``2026-11``, ``claude-opus-4-6``) kept on one
    line: browsers break after a hyphen, and ``(2026-`` / ``11)`` reads as two things."""
    words = []
    for word in text.split(" "):
        escaped = escape(word)
        if "-" in word and len(word) <= _NOWRAP_WORD:
            escaped = f'<span style="white-space:nowrap;">{escaped}</span>'
        words.append(escaped)
    return " ".join(words)


def _facts_table(view: AlertView, credit_unit: Decimal) -> str:
    rows = "".join(
        f'<tr><th scope="row" align="left" style="{_RULE}padding:8px 16px 8px 0;width:110px;'
        "font-size:14px;font-weight:normal;color:#475467;text-align:left;vertical-align:top;"
        f'white-space:nowrap;">{escape(fact.label)}</th>'
        f'<td style="{_RULE}padding:8px 0;font-size:14px;font-weight:600;color:#101828;'
        f'vertical-align:top;word-break:break-word;">{_text(fact.value)}</td></tr>'
        for fact in wording.facts(view, credit_unit)
    )
    return (
        '<table role="presentation" width="100%" cellpadding="0" cellspacing="0" border="0" '
        f'style="border-collapse:collapse;border-bottom:1px solid #eaecf0;">{rows}</table>'
    )


def _drivers_table(view: AlertView, credit_unit: Decimal) -> str:
    listed, rest = wording.listed_drivers(view)
    lines = [wording.driver_line(driver, credit_unit) for driver in listed]
    lines += [wording.more_drivers(rest)] if rest else []
    rows = "".join(
        f'<tr><td style="{_RULE}padding:6px 0;font-size:14px;line-height:1.45;color:#344054;'
        f'word-break:break-word;">{_text(line)}</td></tr>'
        for line in lines
    )
    return (
        '<div style="font-size:13px;font-weight:bold;letter-spacing:0.04em;'
        'text-transform:uppercase;color:#475467;padding-bottom:6px;">Top drivers</div>'
        '<table role="presentation" width="100%" cellpadding="0" cellspacing="0" border="0" '
        f'style="border-collapse:collapse;border-bottom:1px solid #eaecf0;">{rows}</table>'
    )


def _id_domain(address: str) -> str:
    """The sender's domain as ASCII (spam filters score a Message-ID host that is not a FQDN)."""
    domain = address.rpartition("@")[2]
    try:
        ascii_domain = domain.encode("idna").decode("ascii")
    except UnicodeError:
        return "creditwatch.invalid"
    return ascii_domain if "." in ascii_domain else "creditwatch.invalid"
