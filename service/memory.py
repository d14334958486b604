"""Pausing Python's cyclic garbage collector around bulk work.

Decoding a week of usage or booking a month of it allocates millions of small objects that hold
no reference cycles (rows, keys, counts, tuples of values). Each allocation burst makes the
collector walk every live object, again and again: on a month's backfill that was more time
than the database's own work (see `make bench`). Reference counting still frees everything as
usual while the collector is paused; cycles made meanwhile wait until it resumes.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def paused_gc() -> Iterator[None]:
    """The cyclic collector off for the block, then back as it was (nesting is safe)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
