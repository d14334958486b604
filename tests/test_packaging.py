"""The wheel's package list (explicit, for the alembic/ mapping) names every package there is."""

from __future__ import annotations

import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_every_package_under_service_is_listed_for_the_wheel() -> None:
    """A new sub-package missing from pyproject.toml would be missing from the wheel."""
    config = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(config["packages"])
    found = {
        ".".join(init.parent.relative_to(REPO).parts)
        for init in (REPO / "service").rglob("__init__.py")
        if "__pycache__" not in init.parts
    }
    assert found <= listed, f"add to [tool.setuptools] packages: {sorted(found - listed)}"
    mapped = {name for name in listed if name not in found}
    assert mapped == {"service.migrations", "service.migrations.versions"}
    assert config["package-dir"] == {"service.migrations": "alembic"}
