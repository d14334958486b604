"""The metrics and health endpoint: ``/metrics`` and ``/healthz`` on ``CREDITWATCH_METRICS_ADDR``.

A small threaded HTTP server (the standard library's) on a thread of its own, on every instance,
leader or follower. It starts before the first cycle, so ``/healthz`` answers during a long
first backfill, and stops after the last one, before the ledger's engines are disposed. Bodies
pass through the secret masker: a recorded error that quotes a credential is shown masked.

The address is read at start; a reload that changes it is logged and applies at the next start
(the scrape configuration that points at it changes with it, so a restart is the honest step).
"""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Callable
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from socketserver import TCPServer
from typing import Protocol

from service.errors import ConfigError
from service.runtime.health import Observed, Verdict, decide_health
from service.runtime.ledger_metrics import LedgerReader, read_collection
from service.runtime.logs import SecretMasker
from service.runtime.metrics import DaemonMetrics
from service.settings import Settings
from service.settings.metrics import EXAMPLE, VARIABLE, MetricsAddress

log = logging.getLogger(__name__)
# A client that stops talking mid-request holds a handler thread at most this long.
REQUEST_TIMEOUT_SECONDS = 10
STOP_TIMEOUT_SECONDS = 15.0
_TEXT = "text/plain; charset=utf-8"


class ObservedRuntime(Protocol):
    @property
    def settings(self) -> Settings: ...


class ObservedDaemon(Protocol):
    """What the endpoint needs of the daemon: its settings, its clock and its hooks."""

    @property
    def runtime(self) -> ObservedRuntime: ...

    @property
    def clock(self) -> Callable[[], datetime]: ...

    on_cycle: Callable[[float, BaseException | None], None]
    on_leadership: Callable[[bool], None]
    on_reload: Callable[[bool], None]


class Endpoint:
    """The running server; :meth:`stop` ends it and waits for requests in flight."""

    def __init__(
        self,
        address: MetricsAddress,
        metrics: DaemonMetrics,
        health: Callable[[], Verdict],
        settings: Callable[[], Settings],
        reader: LedgerReader,
    ) -> None:
        self.address = address
        self.metrics = metrics
        self.reader = reader
        self.health = health
        self.settings = settings
        self.server = _bind(address, self)
        self.thread = threading.Thread(
            target=self.server.serve_forever,
            kwargs={"poll_interval": 0.5},
            name="creditwatch-metrics",
            daemon=True,
        )

    def start(self) -> Endpoint:
        self.thread.start()
        log.info(
            "serving /metrics and /healthz on %s",
            self.address,
            extra={"fields": {"event": "metrics", "address": str(self.address)}},
        )
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()  # waits for handlers still answering
        self.thread.join(STOP_TIMEOUT_SECONDS)
        self.reader.close()

    def mask(self, text: str) -> str:
        return SecretMasker(self.settings().secrets)(text)


def start_endpoint(daemon: ObservedDaemon) -> Endpoint | None:
    """Serve ``/metrics`` and ``/healthz`` for ``daemon`` and wire its hooks; None when
    ``CREDITWATCH_METRICS_ADDR`` is unset. Raises ConfigError when the address cannot be
    listened on (in use, not this machine's, a privileged port)."""
    address = daemon.runtime.settings.metrics_addr
    if address is None:
        return None

    def settings() -> Settings:
        return daemon.runtime.settings

    reader = LedgerReader(settings)
    metrics = DaemonMetrics(reader, daemon.clock)
    started_at = daemon.clock()

    def health() -> Verdict:
        observed = Observed(
            started_at, metrics.leading, metrics.last_cycle_error, metrics.last_cycle_permanent
        )
        current = settings()
        return decide_health(
            reader.read(read_collection),
            observed,
            now=daemon.clock(),
            collection_alert=current.rules.collection_alert,
            poll_interval=current.collection.poll_interval,
        )

    def reloaded(applied: bool) -> None:
        metrics.reload_finished(applied)
        wanted = settings().metrics_addr
        if applied and wanted != address:
            log.warning(
                "%s changed to %s; the endpoint stays on %s until creditwatch restarts",
                VARIABLE,
                wanted or "(not set)",
                address,
            )

    try:
        endpoint = Endpoint(address, metrics, health, settings, reader)
    except BaseException:
        reader.close()
        raise
    daemon.on_cycle = metrics.cycle_finished
    daemon.on_leadership = metrics.leadership_changed
    daemon.on_reload = reloaded
    return endpoint.start()


class _Server(ThreadingHTTPServer):
    # A stop does not wait for scrapes in flight: one stuck behind the database would hold
    # the daemon's exit (and its leadership) hostage. They are answers, not work to finish.
    daemon_threads = True
    block_on_close = False

    def __init__(self, family: int, sockaddr: tuple[str, int], endpoint: Endpoint) -> None:
        self.address_family = family
        self.endpoint = endpoint
        super().__init__(sockaddr, _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind asks DNS for the host's full name: slow, and not needed.
        TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)


def _bind(address: MetricsAddress, endpoint: Endpoint) -> _Server:
    try:
        found = socket.getaddrinfo(address.host, address.port, 0, socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise ConfigError(
            VARIABLE, f"cannot resolve {address.host!r} ({exc.strerror})", EXAMPLE
        ) from None
    family, _, _, _, sockaddr = found[0]
    try:
        return _Server(family, (str(sockaddr[0]), int(sockaddr[1])), endpoint)
    except OSError as exc:
        raise ConfigError(
            VARIABLE,
            f"cannot listen on {address} ({exc.strerror or type(exc).__name__})",
            EXAMPLE,
        ) from None


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    timeout = REQUEST_TIMEOUT_SECONDS
    server_version = "creditwatch"
    sys_version = ""

    def do_GET(self) -> None:
        self._answer(head=False)

    def do_HEAD(self) -> None:
        self._answer(head=True)

    def _answer(self, *, head: bool) -> None:
        endpoint = self.server.endpoint
        path = self.path.split("?", 1)[0]
        try:
            if path == "/metrics":
                body, content_type = endpoint.metrics.exposition(self.headers.get("Accept", ""))
                self._send(200, body, content_type, head=head)
            elif path == "/healthz":
                verdict = endpoint.health()
                text = endpoint.mask(verdict.body)
                self._send(verdict.status, text.encode(), _TEXT, head=head)
            else:
                self._send(404, b"not found: /metrics or /healthz\n", _TEXT, head=head)
        except Exception as exc:  # one line in the log; the server keeps answering
            log.error("metrics endpoint: %s failed: %s", path, type(exc).__name__)
            log.debug("traceback of the failure above", exc_info=exc)
            self._send(500, b"internal error; see the log\n", _TEXT, head=head)

    def _send(self, status: int, body: bytes, content_type: str, *, head: bool) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            if not head:
                self.wfile.write(body)
        except OSError as exc:  # the scraper gave up (its timeout): nothing left to tell it
            log.debug("metrics endpoint: the client went away: %s", exc)
            self.close_connection = True

    def log_message(self, format: str, *args: object) -> None:
        log.debug("metrics endpoint: " + format, *args)
