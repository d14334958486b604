"""A receiver on 127.0.0.1 for the benchmarks that deliver alerts: the HTTP plumbing they
share, each bench bringing its own ``do_POST``/``do_GET``."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class QuietHandler(BaseHTTPRequestHandler):
    """Keep-alive, no Nagle, no access log; ``answer`` sends a status and a body."""

    protocol_version = "HTTP/1.1"  # keep-alive, as a real receiver behind a proxy would
    # Headers and body go out in two writes: with Nagle on, a kept-alive socket waits out the
    # client's delayed ACK (40 ms on Linux) before the body.
    disable_nagle_algorithm = True

    def read_body(self) -> bytes:
        return self.rfile.read(int(self.headers.get("content-length", "0")))

    def answer(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        return


@contextmanager
def serving(handler: type[QuietHandler]) -> Iterator[str]:
    """``handler`` served on a free port of 127.0.0.1 from a thread; yields the base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
