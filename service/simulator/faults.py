"""Scriptable failures of the simulated API, consumed in order by the requests they match.

Each authenticated request takes at most one fault: the first queued one whose ``path_prefix``
the request path starts with. A fault with ``times=None`` never runs out (until ``clear()``);
one with ``after=N`` lets the first N matching requests through untouched.
"""

from __future__ import annotations

import copy
import json
import threading
from dataclasses import dataclass, replace
from typing import Any, Literal

MalformedKind = Literal[
    "non_json", "missing_data", "string_int", "negative_tokens", "bad_timestamp"
]
"""How a malformed 200 response is broken:

- ``non_json``: an HTML body (as a misbehaving proxy sends);
- ``missing_data``: the ``data`` key is absent;
- ``string_int``: a usage count is a string (``"500"``); in a cost report, ``amount`` is ``"n/a"``;
- ``negative_tokens``: a usage count is negative; in a cost report, ``amount`` is ``"-1"``;
- ``bad_timestamp``: a bucket's ``starting_at`` is ``"yesterday"``.

The last three act on the first result (or bucket) of a report, adding one if the page has none;
on the Analytics API's flat rows they act on the first row (its ``usage`` or ``cost``).
"""

_REPORTS = "/v1/organizations/usage_report"
_FABRICATED_USAGE: dict[str, Any] = {
    "uncached_input_tokens": 1500,
    "cache_creation": {"ephemeral_1h_input_tokens": 0, "ephemeral_5m_input_tokens": 0},
    "cache_read_input_tokens": 0,
    "output_tokens": 500,
    "server_tool_use": {"web_search_requests": 0},
    "api_key_id": None,
    "workspace_id": None,
    "model": None,
    "service_tier": None,
    "context_window": None,
    "inference_geo": None,
}
_ANALYTICS_ROW: dict[str, Any] = {
    "starting_at": "2026-03-01T00:00:00Z",
    "ending_at": "2026-03-01T01:00:00Z",
    "group": {},
}
_FABRICATED_USAGE_ROW: dict[str, Any] = {
    **_ANALYTICS_ROW,
    "usage": {
        "uncached_input_tokens": 1500,
        "cache_creation": {"ephemeral_1h_input_tokens": 0, "ephemeral_5m_input_tokens": 0},
        "cache_read_input_tokens": 0,
        "output_tokens": 500,
        "server_tool_use": {"web_search_requests": 0},
        "total_tokens": 2000,
        "requests": 1,
    },
}
_FABRICATED_COST_ROW: dict[str, Any] = {
    **_ANALYTICS_ROW,
    "cost": {"amount": "100", "list_amount": "100", "currency": "USD", "requests": 1},
}
_ANY = "/v1/"


@dataclass(frozen=True)
class Fault:
    """One scripted misbehaviour; exactly one of status/malformed/delay/stuck_cursor is set."""

    path_prefix: str
    times: int | None
    status: int | None = None
    retry_after: str | None = None
    body: str | None = None
    malformed: MalformedKind | None = None
    delay: float | None = None
    stuck_cursor: bool = False
    after: int = 0


class Faults:
    """A thread-safe queue of faults; the server asks it about every request."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queue: list[Fault] = []

    def add(
        self,
        *,
        status: int,
        times: int | None = 1,
        path_prefix: str = _ANY,
        retry_after: str | None = None,
        body: str | None = None,
        after: int = 0,
    ) -> None:
        """Answer with ``status`` and Anthropic's error JSON for it (or ``body`` verbatim).

        ``after`` lets that many matching requests through first (a failure mid-backfill).
        """
        fault = Fault(path_prefix, times, status=status, retry_after=retry_after, body=body)
        self._push(replace(fault, after=after))

    def add_malformed(
        self, kind: MalformedKind, *, times: int | None = 1, path_prefix: str = _REPORTS
    ) -> None:
        """Answer 200 with a body broken as ``kind`` says (see :data:`MalformedKind`)."""
        self._push(Fault(path_prefix, times, malformed=kind))

    def add_delay(self, seconds: float, *, times: int | None = 1, path_prefix: str = _ANY) -> None:
        """Wait ``seconds`` before answering normally (to provoke client timeouts)."""
        self._push(Fault(path_prefix, times, delay=seconds))

    def add_stuck_cursor(
        self, *, times: int | None = None, path_prefix: str = "/v1/organizations/"
    ) -> None:
        """Answer ``has_more: true`` with the same ``next_page`` (or ``last_id``) forever."""
        self._push(Fault(path_prefix, times, stuck_cursor=True))

    def clear(self) -> None:
        """Forget every queued fault."""
        with self._lock:
            self._queue.clear()

    @property
    def pending(self) -> int:
        """How many faults are still queued."""
        with self._lock:
            return len(self._queue)

    def take(self, path: str) -> Fault | None:
        """Consume one use of the first fault matching ``path``, or None."""
        with self._lock:
            for position, fault in enumerate(self._queue):
                if not path.startswith(fault.path_prefix):
                    continue
                if fault.after > 0:
                    self._queue[position] = replace(fault, after=fault.after - 1)
                    return None
                if fault.times is not None:
                    if fault.times <= 1:
                        del self._queue[position]
                    else:
                        self._queue[position] = replace(fault, times=fault.times - 1)
                return fault
            return None

    def _push(self, fault: Fault) -> None:
        if fault.times is not None and fault.times < 1:
            raise ValueError("times must be at least 1 (or None for forever)")
        if fault.after < 0:
            raise ValueError("after must not be negative")
        with self._lock:
            self._queue.append(fault)


def corrupt(payload: dict[str, Any], kind: MalformedKind, *, cost_report: bool = False) -> bytes:
    """The body of a malformed 200 response built from a valid ``payload``."""
    if kind == "non_json":
        return b"<html><body><h1>502 Bad Gateway</h1></body></html>"
    broken = copy.deepcopy(payload)
    if kind == "missing_data":
        broken.pop("data", None)
    elif "data_refreshed_at" in broken:
        _corrupt_analytics_row(broken, kind, cost_report=cost_report)
    elif kind == "bad_timestamp":
        _first_bucket(broken)["starting_at"] = "yesterday"
    else:
        result = _first_result(broken, cost_report=cost_report)
        if cost_report:
            result["amount"] = "n/a" if kind == "string_int" else "-1"
        else:
            value = int(result.get("output_tokens", 500))
            result["output_tokens"] = str(value) if kind == "string_int" else -max(value, 1)
    return json.dumps(broken).encode()


def _corrupt_analytics_row(
    payload: dict[str, Any], kind: MalformedKind, *, cost_report: bool
) -> None:
    data = payload.setdefault("data", [])
    if not data:
        data.append(copy.deepcopy(_FABRICATED_COST_ROW if cost_report else _FABRICATED_USAGE_ROW))
    row: dict[str, Any] = data[0]
    if kind == "bad_timestamp":
        row["starting_at"] = "yesterday"
    elif cost_report:
        row["cost"]["amount"] = "n/a" if kind == "string_int" else "-1"
    else:
        value = int(row["usage"]["output_tokens"])
        row["usage"]["output_tokens"] = str(value) if kind == "string_int" else -max(value, 1)


def _first_bucket(payload: dict[str, Any]) -> dict[str, Any]:
    data = payload.setdefault("data", [])
    if not data or not isinstance(data[0], dict) or "results" not in data[0]:
        data.insert(
            0,
            {
                "starting_at": "2025-08-01T00:00:00Z",
                "ending_at": "2025-08-02T00:00:00Z",
                "results": [],
            },
        )
    bucket: dict[str, Any] = data[0]
    return bucket


def _first_result(payload: dict[str, Any], *, cost_report: bool) -> dict[str, Any]:
    for bucket in payload.get("data", []):
        if isinstance(bucket, dict) and bucket.get("results"):
            first: dict[str, Any] = bucket["results"][0]
            return first
    bucket = _first_bucket(payload)
    result: dict[str, Any] = (
        {"amount": "100", "currency": "USD"} if cost_report else dict(_FABRICATED_USAGE)
    )
    bucket["results"].append(result)
    return result
