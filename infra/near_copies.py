"""This process's copies of the response cache entries it has recently stored in or read
from Redis.

A hit on the Redis store then asks Redis only for the entry's header (about a hundred
bytes) and takes the body from here when the header is the very one the copy was kept
with: Redis stays the only judge of what is current (an invalidated, expired or replaced
entry has no header, or another one), and the body never crosses the wire twice. For a
50 KB answer, reading it from Redis again on every hit cost more CPU than the rest of
the hit together (``bench/cache.py``, Q2).

Bounded in entries and bytes, least recently used first out. Synchronous, like
everything in one event loop between two awaits.
"""

from __future__ import annotations

from collections import OrderedDict

from domain.ports import CachedResponse


class NearCopies:
    def __init__(self, max_entries: int, max_bytes: int) -> None:
        if max_entries < 0 or max_bytes < 0:
            raise ValueError("bounds must not be negative")
        self._max_entries = max_entries
        self._max_bytes = max_bytes
        # key -> (the entry's header, the entry): kept decoded, as a hit uses it
        self._copies: OrderedDict[str, tuple[bytes, CachedResponse]] = OrderedDict()
        self._bytes = 0

    def get(self, key: str, header: bytes) -> CachedResponse | None:
        """The entry kept for ``key`` under exactly ``header``, else None."""
        found = self._copies.get(key)
        if found is None or found[0] != header:
            return None
        self._copies.move_to_end(key)
        return found[1]

    def put(self, key: str, header: bytes, entry: CachedResponse) -> None:
        self.discard(key)
        size = len(header) + len(entry.body)
        if size > self._max_bytes or self._max_entries == 0:
            return
        self._copies[key] = (header, entry)
        self._bytes += size
        while len(self._copies) > self._max_entries or self._bytes > self._max_bytes:
            self.discard(next(iter(self._copies)))

    def discard(self, key: str) -> None:
        found = self._copies.pop(key, None)
        if found is not None:
            self._bytes -= len(found[0]) + len(found[1].body)

    def __len__(self) -> int:
        return len(self._copies)

    @property
    def bytes(self) -> int:
        return self._bytes
