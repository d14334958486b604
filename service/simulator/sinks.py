"""Local sinks for the demo: a Slack-style incoming webhook, a signed-webhook receiver and an
SMTP server on 127.0.0.1 that give a one-line account of everything they receive.

Each line goes to the ``on_line`` callable as it arrives (the demo prints it) and is kept for
``drain()``. Like the simulator they are an independent reading of the outside world: the Slack
sink answers as Slack's incoming webhooks do (``ok``, or a plain-text error code), the webhook
sink checks the Standard Webhooks signature with its own HMAC (the spec, not creditwatch's
code), and the SMTP sink speaks just enough RFC 5321 (EHLO, MAIL, RCPT, DATA, RSET, NOOP, QUIT)
to take a message over plain TCP, and parses it with the standard ``email`` package.
"""

from __future__ import annotations

import base64
import email
import email.policy
import hashlib
import hmac
import html
import json
import secrets
import socketserver
import threading
from collections.abc import Callable
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self

OnLine = Callable[[str], None]


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

    def __init__(self, server: socketserver.BaseServer, on_line: OnLine | None) -> None:
        self.log = _Log()
        self._on_line = on_line
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True
        )

    def drain(self) -> list[str]:
        """One line per thing received since the last drain."""
        return [line for line in self.log.drain() if line]

    def received(self, line: str | None) -> None:
        """Keep ``line`` for ``drain()`` and hand it to ``on_line``, from the server's thread
        and before the sender has its answer."""
        if not line:
            return
        self.log.add(line)
        if self._on_line is not None:
            self._on_line(line)

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


def _http_server(
    answer: Callable[[str, dict[str, str], bytes], tuple[int, bytes]],
) -> ThreadingHTTPServer:
    """A threading HTTP server on a free port of 127.0.0.1 whose POSTs ``answer`` (path,
    headers, body) turns into a status and a plain-text body."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            status, reply = answer(self.path, dict(self.headers.items()), body)
            self.send_response(status)
            self.send_header("content-type", "text/plain")
            self.send_header("content-length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    return server


class SlackSink(_Served):
    """``with SlackSink() as sink:`` takes Slack incoming-webhook posts at ``sink.url``, whose
    last path segment is a token of its own, as Slack's are. It answers as Slack does: 200
    ``ok``; 404 ``no_service`` for another path; 400 ``invalid_payload`` for a body that is not
    JSON with a ``text`` or ``blocks`` (https://docs.slack.dev/messaging/sending-messages-using-
    incoming-webhooks). One line per message: its header (or the first line of ``text``) and
    how many blocks it has."""

    def __init__(self, on_line: OnLine | None = None) -> None:
        path = f"/services/TDEMO0000/BDEMO0000/{secrets.token_urlsafe(18)}"

        def answer(got: str, _headers: dict[str, str], body: bytes) -> tuple[int, bytes]:
            if got != path:
                return 404, b"no_service"
            line = _describe_slack(body)
            if line is None:
                return 400, b"invalid_payload"
            self.received(line)
            return 200, b"ok"

        server = _http_server(answer)
        super().__init__(server, on_line)
        self.port = int(server.server_address[1])
        self.url = f"http://127.0.0.1:{self.port}{path}"


def _describe_slack(body: bytes) -> str | None:
    try:
        message = json.loads(body)
        text, blocks = message.get("text"), message.get("blocks") or []
    except (ValueError, AttributeError):
        return None
    if not isinstance(text, str | None) or not isinstance(blocks, list) or not (text or blocks):
        return None
    headers = [
        b["text"].get("text")
        for b in blocks
        if isinstance(b, dict) and b.get("type") == "header" and isinstance(b.get("text"), dict)
    ]
    headers = [h for h in headers if isinstance(h, str)]
    # Slack's mrkdwn escapes &, < and >; a header is plain text.
    shown = headers[0] if headers else html.unescape((text or "").partition("\n")[0])
    count = f"{len(blocks)} block" + ("" if len(blocks) == 1 else "s")
    return f"[slack sink]   {shown}  [{count}]"


class WebhookSink(_Served):
    """``with WebhookSink(secret) as sink:`` accepts POSTs at ``sink.url``; one line per alert
    received: its kind, severity, title and whether the Standard Webhooks signature holds."""

    def __init__(self, secret: str | None = None, on_line: OnLine | None = None) -> None:
        key = base64.b64decode(secret.removeprefix("whsec_")) if secret else None

        def answer(_path: str, headers: dict[str, str], body: bytes) -> tuple[int, bytes]:
            self.received(_describe_webhook(headers, body, key))
            return 200, b"ok"

        server = _http_server(answer)
        super().__init__(server, on_line)
        self.port = int(server.server_address[1])
        self.url = f"http://127.0.0.1:{self.port}/alerts"


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
    return f"[webhook sink] {what}  [{signature}]"


class SmtpSink(_Served):
    """``with SmtpSink() as sink:`` accepts mail at 127.0.0.1:``sink.port`` (plain SMTP, no
    TLS: the demo's relay); one line per message: its subject, parts and recipients."""

    def __init__(self, on_line: OnLine | None = None) -> None:
        sink = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                _converse(self.rfile, self.wfile, sink.received)

        class Server(socketserver.ThreadingTCPServer):
            daemon_threads = True
            allow_reuse_address = True

        server = Server(("127.0.0.1", 0), Handler)
        super().__init__(server, on_line)
        self.port = int(server.server_address[1])


def _converse(rfile: Any, wfile: Any, received: Callable[[str], None]) -> None:
    """One SMTP session; ``received`` gets the account of each message before it is queued."""

    def reply(line: str) -> None:
        wfile.write(f"{line}\r\n".encode())
        wfile.flush()

    reply("220 creditwatch-demo SMTP sink")
    recipients: list[str] = []
    while True:
        raw = rfile.readline(65536)
        if not raw:
            return
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
            received(_describe_mail(_read_data(rfile), recipients))
            reply("250 OK: queued")
        elif verb in ("RSET", "NOOP"):
            reply("250 OK")
        elif verb == "QUIT":
            reply("221 Bye")
            return
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
    count = f"{len(recipients)} recipient" + ("" if len(recipients) == 1 else "s")
    return f"[email sink]   {message['Subject']}  [{parts}, {count}]"
