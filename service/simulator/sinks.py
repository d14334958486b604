"""Local sinks for the demo: a webhook receiver and an SMTP server on 127.0.0.1 that keep a
one-line account of everything they receive.

Like the simulator they are an independent reading of the outside world: the webhook sink
checks the Standard Webhooks signature with its own HMAC (the spec, not creditwatch's code),
and the SMTP sink speaks just enough RFC 5321 (EHLO, MAIL, RCPT, DATA, RSET, NOOP, QUIT) to take
a message over plain TCP, and parses it with the standard ``email`` package.
"""

from __future__ import annotations

import base64
import email
import email.policy
import hashlib
import hmac
import json
import socketserver
import threading
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self


class _Log:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._lines: list[str] = []

    def add(self, line: str) -> None:
        with self._lock:
            self._lines.append(line)

    def drain(self) -> list[str]:
        """The lines received since the last drain."""
        with self._lock:
            lines, self._lines = self._lines, []
        return lines


class _Served:
    """A socketserver served from a thread while the ``with`` block lasts."""

    def __init__(self, server: socketserver.BaseServer) -> None:
        self.log = _Log()
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True
        )

    def drain(self) -> list[str]:
        """One line per thing received since the last drain."""
        return [line for line in self.log.drain() if line]

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


class WebhookSink(_Served):
    """``with WebhookSink(secret) as sink:`` accepts POSTs at ``sink.url``; ``drain()`` gives
    one line per alert received: its kind, severity, title, id and whether the signature holds."""

    def __init__(self, secret: str | None = None) -> None:
        key = base64.b64decode(secret.removeprefix("whsec_")) if secret else None
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                sink.log.add(_describe_webhook(dict(self.headers.items()), body, key))
                self.send_response(200)
                self.send_header("content-length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, format: str, *args: Any) -> None:
                return

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        super().__init__(server)
        self.url = f"http://127.0.0.1:{server.server_address[1]}/alerts"


def _describe_webhook(headers: dict[str, str], body: bytes, key: bytes | None) -> str:
    headers = {k.lower(): v for k, v in headers.items()}
    webhook_id = headers.get("webhook-id", "")
    signature = "unsigned"
    if key is not None:
        signed = f"{webhook_id}.{headers.get('webhook-timestamp', '')}.".encode() + body
        expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
        given = [s.partition(",")[2] for s in headers.get("webhook-signature", "").split()]
        good = any(hmac.compare_digest(expected, s) for s in given)
        signature = "signature valid" if good else "SIGNATURE INVALID"
    try:
        alert = json.loads(body)
        what = f"{alert['kind']} ({alert['severity']}): {alert['title']}"
    except (ValueError, KeyError, TypeError):
        what = f"{len(body)} bytes that are not an alert"
    return f"[webhook sink] {what}  [{webhook_id}, {signature}]"


class SmtpSink(_Served):
    """``with SmtpSink() as sink:`` accepts mail at 127.0.0.1:``sink.port`` (plain SMTP, no
    TLS: the demo's relay); ``drain()`` gives one line per message: recipients and subject."""

    def __init__(self) -> None:
        sink = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                sink.log.add(_converse(self.rfile, self.wfile) or "")

        class Server(socketserver.ThreadingTCPServer):
            daemon_threads = True
            allow_reuse_address = True

        server = Server(("127.0.0.1", 0), Handler)
        super().__init__(server)
        self.port = int(server.server_address[1])


def _converse(rfile: Any, wfile: Any) -> str | None:
    """One SMTP session; the account of the message it carried, if any."""

    def reply(line: str) -> None:
        wfile.write(f"{line}\r\n".encode())
        wfile.flush()

    reply("220 creditwatch-demo SMTP sink")
    recipients: list[str] = []
    account = None
    while True:
        raw = rfile.readline(65536)
        if not raw:
            return account
        verb = raw.decode("utf-8", "replace").strip().split(" ", 1)[0].upper()
        if verb in ("EHLO", "HELO"):
            reply("250 creditwatch-demo")
        elif verb == "MAIL":
            recipients = []
            reply("250 OK")
        elif verb == "RCPT":
            recipients.append(raw.decode("utf-8", "replace").split(":", 1)[-1].strip(" <>\r\n"))
            reply("250 OK")
        elif verb == "DATA":
            reply("354 End data with <CR><LF>.<CR><LF>")
            account = _describe_mail(_read_data(rfile), recipients)
            reply("250 OK: queued")
        elif verb in ("RSET", "NOOP"):
            reply("250 OK")
        elif verb == "QUIT":
            reply("221 Bye")
            return account
        else:
            reply("502 Command not implemented")


def _read_data(rfile: Any) -> bytes:
    lines: list[bytes] = []
    while True:
        line = rfile.readline(65536)
        if not line or line in (b".\r\n", b".\n"):
            return b"".join(lines)
        lines.append(line[1:] if line.startswith(b"..") else line)


def _describe_mail(data: bytes, recipients: list[str]) -> str:
    message = email.message_from_bytes(data, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    parts = "text + HTML" if message.get_body(preferencelist=("html",)) else "text"
    return f"[email sink] to {', '.join(recipients)}: {message['Subject']}  [{parts}]"
