"""Stores of automatic persisted queries (APQ): query texts by their SHA-256.

Redis keeps them for every process, each for ``APQ_TTL_SECONDS`` after its last
registration (and Redis's ``maxmemory`` policy bounds them all); the embedded
default keeps a bounded LRU in the process. The caller verifies every hash
against its text, so a store can only ever answer a text with that hash.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import TypeVar

import structlog
from redis.asyncio import Redis

from infra.metrics import CACHE_REDIS_ERRORS
from infra.redis import RedisBreaker

log = structlog.get_logger("marketgraph.persisted")

COMPONENT = "persisted-queries"
T = TypeVar("T")


class RedisPersistedQueries:
    def __init__(
        self,
        redis: Redis,
        prefix: str,
        breaker: RedisBreaker,
        ttl_seconds: int,
        timeout_seconds: float,
    ) -> None:
        self._redis = redis
        self._prefix = f"{prefix}apq:"
        self._breaker = breaker
        self._ttl = ttl_seconds
        self._timeout = timeout_seconds

    async def get(self, sha256: str) -> str | None:
        async def read() -> bytes | str | None:
            return await self._redis.get(self._prefix + sha256)

        raw = await self._call("apq_get", read)
        return raw.decode() if isinstance(raw, bytes) else raw

    async def put(self, sha256: str, query: str) -> None:
        async def write() -> bool:
            return bool(await self._redis.set(self._prefix + sha256, query, ex=self._ttl))

        await self._call("apq_put", write)

    async def _call(self, operation: str, command: Callable[[], Awaitable[T]]) -> T | None:
        """The command's result; None when Redis cannot serve it (the client then sends
        the full text, as after any miss)."""

        async def timed() -> T | None:
            async with asyncio.timeout(self._timeout):
                return await command()

        async def unavailable() -> T | None:
            return None

        try:
            return await self._breaker.run(COMPONENT, timed, unavailable)
        except Exception as error:
            CACHE_REDIS_ERRORS.labels(operation).inc()
            log.warning("apq.redis_error", operation=operation, error=type(error).__name__)
            return None


class MemoryPersistedQueries:
    """A bounded LRU, in entries and in characters held."""

    def __init__(self, max_entries: int = 10_000, max_chars: int = 20_000_000) -> None:
        self._entries: OrderedDict[str, str] = OrderedDict()
        self._max_entries = max_entries
        self._max_chars = max_chars
        self._chars = 0

    async def get(self, sha256: str) -> str | None:
        found = self._entries.get(sha256)
        if found is not None:
            self._entries.move_to_end(sha256)
        return found

    async def put(self, sha256: str, query: str) -> None:
        if sha256 in self._entries:
            self._entries.move_to_end(sha256)
            return
        self._entries[sha256] = query
        self._chars += len(query)
        while len(self._entries) > self._max_entries or self._chars > self._max_chars:
            _, evicted = self._entries.popitem(last=False)
            self._chars -= len(evicted)
