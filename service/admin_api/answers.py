"""Reading the Admin API's answers: JSON bodies kept exact, error answers mapped to errors.

Errors are JSON ``{"type":"error","error":{"type","message"},"request_id"}``; 5xx, 529 and 429
are transient, 401/403 name the variable to fix, a redirect names the base URL.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from decimal import Decimal

import httpx

from service.errors import AdminAPIAuthError, AdminAPIError, MalformedResponse

TRANSIENT_STATUSES = frozenset({429, 500, 502, 503, 504, 529})
_MAX_MESSAGE_CHARS = 300


def error_for_answer(
    response: httpx.Response, path: str, redact: Callable[[str], str]
) -> AdminAPIError:
    """Build the error for a non-2xx answer from its status and Anthropic's error body."""
    status = response.status_code
    error_type, message, request_id = error_details(response)
    detail = f"{status} {error_type or response.reason_phrase or 'error'}"
    if message:
        detail += f": {message}"
    if request_id:
        detail += f" (request_id {request_id})"
    detail = redact(detail)
    if status == 401:
        message = (
            f"Admin API rejected the admin key on GET {path}: {detail}; check ANTHROPIC_ADMIN_KEY"
        )
    elif status == 403:
        message = (
            f"the admin key lacks admin permission for GET {path}: {detail}; check that "
            "ANTHROPIC_ADMIN_KEY is an Admin API key (sk-ant-admin01-...)"
        )
    elif 300 <= status < 400:
        message = f"Admin API GET {path} answered a redirect ({detail}); check ANTHROPIC_BASE_URL"
    else:
        message = f"Admin API GET {path}: {detail}"
    error_class = AdminAPIAuthError if status in (401, 403) else AdminAPIError
    return error_class(
        message,
        status=status,
        error_type=error_type,
        request_id=request_id,
        transient=status in TRANSIENT_STATUSES,
    )


def _reject_constant(name: str) -> object:
    raise ValueError(f"{name} is not valid JSON")


def decode_json(response: httpx.Response, label: str, path: str) -> object:
    """Decode a body keeping every JSON number exact (floats become Decimal)."""
    try:
        return json.loads(response.content, parse_float=Decimal, parse_constant=_reject_constant)
    except (ValueError, RecursionError):
        content_type = response.headers.get("content-type", "no content type")
        raise MalformedResponse(
            f"{label}: GET {path} answered {response.status_code} with a body that is not JSON "
            f"({content_type}, {len(response.content)} bytes)",
            status=response.status_code,
        ) from None


def error_details(response: httpx.Response) -> tuple[str | None, str | None, str | None]:
    """(error type, message, request id) from ``{"type":"error","error":{...},"request_id"}``."""
    request_id = response.headers.get("request-id")
    try:
        body = json.loads(response.content)
    except (ValueError, RecursionError):
        return None, None, request_id
    if not isinstance(body, dict):
        return None, None, request_id
    error = body.get("error")
    error_type = message = None
    if isinstance(error, dict):
        if isinstance(error.get("type"), str):
            error_type = error["type"]
        if isinstance(error.get("message"), str):
            message = " ".join(error["message"].split())[:_MAX_MESSAGE_CHARS]
    if isinstance(body.get("request_id"), str):
        request_id = body["request_id"]
    return error_type, message, request_id


def gave_up(failure: AdminAPIError, why: str) -> AdminAPIError:
    return AdminAPIError(
        f"{failure}; {why}",
        status=failure.status,
        error_type=failure.error_type,
        request_id=failure.request_id,
        transient=True,
    )


def short_reason(failure: AdminAPIError) -> str:
    if failure.status is None:
        return str(failure).split(": ", 1)[-1]
    return f"{failure.status} {failure.error_type or 'error'}"
