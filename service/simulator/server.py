"""The simulated Admin API over real HTTP: a ThreadingHTTPServer on a background thread."""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from service.simulator.analytics_cost import AnalyticsCostBook, analytics_cost
from service.simulator.analytics_query import ANALYTICS_BETA
from service.simulator.analytics_rows import AnalyticsData
from service.simulator.analytics_usage import analytics_usage
from service.simulator.catalog import mix64
from service.simulator.cost_report import CostBook, cost_report
from service.simulator.directory import Directory, list_api_keys, list_workspaces, organization
from service.simulator.faults import Fault, Faults, corrupt
from service.simulator.usage_report import DEFAULT_CACHE_BYTES, UsageReport, encode_json
from service.simulator.wire import ERROR_TYPES, ApiError
from service.simulator.workload import Workload

logger = logging.getLogger(__name__)

USAGE_PATH = "/v1/organizations/usage_report/messages"
COST_PATH = "/v1/organizations/cost_report"
ANALYTICS_USAGE_PATH = "/v1/organizations/analytics/usage"
ANALYTICS_COST_PATH = "/v1/organizations/analytics/cost"
# The official SDK (anthropic 2.14+) sends 2026-10-21.
_VERSIONS = {"2023-06-01", "2023-01-01", "2026-10-21"}
_BETA_PATHS = {ANALYTICS_USAGE_PATH: ANALYTICS_BETA, ANALYTICS_COST_PATH: ANALYTICS_BETA}
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_FAULT_MESSAGES = {
    429: "Rate limited. Please retry after the time in the retry-after header.",
    500: "Internal server error",
    504: "Request timed out",
    529: "Overloaded",
}
_REDACTED = "<redacted>"

Route = Callable[[list[tuple[str, str]], int, bool], dict[str, Any] | list[bytes]]
"""A response body: a document to encode, or one already encoded as JSON, in pieces."""


@dataclass(frozen=True)
class RecordedRequest:
    """A request as the server saw it; the ``x-api-key`` and ``authorization`` values are
    redacted."""

    method: str
    path: str
    query: list[tuple[str, str]]
    headers: dict[str, str]
    """Lower-cased header names."""


@dataclass(frozen=True)
class _Response:
    status: int
    body: bytes | list[bytes]
    """The body, or its pieces to be sent in order."""
    content_type: str = "application/json"
    retry_after: str | None = None


class SimulatorServer:
    """Anthropic's Admin API over a synthetic :class:`Workload`, on 127.0.0.1 by default.

    ``clock`` gives the simulated now (default: the real UTC time); reports never show a bucket
    that starts after it. ``forbidden_key`` is a key that authenticates but lacks permission.
    ``directory`` renames or hides keys and workspaces in the name lists while it runs.
    ``usage_cache_bytes`` bounds the usage report's cache of encoded final buckets.
    """

    def __init__(
        self,
        workload: Workload,
        *,
        admin_key: str = "sk-ant-admin01-simulator",
        forbidden_key: str | None = None,
        clock: Callable[[], datetime] | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        org_name: str = "Simulated Org",
        usage_cache_bytes: int = DEFAULT_CACHE_BYTES,
    ) -> None:
        self.workload = workload
        self.admin_key = admin_key
        self.forbidden_key = forbidden_key
        self.clock: Callable[[], datetime] = clock or (lambda: datetime.now(UTC))
        self.host, self.port = host, port
        self.org_name = org_name
        self.base_url = ""
        self.faults = Faults()
        self.directory = Directory()
        self.requests: list[RecordedRequest] = []
        self._requests_lock = threading.Lock()
        self._ids = itertools.count(1)
        self._stopping = threading.Event()
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.usage = UsageReport(workload, cache_bytes=usage_cache_bytes)
        book = CostBook(workload)
        analytics = AnalyticsData(workload)
        analytics_book = AnalyticsCostBook(analytics)
        self._routes: dict[str, Route] = {
            USAGE_PATH: lambda q, now, stuck: self.usage.body(q, now, stuck=stuck),
            COST_PATH: lambda q, now, stuck: cost_report(workload, book, q, now, stuck=stuck),
            ANALYTICS_USAGE_PATH: lambda q, now, stuck: analytics_usage(
                analytics, q, now, stuck=stuck
            ),
            ANALYTICS_COST_PATH: lambda q, now, stuck: analytics_cost(
                analytics_book, q, now, stuck=stuck
            ),
            "/v1/organizations/api_keys": lambda q, _now, stuck: list_api_keys(
                workload, q, stuck=stuck, directory=self.directory
            ),
            "/v1/organizations/workspaces": lambda q, _now, stuck: list_workspaces(
                workload, q, stuck=stuck, directory=self.directory
            ),
            "/v1/organizations/me": lambda q, _now, _stuck: organization(workload, org_name, q),
        }

    def start(self) -> None:
        """Bind and serve on a background thread; ``base_url`` is valid afterwards."""
        if self._httpd is not None:
            raise RuntimeError("the simulator is already running")
        self._stopping.clear()
        httpd = _HTTPServer((self.host, self.port), _Handler)
        httpd.simulator = self
        self._httpd = httpd
        host, port = httpd.server_address[:2]
        self.port = int(port)
        self.base_url = f"http://{host!s}:{self.port}"
        self._thread = threading.Thread(
            target=httpd.serve_forever,
            kwargs={"poll_interval": 0.02},
            name=f"simulator:{self.port}",
            daemon=True,
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop serving, drop open connections and wait for the handler threads."""
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        self._stopping.set()
        httpd.shutdown()
        httpd.drop_connections()
        httpd.server_close()
        if self._thread is not None:
            self._thread.join()

    def __enter__(self) -> SimulatorServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def now_seconds(self) -> int:
        """The simulated now, in whole epoch seconds."""
        now = self.clock()
        if now.utcoffset() is None:
            raise ValueError("the simulator clock must return aware datetimes")
        return (now - _EPOCH) // timedelta(seconds=1)

    def serve(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        """Answer one request (called on the connection's thread)."""
        parts = urlsplit(handler.path)
        pairs = parse_qsl(parts.query, keep_blank_values=True)
        headers = {name.lower(): value for name, value in handler.headers.items()}
        length = int(headers.get("content-length") or 0)
        if length:
            handler.rfile.read(length)
        secret = {"x-api-key", "authorization"}
        recorded = {k: (_REDACTED if k in secret else v) for k, v in headers.items()}
        with self._requests_lock:
            self.requests.append(RecordedRequest(method, parts.path, pairs, recorded))
        request_id = self._request_id()
        try:
            response = self._respond(method, parts.path, pairs, headers, request_id)
        except ApiError as error:
            response = _Response(error.status, _error_body(error, request_id))
        pieces = [response.body] if isinstance(response.body, bytes) else response.body
        handler.send_response(response.status)
        handler.send_header("content-type", response.content_type)
        handler.send_header("content-length", str(sum(len(piece) for piece in pieces)))
        handler.send_header("request-id", request_id)
        if response.retry_after is not None:
            handler.send_header("retry-after", response.retry_after)
        handler.end_headers()
        for piece in pieces:
            handler.wfile.write(piece)

    def _respond(
        self,
        method: str,
        path: str,
        pairs: list[tuple[str, str]],
        headers: dict[str, str],
        request_id: str,
    ) -> _Response:
        key = _presented_key(headers)
        if key is None or key not in {self.admin_key, self.forbidden_key}:
            raise ApiError(401, "invalid x-api-key")
        if key == self.forbidden_key:
            raise ApiError(403, "This API key does not have permission to use the Admin API.")
        version = headers.get("anthropic-version")
        if version is None:
            raise ApiError(400, "anthropic-version: header is required")
        if version not in _VERSIONS:
            raise ApiError(400, f"anthropic-version: {version!r} is not a valid version")
        beta = _BETA_PATHS.get(path)
        betas = {b.strip() for b in headers.get("anthropic-beta", "").split(",")}
        if beta is not None and beta not in betas:
            raise ApiError(400, f"anthropic-beta: this endpoint is in beta; send {beta!r}")
        fault = self.faults.take(path)
        if fault is not None and fault.delay is not None:
            self._stopping.wait(fault.delay)
        if fault is not None and fault.status is not None:
            return _status_fault(fault, request_id)
        route = self._routes.get(path)
        if route is None:
            raise ApiError(404, "The requested resource could not be found.")
        if method != "GET":
            raise ApiError(405, f"Method {method} is not allowed on {path}")
        stuck = fault is not None and fault.stuck_cursor
        payload = route(pairs, self.now_seconds(), stuck)
        if fault is not None and fault.malformed is not None:
            document = json.loads(b"".join(payload)) if isinstance(payload, list) else payload
            costs = path in {COST_PATH, ANALYTICS_COST_PATH}
            body = corrupt(document, fault.malformed, cost_report=costs)
            content_type = "text/html" if fault.malformed == "non_json" else "application/json"
            return _Response(200, body, content_type)
        return _Response(200, payload if isinstance(payload, list) else encode_json(payload))

    def _request_id(self) -> str:
        serial = next(self._ids)
        value = mix64(serial * 0x9E3779B97F4A7C15 + self.port)
        alphabet = "0123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
        chars = []
        for _ in range(10):
            value, digit = divmod(value, len(alphabet))
            chars.append(alphabet[digit])
        return f"req_011C{''.join(chars)}{serial:010d}"


def _presented_key(headers: dict[str, str]) -> str | None:
    """The key of ``x-api-key``, else of ``Authorization: Bearer`` (the official SDK's way)."""
    key = headers.get("x-api-key")
    if key is not None:
        return key
    scheme, _, token = headers.get("authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def _error_body(error: ApiError, request_id: str) -> bytes:
    body = {
        "type": "error",
        "error": {"type": error.error_type, "message": error.message},
        "request_id": request_id,
    }
    return json.dumps(body).encode()


def _status_fault(fault: Fault, request_id: str) -> _Response:
    status = fault.status or 500
    if fault.body is not None:
        content_type = "application/json" if fault.body.startswith("{") else "text/plain"
        return _Response(status, fault.body.encode(), content_type, fault.retry_after)
    message = _FAULT_MESSAGES.get(status, f"Simulated {ERROR_TYPES.get(status, 'error')}")
    body = _error_body(ApiError(status, message), request_id)
    return _Response(status, body, retry_after=fault.retry_after)


class _HTTPServer(ThreadingHTTPServer):
    """Tracks open connections so ``stop()`` can end keep-alive ones instead of waiting."""

    daemon_threads = True
    simulator: SimulatorServer

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler]) -> None:
        super().__init__(address, handler)
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def drop_connections(self) -> None:
        """Shut every open connection down so its handler thread ends now."""
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):  # already closed by the peer
                connection.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        logger.debug(
            "simulator connection from %s ended with an error", client_address, exc_info=True
        )


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out as two writes; with Nagle and delayed ACKs each keep-alive
    # request would wait ~40 ms for the second.
    disable_nagle_algorithm = True
    server_version = "creditwatch-simulator"
    sys_version = ""
    timeout = 30
    server: _HTTPServer

    def do_GET(self) -> None:
        self.server.simulator.serve(self, "GET")

    def do_POST(self) -> None:
        self.server.simulator.serve(self, "POST")

    def do_DELETE(self) -> None:
        self.server.simulator.serve(self, "DELETE")

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("simulator: " + format, *args)
