"""A settable clock for tests: the simulator reads ``now`` from whatever callable it is given."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta


class ManualClock:
    """A clock that only moves when told to; pass it as ``SimulatorServer(clock=...)``."""

    def __init__(self, now: datetime) -> None:
        if now.utcoffset() is None:
            raise ValueError("ManualClock needs an aware datetime")
        self._lock = threading.Lock()
        self._now = now

    @property
    def now(self) -> datetime:
        """The current simulated instant."""
        with self._lock:
            return self._now

    @now.setter
    def now(self, value: datetime) -> None:
        if value.utcoffset() is None:
            raise ValueError("ManualClock needs an aware datetime")
        with self._lock:
            self._now = value

    def advance(self, delta: timedelta) -> datetime:
        """Move forward by ``delta`` and return the new instant."""
        with self._lock:
            self._now += delta
            return self._now

    def __call__(self) -> datetime:
        return self.now
