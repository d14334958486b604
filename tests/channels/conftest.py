"""What every channel test shares: one HTTP client per module, as the service builds it."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from service.http import build_http_client


@pytest.fixture(scope="module")
def http() -> Iterator[httpx.Client]:
    """One client per module: building its TLS context is most of a test's time."""
    with build_http_client("", timeout=5) as client:
        yield client
