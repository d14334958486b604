"""How model ids relate: ``claude-sonnet-4-5-20250929`` is a snapshot of ``claude-sonnet-4-5``.

One rule, shared by the price book and budget scopes: a prefix names a model when it ends on a
``-`` boundary and what follows is not another version number (``claude-opus-4-9`` is not
``claude-opus-4``). An 8-digit part is a dated snapshot, ``-0`` Anthropic's alias.
"""

from __future__ import annotations

SNAPSHOT_DIGITS = 8


def is_other_version(next_part: str) -> bool:
    """Whether the id part after a prefix starts another version (``9`` in ``…-4-9``)."""
    return next_part.isdigit() and len(next_part) < SNAPSHOT_DIGITS and next_part != "0"


def belongs_to(model: str, prefix: str) -> bool:
    """Whether ``model`` is ``prefix`` itself or one of its snapshots or variants."""
    if model == prefix:
        return True
    if not model.startswith(prefix + "-"):
        return False
    next_part = model[len(prefix) + 1 :].split("-", 1)[0]
    return not is_other_version(next_part)
