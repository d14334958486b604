"""A least-recently-used cache of encoded JSON fragments, bounded by their total size in bytes."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable


class ByteLru:
    """Keeps the most recently used values while their lengths sum to at most ``max_bytes``.

    A value longer than ``max_bytes`` is not kept; ``max_bytes=0`` keeps nothing. Thread-safe.
    A cyclic scan over more than ``max_bytes`` evicts every entry before it is read again, as
    any LRU does; size the bound to what is re-read.
    """

    def __init__(self, max_bytes: int) -> None:
        if max_bytes < 0:
            raise ValueError("max_bytes must not be negative")
        self.max_bytes = max_bytes
        self._entries: OrderedDict[Hashable, bytes] = OrderedDict()
        self._size = 0
        self._lock = threading.Lock()

    @property
    def size(self) -> int:
        """The total length of the values held."""
        with self._lock:
            return self._size

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def get(self, key: Hashable) -> bytes | None:
        """The value stored under ``key`` (now the most recently used), or None."""
        with self._lock:
            value = self._entries.get(key)
            if value is not None:
                self._entries.move_to_end(key)
            return value

    def put(self, key: Hashable, value: bytes) -> None:
        """Store ``value`` under ``key``, evicting the least recently used values to fit."""
        if len(value) > self.max_bytes:
            return
        with self._lock:
            previous = self._entries.pop(key, None)
            if previous is not None:
                self._size -= len(previous)
            self._entries[key] = value
            self._size += len(value)
            while self._size > self.max_bytes:
                _, evicted = self._entries.popitem(last=False)
                self._size -= len(evicted)
