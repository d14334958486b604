"""The email channel against real SMTP servers on 127.0.0.1 (aiosmtpd): plain, STARTTLS with a
test CA (trustme), implicit TLS, AUTH, scripted refusals. Every received message is parsed back
with the standard library's ``email`` package."""

from __future__ import annotations

import dataclasses
import re
import socket
import ssl
import struct
import subprocess
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from email.message import EmailMessage
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import httpx
import pytest
import trustme
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from service.channels.base import ChannelContext
from service.channels.email import EmailChannel
from service.errors import DeliveryError
from service.render import wording
from service.render.email import message_id_header, one_line, render_email, subject
from service.render.view import AlertView
from service.settings.channels import ChannelSettings, ChannelSpec, SmtpSecurity, SmtpSettings
from tests.helpers import outside_tool, sample_alert_view
from tests.receivers import Mailbox, smtp_server

SENDER = "creditwatch@example.com"
RECIPIENTS = "oncall@example.com,finance@example.com"
USER = "alerts"
PASSWORD = "s3cret-app-password"
SENT_AT = datetime(2026, 11, 20, 14, 6, tzinfo=UTC)


class Authenticator:
    """Accepts USER/PASSWORD; records the mechanism each attempt used."""

    def __init__(self, refusal: str | None = None) -> None:
        self.mechanisms: list[str] = []
        self.refusal = refusal

    def __call__(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        self.mechanisms.append(mechanism)
        assert isinstance(data, LoginPassword)
        if data.login == USER.encode() and data.password == PASSWORD.encode():
            return AuthResult(success=True)
        return AuthResult(success=False, handled=False, message=self.refusal)


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    """A certificate authority no system trusts."""
    return trustme.CA()


@pytest.fixture(scope="module")
def server_tls(ca: trustme.CA) -> ssl.SSLContext:
    """The server side of TLS: a certificate for 127.0.0.1 issued by the test CA."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
    return context


@pytest.fixture
def trusting(ca: trustme.CA) -> Callable[[], ssl.SSLContext]:
    """A client TLS context factory that verifies, and trusts the test CA."""

    def factory() -> ssl.SSLContext:
        context = ssl.create_default_context()
        ca.configure_trust(context)
        return context

    return factory


@pytest.fixture
def mailbox() -> Mailbox:
    """A fresh recording handler."""
    return Mailbox()


ChannelFactory = Callable[..., EmailChannel]


@pytest.fixture
def make_channel(http: httpx.Client) -> ChannelFactory:
    """Builds an EmailChannel for a local port with the given SMTP settings."""

    def build(
        port: int,
        security: SmtpSecurity = "none",
        *,
        verify: bool = True,
        username: str | None = None,
        password: str | None = None,
        recipients: str = RECIPIENTS,
        timeout: float = 5.0,
        ssl_context: Callable[[], ssl.SSLContext] = ssl.create_default_context,
    ) -> EmailChannel:
        smtp = SmtpSettings("127.0.0.1", port, security, verify, username, password)
        spec = ChannelSpec("email", "email", recipients, "CREDITWATCH_EMAIL_TO")
        settings = ChannelSettings(channels=(spec,), smtp=smtp, email_from=SENDER)
        context = ChannelContext(http=http, settings=settings, clock=lambda: SENT_AT)
        context.timeout = timeout
        return EmailChannel(spec, context, ssl_context=ssl_context)

    return build


class _TextOnly(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.chunks: list[str] = []

    def handle_data(self, data: str) -> None:
        self.chunks.append(data)


def visible_text(html: str) -> str:
    """What a reader sees: the HTML's text, entities decoded, whitespace runs as one space."""
    parser = _TextOnly()
    parser.feed(html.split("<body", 1)[1])
    return " ".join(" ".join(parser.chunks).split())


def failure(channel: EmailChannel, view: AlertView | None = None) -> DeliveryError:
    with pytest.raises(DeliveryError) as caught:
        channel.send(view or sample_alert_view())
    return caught.value


def html_part(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("html",))
    assert part is not None
    content = part.get_content()
    assert isinstance(content, str)
    return content


def text_part(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain",))
    assert part is not None
    content = part.get_content()
    assert isinstance(content, str)
    # Text travels with CRLF line ends (RFC 2046 §4.1.1); compare with the renderer's LF.
    return content.replace("\r\n", "\n")


# Delivery over a plain local relay, and what the message says.


def test_plain_relay_receives_both_parts_and_headers(
    mailbox: Mailbox, make_channel: ChannelFactory
) -> None:
    """tls=off delivers one message with the headers, a text part and an HTML alternative."""
    view = sample_alert_view()
    with smtp_server(mailbox) as port:
        sent = make_channel(port).send(view)
    assert (sent.status, sent.detail) == ("250", "")
    [envelope] = mailbox.envelopes
    assert envelope.mail_from == SENDER
    assert envelope.rcpt_tos == RECIPIENTS.split(",")
    [message] = mailbox.messages()
    assert message["Subject"] == f"[creditwatch warning] {wording.headline(view)}"
    assert message["From"] == SENDER
    assert message["To"] == "oncall@example.com, finance@example.com"
    assert message["Date"].datetime == SENT_AT
    assert message["Auto-Submitted"] == "auto-generated"
    assert re.fullmatch(r"<[0-9a-f]{32}@example\.com>", message["Message-ID"])
    assert message["In-Reply-To"] is None
    assert message["References"] is None
    assert message.get_content_type() == "multipart/alternative"
    assert text_part(message).rstrip("\n") == wording.plain_text(view)
    shown = visible_text(html_part(message))
    assert wording.headline(view) in shown
    assert view.summary in shown
    for fact in wording.facts(view):
        assert f"{fact.label} {fact.value}" in shown
    for driver in view.drivers:
        assert wording.driver_line(driver) in shown
    assert wording.freshness(view) in shown


def test_html_has_no_external_resources(mailbox: Mailbox, make_channel: ChannelFactory) -> None:
    """The HTML loads nothing: no <style>, <script>, <img>, <link> and no remote URL."""
    with smtp_server(mailbox) as port:
        make_channel(port).send(sample_alert_view(tricky_names=True))
    html = html_part(mailbox.messages()[0]).lower()
    for tag in ("<style", "<script", "<img", "<link", "http://", "https://", "url("):
        assert tag not in html


def test_tricky_names_are_escaped_in_html(mailbox: Mailbox, make_channel: ChannelFactory) -> None:
    """A workspace named ``Prod <script>&*_~`|`` is shown as text, never as markup."""
    with smtp_server(mailbox) as port:
        make_channel(port).send(sample_alert_view(tricky_names=True))
    [message] = mailbox.messages()
    html = html_part(message)
    assert "<script" not in html
    assert "Prod &lt;script&gt;&amp;*_~`|" in html
    assert "Workspace Prod <script>&*_~`| (wrkspc_01): $330.00" in visible_text(html)
    assert "Workspace Prod <script>&*_~`|" in text_part(message)


def test_message_id_is_the_same_on_every_send(
    mailbox: Mailbox, make_channel: ChannelFactory
) -> None:
    """Sending one notification twice (a retry) gives one Message-ID."""
    view = sample_alert_view()
    with smtp_server(mailbox) as port:
        channel = make_channel(port)
        channel.send(view)
        channel.send(view)
    first, second = mailbox.messages()
    assert first["Message-ID"] == second["Message-ID"]
    assert first["Message-ID"] == message_id_header(view.message_id, SENDER)


def test_reminder_threads_under_the_first_notification(
    mailbox: Mailbox, make_channel: ChannelFactory
) -> None:
    """A reminder has its own Message-ID and In-Reply-To/References pointing at the alert's."""
    with smtp_server(mailbox) as port:
        channel = make_channel(port)
        channel.send(sample_alert_view())
        channel.send(sample_alert_view(kind="reminder", notice=2))
    alert, reminder = mailbox.messages()
    assert reminder["Message-ID"] != alert["Message-ID"]
    assert reminder["In-Reply-To"] == alert["Message-ID"]
    assert reminder["References"] == alert["Message-ID"]
    assert reminder["Subject"].startswith("[creditwatch warning] Reminder: Budget")


@pytest.mark.parametrize("newline", ["\r\n", "\n", "\r", "\u2028", "\x85"])
def test_line_breaks_in_a_title_cannot_inject_headers(
    mailbox: Mailbox, make_channel: ChannelFactory, newline: str
) -> None:
    """A title holding CR/LF (or another line break) stays one Subject line and adds no header."""
    title = f"Budget x{newline}Bcc: victim@evil.example{newline}X-Injected: yes"
    view = dataclasses.replace(sample_alert_view(), title=title)
    with smtp_server(mailbox) as port:
        make_channel(port).send(view)
    [envelope] = mailbox.envelopes
    assert envelope.rcpt_tos == RECIPIENTS.split(",")
    [message] = mailbox.messages()
    assert message["Bcc"] is None
    assert message["X-Injected"] is None
    # This subject folds right after "Subject:"; Python's parser keeps the continuation's
    # leading space, which unfolding (RFC 5322 §2.2.3) makes the usual one after the colon.
    assert message["Subject"].lstrip() == (
        "[creditwatch warning] Budget x Bcc: victim@evil.example X-Injected: yes"
    )
    assert text_part(message).startswith("Budget x Bcc: victim@evil.example X-Injected: yes\n")


def test_subject_marks_severity_and_resolved() -> None:
    """The subject's marker names the severity; a resolved notice is marked plainly."""
    assert subject(sample_alert_view(severity="critical")).startswith("[creditwatch CRITICAL] ")
    assert subject(sample_alert_view(severity="info")).startswith("[creditwatch] Budget")
    resolved = sample_alert_view(kind="resolved", severity="critical", notice=3)
    assert subject(resolved).startswith("[creditwatch] Resolved: Budget")
    long = dataclasses.replace(sample_alert_view(), title="x" * 500)
    assert len(subject(long)) == 200


def test_one_line_folds_every_control_character() -> None:
    """CR, LF, tab, NUL and Unicode line separators all become single spaces."""
    assert one_line(" a\r\n\tb\x00c\u2028d\u2029e  ") == "a b c d e"


def test_render_without_recipients_raises() -> None:
    """An email with nobody to send it to is a programming error, not a message."""
    with pytest.raises(ValueError, match="recipient"):
        render_email(sample_alert_view(), sender=SENDER, recipients=[], date=SENT_AT)


def test_credits_appear_when_configured() -> None:
    """With a credit unit, both parts show the credits beside the dollars."""
    message = render_email(
        sample_alert_view(),
        sender=SENDER,
        recipients=["oncall@example.com"],
        date=SENT_AT,
        credit_unit=Decimal("0.01"),
    )
    assert "(41,230.00 credits)" in text_part(message)
    assert "(41,230.00 credits)" in html_part(message)


# TLS: STARTTLS, implicit TLS, certificate verification.


def test_starttls_with_an_untrusted_certificate_is_permanent(
    mailbox: Mailbox, make_channel: ChannelFactory, server_tls: ssl.SSLContext
) -> None:
    """Verification is on by default: a certificate from an unknown CA fails permanently."""
    with smtp_server(mailbox, tls_context=server_tls, require_starttls=True) as port:
        error = failure(make_channel(port, "starttls"))
    assert error.permanent
    assert "not trusted" in str(error)
    assert mailbox.envelopes == []


def test_starttls_with_verify_off_delivers(
    mailbox: Mailbox, make_channel: ChannelFactory, server_tls: ssl.SSLContext
) -> None:
    """``?verify=off`` accepts the self-signed relay, still over TLS."""
    with smtp_server(mailbox, tls_context=server_tls, require_starttls=True) as port:
        make_channel(port, "starttls", verify=False).send(sample_alert_view())
    [session] = mailbox.sessions
    assert session.ssl is not None


def test_starttls_with_the_ca_trusted_delivers(
    mailbox: Mailbox,
    make_channel: ChannelFactory,
    server_tls: ssl.SSLContext,
    trusting: Callable[[], ssl.SSLContext],
) -> None:
    """With the test CA trusted the certificate verifies and the message arrives over TLS."""
    with smtp_server(mailbox, tls_context=server_tls, require_starttls=True) as port:
        make_channel(port, "starttls", ssl_context=trusting).send(sample_alert_view())
    [session] = mailbox.sessions
    assert session.ssl is not None
    assert len(mailbox.messages()) == 1


def test_starttls_to_a_server_without_it_is_permanent(
    mailbox: Mailbox, make_channel: ChannelFactory
) -> None:
    """A server that offers no STARTTLS is refused rather than spoken to in clear text."""
    with smtp_server(mailbox) as port:
        error = failure(make_channel(port, "starttls"))
    assert error.permanent
    assert "STARTTLS" in str(error)
    assert mailbox.envelopes == []


def test_smtps_implicit_tls_delivers(
    mailbox: Mailbox,
    make_channel: ChannelFactory,
    server_tls: ssl.SSLContext,
    trusting: Callable[[], ssl.SSLContext],
) -> None:
    """``smtps://`` speaks TLS from the first byte and verifies the certificate."""
    with smtp_server(mailbox, ssl_context=server_tls) as port:
        make_channel(port, "ssl", ssl_context=trusting).send(sample_alert_view())
    assert len(mailbox.messages()) == 1


def test_smtps_with_an_untrusted_certificate_is_permanent(
    mailbox: Mailbox, make_channel: ChannelFactory, server_tls: ssl.SSLContext
) -> None:
    """Implicit TLS verifies too: the unknown CA fails permanently."""
    with smtp_server(mailbox, ssl_context=server_tls) as port:
        error = failure(make_channel(port, "ssl"))
    assert error.permanent
    assert "not trusted" in str(error)


# AUTH.


@pytest.mark.parametrize(("offered", "mechanism"), [("LOGIN", "LOGIN"), ("PLAIN", "PLAIN")])
def test_auth_after_starttls_delivers(
    mailbox: Mailbox,
    make_channel: ChannelFactory,
    server_tls: ssl.SSLContext,
    trusting: Callable[[], ssl.SSLContext],
    offered: str,
    mechanism: str,
) -> None:
    """The username and password log in with the mechanism the server offers, over TLS."""
    authenticator = Authenticator()
    excluded = [m for m in ("LOGIN", "PLAIN") if m != offered]
    with smtp_server(
        mailbox,
        tls_context=server_tls,
        require_starttls=True,
        auth_require_tls=True,
        auth_required=True,
        authenticator=authenticator,
        auth_exclude_mechanism=excluded,
    ) as port:
        channel = make_channel(
            port, "starttls", username=USER, password=PASSWORD, ssl_context=trusting
        )
        channel.send(sample_alert_view())
    assert authenticator.mechanisms == [mechanism]
    assert len(mailbox.messages()) == 1


def test_wrong_password_is_permanent_and_not_shown(
    mailbox: Mailbox,
    make_channel: ChannelFactory,
    server_tls: ssl.SSLContext,
    trusting: Callable[[], ssl.SSLContext],
) -> None:
    """A refused login is permanent with the 535 status; the password appears nowhere."""
    wrong = "wrong-password-123"
    with smtp_server(
        mailbox,
        tls_context=server_tls,
        require_starttls=True,
        auth_require_tls=True,
        auth_required=True,
        authenticator=Authenticator(),
    ) as port:
        error = failure(
            make_channel(port, "starttls", username=USER, password=wrong, ssl_context=trusting)
        )
    assert error.permanent
    assert error.status == "535"
    assert USER in str(error)
    assert wrong not in str(error)
    assert wrong not in repr(error.args)
    assert mailbox.envelopes == []


def test_a_server_echoing_the_password_does_not_leak_it(
    mailbox: Mailbox,
    make_channel: ChannelFactory,
    server_tls: ssl.SSLContext,
    trusting: Callable[[], ssl.SSLContext],
) -> None:
    """Even a refusal that quotes the password comes back with it masked."""
    wrong = "echoed-password-456"
    authenticator = Authenticator(refusal=f"535 5.7.8 {wrong} is not the password")
    with smtp_server(
        mailbox,
        tls_context=server_tls,
        require_starttls=True,
        auth_exclude_mechanism=["PLAIN"],
        authenticator=authenticator,
    ) as port:
        error = failure(
            make_channel(port, "starttls", username=USER, password=wrong, ssl_context=trusting)
        )
    assert error.permanent
    assert wrong not in str(error)
    assert "*** is not the password" in str(error)


def test_a_temporary_authentication_failure_is_transient(
    mailbox: Mailbox,
    make_channel: ChannelFactory,
    server_tls: ssl.SSLContext,
    trusting: Callable[[], ssl.SSLContext],
) -> None:
    """454 at AUTH (the server's directory is down) is worth another try; 535 is not."""
    authenticator = Authenticator(refusal="454 4.7.0 Temporary authentication failure")
    with smtp_server(
        mailbox,
        tls_context=server_tls,
        require_starttls=True,
        auth_exclude_mechanism=["PLAIN"],
        authenticator=authenticator,
    ) as port:
        error = failure(
            make_channel(port, "starttls", username=USER, password="x" * 12, ssl_context=trusting)
        )
    assert not error.permanent
    assert error.status == "454"


# Refusals and unreachable servers.


@pytest.mark.parametrize(
    ("reply", "permanent"),
    [("451 4.3.0 Try again later", False), ("550 5.7.1 Message rejected as spam", True)],
)
def test_data_refusal_is_classified_by_its_code(
    mailbox: Mailbox, make_channel: ChannelFactory, reply: str, permanent: bool
) -> None:
    """4xx after DATA is transient, 5xx permanent; the status is the SMTP code."""
    mailbox.data_reply = reply
    with smtp_server(mailbox) as port:
        error = failure(make_channel(port))
    assert error.permanent is permanent
    assert error.status == reply[:3]
    assert reply in str(error)


def test_some_recipients_refused_is_a_delivery_with_the_count(
    mailbox: Mailbox, make_channel: ChannelFactory
) -> None:
    """One of two recipients refused: the other gets it, and the detail says 1 of 2."""
    mailbox.refuse = {"finance@example.com": "550 5.1.1 No such user"}
    with smtp_server(mailbox) as port:
        sent = make_channel(port).send(sample_alert_view())
    assert sent.status == "250"
    assert sent.detail == "1 of 2 recipients refused: finance@example.com (550)"
    [envelope] = mailbox.envelopes
    assert envelope.rcpt_tos == ["oncall@example.com"]


@pytest.mark.parametrize(
    ("reply", "permanent"),
    [("550 5.1.1 No such user", True), ("451 4.7.1 Greylisted, try again later", False)],
)
def test_every_recipient_refused_fails(
    mailbox: Mailbox, make_channel: ChannelFactory, reply: str, permanent: bool
) -> None:
    """Every recipient refused fails: permanently for 5xx, transiently for 4xx (greylisting)."""
    mailbox.refuse = dict.fromkeys(RECIPIENTS.split(","), reply)
    with smtp_server(mailbox) as port:
        error = failure(make_channel(port))
    assert error.permanent is permanent
    assert error.status == reply[:3]
    assert "every recipient refused" in str(error)
    assert mailbox.envelopes == []


def test_a_closed_port_is_transient(make_channel: ChannelFactory) -> None:
    """Connection refused (a port bound but not listening) is worth another try."""
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        error = failure(make_channel(closed.getsockname()[1]))
    assert not error.permanent
    assert error.status is None
    assert "could not connect to 127.0.0.1" in str(error)


def test_a_silent_server_times_out_transiently(make_channel: ChannelFactory) -> None:
    """A server that never greets is given up on after the context's timeout, transiently."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        error = failure(make_channel(silent.getsockname()[1], timeout=0.2))
    assert not error.permanent
    assert "timed out" in str(error)


def test_missing_smtp_settings_are_permanent(http: httpx.Client) -> None:
    """Without an SMTP URL or sender the channel fails permanently instead of crashing."""
    spec = ChannelSpec("email", "email", RECIPIENTS, "CREDITWATCH_EMAIL_TO")
    context = ChannelContext(http=http, settings=ChannelSettings(channels=(spec,)))
    error = failure(EmailChannel(spec, context))
    assert error.permanent
    assert "CREDITWATCH_SMTP_URL" in str(error)


# How it looks in a browser engine.


@pytest.mark.parametrize("tricky", [False, True])
def test_html_renders_to_a_screenshot(tmp_path: Path, tricky: bool) -> None:
    """Headless Chromium draws the HTML part as a non-blank 900x1200 PNG."""
    outside_tool("chromium", "chromium")
    message = render_email(
        sample_alert_view(tricky_names=tricky),
        sender=SENDER,
        recipients=RECIPIENTS.split(","),
        date=SENT_AT,
    )
    png = render_screenshot(html_part(message), tmp_path)
    data = png.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    width, height = struct.unpack(">II", data[16:24])
    assert (width, height) == (900, 1200)
    # A blank page compresses to a few kilobytes; text, rules and the accent band do not.
    assert len(data) > 20_000


def render_screenshot(html: str, folder: Path, png: Path | None = None) -> Path:
    """Draw ``html`` with headless Chromium; returns the PNG's path."""
    page = folder / "alert.html"
    page.write_text(html, encoding="utf-8")
    target = png or folder / "alert.png"
    subprocess.run(
        [
            outside_tool("chromium", "chromium"),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            f"--user-data-dir={folder / 'chromium-profile'}",
            f"--screenshot={target}",
            "--window-size=900,1200",
            page.as_uri(),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return target
