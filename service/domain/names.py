"""What people read for an API key or workspace id: its name, and Anthropic's nulls by name.

The usage report says ``workspace_id: null`` for the default workspace and ``api_key_id: null``
for use without an API key (the Console); the ledger stores both as ``""``. Everywhere a person
reads them (reports, alerts, `status`) they are called the same.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

NamedDimension = Literal["api_key", "workspace"]

DEFAULT_WORKSPACE_NAME = "Default workspace"
CONSOLE_NAME = "Console (no API key)"
# What a budget scope may say for the nulls (compared case-insensitively).
NULL_ALIASES: dict[NamedDimension, tuple[str, ...]] = {
    "workspace": ("default", DEFAULT_WORKSPACE_NAME.casefold()),
    "api_key": ("console", CONSOLE_NAME.casefold()),
}
_NULL_NAMES: dict[NamedDimension, str] = {
    "workspace": DEFAULT_WORKSPACE_NAME,
    "api_key": CONSOLE_NAME,
}


def display_name(dimension: NamedDimension, value: str, known: Mapping[str, str]) -> str:
    """The name of ``value``: the cached one, the null's name for ``""``, or the id itself."""
    if value == "":
        return _NULL_NAMES[dimension]
    return known.get(value) or value


NO_ACTOR_NAME = "No actor"
NO_PRODUCT = "(no product)"


def actor_display(actor: str, actors: Mapping[str, str], api_keys: Mapping[str, str]) -> str:
    """What people read for an Analytics API actor: a user's ``Name <e-mail>``, an API key's
    name (an ``api_actor`` is its key), or the id itself."""
    if actor == "":
        return NO_ACTOR_NAME
    return actors.get(actor) or api_keys.get(actor) or actor
