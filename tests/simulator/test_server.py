"""Authentication, error shape, name endpoints, request recording and server lifecycle."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from service.simulator import ManualClock, SimulatorServer, Workload
from tests.helpers import ADMIN_KEY, FORBIDDEN_KEY, USAGE, Params, get_json

EXAMPLES = Path(__file__).resolve().parents[1] / "data" / "anthropic-examples"
QUERY: Params = [("starting_at", "2025-08-01T00:00:00Z")]


def assert_error(response: httpx.Response, status: int, error_type: str) -> None:
    """The response is Anthropic's error JSON with a matching request-id header."""
    assert response.status_code == status
    body = response.json()
    assert body["type"] == "error"
    assert body["error"]["type"] == error_type
    assert isinstance(body["error"]["message"], str)
    assert body["error"]["message"]
    assert body["request_id"].startswith("req_")
    assert response.headers["request-id"] == body["request_id"]


@pytest.mark.parametrize(
    "headers",
    [
        {"anthropic-version": "2023-06-01"},
        {"x-api-key": "sk-ant-admin01-wrong", "anthropic-version": "2023-06-01"},
        {"x-api-key": "", "anthropic-version": "2023-06-01"},
    ],
    ids=["missing", "wrong", "empty"],
)
def test_bad_admin_key_is_401(sim: SimulatorServer, headers: dict[str, str]) -> None:
    """A missing or wrong ``x-api-key`` gets 401 authentication_error."""
    response = httpx.get(sim.base_url + USAGE, params=QUERY, headers=headers)
    assert_error(response, 401, "authentication_error")


def test_key_without_permission_is_403(sim: SimulatorServer) -> None:
    """The configured forbidden key authenticates but gets 403 permission_error."""
    headers = {"x-api-key": FORBIDDEN_KEY, "anthropic-version": "2023-06-01"}
    response = httpx.get(sim.base_url + "/v1/organizations/me", headers=headers)
    assert_error(response, 403, "permission_error")


@pytest.mark.parametrize("version", [None, "2099-01-01"])
def test_missing_or_unknown_version_is_400(sim: SimulatorServer, version: str | None) -> None:
    """Requests without a valid ``anthropic-version`` header get 400."""
    headers = {"x-api-key": ADMIN_KEY}
    if version:
        headers["anthropic-version"] = version
    response = httpx.get(sim.base_url + "/v1/organizations/me", headers=headers)
    assert_error(response, 400, "invalid_request_error")


def test_unknown_path_is_404_shaped_like_the_reference(api: httpx.Client) -> None:
    """Unknown paths get the same error JSON shape as Anthropic's example."""
    response = api.get("/v1/organizations/usage_report/claude_code")
    assert_error(response, 404, "not_found_error")
    example = json.loads((EXAMPLES / "error.json").read_text())
    assert set(response.json()) == set(example)
    assert set(response.json()["error"]) == set(example["error"])


def test_successful_responses_carry_a_request_id(api: httpx.Client) -> None:
    """Every response, not only errors, has a distinct ``request-id`` header."""
    ids = {api.get("/v1/organizations/me").headers["request-id"] for _ in range(3)}
    assert len(ids) == 3


def test_post_is_not_allowed(api: httpx.Client) -> None:
    """The Admin API report endpoints are read-only."""
    response = api.post("/v1/organizations/me", json={})
    assert response.status_code == 405
    assert response.json()["type"] == "error"


def test_requests_are_recorded_without_the_admin_key(
    api: httpx.Client, sim: SimulatorServer
) -> None:
    """``requests`` keeps method, path, query pairs and headers, with the key redacted."""
    api.get(USAGE, params=[*QUERY, ("group_by[]", "model"), ("group_by[]", "api_key_id")])
    [recorded] = sim.requests
    assert recorded.method == "GET"
    assert recorded.path == USAGE
    assert recorded.query == [*QUERY, ("group_by[]", "model"), ("group_by[]", "api_key_id")]
    assert recorded.headers["anthropic-version"] == "2023-06-01"
    assert "x-api-key" in recorded.headers
    assert ADMIN_KEY not in repr(recorded)


def test_api_keys_page_with_after_id(api: httpx.Client, workload: Workload) -> None:
    """``limit`` and ``after_id`` walk every key once; objects have the documented fields."""
    keys: list[dict[str, Any]] = []
    params: Params = [("limit", "2")]
    while True:
        body = get_json(api, "/v1/organizations/api_keys", params)
        keys.extend(body["data"])
        assert body["first_id"] == body["data"][0]["id"]
        assert body["last_id"] == body["data"][-1]["id"]
        if not body["has_more"]:
            break
        params = [("limit", "2"), ("after_id", body["last_id"])]
    assert [k["id"] for k in keys] == [k.id for k in workload.api_keys]
    workspace_ids = {w.id for w in workload.workspaces}
    for key in keys:
        assert key["type"] == "api_key"
        assert key["status"] == "active"
        assert key["name"]
        assert key["partial_key_hint"].startswith("sk-ant-api03-")
        assert key["created_by"]["id"].startswith("user_")
        assert key["workspace_id"] is None or key["workspace_id"] in workspace_ids
        datetime.fromisoformat(key["created_at"])
    assert any(k["workspace_id"] is None for k in keys)


def test_api_keys_filter_by_workspace(api: httpx.Client, workload: Workload) -> None:
    """``workspace_id`` narrows the key list to that workspace."""
    workspace = workload.workspaces[0].id
    body = get_json(api, "/v1/organizations/api_keys", [("workspace_id", workspace)])
    assert body["data"]
    assert all(k["workspace_id"] == workspace for k in body["data"])


def test_list_limits_and_unknown_cursor(api: httpx.Client) -> None:
    """``limit`` must be 1-1000 and ``after_id`` must name a listed object."""
    bad: list[Params] = [[("limit", "1001")], [("limit", "0")], [("after_id", "apikey_nope")]]
    for params in bad:
        response = api.get("/v1/organizations/api_keys", params=params)
        assert_error(response, 400, "invalid_request_error")
    assert api.get("/v1/organizations/api_keys", params=[("limit", "1000")]).status_code == 200


def test_workspaces_list_excludes_default(api: httpx.Client, workload: Workload) -> None:
    """Named workspaces are listed with their fields; the default workspace is not."""
    body = get_json(api, "/v1/organizations/workspaces", [])
    assert [w["id"] for w in body["data"]] == [w.id for w in workload.workspaces]
    assert body["has_more"] is False
    for workspace in body["data"]:
        assert workspace["type"] == "workspace"
        assert workspace["archived_at"] is None
        assert workspace["display_color"].startswith("#")
        assert workspace["id"].startswith("wrkspc_")


def test_me_names_the_organization(api: httpx.Client) -> None:
    """``/v1/organizations/me`` returns the configured organization name."""
    body = get_json(api, "/v1/organizations/me", [])
    assert body["type"] == "organization"
    assert body["name"] == "Simulated Org"
    assert body["id"]


def test_manual_clock_moves_only_when_told() -> None:
    """ManualClock returns its instant until advanced or set."""
    clock = ManualClock(datetime(2025, 8, 1, tzinfo=UTC))
    assert clock() == datetime(2025, 8, 1, tzinfo=UTC)
    assert clock.advance(timedelta(minutes=5)) == datetime(2025, 8, 1, 0, 5, tzinfo=UTC)
    clock.now = datetime(2025, 9, 1, tzinfo=UTC)
    assert clock() == datetime(2025, 9, 1, tzinfo=UTC)


def test_stop_ends_keep_alive_connections(workload: Workload, clock: ManualClock) -> None:
    """Stopping with an open keep-alive connection returns promptly and refuses new requests."""
    sim = SimulatorServer(workload, admin_key=ADMIN_KEY, clock=clock)
    sim.start()
    headers = {"x-api-key": ADMIN_KEY, "anthropic-version": "2023-06-01"}
    with httpx.Client(base_url=sim.base_url, headers=headers) as client:
        assert client.get("/v1/organizations/me").status_code == 200
        sim.stop()
        with pytest.raises(httpx.TransportError):
            client.get("/v1/organizations/me")


def test_command_line_help(capsys: pytest.CaptureFixture[str]) -> None:
    """``python -m service.simulator --help`` exits 0 and lists its options."""
    from service.simulator.__main__ import main

    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    assert "--admin-key" in capsys.readouterr().out
