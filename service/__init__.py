"""creditwatch: watches an Anthropic organization's Claude API spend and prepaid credit balance."""

import sys
from importlib.metadata import PackageNotFoundError, version

try:
    # One source: the version in pyproject.toml, as installed.
    __version__ = version("creditwatch")
except PackageNotFoundError:  # pragma: no cover - a source tree that was never installed
    __version__ = "0+unknown"

# httpx imports its command-line client (click, rich, Pygments: about 4.5 MiB resident) whenever
# click is installed, as apprise installs it; creditwatch never runs that client. A None entry
# makes httpx's `from ._main import main` raise ImportError, which httpx catches as it does when
# click is missing. Here, before any module of ours imports httpx; not if something already has.
if "httpx" not in sys.modules:
    sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]
