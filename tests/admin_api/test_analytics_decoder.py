"""The msgspec decoder of Analytics API pages against the hand-written parser (the reference).

Every way the parser refuses a page is still refused, with the parser's message; random valid
pages (unknown fields, absent optional keys, amounts as strings or numbers, timestamps with
offsets) and then the same with one value broken decode to exactly what the parser returns; so
do the simulator's pages over real sockets, in every grouping the collector reads.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from service.admin_api.analytics import (
    ANALYTICS_BETA,
    ANALYTICS_COST_PATH,
    ANALYTICS_GROUP_BY,
    ANALYTICS_USAGE_PATH,
    ATTRIBUTION_GROUP_BY,
    DEFAULT_ANALYTICS_GROUP_BY,
    analytics_queries,
)
from service.admin_api.analytics_decoder import (
    decode_analytics_cost_page,
    decode_analytics_usage_page,
)
from service.admin_api.analytics_wire import (
    AnalyticsPage,
    parse_analytics_cost_page,
    parse_analytics_usage_page,
)
from service.admin_api.answers import decode_json
from service.admin_api.client import ANTHROPIC_VERSION
from service.admin_api.wire import Invalid
from service.errors import MalformedResponse
from service.http import build_http_client
from service.simulator import ManualClock, SimulatorServer, Workload, WorkloadSpec
from tests.helpers import changed

LABEL = "analytics usage page 1"
DIMENSIONS = tuple(name for name in ANALYTICS_GROUP_BY if name != "actor")
"""Every string dimension a group may hold (``actor`` is an object)."""
COST_DIMENSIONS = ("cost_type", "token_type")
COUNTS = ("uncached_input_tokens", "cache_read_input_tokens", "output_tokens", "total_tokens")
BROKEN_VALUES: tuple[object, ...] = (None, -1, 1.5, 2.0, True, "7", [], {})
ACTOR_KINDS = {
    "user_actor": "user_id",
    "service_account_actor": "service_account_id",
    "api_actor": "api_key_id",
    "federated_actor": "subject",
}

Parse = Callable[[httpx.Response], AnalyticsPage[Any]]


def reference(*, cost: bool) -> Parse:
    """The hand-written parser on ``json.loads``'s dicts, as the client read pages before."""
    parse = parse_analytics_cost_page if cost else parse_analytics_usage_page
    path = ANALYTICS_COST_PATH if cost else ANALYTICS_USAGE_PATH
    return lambda response: parse(decode_json(response, LABEL, path))


def decoder(*, cost: bool) -> Parse:
    decode = decode_analytics_cost_page if cost else decode_analytics_usage_page
    path = ANALYTICS_COST_PATH if cost else ANALYTICS_USAGE_PATH
    return lambda response: decode(response, LABEL, path)


def outcome(parse: Parse, response: httpx.Response) -> tuple[object, ...]:
    """The page and its repr (which tells Decimal('1.5') from Decimal('1.50'), and time zones
    apart), or the error the page was refused with."""
    try:
        page = parse(response)
    except Invalid as exc:
        return ("invalid", exc.where, exc.problem)
    except MalformedResponse as exc:
        return ("malformed", str(exc))
    return ("page", page, repr(page))


def answer(page: object) -> httpx.Response:
    return httpx.Response(200, content=json.dumps(page).encode())


def agree(page: object, *, cost: bool) -> tuple[object, ...]:
    """The outcome of both readers on ``page``, asserted equal."""
    response = answer(page)
    expected = outcome(reference(cost=cost), response)
    assert outcome(decoder(cost=cost), response) == expected
    return expected


counts = st.integers(0, 10**12)
names = st.none() | st.sampled_from(["claude-opus-4-6", "wrkspc_01", "apikey_01", "priority"])
# Cents as the API sends them (decimal strings), and as numbers, which the parser also takes.
amounts = (
    st.decimals(min_value=0, max_value=10**9, places=5).map(str)
    | st.sampled_from(["150", "0", " 1.5 ", "1e2", "1_000", "0.000001"])
    | st.integers(0, 10**6)
    | st.sampled_from([1.5, 0.25, 1e-7])
)


@st.composite
def actors(draw: st.DrawFn) -> dict[str, Any] | None:
    if draw(st.booleans()):
        return None
    kind = draw(st.sampled_from([*ACTOR_KINDS, "robot_actor"]))
    actor: dict[str, Any] = {"type": kind}
    if kind in ACTOR_KINDS:
        actor[ACTOR_KINDS[kind]] = draw(st.sampled_from(["user_01", "svc_01", "apikey_01"]))
    for name in ("email_address", "name"):
        if draw(st.booleans()):
            actor[name] = draw(st.none() | st.just("ada@example.com"))
    return actor


@st.composite
def groups(draw: st.DrawFn, *, cost: bool) -> dict[str, Any]:
    group: dict[str, Any] = {}
    for name in DIMENSIONS + (COST_DIMENSIONS if cost else ()):
        if draw(st.booleans()):
            group[name] = draw(names)
    if not cost and draw(st.booleans()):
        group["cost_type"] = 5  # not a usage dimension: never read, so never refused
    if draw(st.booleans()):
        group["actor"] = draw(actors())
    return group


@st.composite
def usages(draw: st.DrawFn) -> dict[str, Any]:
    usage: dict[str, Any] = {name: draw(counts) for name in COUNTS}
    if draw(st.booleans()):
        cache: dict[str, Any] = {}
        for name in ("ephemeral_5m_input_tokens", "ephemeral_1h_input_tokens"):
            if draw(st.booleans()):
                cache[name] = draw(counts)
        usage["cache_creation"] = cache
    if draw(st.booleans()):
        usage["server_tool_use"] = {"web_search_requests": draw(counts)}
    if draw(st.booleans()):
        usage["requests"] = draw(st.none() | counts)
    return usage


@st.composite
def costs(draw: st.DrawFn) -> dict[str, Any]:
    cost: dict[str, Any] = {
        "amount": draw(amounts),
        "list_amount": draw(amounts),
        "currency": "USD",
    }
    if draw(st.booleans()):
        cost["requests"] = draw(st.none() | counts)
    return cost


@st.composite
def pages(draw: st.DrawFn, *, cost: bool) -> dict[str, Any]:
    data = []
    for _ in range(draw(st.integers(0, 4))):
        hour = draw(st.integers(0, 3))
        offset = draw(st.sampled_from(["Z", "+00:00", "+02:00", ".0000009Z"]))
        local = hour + (2 if offset == "+02:00" else 0)
        row: dict[str, Any] = {
            "starting_at": f"2026-03-05T{local:02d}:00:00{offset}",
            "ending_at": f"2026-03-05T{local + 1:02d}:00:00{offset}",
            "group": draw(groups(cost=cost)),
            "cost" if cost else "usage": draw(costs() if cost else usages()),
        }
        if draw(st.booleans()):
            row["a_field_added_later"] = {"nested": [1, "two", 3.5]}
        data.append(row)
    page: dict[str, Any] = {"data": data, "has_more": draw(st.booleans())}
    if draw(st.booleans()):
        page["next_page"] = draw(st.none() | st.just("page_2"))
    if draw(st.booleans()):
        page["data_refreshed_at"] = draw(
            st.none() | st.sampled_from(["2026-03-05T04:00:00Z", "2026-03-05T06:00:00+02:00"])
        )
    return page


def break_one(page: dict[str, Any], data: st.DataObject, *, cost: bool) -> None:
    """Break one value somewhere in the page, in place."""
    section = "cost" if cost else "usage"
    targets = ["envelope"] + (["row", "group", "actor", section] if page["data"] else [])
    target = data.draw(st.sampled_from(targets))
    if target == "envelope":
        key = data.draw(st.sampled_from(["data", "has_more", "next_page", "data_refreshed_at"]))
        page[key] = data.draw(st.sampled_from([*BROKEN_VALUES, "soon", "2026-03-05T00:00:00"]))
        return
    row = data.draw(st.sampled_from(page["data"]))
    if target == "row":
        break_bounds(row, data, section)
    elif target == "group":
        if data.draw(st.booleans()):
            name = data.draw(st.sampled_from(DIMENSIONS + (COST_DIMENSIONS if cost else ())))
            row["group"][name] = data.draw(st.sampled_from([1, True, [], {}]))
        else:
            page["data"].append(copy.deepcopy(row))
    elif target == "actor":
        row["group"]["actor"] = broken_actor(data)
    elif cost:
        key = data.draw(st.sampled_from(["amount", "list_amount", "currency", "requests"]))
        broken = [*BROKEN_VALUES, "-0.5", "n/a", "NaN", "Infinity", "", -1.5, "EUR", ...]
        value = data.draw(st.sampled_from(broken))
        if value is ...:
            row["cost"].pop(key, None)
        else:
            row["cost"][key] = value
    else:
        break_usage(row["usage"], data)


def break_bounds(row: dict[str, Any], data: st.DataObject, section: str) -> None:
    how = data.draw(st.sampled_from(["naive", "lowercase", "backwards", "value", "missing"]))
    key = data.draw(st.sampled_from(["starting_at", "ending_at", "group", section]))
    if how == "naive":
        row["starting_at"] = "2026-03-05T00:00:00"
    elif how == "lowercase":  # RFC 3339 allows it, fromisoformat (the parser) does not
        row["starting_at"] = row["starting_at"].lower()
    elif how == "backwards":
        row["starting_at"], row["ending_at"] = row["ending_at"], row["starting_at"]
    elif how == "value":
        row[key] = data.draw(st.sampled_from(BROKEN_VALUES))
    else:
        del row[key]


def broken_actor(data: st.DataObject) -> object:
    kind = data.draw(st.sampled_from(list(ACTOR_KINDS)))
    actor: dict[str, Any] = {"type": kind, ACTOR_KINDS[kind]: "id_01"}
    how = data.draw(st.sampled_from(["id", "type", "email", "whole"]))
    if how == "whole":
        return data.draw(st.sampled_from(["user_01", 5, []]))
    if how == "id":
        actor[ACTOR_KINDS[kind]] = data.draw(st.sampled_from([None, 5, ...]))
    elif how == "type":
        actor["type"] = data.draw(st.sampled_from([None, 5, ...]))
    else:
        actor["email_address"] = 5
    return {k: v for k, v in actor.items() if v is not ...}


def break_usage(usage: dict[str, Any], data: st.DataObject) -> None:
    how = data.draw(st.sampled_from(["count", "nested", "missing", "requests"]))
    if how == "count":
        usage[data.draw(st.sampled_from(COUNTS))] = data.draw(st.sampled_from(BROKEN_VALUES))
    elif how == "nested":
        usage[data.draw(st.sampled_from(["cache_creation", "server_tool_use"]))] = data.draw(
            st.sampled_from(
                [None, [], {"ephemeral_5m_input_tokens": None}, {"web_search_requests": -1}]
            )
        )
    elif how == "missing":
        del usage[data.draw(st.sampled_from(COUNTS))]
    else:
        usage["requests"] = data.draw(st.sampled_from([-1, 1.5, True, "1"]))


@settings(max_examples=300, deadline=None)
@given(st.booleans(), st.data())
def test_a_valid_page_decodes_to_what_the_parser_returns(cost: bool, data: st.DataObject) -> None:
    """On random valid pages the decoder returns exactly the parser's page (types, exponents)."""
    page = data.draw(pages(cost=cost))
    agree(page, cost=cost)


@settings(max_examples=800, deadline=None)
@given(st.booleans(), st.data())
def test_a_broken_page_is_refused_with_the_parsers_message(cost: bool, data: st.DataObject) -> None:
    """With one value broken, both refuse the page with the same message (or both accept it)."""
    page = data.draw(pages(cost=cost))
    break_one(page, data, cost=cost)
    agree(page, cost=cost)


USAGE_ROW: dict[str, Any] = {
    "starting_at": "2026-03-05T00:00:00Z",
    "ending_at": "2026-03-05T01:00:00Z",
    "group": {
        "model": "claude-opus-4-6",
        "workspace_id": "wrkspc_01",
        "actor": {"type": "user_actor", "user_id": "user_01"},
    },
    "usage": {
        "uncached_input_tokens": 10,
        "cache_read_input_tokens": 3,
        "output_tokens": 4,
        "total_tokens": 17,
        "requests": 2,
    },
}
COST_ROW: dict[str, Any] = {
    "starting_at": "2026-03-05T00:00:00Z",
    "ending_at": "2026-03-05T01:00:00Z",
    "group": {"model": "claude-opus-4-6", "cost_type": "tokens", "token_type": "output"},
    "cost": {"amount": "123.78912", "list_amount": "150", "currency": "USD", "requests": 3},
}


def body(*rows: dict[str, Any], **envelope: object) -> dict[str, Any]:
    return {"data": list(rows), "has_more": False, "next_page": None, **envelope}


# Every branch by which the hand-written parser refuses a page, with where it says it is.
ENVELOPE_CASES: list[tuple[object, str]] = [
    ([], "body"),
    ({"has_more": False}, "body.data"),
    ({"data": {}, "has_more": False}, "body.data"),
    ({"data": []}, "body.has_more"),
    ({"data": [], "has_more": "no"}, "body.has_more"),
    ({"data": [], "has_more": True, "next_page": 5}, "body.next_page"),
    (body(data_refreshed_at="soon"), "body.data_refreshed_at"),
    (body(data_refreshed_at=5), "body.data_refreshed_at"),
    (body(data_refreshed_at="2026-03-05T00:00:00"), "body.data_refreshed_at"),
    ({"data": [5], "has_more": False}, "data[0]"),
]
ROW_CASES: list[tuple[str, object, str]] = [
    ("starting_at", ..., "data[0].starting_at"),
    ("starting_at", 5, "data[0].starting_at"),
    ("starting_at", "yesterday", "data[0].starting_at"),
    ("starting_at", "2026-03-05T00:00:00", "data[0].starting_at"),
    ("starting_at", "2026-03-05t00:00:00z", "data[0].starting_at"),
    ("ending_at", ..., "data[0].ending_at"),
    ("ending_at", "2026-03-05T00:00:00Z", "data[0]"),
    ("ending_at", "2026-03-04T23:00:00Z", "data[0]"),
    ("group", ..., "data[0].group"),
    ("group", None, "data[0].group"),
    ("group.model", 5, "data[0].group.model"),
    ("group.workspace_id", True, "data[0].group.workspace_id"),
    ("group.actor", "user_01", "data[0].group.actor"),
    ("group.actor", {}, "data[0].group.actor.type"),
    ("group.actor", {"type": 5}, "data[0].group.actor.type"),
    ("group.actor", {"type": "user_actor"}, "data[0].group.actor.user_id"),
    ("group.actor", {"type": "user_actor", "user_id": None}, "data[0].group.actor.user_id"),
    (
        "group.actor",
        {"type": "service_account_actor"},
        "data[0].group.actor.service_account_id",
    ),
    ("group.actor", {"type": "api_actor", "api_key_id": 5}, "data[0].group.actor.api_key_id"),
    ("group.actor", {"type": "federated_actor", "subject": 5}, "data[0].group.actor.subject"),
    (
        "group.actor",
        {"type": "robot_actor", "email_address": 5},
        "data[0].group.actor.email_address",
    ),
    ("group.actor", {"type": "robot_actor", "name": []}, "data[0].group.actor.name"),
]
USAGE_CASES: list[tuple[str, object, str]] = [
    ("usage", ..., "data[0].usage"),
    ("usage", [], "data[0].usage"),
    ("usage.uncached_input_tokens", ..., "data[0].usage.uncached_input_tokens"),
    ("usage.uncached_input_tokens", True, "data[0].usage.uncached_input_tokens"),
    ("usage.cache_read_input_tokens", -1, "data[0].usage.cache_read_input_tokens"),
    ("usage.output_tokens", 1.5, "data[0].usage.output_tokens"),
    ("usage.output_tokens", 2.0, "data[0].usage.output_tokens"),
    ("usage.output_tokens", "4", "data[0].usage.output_tokens"),
    ("usage.output_tokens", None, "data[0].usage.output_tokens"),
    ("usage.total_tokens", ..., "data[0].usage.total_tokens"),
    ("usage.requests", "1", "data[0].usage.requests"),
    ("usage.requests", -1, "data[0].usage.requests"),
    ("usage.cache_creation", None, "data[0].usage.cache_creation"),
    ("usage.cache_creation", [], "data[0].usage.cache_creation"),
    (
        "usage.cache_creation",
        {"ephemeral_1h_input_tokens": None},
        "data[0].usage.cache_creation.ephemeral_1h_input_tokens",
    ),
    ("usage.server_tool_use", None, "data[0].usage.server_tool_use"),
    (
        "usage.server_tool_use",
        {"web_search_requests": -2},
        "data[0].usage.server_tool_use.web_search_requests",
    ),
]
COST_CASES: list[tuple[str, object, str]] = [
    ("cost", ..., "data[0].cost"),
    ("cost", "free", "data[0].cost"),
    ("group.cost_type", 5, "data[0].group.cost_type"),
    ("group.token_type", [], "data[0].group.token_type"),
    ("cost.currency", ..., "data[0].cost.currency"),
    ("cost.currency", None, "data[0].cost.currency"),
    ("cost.currency", "EUR", "data[0].cost.currency"),
    ("cost.amount", ..., "data[0].cost.amount"),
    ("cost.amount", None, "data[0].cost.amount"),
    ("cost.amount", True, "data[0].cost.amount"),
    ("cost.amount", [], "data[0].cost.amount"),
    ("cost.amount", "n/a", "data[0].cost.amount"),
    ("cost.amount", "", "data[0].cost.amount"),
    ("cost.amount", "NaN", "data[0].cost.amount"),
    ("cost.amount", "Infinity", "data[0].cost.amount"),
    ("cost.amount", "-0.5", "data[0].cost.amount"),
    ("cost.amount", -1, "data[0].cost.amount"),
    ("cost.amount", -0.25, "data[0].cost.amount"),
    ("cost.list_amount", ..., "data[0].cost.list_amount"),
    ("cost.list_amount", "n/a", "data[0].cost.list_amount"),
    ("cost.list_amount", "-1", "data[0].cost.list_amount"),
    ("cost.requests", -1, "data[0].cost.requests"),
    ("cost.requests", 1.5, "data[0].cost.requests"),
]


def refused(page: object, where: str, *, cost: bool) -> None:
    kind, *detail = agree(page, cost=cost)
    assert (kind, detail[0]) == ("invalid", where)


@pytest.mark.parametrize(("page", "where"), ENVELOPE_CASES)
@pytest.mark.parametrize("cost", [False, True])
def test_an_envelope_out_of_shape_is_refused_as_before(
    page: object, where: str, cost: bool
) -> None:
    """A body, ``data``, ``has_more``, ``next_page`` or watermark out of shape: the parser's
    error, at its place."""
    refused(page, where, cost=cost)


@pytest.mark.parametrize(("path", "value", "where"), ROW_CASES)
@pytest.mark.parametrize("cost", [False, True])
def test_a_row_out_of_shape_is_refused_as_before(
    path: str, value: object, where: str, cost: bool
) -> None:
    """A bound, group dimension or actor out of shape: the parser's error, at its place."""
    refused(body(changed(COST_ROW if cost else USAGE_ROW, path, value)), where, cost=cost)


@pytest.mark.parametrize(("path", "value", "where"), USAGE_CASES)
def test_a_usage_section_out_of_shape_is_refused_as_before(
    path: str, value: object, where: str
) -> None:
    """A count missing, negative, a boolean, a float, a string or null: the parser's error."""
    refused(body(changed(USAGE_ROW, path, value)), where, cost=False)


@pytest.mark.parametrize(("path", "value", "where"), COST_CASES)
def test_a_cost_section_out_of_shape_is_refused_as_before(
    path: str, value: object, where: str
) -> None:
    """An amount that is not finite non-negative cents, a currency other than USD, a bad
    ``requests`` or cost dimension: the parser's error."""
    refused(body(changed(COST_ROW, path, value)), where, cost=True)


@pytest.mark.parametrize("cost", [False, True])
def test_a_second_row_for_one_bucket_and_group_is_refused_as_before(cost: bool) -> None:
    """A repeated row, even with its bucket spelled in another offset, rejects the page."""
    row = COST_ROW if cost else USAGE_ROW
    again = changed(row, "starting_at", "2026-03-05T02:00:00+02:00")
    again["group"] = dict(reversed(again["group"].items()))
    refused(body(row, changed(row, "group.speed", "fast"), again), "data[2]", cost=cost)
    page = agree(body(row, changed(row, "starting_at", "2026-03-04T23:00:00Z")), cost=cost)
    assert page[0] == "page"


@pytest.mark.parametrize(
    "content", [b"", b"<html>busy</html>", b"[1, 2", b'{"data": [], "has_more": NaN}']
)
@pytest.mark.parametrize("cost", [False, True])
def test_a_body_that_is_not_json_is_malformed_as_before(content: bytes, cost: bool) -> None:
    """Not JSON at all: MalformedResponse naming the page and the request, as before."""
    response = httpx.Response(200, content=content, headers={"content-type": "text/html"})
    result = outcome(decoder(cost=cost), response)
    assert result[0] == "malformed"
    assert str(result[1]).startswith(f"{LABEL}: GET /v1/organizations/analytics/")
    assert result == outcome(reference(cost=cost), response)


def refuse_by_hand(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_: object) -> None:
        raise AssertionError("the hand-written parser ran")

    for name in ("parse_analytics_usage_page", "parse_analytics_cost_page"):
        monkeypatch.setattr(f"service.admin_api.analytics_decoder.{name}", refuse)


def read_fast(
    monkeypatch: pytest.MonkeyPatch, response: httpx.Response, *, cost: bool
) -> AnalyticsPage[Any]:
    """The page the decoder reads of ``response`` without the hand-written parser, checked
    equal (values and repr) to what that parser reads of it."""
    expected = outcome(reference(cost=cost), response)
    refuse_by_hand(monkeypatch)
    result = outcome(decoder(cost=cost), response)
    assert result == expected
    page = result[1]
    assert isinstance(page, AnalyticsPage)
    return page


@pytest.mark.parametrize(
    ("amount", "usd"),
    [
        ('"123.78912"', "1.2378912"),
        ('" 150 "', "1.50"),
        ('"1e2"', "1"),
        ('"0.000001"', "1E-8"),
        ("150", "1.50"),
        ("1.50", "0.0150"),
        ("1E-7", "1E-9"),
        ("123456789012345678901234567", "1234567890123456789012345.67"),
        ('"-0"', "-0.00"),
    ],
)
def test_amounts_as_strings_or_numbers_are_exact_cents_without_float(
    monkeypatch: pytest.MonkeyPatch, amount: str, usd: str
) -> None:
    """A decimal string or a JSON number of cents is read exactly (never through float), on
    the fast path, to what the parser gives (the same digits and exponent)."""
    content = json.dumps(body(COST_ROW)).replace('"123.78912"', amount).encode()
    response = httpx.Response(200, content=content)
    page = read_fast(monkeypatch, response, cost=True)
    assert str(page.rows[0].amount_usd) == usd


@pytest.mark.parametrize("cost", [False, True])
def test_the_fast_path_is_taken_for_a_valid_page(
    monkeypatch: pytest.MonkeyPatch, cost: bool
) -> None:
    """A valid page (unknown fields, null dimensions, a newer actor kind) never reaches the
    hand-written parser, which would cost the time saved."""
    row = changed(COST_ROW if cost else USAGE_ROW, "group.actor", {"type": "robot_actor"})
    row["group"]["api_key_id"] = None
    row["cost" if cost else "usage"]["a_field_added_later"] = {"x": [1.5]}
    response = answer(body(row, data_refreshed_at="2026-03-05T02:00:00.1234567+01:00"))
    page = read_fast(monkeypatch, response, cost=cost)
    assert page.data_refreshed_at == datetime(2026, 3, 5, 1, 0, 0, 123456, tzinfo=UTC)
    assert page.rows[0].group.actor is not None
    assert (page.rows[0].group.actor.type, page.rows[0].group.actor.id) == ("robot_actor", None)


START = datetime(2026, 3, 4, tzinfo=UTC)
NOW = datetime(2026, 3, 6, 12, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("cost", "group_by"),
    [
        (False, DEFAULT_ANALYTICS_GROUP_BY),
        (False, ATTRIBUTION_GROUP_BY),
        (False, ()),
        (True, DEFAULT_ANALYTICS_GROUP_BY),
        (True, ATTRIBUTION_GROUP_BY),
        (True, ("workspace_id", "model", "cost_type", "token_type")),
    ],
)
def test_the_simulators_pages_decode_to_what_the_parser_returns(
    monkeypatch: pytest.MonkeyPatch, cost: bool, group_by: tuple[str, ...]
) -> None:
    """Every page of two and a half days of hourly rows (paged by 200, the newest buckets still
    growing) decodes exactly to the parser's page, on the fast path."""
    workload = Workload(WorkloadSpec(seed=5, start=START, n_workspaces=2, n_keys=6))
    key = "sk-ant-admin01-decoder-test-key"
    path = ANALYTICS_COST_PATH if cost else ANALYTICS_USAGE_PATH
    headers = {"x-api-key": key, "anthropic-version": ANTHROPIC_VERSION}
    headers["anthropic-beta"] = ANALYTICS_BETA
    queries = analytics_queries(
        START, NOW + timedelta(hours=1), "1h", group_by, cost=cost, page_size=200
    )
    refuse_by_hand(monkeypatch)
    rows = 0
    with (
        SimulatorServer(workload, admin_key=key, clock=ManualClock(NOW)) as sim,
        build_http_client(sim.base_url) as http,
    ):
        for query in queries:
            cursor: str | None = None
            while True:
                params = query if cursor is None else [*query, ("page", cursor)]
                response = http.get(path, params=tuple(params), headers=headers)
                assert response.status_code == 200
                expected = reference(cost=cost)(response)
                assert decoder(cost=cost)(response) == expected
                assert repr(decoder(cost=cost)(response)) == repr(expected)
                rows += len(expected.rows)
                if not expected.has_more:
                    break
                cursor = expected.next_page
    assert rows > 50
