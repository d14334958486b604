"""Who and what the Usage and Cost Analytics API says is behind each usage stream.

The legacy reports know keys and workspaces; the Analytics API also names the ``actor`` (the
user if one is attributed, else the service account, else the API key) and the ``product``.
The simulator derives both from the catalog, so they are the same on every request:

- Console playground streams (no API key): the organization's owner, product ``claude_console``;
- a key with a service account: that service account (``service_account_actor``);
- otherwise keys 0, 3, 6, … are Claude Code keys, each used by one developer (``user_actor``),
  and the other keys act as themselves (``api_actor``);
- product: ``message_batches_api`` for batch-tier streams, ``claude_code`` for the Claude Code
  keys, ``messages_api`` for the rest.

The default workspace, ``null`` in the legacy report, has a real ``wrkspc_…`` id here
(DESIGN §1, "differences that bite"). Every stream runs at ``speed: standard``: fast mode is
priced apart and the workload has none, so the bill stays the legacy report's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from service.simulator.catalog import ApiKey, make_id
from service.simulator.workload import Workload

Json = dict[str, Any]

# (first name, last name) of the synthetic people; the first is the organization's owner.
_PEOPLE = (
    ("Margaret", "Hamilton"),
    ("Ada", "Lovelace"),
    ("Grace", "Hopper"),
    ("Alan", "Turing"),
    ("Edsger", "Dijkstra"),
    ("Barbara", "Liskov"),
    ("Donald", "Knuth"),
    ("Frances", "Allen"),
    ("John", "Backus"),
    ("Radia", "Perlman"),
)
_DEFAULT_WORKSPACE_KIND = 6  # make_id kind of the default workspace; the named ones use 1
_CLAUDE_CODE_EVERY = 3


@dataclass(frozen=True)
class StreamLabels:
    """One stream's value of every dimension the simulator reports (``actor`` as a tagged id)."""

    actor: str
    actor_type: str
    api_key_id: str | None
    context_window: str
    inference_geo: str
    model: str
    product: str
    service_tier: str
    speed: str
    workspace_id: str

    def value(self, dimension: str) -> str | None:
        """The stream's value of ``dimension`` (a name from ``DIMENSIONS``)."""
        value: str | None = getattr(self, dimension)
        return value


DIMENSIONS = tuple(StreamLabels.__dataclass_fields__)
"""The dimensions the simulated organization has values for, in alphabetical order."""


def default_workspace_id(workload: Workload) -> str:
    """The Analytics API's id of the workspace the legacy report calls ``null``."""
    return make_id("wrkspc", workload.spec.seed, _DEFAULT_WORKSPACE_KIND, 0)


class Attribution:
    """Labels of every stream of a workload (in stream order) and the actor objects by id."""

    def __init__(self, workload: Workload) -> None:
        seed = workload.spec.seed
        self.default_workspace_id = default_workspace_id(workload)
        owner = _user(make_id("user", seed, 3, 0), 0)
        self.actors: dict[str, Json] = {owner["user_id"]: owner}
        key_actors: dict[str, tuple[str, str]] = {}
        for index, key in enumerate(workload.api_keys):
            actor = _key_actor(key, index, seed)
            tagged = _tagged_id(actor)
            self.actors[tagged] = actor
            key_actors[key.id] = (tagged, actor["type"])
        labels = []
        for stream in workload.streams:
            if stream.api_key_id is None:
                actor_id, actor_type, product = owner["user_id"], "user_actor", "claude_console"
            else:
                actor_id, actor_type = key_actors[stream.api_key_id]
                product = "claude_code" if actor_type == "user_actor" else "messages_api"
            if stream.service_tier == "batch":
                product = "message_batches_api"
            labels.append(
                StreamLabels(
                    actor=actor_id,
                    actor_type=actor_type,
                    api_key_id=stream.api_key_id,
                    context_window=stream.context_window,
                    inference_geo=stream.inference_geo,
                    model=stream.model,
                    product=product,
                    service_tier=stream.service_tier,
                    speed="standard",
                    workspace_id=stream.workspace_id or self.default_workspace_id,
                )
            )
        self.labels: tuple[StreamLabels, ...] = tuple(labels)

    def render(self, dimension: str, value: str | None) -> object:
        """A group value as the wire shows it: the actor object for ``actor``, else as is."""
        if dimension == "actor" and value is not None:
            return dict(self.actors[value])
        return value


def _key_actor(key: ApiKey, index: int, seed: int) -> Json:
    if key.service_account_id is not None:
        return {"type": "service_account_actor", "service_account_id": key.service_account_id}
    if index % _CLAUDE_CODE_EVERY == 0:
        return _user(make_id("user", seed, 3, index + 1), index + 1)
    return {"type": "api_actor", "api_key_id": key.id}


def _user(user_id: str, person: int) -> Json:
    first, last = _PEOPLE[person % len(_PEOPLE)]
    suffix = "" if person < len(_PEOPLE) else str(person // len(_PEOPLE) + 1)
    return {
        "type": "user_actor",
        "user_id": user_id,
        "email_address": f"{first.lower()}.{last.lower()}{suffix}@example.com",
        "name": f"{first} {last}{f' {suffix}' if suffix else ''}",
        "deleted": False,
    }


def _tagged_id(actor: Json) -> str:
    field = {"user_actor": "user_id", "service_account_actor": "service_account_id"}
    tagged: str = actor[field.get(actor["type"], "api_key_id")]
    return tagged
