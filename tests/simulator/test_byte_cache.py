"""The byte-bounded LRU cache behind the usage report's final buckets."""

from __future__ import annotations

import pytest

from service.simulator.byte_cache import ByteLru


def test_keeps_values_until_the_bound_then_evicts_the_least_recently_used() -> None:
    """Past ``max_bytes``, the value read or written longest ago goes first."""
    cache = ByteLru(10)
    cache.put("a", b"aaaa")
    cache.put("b", b"bbbb")
    assert cache.get("a") == b"aaaa"  # now "b" is the least recently used
    cache.put("c", b"cccc")
    assert (cache.get("a"), cache.get("b"), cache.get("c")) == (b"aaaa", None, b"cccc")
    assert (len(cache), cache.size) == (2, 8)


def test_replacing_a_value_counts_only_the_new_one() -> None:
    """Putting a key again replaces its value and its size."""
    cache = ByteLru(10)
    cache.put("a", b"aaaaaaaa")
    cache.put("a", b"aa")
    cache.put("b", b"bbbbbbbb")
    assert (cache.get("a"), cache.get("b"), cache.size) == (b"aa", b"bbbbbbbb", 10)


@pytest.mark.parametrize("max_bytes", [0, 3])
def test_a_value_larger_than_the_bound_is_not_kept(max_bytes: int) -> None:
    """A value longer than ``max_bytes`` is dropped without evicting anything."""
    cache = ByteLru(max_bytes)
    cache.put("small", b"")
    cache.put("big", b"four")
    assert (cache.get("small"), cache.get("big"), cache.size) == (b"", None, 0)


def test_negative_bound_is_refused() -> None:
    """``max_bytes`` must not be negative."""
    with pytest.raises(ValueError, match="negative"):
        ByteLru(-1)
