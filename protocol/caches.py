# Bounded caches for what repeats between requests (field lines, header pairs, targets).
# They are plain dicts: protocol/ may not import threading, and dict reads and writes are
# atomic in CPython, the free-threaded build included, so a race can only store an entry
# twice or empty a cache early. A full cache is emptied rather than trimmed: it then fills
# again with what the traffic repeats, and a peer sending only unique values can neither
# grow it nor make it cost more than one failed lookup per value.
from __future__ import annotations

from typing import TypeVar

K = TypeVar("K")
V = TypeVar("V")


def remember(cache: dict[K, V], key: K, value: V, limit: int) -> None:
    """Store `value` under `key`, emptying `cache` first when it holds `limit` entries."""
    if len(cache) >= limit:
        cache.clear()
    cache[key] = value
