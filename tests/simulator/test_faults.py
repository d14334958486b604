"""Scripted faults: error statuses, malformed bodies, delays and a stuck cursor."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from service.simulator import MalformedKind, SimulatorServer
from tests.helpers import COST, USAGE, Params, get_json

QUERY: Params = [("starting_at", "2025-08-05T00:00:00Z"), ("ending_at", "2025-08-07T00:00:00Z")]


@pytest.mark.parametrize(
    ("status", "error_type"),
    [
        (400, "invalid_request_error"),
        (401, "authentication_error"),
        (403, "permission_error"),
        (404, "not_found_error"),
        (429, "rate_limit_error"),
        (500, "api_error"),
        (504, "timeout_error"),
        (529, "overloaded_error"),
    ],
)
def test_status_fault_answers_with_error_json(
    api: httpx.Client, sim: SimulatorServer, status: int, error_type: str
) -> None:
    """A status fault answers once with Anthropic's error JSON for that status, then clears."""
    sim.faults.add(status=status)
    response = api.get(USAGE, params=QUERY)
    assert response.status_code == status
    body = response.json()
    assert body["type"] == "error"
    assert body["error"]["type"] == error_type
    assert body["request_id"] == response.headers["request-id"]
    assert api.get(USAGE, params=QUERY).status_code == 200


def test_faults_are_consumed_in_order_with_retry_after(
    api: httpx.Client, sim: SimulatorServer
) -> None:
    """Two 529s with retry-after, then a 429, then success."""
    sim.faults.add(status=529, times=2, path_prefix=USAGE, retry_after="1")
    sim.faults.add(status=429, retry_after="3")
    responses = [api.get(USAGE, params=QUERY) for _ in range(4)]
    assert [r.status_code for r in responses] == [529, 529, 429, 200]
    assert [r.headers.get("retry-after") for r in responses] == ["1", "1", "3", None]
    assert sim.faults.pending == 0


def test_fault_only_hits_matching_paths(api: httpx.Client, sim: SimulatorServer) -> None:
    """A fault scoped to the usage report leaves other endpoints alone until used."""
    sim.faults.add(status=500, path_prefix=USAGE)
    assert api.get("/v1/organizations/me").status_code == 200
    assert api.get(COST, params=QUERY).status_code == 200
    assert api.get(USAGE, params=QUERY).status_code == 500


def test_status_fault_with_custom_body(api: httpx.Client, sim: SimulatorServer) -> None:
    """A 504 can carry any body, e.g. a proxy's plain text."""
    sim.faults.add(status=504, body="upstream request timeout")
    response = api.get(USAGE, params=QUERY)
    assert response.status_code == 504
    assert response.text == "upstream request timeout"


def test_auth_is_checked_before_faults(sim: SimulatorServer) -> None:
    """A bad key still gets 401 and does not consume a queued fault."""
    sim.faults.add(status=529)
    response = httpx.get(
        sim.base_url + USAGE, params=QUERY, headers={"anthropic-version": "2023-06-01"}
    )
    assert response.status_code == 401
    assert sim.faults.pending == 1


def first_result(body: dict[str, Any]) -> dict[str, Any]:
    """The first result row of any bucket."""
    result: dict[str, Any] = next(r for b in body["data"] for r in b["results"])
    return result


@pytest.mark.parametrize("path", [USAGE, COST])
@pytest.mark.parametrize(
    "kind", ["non_json", "missing_data", "string_int", "negative_tokens", "bad_timestamp"]
)
def test_malformed_kinds(
    api: httpx.Client, sim: SimulatorServer, kind: MalformedKind, path: str
) -> None:
    """Each malformed kind breaks a 200 body the documented way, once."""
    sim.faults.add_malformed(kind, path_prefix=path)
    response = api.get(path, params=QUERY)
    assert response.status_code == 200
    if kind == "non_json":
        with pytest.raises(json.JSONDecodeError):
            response.json()
    else:
        body = response.json()
        if kind == "missing_data":
            assert "data" not in body
        elif kind == "bad_timestamp":
            assert body["data"][0]["starting_at"] == "yesterday"
        elif path == COST:
            assert first_result(body)["amount"] == ("n/a" if kind == "string_int" else "-1")
        elif kind == "string_int":
            assert isinstance(first_result(body)["output_tokens"], str)
        else:
            assert first_result(body)["output_tokens"] < 0
    assert get_json(api, path, QUERY)["data"]


def test_malformed_result_is_added_to_an_empty_page(
    api: httpx.Client, sim: SimulatorServer
) -> None:
    """A result-level fault still shows on a page that had no usage."""
    sim.faults.add_malformed("negative_tokens")
    body = get_json(api, USAGE, [("starting_at", "2025-09-01T00:00:00Z")])
    assert first_result(body)["output_tokens"] < 0


def test_delay_provokes_a_client_timeout(api: httpx.Client, sim: SimulatorServer) -> None:
    """A delay longer than the client's timeout times it out; the next request is normal."""
    sim.faults.add_delay(2.0)
    with pytest.raises(httpx.ReadTimeout):
        api.get(USAGE, params=QUERY, timeout=0.2)
    assert api.get(USAGE, params=QUERY).status_code == 200


def test_stuck_cursor_repeats_forever_until_cleared(
    api: httpx.Client, sim: SimulatorServer
) -> None:
    """With a stuck cursor the same ``next_page`` comes back with has_more; clear() ends it."""
    sim.faults.add_stuck_cursor()
    params: Params = [("starting_at", "2025-08-01T00:00:00Z"), ("limit", "2")]
    first = get_json(api, USAGE, params)
    pages = [first["next_page"]]
    for _ in range(3):
        body = get_json(api, USAGE, [*params, ("page", pages[-1])])
        assert body["has_more"] is True
        assert body["data"] == first["data"]
        pages.append(body["next_page"])
    assert len(set(pages)) == 1
    sim.faults.clear()
    body = get_json(api, USAGE, [*params, ("page", pages[-1])])
    assert body["next_page"] != pages[-1]


def test_stuck_cursor_on_name_lists(api: httpx.Client, sim: SimulatorServer) -> None:
    """On a name list a stuck cursor keeps has_more true and last_id unchanged."""
    sim.faults.add_stuck_cursor(path_prefix="/v1/organizations/api_keys")
    first = get_json(api, "/v1/organizations/api_keys", [("limit", "2")])
    again = get_json(
        api, "/v1/organizations/api_keys", [("limit", "2"), ("after_id", first["last_id"])]
    )
    assert again["has_more"] is True
    assert again["last_id"] == first["last_id"]


def test_times_must_be_positive(sim: SimulatorServer) -> None:
    """A fault that could never fire is refused."""
    with pytest.raises(ValueError, match="times"):
        sim.faults.add(status=500, times=0)


def test_a_fault_after_n_requests_lets_those_through(
    api: httpx.Client, sim: SimulatorServer
) -> None:
    """``after=2`` answers the first two matching requests normally, then fails."""
    sim.faults.add(status=500, after=2, path_prefix=USAGE)
    statuses = [api.get(USAGE, params=QUERY).status_code for _ in range(4)]
    assert statuses == [200, 200, 500, 200]
