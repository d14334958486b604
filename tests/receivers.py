"""Real receivers on 127.0.0.1 for the channel tests: an HTTP server that records every request
and answers what the test scripts (Slack's error bodies, 429s with Retry-After, 5xx, a dropped
connection, a slow answer), and an SMTP server (aiosmtpd) that answers RCPT and DATA as
scripted."""

from __future__ import annotations

import asyncio
import email
import email.policy
import json
import socket
import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session


@dataclass(frozen=True)
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass(frozen=True)
class Answer:
    """What the receiver answers; ``drop`` closes the connection without a word, ``delay``
    waits that many seconds first (past the client's timeout, a timeout)."""

    status: int = 200
    body: bytes = b"ok"
    headers: dict[str, str] = field(default_factory=dict)
    drop: bool = False
    delay: float = 0.0
    # The worst receiver: its error body repeats the request's path and body (secrets in both).
    echo: bool = False


class Receiver:
    """``with Receiver() as r:`` serves ``r.url``; ``r.script(Answer(...), ...)`` queues the next
    answers (then 200 ``ok``); ``r.received`` holds every request, in order."""

    def __init__(self, default: Answer | None = None, *, port: int = 0) -> None:
        self.received: list[Received] = []
        self.default = default or Answer()
        self._answers: deque[Answer] = deque()
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", "0"))
                body = self.rfile.read(length)
                with receiver._lock:
                    receiver.received.append(
                        Received(
                            "POST", self.path, {k.lower(): v for k, v in self.headers.items()}, body
                        )
                    )
                    answer = receiver._answers.popleft() if receiver._answers else receiver.default
                if answer.delay:
                    time.sleep(answer.delay)
                if answer.drop:
                    self.close_connection = True
                    return
                reply = answer.body
                if answer.echo:
                    reply = f"cannot take {self.path}: ".encode() + body
                try:
                    self.send_response(answer.status)
                    for name, value in answer.headers.items():
                        self.send_header(name, value)
                    self.send_header("content-length", str(len(reply)))
                    self.end_headers()
                    self.wfile.write(reply)
                except (BrokenPipeError, ConnectionResetError):
                    # The client gave up (its timeout, a kill -9): what it missed is the test's.
                    self.close_connection = True

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def script(self, *answers: Answer) -> None:
        with self._lock:
            self._answers.extend(answers)

    def __enter__(self) -> Receiver:
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
        self._thread.join(timeout=10)


# An SMTP server (aiosmtpd) for the email channel.


class Mailbox:
    """An aiosmtpd handler: keeps every accepted envelope, answers DATA and RCPT as scripted."""

    def __init__(self) -> None:
        self.envelopes: list[Envelope] = []
        self.sessions: list[Session] = []
        self.data_reply = "250 OK"
        self.refuse: dict[str, str] = {}

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        if address in self.refuse:
            return self.refuse[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.data_reply.startswith("250"):
            self.envelopes.append(envelope)
            self.sessions.append(session)
        return self.data_reply

    def messages(self) -> list[EmailMessage]:
        """Every accepted message, parsed as a mail client would."""
        parsed = []
        for envelope in self.envelopes:
            assert isinstance(envelope.content, bytes)
            message = email.message_from_bytes(envelope.content, policy=email.policy.default)
            assert isinstance(message, EmailMessage)
            parsed.append(message)
        return parsed


class LocalController(Controller):
    """aiosmtpd's Controller on an ephemeral port: it probes ``self.port``, so read the bound
    port before the probe (aiosmtpd 1.4 has no port=0 support of its own)."""

    def _trigger_server(self) -> None:
        assert isinstance(self.server, asyncio.Server)
        self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()  # type: ignore[no-untyped-call]  # aiosmtpd leaves it untyped


@contextmanager
def smtp_server(mailbox: Mailbox, port: int = 0, **options: Any) -> Iterator[int]:
    """A running aiosmtpd server on 127.0.0.1 (an ephemeral port unless given); yields it."""
    controller = LocalController(mailbox, hostname="127.0.0.1", port=port, **options)
    controller.start()
    try:
        yield controller.port
    finally:
        controller.stop()


def free_port() -> int:
    """A port nothing listens on (yet): connecting to it is refused."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
