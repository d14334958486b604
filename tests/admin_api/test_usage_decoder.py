"""The msgspec decoder of usage pages against the hand-written parser, on random pages.

Valid pages with unknown fields, absent optional objects and keys, and then one value broken
in each of the ways the API could break it (missing, null, negative, a float, a boolean, a
string, a timestamp without offset, an end before the start, a repeated row): the decoder
returns exactly what the parser returns, or both refuse the page with the same message.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from service.admin_api.answers import decode_json
from service.admin_api.client import ALL_GROUP_BY
from service.admin_api.usage_decoder import decode_usage_page
from service.admin_api.wire import Invalid, parse_usage_page
from service.domain.usage import UsagePage
from service.errors import MalformedResponse

PATH = "/v1/organizations/usage_report/messages"
COUNTS = ("uncached_input_tokens", "cache_read_input_tokens", "output_tokens")
GROUPS = ALL_GROUP_BY  # the result's grouping fields are named as the groupings
BROKEN_VALUES: tuple[object, ...] = (None, -1, 1.5, 2.0, True, "7", [], {})

counts = st.integers(0, 10**12)
names = st.none() | st.sampled_from(["claude-opus-4-5", "wrkspc_01", "apikey_01", "batch", "us"])


@st.composite
def results(draw: st.DrawFn) -> dict[str, Any]:
    result: dict[str, Any] = {name: draw(counts) for name in COUNTS}
    for name in GROUPS:
        if draw(st.booleans()):
            result[name] = draw(names)
    if draw(st.booleans()):
        cache: dict[str, Any] = {}
        for name in ("ephemeral_5m_input_tokens", "ephemeral_1h_input_tokens"):
            if draw(st.booleans()):
                cache[name] = draw(counts)
        result["cache_creation"] = cache
    if draw(st.booleans()):
        result["server_tool_use"] = {"web_search_requests": draw(counts)}
    if draw(st.booleans()):
        result["a_field_added_later"] = {"nested": [1, "two"]}
    return result


@st.composite
def pages(draw: st.DrawFn) -> dict[str, Any]:
    n_buckets = draw(st.integers(0, 3))
    data = []
    for hour in range(n_buckets):
        offset = draw(st.sampled_from(["Z", "+00:00", "+02:00"]))
        local = hour + (2 if offset == "+02:00" else 0)
        data.append(
            {
                "starting_at": f"2026-03-01T{local:02d}:00:00{offset}",
                "ending_at": f"2026-03-01T{local + 1:02d}:00:00{offset}",
                "results": draw(st.lists(results(), max_size=3)),
            }
        )
    page: dict[str, Any] = {"data": data, "has_more": draw(st.booleans())}
    if draw(st.booleans()):
        page["next_page"] = draw(st.none() | st.just("page_2"))
    return page


def answer(page: object) -> httpx.Response:
    return httpx.Response(200, content=json.dumps(page).encode())


def outcome(parse: Any, response: httpx.Response) -> UsagePage | str:
    try:
        parsed: UsagePage = parse(response)
    except Invalid as exc:
        return f"invalid: {exc}"
    except MalformedResponse as exc:
        return f"malformed: {exc}"
    return parsed


def by_hand(response: httpx.Response) -> UsagePage:
    return parse_usage_page(decode_json(response, "usage report page 1", PATH), "1h")


def decoded(response: httpx.Response) -> UsagePage:
    return decode_usage_page(response, "1h", "usage report page 1", PATH)


def break_one(page: dict[str, Any], data: st.DataObject) -> None:
    """Break one value somewhere in the page, in place."""
    results_ = [r for bucket in page["data"] for r in bucket["results"]]
    targets = ["envelope"] + (["bucket"] if page["data"] else []) + (["result"] if results_ else [])
    target = data.draw(st.sampled_from(targets))
    if target == "envelope":
        key = data.draw(st.sampled_from(["data", "has_more", "next_page"]))
        page[key] = data.draw(st.sampled_from(BROKEN_VALUES))
    elif target == "bucket":
        bucket = data.draw(st.sampled_from(page["data"]))
        how = data.draw(st.sampled_from(["naive", "backwards", "value", "missing"]))
        key = data.draw(st.sampled_from(["starting_at", "ending_at", "results"]))
        if how == "naive":
            bucket["starting_at"] = "2026-03-01T00:00:00"
        elif how == "backwards":
            bucket["starting_at"], bucket["ending_at"] = bucket["ending_at"], bucket["starting_at"]
        elif how == "value":
            bucket[key] = data.draw(st.sampled_from(BROKEN_VALUES))
        else:
            del bucket[key]
    else:
        result = data.draw(st.sampled_from(results_))
        how = data.draw(st.sampled_from(["count", "group", "nested", "missing", "repeat"]))
        if how == "count":
            result[data.draw(st.sampled_from(COUNTS))] = data.draw(st.sampled_from(BROKEN_VALUES))
        elif how == "group":
            result[data.draw(st.sampled_from(GROUPS))] = data.draw(st.sampled_from([1, True, []]))
        elif how == "nested":
            result["cache_creation"] = data.draw(
                st.sampled_from([None, [], {"ephemeral_5m_input_tokens": None}, {"x": 1}])
            )
        elif how == "missing":
            del result[data.draw(st.sampled_from(COUNTS))]
        else:
            bucket = next(b for b in page["data"] if result in b["results"])
            bucket["results"].append(dict(result))


@settings(max_examples=300, deadline=None)
@given(pages())
def test_a_valid_page_decodes_to_what_the_parser_returns(page: dict[str, Any]) -> None:
    response = answer(page)
    expected = outcome(by_hand, response)
    assert outcome(decoded, response) == expected


@settings(max_examples=500, deadline=None)
@given(pages(), st.data())
def test_a_broken_page_is_refused_with_the_parsers_message(
    page: dict[str, Any], data: st.DataObject
) -> None:
    break_one(page, data)
    response = answer(page)
    assert outcome(decoded, response) == outcome(by_hand, response)


@pytest.mark.parametrize(
    "body", [b"", b"<html>busy</html>", b"[1, 2", b'{"data": [], "has_more": NaN}']
)
def test_a_body_that_is_not_json_is_malformed_as_before(body: bytes) -> None:
    response = httpx.Response(200, content=body, headers={"content-type": "text/html"})
    result = outcome(decoded, response)
    assert isinstance(result, str)
    assert result.startswith("malformed: usage report page 1: GET")
    assert result == outcome(by_hand, response)


def test_the_fast_path_is_taken_for_a_valid_page(monkeypatch: pytest.MonkeyPatch) -> None:
    """A valid page never reaches the hand-written parser (which would cost the time saved)."""

    def refuse(*_: object) -> None:
        raise AssertionError("the hand-written parser ran")

    monkeypatch.setattr("service.admin_api.usage_decoder.parse_usage_page", refuse)
    page = {
        "data": [
            {
                "starting_at": "2026-03-01T00:00:00Z",
                "ending_at": "2026-03-01T01:00:00Z",
                "results": [dict.fromkeys(COUNTS, 3) | {"model": "claude-opus-4-5"}],
            }
        ],
        "has_more": False,
        "next_page": None,
    }
    parsed = decoded(answer(page))
    assert [row.counts.output_tokens for row in parsed.rows] == [3]
