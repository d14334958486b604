"""The name endpoints: ``/v1/organizations/api_keys``, ``/workspaces`` and ``/me``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from service.simulator.catalog import make_id
from service.simulator.wire import ApiError, Query, format_datetime, invalid
from service.simulator.workload import Workload

Json = dict[str, Any]


@dataclass
class Directory:
    """Changes to the catalog's names that tests make while the server runs: a key or
    workspace renamed in the Console, or one the lists do not show (deleted, or created after
    a client's last look)."""

    renamed: dict[str, str] = field(default_factory=dict)
    unlisted: set[str] = field(default_factory=set)

    def name(self, entity_id: str, name: str) -> str:
        return self.renamed.get(entity_id, name)

    def listed(self, entity_id: str) -> bool:
        return entity_id not in self.unlisted


def list_api_keys(
    workload: Workload,
    pairs: list[tuple[str, str]],
    *,
    stuck: bool = False,
    directory: Directory | None = None,
) -> Json:
    """A page of API key objects (oldest first); raises a 400 ApiError for a bad query."""
    query = Query(
        pairs,
        single={"limit", "after_id", "before_id", "status", "workspace_id", "created_by_user_id"},
    )
    status = query.get("status")
    if status not in {None, "active", "inactive", "archived"}:
        raise invalid(f"status: Input should be 'active', 'inactive' or 'archived', got {status!r}")
    workspace = query.get("workspace_id")
    creator = query.get("created_by_user_id")
    directory = directory or Directory()
    items = [
        {
            "id": key.id,
            "type": "api_key",
            "name": directory.name(key.id, key.name),
            "workspace_id": key.workspace_id,
            "status": "active",
            "created_at": format_datetime(key.created_at),
            "partial_key_hint": key.partial_key_hint,
            "created_by": {"id": key.created_by, "type": "user"},
        }
        for key in workload.api_keys
        if status in {None, "active"}
        and workspace in {None, key.workspace_id}
        and creator in {None, key.created_by}
        and directory.listed(key.id)
    ]
    return _cursor_page(items, query, stuck=stuck)


def list_workspaces(
    workload: Workload,
    pairs: list[tuple[str, str]],
    *,
    stuck: bool = False,
    directory: Directory | None = None,
) -> Json:
    """A page of workspace objects (the default workspace is not one); raises a 400 ApiError."""
    query = Query(pairs, single={"limit", "after_id", "before_id", "include_archived"})
    if query.get("include_archived") not in {None, "true", "false"}:
        raise invalid("include_archived: Input should be a valid boolean")
    directory = directory or Directory()
    items = [
        {
            "id": workspace.id,
            "type": "workspace",
            "name": directory.name(workspace.id, workspace.name),
            "created_at": format_datetime(workspace.created_at),
            "archived_at": None,
            "display_color": workspace.display_color,
        }
        for workspace in workload.workspaces
        if directory.listed(workspace.id)
    ]
    return _cursor_page(items, query, stuck=stuck)


def organization(workload: Workload, name: str, pairs: list[tuple[str, str]]) -> Json:
    """The ``/v1/organizations/me`` object."""
    Query(pairs, single=set())
    return {"id": make_id("org", workload.spec.seed, 5, 0), "type": "organization", "name": name}


def _cursor_page(items: list[Json], query: Query, *, stuck: bool) -> Json:
    limit = query.get_int("limit", 20, 1, 1000)
    after_id, before_id = query.get("after_id"), query.get("before_id")
    if after_id is not None and before_id is not None:
        raise invalid("after_id and before_id cannot both be set")
    ids = [item["id"] for item in items]
    if after_id is not None:
        first = _position(ids, "after_id", after_id) + 1
        page, has_more = items[first : first + limit], first + limit < len(items)
    elif before_id is not None:
        end = _position(ids, "before_id", before_id)
        page, has_more = items[max(0, end - limit) : end], end - limit > 0
    else:
        page, has_more = items[:limit], limit < len(items)
    last_id = page[-1]["id"] if page else None
    if stuck:
        # A broken server: claims more and names the same cursor again and again.
        has_more, last_id = True, after_id or last_id
    return {
        "data": page,
        "has_more": has_more,
        "first_id": page[0]["id"] if page else None,
        "last_id": last_id,
    }


def _position(ids: list[str], name: str, value: str) -> int:
    try:
        return ids.index(value)
    except ValueError:
        raise ApiError(400, f"{name}: no object with id {value!r}") from None
