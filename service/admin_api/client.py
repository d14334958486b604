"""Anthropic Admin API client: requests, paging, retries and error mapping over HTTP.

It follows every page of a report, retries transient failures in one place
(``AdminClient._request``) and maps error answers to ``service.errors``. Reading the bodies is
``service.admin_api.wire``'s job: a page that does not match the documented shape raises
``MalformedResponse`` and yields nothing. The admin key never appears in a message, log line or
repr.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol, TypeVar

import httpx

from service.admin_api.analytics import (
    ANALYTICS_BETA,
    ANALYTICS_COST_PATH,
    ANALYTICS_USAGE_PATH,
    DEFAULT_ANALYTICS_GROUP_BY,
    MAX_PAGE_ROWS,
    AnalyticsRead,
    analytics_queries,
    combine_pages,
)
from service.admin_api.analytics_decoder import (
    decode_analytics_cost_page,
    decode_analytics_usage_page,
)
from service.admin_api.analytics_wire import (
    AnalyticsCostRow,
    AnalyticsPage,
    AnalyticsUsageRow,
    RowT,
)
from service.admin_api.answers import (
    decode_json,
    error_for_answer,
    gave_up,
    short_reason,
)
from service.admin_api.retry import DEFAULT_RETRY, RetryPolicy, retry_after_seconds
from service.admin_api.usage_decoder import decode_usage_page
from service.admin_api.wire import (
    Invalid,
    as_object,
    parse_cost_page,
    parse_names_page,
    req_str,
)
from service.domain.usage import BucketWidth, CostRow, UsagePage, UsageRow
from service.errors import AdminAPIError

log = logging.getLogger(__name__)

ANTHROPIC_VERSION = "2023-06-01"
USAGE_PATH = "/v1/organizations/usage_report/messages"
COST_PATH = "/v1/organizations/cost_report"
API_KEYS_PATH = "/v1/organizations/api_keys"
WORKSPACES_PATH = "/v1/organizations/workspaces"
ORGANIZATION_PATH = "/v1/organizations/me"

# The groupings UsageKey can hold. Grouping by anything else (account_id, speed, ...) would split
# rows along a dimension the key cannot tell apart, so it is refused rather than silently merged.
ALL_GROUP_BY = (
    "api_key_id",
    "workspace_id",
    "model",
    "service_tier",
    "context_window",
    "inference_geo",
)
COST_GROUP_BY = ("workspace_id", "description")
MAX_BUCKETS_PER_PAGE: dict[str, int] = {"1m": 1440, "1h": 168, "1d": 31}
NAMES_PAGE_LIMIT = 1000


class _Paged(Protocol):
    @property
    def has_more(self) -> bool: ...
    @property
    def next_page(self) -> str | None: ...


_PageT = TypeVar("_PageT", bound=_Paged)


@dataclass(frozen=True, slots=True)
class Undecoded:
    """A successful page answer handed to a parser that decodes the bytes itself."""

    response: httpx.Response
    label: str


class AdminClient:
    """Synchronous client for the Admin API endpoints creditwatch reads.

    Every method raises ``AdminAPIError`` (``transient`` says whether a later try may succeed),
    ``AdminAPIAuthError`` for 401/403 and ``MalformedResponse`` for a body of the wrong shape.
    """

    def __init__(
        self,
        http: httpx.Client,
        admin_key: str,
        *,
        retry: RetryPolicy = DEFAULT_RETRY,
        sleep: Callable[[float], None] = time.sleep,
        max_pages: int = 10_000,
    ) -> None:
        # Refuse keys that cannot be a header value without echoing them: h11 would put the
        # whole value into its exception text.
        if not admin_key or not admin_key.isascii() or not admin_key.isprintable():
            raise ValueError("admin key is empty or has characters not allowed in a header")
        if any(ch.isspace() for ch in admin_key):
            raise ValueError("admin key contains whitespace")
        if max_pages < 1:
            raise ValueError("max_pages must be at least 1")
        self._http = http
        self._admin_key = admin_key
        self._retry = retry
        self._sleep = sleep
        self._max_pages = max_pages

    def __repr__(self) -> str:
        return f"AdminClient(base_url={str(self._http.base_url)!r}, admin_key=<redacted>)"

    def usage_pages(
        self,
        starting_at: datetime,
        ending_at: datetime | None = None,
        *,
        bucket_width: BucketWidth = "1h",
        group_by: Sequence[str] = ALL_GROUP_BY,
        api_key_ids: Sequence[str] = (),
        workspace_ids: Sequence[str] = (),
        models: Sequence[str] = (),
        service_tiers: Sequence[str] = (),
    ) -> Iterator[UsagePage]:
        """Yield each validated page of the messages usage report, oldest buckets first.

        Raises ValueError for naive datetimes, an unknown width or an unsupported grouping.
        """
        if bucket_width not in MAX_BUCKETS_PER_PAGE:
            raise ValueError(f"bucket_width must be one of 1m, 1h, 1d, not {bucket_width!r}")
        _check_choices("group_by", group_by, ALL_GROUP_BY)
        params = _time_params(starting_at, ending_at)
        params += [("bucket_width", bucket_width)]
        params += [("limit", str(MAX_BUCKETS_PER_PAGE[bucket_width]))]
        params += _array_params("group_by[]", group_by)
        params += _array_params("api_key_ids[]", api_key_ids)
        params += _array_params("workspace_ids[]", workspace_ids)
        params += _array_params("models[]", models)
        params += _array_params("service_tiers[]", service_tiers)

        def parse(answer: object) -> UsagePage:
            assert isinstance(answer, Undecoded)  # asked for undecoded below
            return decode_usage_page(answer.response, bucket_width, answer.label, USAGE_PATH)

        return self._report_pages(USAGE_PATH, "usage report", params, parse, undecoded=True)

    def usage(
        self,
        starting_at: datetime,
        ending_at: datetime | None = None,
        *,
        bucket_width: BucketWidth = "1h",
        group_by: Sequence[str] = ALL_GROUP_BY,
        api_key_ids: Sequence[str] = (),
        workspace_ids: Sequence[str] = (),
        models: Sequence[str] = (),
        service_tiers: Sequence[str] = (),
    ) -> list[UsageRow]:
        """Return the rows of every page of the usage report (see ``usage_pages``)."""
        pages = self.usage_pages(
            starting_at,
            ending_at,
            bucket_width=bucket_width,
            group_by=group_by,
            api_key_ids=api_key_ids,
            workspace_ids=workspace_ids,
            models=models,
            service_tiers=service_tiers,
        )
        return [row for page in pages for row in page.rows]

    def cost_report(
        self,
        starting_at: datetime,
        ending_at: datetime | None = None,
        *,
        group_by: Sequence[str] = COST_GROUP_BY,
    ) -> list[CostRow]:
        """Return every daily cost row, with Anthropic's cents converted to ``amount_usd``."""
        _check_choices("group_by", group_by, COST_GROUP_BY)
        params = _time_params(starting_at, ending_at)
        params += [("bucket_width", "1d"), ("limit", str(MAX_BUCKETS_PER_PAGE["1d"]))]
        params += _array_params("group_by[]", group_by)
        pages = self._report_pages(COST_PATH, "cost report", params, parse_cost_page)
        return [row for page in pages for row in page.rows]

    def analytics_usage(
        self,
        starting_at: datetime,
        ending_at: datetime,
        width: BucketWidth = "1h",
        group_by: Sequence[str] = DEFAULT_ANALYTICS_GROUP_BY,
        *,
        page_size: int = MAX_PAGE_ROWS,
    ) -> AnalyticsRead[AnalyticsUsageRow]:
        """Every usage row of the Analytics API (beta) in ``[starting_at, ending_at)``.

        Raises ValueError before any request for naive datetimes, an unknown width or grouping.
        """
        queries = analytics_queries(
            starting_at, ending_at, width, group_by, cost=False, page_size=page_size
        )
        what = "analytics usage"
        pages = self._analytics_pages(
            ANALYTICS_USAGE_PATH, what, queries, decode_analytics_usage_page
        )
        return combine_pages(pages, what)

    def analytics_cost(
        self,
        starting_at: datetime,
        ending_at: datetime,
        width: BucketWidth = "1h",
        group_by: Sequence[str] = DEFAULT_ANALYTICS_GROUP_BY,
        *,
        page_size: int = MAX_PAGE_ROWS,
    ) -> AnalyticsRead[AnalyticsCostRow]:
        """Every cost row of the Analytics API (beta), cents converted to exact USD.

        ``group_by`` may add ``cost_type`` and ``token_type``. Raises as ``analytics_usage``.
        """
        queries = analytics_queries(
            starting_at, ending_at, width, group_by, cost=True, page_size=page_size
        )
        what = "analytics cost"
        pages = self._analytics_pages(
            ANALYTICS_COST_PATH, what, queries, decode_analytics_cost_page
        )
        return combine_pages(pages, what)

    def api_key_names(self) -> dict[str, str]:
        """Return ``{api key id: name}`` for every key the organization has."""
        return self._names(API_KEYS_PATH, "API key list", [])

    def workspace_names(self) -> dict[str, str]:
        """Return ``{workspace id: name}``, archived workspaces included (old usage names them).

        Usage reports the default workspace as ``workspace_id=None``; it has no entry here.
        """
        return self._names(WORKSPACES_PATH, "workspace list", [("include_archived", "true")])

    def organization_name(self) -> str:
        """Return the organization's name from ``/v1/organizations/me``."""
        label = "organization"
        body = self._request(ORGANIZATION_PATH, [], label)
        try:
            return req_str(as_object(body, "body"), "name", "body")
        except Invalid as exc:
            raise exc.malformed(label, ORGANIZATION_PATH) from None

    def _analytics_pages(
        self,
        path: str,
        what: str,
        queries: list[list[tuple[str, str]]],
        decode: Callable[[httpx.Response, str, str], AnalyticsPage[RowT]],
    ) -> Iterator[AnalyticsPage[RowT]]:
        """Every page of every window's request, with the beta header; ``decode`` reads a
        page's answer (its label and ``path`` name it in errors)."""

        def parse(answer: object) -> AnalyticsPage[RowT]:
            assert isinstance(answer, Undecoded)  # asked for undecoded below
            return decode(answer.response, answer.label, path)

        for number, query in enumerate(queries, 1):
            label = what if len(queries) == 1 else f"{what} window {number} of {len(queries)}"
            yield from self._report_pages(
                path, label, query, parse, beta=ANALYTICS_BETA, undecoded=True
            )

    def _report_pages(
        self,
        path: str,
        what: str,
        params: list[tuple[str, str]],
        parse: Callable[[object], _PageT],
        *,
        beta: str | None = None,
        undecoded: bool = False,
    ) -> Iterator[_PageT]:
        """Follow ``next_page`` until ``has_more`` is false; raise if the cursor stops moving.

        ``parse`` gets each page's decoded JSON, or its successful answer as :class:`Undecoded`
        when ``undecoded`` (a parser that decodes the bytes itself)."""
        cursor: str | None = None
        used: set[str] = set()
        number = 0
        while True:
            number += 1
            self._check_page_budget(what, number)
            query = params if cursor is None else [*params, ("page", cursor)]
            label = f"{what} page {number}"
            body = self._request(path, query, label, beta=beta, undecoded=undecoded)
            if undecoded:
                assert isinstance(body, httpx.Response)
                body = Undecoded(body, label)
            try:
                page = parse(body)
            except Invalid as exc:
                raise exc.malformed(label, path) from None
            if not page.has_more:
                yield page
                return
            if page.next_page is None or page.next_page in used:
                raise AdminAPIError(
                    f"{label}: has_more is true but the cursor did not advance "
                    f"(next_page {'missing' if page.next_page is None else 'repeats'}); "
                    f"stopped paging GET {path}"
                )
            yield page
            cursor = page.next_page
            used.add(cursor)

    def _names(self, path: str, what: str, extra: list[tuple[str, str]]) -> dict[str, str]:
        names: dict[str, str] = {}
        after: str | None = None
        used: set[str] = set()
        number = 0
        while True:
            number += 1
            self._check_page_budget(what, number)
            query = [*extra, ("limit", str(NAMES_PAGE_LIMIT))]
            if after is not None:
                query.append(("after_id", after))
            label = f"{what} page {number}"
            body = self._request(path, query, label)
            try:
                page_names, has_more, last_id = parse_names_page(body)
            except Invalid as exc:
                raise exc.malformed(label, path) from None
            names.update(page_names)
            if not has_more:
                return names
            if last_id is None or last_id in used:
                raise AdminAPIError(
                    f"{label}: has_more is true but the cursor did not advance "
                    f"(last_id {'missing' if last_id is None else 'repeats'}); "
                    f"stopped paging GET {path}"
                )
            after = last_id
            used.add(last_id)

    def _check_page_budget(self, what: str, number: int) -> None:
        if number > self._max_pages:
            raise AdminAPIError(
                f"{what}: more than {self._max_pages} pages; the cursor did not advance "
                "to an end, stopped paging"
            )

    def _request(
        self,
        path: str,
        params: list[tuple[str, str]],
        label: str,
        *,
        beta: str | None = None,
        undecoded: bool = False,
    ) -> object:
        """GET ``path`` and return its decoded JSON body (the response itself when
        ``undecoded``), retrying transient failures.

        Raises AdminAPIError (transient when retries ran out), AdminAPIAuthError for 401/403,
        MalformedResponse when a successful answer is not JSON.
        """
        headers = {"x-api-key": self._admin_key, "anthropic-version": ANTHROPIC_VERSION}
        if beta is not None:
            headers["anthropic-beta"] = beta
        policy = self._retry
        for attempt in range(policy.max_retries + 1):
            retry_after: float | None = None
            try:
                response = _unlinked(self._http.get(path, params=tuple(params), headers=headers))
            except httpx.UnsupportedProtocol as exc:
                raise AdminAPIError(self._redact(f"GET {path}: {exc}")) from None
            except httpx.TransportError as exc:
                failure = AdminAPIError(
                    self._redact(f"GET {path}: {type(exc).__name__}: {exc}"), transient=True
                )
            except httpx.HTTPError as exc:
                raise AdminAPIError(
                    self._redact(f"GET {path}: {type(exc).__name__}: {exc}")
                ) from None
            else:
                if response.is_success:
                    return response if undecoded else decode_json(response, label, path)
                failure = self._error_for(response, path)
                if not failure.transient:
                    raise failure
                retry_after = retry_after_seconds(response.headers.get("retry-after"))

            if attempt == policy.max_retries:
                raise gave_up(failure, f"gave up after {attempt + 1} attempts")
            if retry_after is not None and retry_after > policy.retry_after_cap:
                raise gave_up(
                    failure,
                    f"retry-after {retry_after:.0f}s exceeds the {policy.retry_after_cap:.0f}s "
                    "cap; not waiting",
                )
            wait = policy.delay(attempt, retry_after)
            log.warning(
                "Admin API GET %s failed (%s); retry %d of %d in %.1fs",
                path,
                short_reason(failure),
                attempt + 1,
                policy.max_retries,
                wait,
            )
            self._sleep(wait)
        raise AssertionError("unreachable: the loop returns or raises")  # pragma: no cover

    def _error_for(self, response: httpx.Response, path: str) -> AdminAPIError:
        return error_for_answer(response, path, self._redact)

    def _redact(self, text: str) -> str:
        """Remove the admin key from text that came from elsewhere (server or library)."""
        return text.replace(self._admin_key, "<redacted>")


def _format_timestamp(value: datetime, name: str) -> str:
    """RFC 3339 in UTC with a ``Z``; seconds precision is all the API snaps to."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be an aware datetime (UTC), got naive {value.isoformat()}")
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _time_params(starting_at: datetime, ending_at: datetime | None) -> list[tuple[str, str]]:
    params = [("starting_at", _format_timestamp(starting_at, "starting_at"))]
    if ending_at is not None:
        params.append(("ending_at", _format_timestamp(ending_at, "ending_at")))
        if ending_at <= starting_at:
            raise ValueError("ending_at must be after starting_at")
    return params


def _array_params(name: str, values: Sequence[str]) -> list[tuple[str, str]]:
    # A bare str is a Sequence[str] too; iterating it would send one character per value.
    if isinstance(values, str):
        raise TypeError(f"{name.removesuffix('[]')} takes a sequence of strings, not a string")
    return [(name, value) for value in values]


def _check_choices(name: str, values: Sequence[str], allowed: Sequence[str]) -> None:
    if isinstance(values, str):
        raise TypeError(f"{name} takes a sequence of strings, not a string")
    unknown = [value for value in values if value not in allowed]
    if unknown:
        raise ValueError(f"{name} does not support {unknown}; choose from {list(allowed)}")


def _unlinked(response: httpx.Response) -> httpx.Response:
    """``response`` (read whole) with a stream that no longer points back at it.

    httpx leaves a read response and its client-bound stream in a reference cycle, which only
    the cyclic collector frees, and rarely: the pages of a backfill, megabytes each, piled up
    between its full passes (hundreds of MiB). Without the cycle a page is freed when it has
    been parsed.
    """
    response.stream = httpx.ByteStream(response.content)
    return response
