"""creditwatch: watches an Anthropic organization's Claude API spend and prepaid credit balance."""

from importlib.metadata import PackageNotFoundError, version

try:
    # One source: the version in pyproject.toml, as installed.
    __version__ = version("creditwatch")
except PackageNotFoundError:  # pragma: no cover - a source tree that was never installed
    __version__ = "0+unknown"
