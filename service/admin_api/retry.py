"""The retry policy for Admin API calls: capped exponential backoff with full jitter.

DESIGN §3: at least 3 retries for transient errors, honouring ``retry-after`` up to 60 s; beyond
that the cycle gives up and the next one resumes from the watermark.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from service.http import retry_after_seconds

__all__ = ["DEFAULT_RETRY", "RetryPolicy", "retry_after_seconds"]


@dataclass(frozen=True)
class RetryPolicy:
    """Capped exponential backoff with full jitter; ``retry-after`` is honoured up to its cap.

    A ``retry-after`` longer than ``retry_after_cap`` gives up at once (transient error): the
    next cycle resumes from the watermark sooner than a long sleep would.
    """

    max_retries: int = 4
    base_delay: float = 0.5
    max_delay: float = 30.0
    retry_after_cap: float = 60.0

    def __post_init__(self) -> None:
        if self.max_retries < 0 or min(self.base_delay, self.max_delay, self.retry_after_cap) < 0:
            raise ValueError("RetryPolicy values must be non-negative")

    def delay(self, retry: int, retry_after: float | None) -> float:
        """Seconds to wait before retry number ``retry`` (0-based), at least ``retry_after``."""
        ceiling = min(self.max_delay, self.base_delay * 2**retry)
        jittered = random.uniform(0.0, ceiling)  # noqa: S311 - backoff jitter, not a secret
        if retry_after is None:
            return jittered
        return min(self.retry_after_cap, max(retry_after, jittered))


DEFAULT_RETRY = RetryPolicy()
