"""Anthropic Admin API wire format: decoded JSON bodies in, domain records out.

Each page is validated as a whole before anything from it is returned: a value that does not match
the documented shape raises ``Invalid``, which the client turns into ``MalformedResponse``.
Unknown fields are ignored, since Anthropic adds fields over time. Nothing here does I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation

from service.domain.usage import BucketWidth, CostRow, TokenCounts, UsageKey, UsagePage, UsageRow
from service.errors import MalformedResponse


@dataclass(frozen=True, slots=True)
class CostPage:
    """One validated page of the cost report."""

    rows: tuple[CostRow, ...]
    has_more: bool
    next_page: str | None


class Invalid(Exception):
    """A value at ``where`` is not what the API documents; becomes MalformedResponse."""

    def __init__(self, where: str, problem: str) -> None:
        self.where = where
        self.problem = problem
        super().__init__(f"{where}: {problem}")

    def malformed(self, label: str, path: str) -> MalformedResponse:
        return MalformedResponse(f"{label} of GET {path} rejected: {self.where}: {self.problem}")


def _describe(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"boolean {str(value).lower()}"
    if isinstance(value, int | Decimal):
        return f"number {value}"
    if isinstance(value, str):
        text = value if len(value) <= 40 else value[:37] + "..."
        return f"string {text!r}"
    if isinstance(value, list):
        return "array"
    return "object"


def as_object(value: object, where: str) -> Mapping[str, object]:
    """Return ``value`` as a JSON object; raise Invalid if it is anything else."""
    if not isinstance(value, dict):
        raise Invalid(where, f"expected an object, got {_describe(value)}")
    return value


def _as_list(value: object, where: str) -> list[object]:
    if not isinstance(value, list):
        raise Invalid(where, f"expected an array, got {_describe(value)}")
    return value


def _required(obj: Mapping[str, object], key: str, where: str) -> object:
    if key not in obj:
        raise Invalid(f"{where}.{key}", "missing")
    return obj[key]


def _req_bool(obj: Mapping[str, object], key: str, where: str) -> bool:
    value = _required(obj, key, where)
    if not isinstance(value, bool):
        raise Invalid(f"{where}.{key}", f"expected true or false, got {_describe(value)}")
    return value


def req_str(obj: Mapping[str, object], key: str, where: str) -> str:
    """Return the string at ``obj[key]``; raise Invalid if it is missing or not a string."""
    value = _required(obj, key, where)
    if not isinstance(value, str):
        raise Invalid(f"{where}.{key}", f"expected a string, got {_describe(value)}")
    return value


def _opt_str(obj: Mapping[str, object], key: str, where: str) -> str | None:
    """A string or null; an absent key is null (older responses lack newer groupings)."""
    value = obj.get(key)
    if value is None or isinstance(value, str):
        return value
    raise Invalid(f"{where}.{key}", f"expected a string or null, got {_describe(value)}")


def _count(value: object, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise Invalid(where, f"expected a non-negative integer, got {_describe(value)}")
    return value


def _req_count(obj: Mapping[str, object], key: str, where: str) -> int:
    return _count(_required(obj, key, where), f"{where}.{key}")


def _nested_count(obj: Mapping[str, object], outer: str, inner: str, where: str) -> int:
    """A count inside an optional object; 0 only when a key is absent, never for null."""
    if outer not in obj:
        return 0
    nested = as_object(obj[outer], f"{where}.{outer}")
    if inner not in nested:
        return 0
    return _count(nested[inner], f"{where}.{outer}.{inner}")


def _timestamp(obj: Mapping[str, object], key: str, where: str) -> datetime:
    value = _required(obj, key, where)
    if not isinstance(value, str):
        raise Invalid(f"{where}.{key}", f"expected an RFC 3339 string, got {_describe(value)}")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise Invalid(f"{where}.{key}", f"not an RFC 3339 timestamp: {value!r}") from None
    if parsed.tzinfo is None:
        raise Invalid(f"{where}.{key}", f"timestamp has no UTC offset: {value!r}")
    return parsed.astimezone(UTC)


def _page_envelope(body: object) -> tuple[list[object], bool, str | None]:
    page = as_object(body, "body")
    data = _as_list(_required(page, "data", "body"), "body.data")
    has_more = _req_bool(page, "has_more", "body")
    next_page = page.get("next_page")
    if next_page is not None and not isinstance(next_page, str):
        raise Invalid("body.next_page", f"expected a string or null, got {_describe(next_page)}")
    return data, has_more, next_page


def _bucket(value: object, where: str) -> tuple[datetime, list[object]]:
    bucket = as_object(value, where)
    starting_at = _timestamp(bucket, "starting_at", where)
    ending_at = _timestamp(bucket, "ending_at", where)
    if ending_at <= starting_at:
        raise Invalid(where, "ending_at is not after starting_at")
    results = _as_list(_required(bucket, "results", where), f"{where}.results")
    return starting_at, results


def token_counts(obj: Mapping[str, object], where: str) -> TokenCounts:
    """The token fields both usage reports share (the legacy result, the analytics ``usage``):
    a missing ``cache_creation`` or ``server_tool_use`` counts as zero, a null is refused."""
    return TokenCounts(
        uncached_input_tokens=_req_count(obj, "uncached_input_tokens", where),
        cache_creation_5m_tokens=_nested_count(
            obj, "cache_creation", "ephemeral_5m_input_tokens", where
        ),
        cache_creation_1h_tokens=_nested_count(
            obj, "cache_creation", "ephemeral_1h_input_tokens", where
        ),
        cache_read_tokens=_req_count(obj, "cache_read_input_tokens", where),
        output_tokens=_req_count(obj, "output_tokens", where),
        web_search_requests=_nested_count(obj, "server_tool_use", "web_search_requests", where),
    )


def parse_usage_page(body: object, width: BucketWidth) -> UsagePage:
    """Validate one usage report page; raise Invalid on the first value out of shape."""
    data, has_more, next_page = _page_envelope(body)
    rows: list[UsageRow] = []
    seen: set[UsageKey] = set()
    starts: list[datetime] = []
    for b, raw_bucket in enumerate(data):
        bucket_where = f"data[{b}]"
        bucket_start, results = _bucket(raw_bucket, bucket_where)
        starts.append(bucket_start)
        for r, raw_result in enumerate(results):
            where = f"{bucket_where}.results[{r}]"
            result = as_object(raw_result, where)
            key = UsageKey(
                bucket_start=bucket_start,
                bucket_width=width,
                model=_opt_str(result, "model", where),
                api_key_id=_opt_str(result, "api_key_id", where),
                workspace_id=_opt_str(result, "workspace_id", where),
                service_tier=_opt_str(result, "service_tier", where),
                context_window=_opt_str(result, "context_window", where),
                inference_geo=_opt_str(result, "inference_geo", where),
            )
            counts = token_counts(result, where)
            # Two rows with one key would overwrite each other when booked by natural key.
            if key in seen:
                raise Invalid(where, "a second row for the same bucket and grouping")
            seen.add(key)
            rows.append(UsageRow(key=key, counts=counts))
    return UsagePage(
        rows=tuple(rows), bucket_starts=tuple(starts), has_more=has_more, next_page=next_page
    )


def _amount_usd(result: Mapping[str, object], where: str) -> Decimal:
    """Anthropic's ``amount`` is a decimal string in cents: ``"123.78912"`` is $1.2378912."""
    value = _required(result, "amount", where)
    where = f"{where}.amount"
    if isinstance(value, bool) or not isinstance(value, str | int | Decimal):
        raise Invalid(where, f"expected a decimal string, got {_describe(value)}")
    try:
        cents = Decimal(str(value).strip())
    except InvalidOperation:
        raise Invalid(where, f"not a decimal number: {_describe(value)}") from None
    if not cents.is_finite():
        raise Invalid(where, f"not a finite decimal number: {_describe(value)}")
    return cents.scaleb(-2)  # exact: moves the decimal point, no rounding


def parse_cost_page(body: object) -> CostPage:
    """Validate one cost report page, amounts in dollars; raise Invalid if out of shape."""
    data, has_more, next_page = _page_envelope(body)
    rows: list[CostRow] = []
    for b, raw_bucket in enumerate(data):
        bucket_where = f"data[{b}]"
        day_start, results = _bucket(raw_bucket, bucket_where)
        for r, raw_result in enumerate(results):
            where = f"{bucket_where}.results[{r}]"
            result = as_object(raw_result, where)
            rows.append(
                CostRow(
                    day_start=day_start,
                    amount_usd=_amount_usd(result, where),
                    currency=req_str(result, "currency", where),
                    cost_type=_opt_str(result, "cost_type", where),
                    description=_opt_str(result, "description", where),
                    model=_opt_str(result, "model", where),
                    token_type=_opt_str(result, "token_type", where),
                    service_tier=_opt_str(result, "service_tier", where),
                    context_window=_opt_str(result, "context_window", where),
                    workspace_id=_opt_str(result, "workspace_id", where),
                    inference_geo=_opt_str(result, "inference_geo", where),
                )
            )
    return CostPage(rows=tuple(rows), has_more=has_more, next_page=next_page)


def parse_names_page(body: object) -> tuple[dict[str, str], bool, str | None]:
    """Return ``({id: name}, has_more, last_id)`` of an id/name list page; raise Invalid."""
    page = as_object(body, "body")
    data = _as_list(_required(page, "data", "body"), "body.data")
    names: dict[str, str] = {}
    for i, raw_item in enumerate(data):
        where = f"data[{i}]"
        item = as_object(raw_item, where)
        names[req_str(item, "id", where)] = req_str(item, "name", where)
    has_more = _req_bool(page, "has_more", "body")
    last_id = _opt_str(page, "last_id", "body")
    return names, has_more, last_id
