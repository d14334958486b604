"""Email through the SMTP server of ``CREDITWATCH_SMTP_URL``: STARTTLS, implicit TLS or none.

One connection per notification: connect (TLS verified unless ``?verify=off``), AUTH when the
URL has a user, send, QUIT. Failures are classified by the SMTP reply (RFC 5321 §4.2.1: 4yz is
transient, 5yz permanent): SMTP 4xx, timeouts, refused or dropped connections are transient;
5xx, a refused login, every recipient refused with 5xx, an untrusted certificate and a server
without STARTTLS or AUTH are permanent. Some recipients refused is a delivery, with the count
in :attr:`Sent.detail`. No message holds the password, even when the server echoes it.
"""

from __future__ import annotations

import contextlib
import smtplib
import ssl
from collections.abc import Callable
from email.utils import parseaddr

from service.channels.base import ChannelContext, Sent
from service.errors import DeliveryError
from service.render.email import render_email
from service.render.view import AlertView
from service.settings.channels import ChannelSpec, SmtpSettings

SslContextFactory = Callable[[], ssl.SSLContext]
_MAX_REPLY = 200


class EmailChannel:
    """Sends to the comma-separated recipients of ``spec.target``.

    ``ssl_context`` builds the client's TLS context; the default verifies certificates against
    the system's trust store. Tests pass one that trusts their own CA instead.
    """

    def __init__(
        self,
        spec: ChannelSpec,
        context: ChannelContext,
        *,
        ssl_context: SslContextFactory = ssl.create_default_context,
    ) -> None:
        self.spec = spec
        self.context = context
        self._ssl_context = ssl_context
        self._recipients = [r.strip() for r in spec.target.split(",") if r.strip()]

    def send(self, alert: AlertView) -> Sent:
        smtp = self.context.settings.smtp
        sender = self.context.settings.email_from
        if smtp is None or sender is None:
            raise DeliveryError(
                f"{self._what}: CREDITWATCH_SMTP_URL and CREDITWATCH_EMAIL_FROM are required",
                permanent=True,
            )
        message = render_email(
            alert,
            sender=sender,
            recipients=self._recipients,
            date=self.context.clock(),
            credit_unit=self.context.credit_unit,
        )
        try:
            client = self._connect(smtp)
            try:
                if smtp.username:
                    client.login(smtp.username, smtp.password or "")
                refused = client.send_message(
                    message, from_addr=parseaddr(sender)[1], to_addrs=self._recipients
                )
            finally:
                _quit(client)
        except (smtplib.SMTPException, OSError) as exc:
            raise self._failure(exc, smtp) from None
        if not refused:
            return Sent("250")
        codes = ", ".join(f"{address} ({code})" for address, (code, _) in refused.items())
        return Sent("250", f"{len(refused)} of {len(self._recipients)} recipients refused: {codes}")

    @property
    def _what(self) -> str:
        return f"email {self.spec.name}"

    def _connect(self, smtp: SmtpSettings) -> smtplib.SMTP:
        timeout = self.context.timeout
        if smtp.security == "ssl":
            return smtplib.SMTP_SSL(smtp.host, smtp.port, timeout=timeout, context=self._tls(smtp))
        client = smtplib.SMTP(smtp.host, smtp.port, timeout=timeout)
        if smtp.security == "starttls":
            try:
                client.starttls(context=self._tls(smtp))
            except BaseException:
                client.close()
                raise
        return client

    def _tls(self, smtp: SmtpSettings) -> ssl.SSLContext:
        context = self._ssl_context()
        if not smtp.verify:
            # ?verify=off: the operator's explicit choice for a relay with a self-signed
            # certificate; the connection is still encrypted, only its peer is unchecked.
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return context

    def _failure(self, exc: smtplib.SMTPException | OSError, smtp: SmtpSettings) -> DeliveryError:
        """The DeliveryError for a failed attempt, its message scrubbed of the password."""
        what = self._what
        server = f"{smtp.host}:{smtp.port}"
        error: DeliveryError
        if isinstance(exc, smtplib.SMTPRecipientsRefused):
            answers = list(exc.recipients.values())
            code = answers[0][0] if answers else 550
            # Greylisting answers RCPT with 450/451: worth another try, unlike a 550.
            transient = bool(answers) and all(400 <= c < 500 for c, _ in answers)
            error = DeliveryError(
                f"{what}: every recipient refused: "
                + ", ".join(
                    f"{address} ({c} {_reply(reply)})"
                    for address, (c, reply) in exc.recipients.items()
                ),
                permanent=not transient,
                status=str(code),
            )
        elif isinstance(exc, smtplib.SMTPAuthenticationError):
            error = DeliveryError(
                f"{what}: {server} refused the login for {smtp.username}: "
                f"{exc.smtp_code} {_reply(exc.smtp_error)}",
                # 454 "temporary authentication failure" is worth another try; 535 is not.
                permanent=not 400 <= exc.smtp_code < 500,
                status=str(exc.smtp_code),
            )
        elif isinstance(exc, smtplib.SMTPResponseException):
            code = exc.smtp_code
            error = DeliveryError(
                f"{what}: {server} answered {code} {_reply(exc.smtp_error)}",
                permanent=500 <= code < 600,
                status=str(code),
            )
        elif isinstance(exc, smtplib.SMTPServerDisconnected):
            error = DeliveryError(
                f"{what}: {server} closed the connection ({exc})", permanent=False
            )
        elif isinstance(exc, smtplib.SMTPException):
            # smtplib's own refusals: no STARTTLS or AUTH offered, no common AUTH mechanism.
            error = DeliveryError(f"{what}: {server}: {exc}", permanent=True)
        elif isinstance(exc, ssl.SSLCertVerificationError):
            error = DeliveryError(
                f"{what}: {server}'s certificate is not trusted ({exc.verify_message}); "
                "use ?verify=off only for a relay you control",
                permanent=True,
            )
        elif isinstance(exc, ssl.SSLEOFError):
            error = DeliveryError(
                f"{what}: {server} closed the connection during the TLS handshake",
                permanent=False,
            )
        elif isinstance(exc, ssl.SSLError):
            error = DeliveryError(
                f"{what}: TLS with {server} failed ({exc.reason or exc})", permanent=True
            )
        elif isinstance(exc, TimeoutError):
            error = DeliveryError(f"{what}: {server} timed out", permanent=False)
        else:
            error = DeliveryError(
                f"{what}: could not connect to {server} ({type(exc).__name__})", permanent=False
            )
        return _scrubbed(error, smtp.password)


def _quit(client: smtplib.SMTP) -> None:
    """QUIT and close; the message is already accepted, so a failing QUIT changes nothing."""
    with contextlib.suppress(smtplib.SMTPException, OSError):
        client.quit()
    client.close()


def _reply(text: bytes | str) -> str:
    """A server's reply text on one line, at most 200 characters, no control characters."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return " ".join("".join(c if c.isprintable() else " " for c in text).split())[:_MAX_REPLY]


def _scrubbed(error: DeliveryError, password: str | None) -> DeliveryError:
    message = str(error)
    if not password or password not in message:
        return error
    return DeliveryError(
        message.replace(password, "***"), permanent=error.permanent, status=error.status
    )
