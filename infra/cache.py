"""Response stores: Redis, shared by every process, and an in-process LRU for the
embedded default. Both keep the same rules (``domain.ports.ResponseStore``).

Redis layout. Every key carries one hash tag, ``{<prefix>cache}``, so each
script's keys live in one Cluster slot:

* ``...:e:<key>``: an entry (a small header, a newline, the response bytes),
  with a TTL of its max age plus the stale grace;
* ``...:t:<tag>``: a sorted set of the entries holding the tag, scored by when
  they expire (expired members are pruned as entries are added);
* ``...:g:<tag>``: the generation at which the tag was last invalidated;
* ``...:seq``: the generation, advanced by every invalidation;
* ``...:floor``: entries read before this generation are void (a flush).

A lookup is two plain commands in one write (``GETRANGE`` of the entry's
header, ``MGET`` of the generation and the floor), not the body: the body
comes from this process's near copy
(``infra.near_copies``) when that copy was kept under the same header, which
is the common case; otherwise (another process stored it, or the copy was
evicted) a second command, one ``MGET``, reads the entry whole. A store and an
invalidation are one script each, so a store that checks the tags'
generations and an invalidation that drops the tags' entries cannot
interleave. Scripts drop entries they find through the tag sets; those keys
share the slot, but are not declared, which Redis Cluster allows for keys of
the script's own slot.

Commands go over a ``RedisWire`` of the cache's own (one multiplexed connection,
``infra.redis_wire``): a hit is a lookup here and the budget's take, sent in the same
turn of the loop (one round trip), and through redis-py each cost about 80 µs of CPU,
more than the rest of the hit together. Its own connection, so a large entry in transit
never delays a budget check.

Degradation: every call goes through the process's ``RedisBreaker``; the wire fails
a command not answered within the cache's timeout (``CACHE_TIMEOUT_MS``). A failed
lookup or store just
means the request runs without the cache (``BYPASS``). An invalidation Redis
did not confirm cannot be left at that: the store is then flushed (the floor
raised) before it is read again by this process, and retried in the
background until Redis answers, so no entry older than the write survives it.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any, TypeVar

import orjson
import structlog

from domain.ports import CachedResponse, Lookup
from infra.metrics import CACHE_INVALIDATIONS, CACHE_REDIS_ERRORS
from infra.near_copies import NearCopies
from infra.redis import RETRY_SECONDS, RedisBreaker, no_answer
from infra.redis_wire import RedisWire, Script
from infra.settings import Settings

log = structlog.get_logger("marketgraph.cache")

COMPONENT = "cache"
# How long a tag's invalidation generation is kept: longer than any request takes
# between its lookup and its store, so a slow read is always checked against it.
GENERATION_SECONDS = 3_600
UNLINK_CHUNK = 500
GENERATIONS_CHUNK = 500

T = TypeVar("T")

# The entry's first bytes: its header (about a hundred bytes) and a little of the body.
HEAD_BYTES = 256

# The tags' generations are read with one MGET (at most this many keys each): a GET per
# tag made storing a 441-tag answer block Redis for 3.5 ms, every request's budget and
# lookup waiting behind it (bench/cache.py's expiry run, Redis SLOWLOG).
_STORE = """
local since = tonumber(ARGV[3])
local floor = tonumber(redis.call('GET', KEYS[2]) or '0')
if since < floor then return 0 end
local chunk = tonumber(ARGV[4])
for first = 3, #KEYS, 2 * chunk do
  local wanted = {}
  for i = first + 1, math.min(first + 2 * chunk - 1, #KEYS), 2 do
    wanted[#wanted + 1] = KEYS[i]
  end
  local changed = redis.call('MGET', unpack(wanted))
  for i = 1, #changed do
    if changed[i] and tonumber(changed[i]) > since then return 0 end
  end
end
local ttl = tonumber(ARGV[2])
redis.call('SET', KEYS[1], ARGV[1], 'EX', ttl)
local now = tonumber(redis.call('TIME')[1])
for i = 3, #KEYS, 2 do
  redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', now)
  redis.call('ZADD', KEYS[i], now + ttl, KEYS[1])
  if redis.call('EXPIRE', KEYS[i], ttl, 'GT') == 0 then
    redis.call('EXPIRE', KEYS[i], ttl, 'NX')
  end
end
return 1
"""

_INVALIDATE = """
local generation = redis.call('INCR', KEYS[1])
local dropped = 0
for i = 2, #KEYS, 2 do
  local entries = redis.call('ZRANGE', KEYS[i], 0, -1)
  for j = 1, #entries, tonumber(ARGV[2]) do
    redis.call('UNLINK', unpack(entries, j, math.min(j + tonumber(ARGV[2]) - 1, #entries)))
  end
  dropped = dropped + #entries
  redis.call('DEL', KEYS[i])
  redis.call('SET', KEYS[i + 1], generation, 'EX', ARGV[1])
end
return dropped
"""

_FLUSH = """
local generation = redis.call('INCR', KEYS[1])
redis.call('SET', KEYS[2], generation)
return generation
"""


def encode_header(entry: CachedResponse) -> bytes:
    """Everything about an entry but its body, on one line (JSON has no raw newline)."""
    return orjson.dumps(
        [entry.actual_cost, entry.etag, entry.stored_at, entry.fresh_until, entry.generation]
    )


def with_body(header: bytes, body: bytes) -> CachedResponse:
    actual, etag, stored_at, fresh_until, generation = orjson.loads(header)
    return CachedResponse(body, actual, etag, stored_at, fresh_until, generation)


class RedisResponseStore:
    """The shared store; see the module docstring for its keys and its degradation."""

    def __init__(
        self,
        wire: RedisWire,
        prefix: str,
        breaker: RedisBreaker,
        retry_seconds: float = RETRY_SECONDS,
        near: NearCopies | None = None,
    ) -> None:
        self._wire = wire
        self._near = near if near is not None else NearCopies(0, 0)
        self._breaker = breaker
        self._retry_seconds = retry_seconds
        base = "{" + prefix + "cache}"
        self._entry = base + ":e:"
        self._tagset = base + ":t:"
        self._generation = base + ":g:"
        self._seq = base + ":seq"
        self._floor = base + ":floor"
        self._store = Script(_STORE)
        self._invalidate = Script(_INVALIDATE)
        self._flush = Script(_FLUSH)
        self._flush_pending = False
        self._retrying: asyncio.Task[None] | None = None
        self._errors = {
            operation: CACHE_REDIS_ERRORS.labels(operation)
            for operation in ("lookup", "store", "invalidate", "flush")
        }

    @property
    def flush_pending(self) -> bool:
        """True while an invalidation Redis did not confirm still has to be made good."""
        return self._flush_pending

    async def lookup(self, key: str) -> Lookup | None:
        if self._flush_pending and not await self._flush_now():
            return None
        entry_key = self._entry + key
        # Two plain commands in one write, answered together: a Lua script here cost Redis
        # 8 µs a hit against about 1, and stalled it for milliseconds whenever Lua's
        # collector ran. A partial, not a closure: no coroutine of its own to resume.
        head = partial(
            self._wire.calls,
            ("GETRANGE", entry_key, 0, HEAD_BYTES - 1),
            ("MGET", self._seq, self._floor),
            reuse=True,
        )
        found: list[Any] | None = await self._call("lookup", head)
        if found is None:
            return None
        first, (seq, floor) = found
        if not first:
            return Lookup(None, int(seq or 0))
        header, newline, _ = first.partition(b"\n")
        entry = self._near.get(key, header) if newline else None
        if entry is None:
            return await self._read_whole(key, entry_key)
        return self._current(entry, seq, floor)

    async def _read_whole(self, key: str, entry_key: str) -> Lookup | None:
        """The entry read whole, with the generation and floor of the same moment; kept
        as this process's near copy."""

        async def mget() -> list[Any]:
            found: list[Any] = await self._wire.call("MGET", entry_key, self._seq, self._floor)
            return found

        found = await self._call("lookup", mget)
        if found is None:
            return None
        raw, seq, floor = found
        if raw is None:
            return Lookup(None, int(seq or 0))
        split = raw.index(b"\n")
        entry = with_body(raw[:split], raw[split + 1 :])
        self._near.put(key, raw[:split], entry)
        return self._current(entry, seq, floor)

    @staticmethod
    def _current(entry: CachedResponse, seq: bytes | None, floor: bytes | None) -> Lookup:
        if entry.generation < int(floor or 0):
            return Lookup(None, int(seq or 0))  # voided by a flush
        return Lookup(entry, int(seq or 0))

    async def store(
        self, key: str, entry: CachedResponse, tags: frozenset[str], ttl_seconds: int
    ) -> bool:
        if self._flush_pending:
            return False
        keys = [self._entry + key, self._floor]
        for tag in tags:
            keys += [self._tagset + tag, self._generation + tag]
        header = encode_header(entry)
        args: list[bytes | int] = [
            header + b"\n" + entry.body,
            ttl_seconds,
            entry.generation,
            GENERATIONS_CHUNK,
        ]

        async def run() -> Any:
            return await self._wire.evalsha(self._store, keys, args)

        stored = bool(await self._call("store", run))
        if stored:
            self._near.put(key, header, entry)
        return stored

    async def invalidate(self, tags: frozenset[str]) -> None:
        if not tags:
            return
        if self._flush_pending:
            # A flush covers these tags too; until it happens nothing is read or stored.
            await self._flush_now()
            return
        keys = [self._seq]
        for tag in tags:
            keys += [self._tagset + tag, self._generation + tag]

        async def run() -> Any:
            return await self._wire.evalsha(
                self._invalidate, keys, [GENERATION_SECONDS, UNLINK_CHUNK]
            )

        if await self._call("invalidate", run) is None:
            self._lost_invalidation()
            return
        CACHE_INVALIDATIONS.inc(len(tags))

    async def close(self) -> None:
        if self._retrying is not None:
            self._retrying.cancel()
            await asyncio.gather(self._retrying, return_exceptions=True)

    def _lost_invalidation(self) -> None:
        if not self._flush_pending:
            log.warning(
                "cache.invalidation_lost",
                note="the response cache is flushed as soon as Redis answers again",
            )
        self._flush_pending = True
        if self._retrying is None or self._retrying.done():
            self._retrying = asyncio.get_running_loop().create_task(self._retry_flush())

    async def _retry_flush(self) -> None:
        while self._flush_pending:
            await asyncio.sleep(self._retry_seconds)
            await self._flush_now()

    async def _flush_now(self) -> bool:
        async def run() -> Any:
            return await self._wire.evalsha(self._flush, [self._seq, self._floor])

        if await self._call("flush", run) is None:
            return False
        if self._flush_pending:
            self._flush_pending = False
            log.info("cache.flushed", reason="an invalidation was lost while Redis was away")
        return True

    async def _call(self, operation: str, command: Callable[[], Awaitable[T]]) -> T | None:
        """The command's result, or None when Redis cannot serve it now (the cache is bypassed).

        The breaker counts outages and answers from the fallback while open; any other
        failure (an overloaded pool, a script error) is counted and logged, never raised.
        """
        errors = self._errors[operation]
        try:
            return await self._breaker.run(COMPONENT, command, no_answer, errors.inc)
        except Exception as error:
            errors.inc()
            log.warning("cache.redis_error", operation=operation, error=type(error).__name__)
            return None


class MemoryResponseStore:
    """The in-process store of the embedded default: an LRU bounded in entries and bytes,
    with the same tags, generations and store check as the Redis store.

    Synchronous inside, so nothing interleaves. The generations of invalidated tags
    are kept for the ``generations`` most recent tags; forgetting an older one raises
    the floor to it, which voids (conservatively) everything read before it.
    """

    def __init__(
        self,
        max_entries: int,
        max_bytes: int,
        generations: int = 100_000,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._max_entries = max_entries
        self._max_bytes = max_bytes
        self._max_generations = generations
        self._clock = clock
        self._entries: OrderedDict[str, tuple[CachedResponse, float, frozenset[str]]] = (
            OrderedDict()
        )
        self._bytes = 0
        self._tags: dict[str, set[str]] = {}
        self._changed: OrderedDict[str, int] = OrderedDict()
        self._seq = 0
        self._floor = 0

    async def lookup(self, key: str) -> Lookup | None:
        found = self._entries.get(key)
        if found is None:
            return Lookup(None, self._seq)
        entry, expires_at, _ = found
        if expires_at <= self._clock() or entry.generation < self._floor:
            self._drop(key)
            return Lookup(None, self._seq)
        self._entries.move_to_end(key)
        return Lookup(entry, self._seq)

    async def store(
        self, key: str, entry: CachedResponse, tags: frozenset[str], ttl_seconds: int
    ) -> bool:
        since = entry.generation
        if since < self._floor or any(self._changed.get(tag, 0) > since for tag in tags):
            return False
        if len(entry.body) > self._max_bytes:
            return False
        self._drop(key)
        self._entries[key] = (entry, self._clock() + ttl_seconds, tags)
        self._bytes += len(entry.body)
        for tag in tags:
            self._tags.setdefault(tag, set()).add(key)
        while len(self._entries) > self._max_entries or self._bytes > self._max_bytes:
            self._drop(next(iter(self._entries)))
        return True

    async def invalidate(self, tags: frozenset[str]) -> None:
        if not tags:
            return
        self._seq += 1
        for tag in tags:
            for key in self._tags.pop(tag, set()):
                self._drop(key)
            self._changed[tag] = self._seq
            self._changed.move_to_end(tag)
        while len(self._changed) > self._max_generations:
            _, generation = self._changed.popitem(last=False)
            self._floor = max(self._floor, generation)
        CACHE_INVALIDATIONS.inc(len(tags))

    def __len__(self) -> int:
        return len(self._entries)

    async def close(self) -> None:
        return None

    def _drop(self, key: str) -> None:
        found = self._entries.pop(key, None)
        if found is None:
            return
        entry, _, tags = found
        self._bytes -= len(entry.body)
        for tag in tags:
            keys = self._tags.get(tag)
            if keys is not None:
                keys.discard(key)
                if not keys:
                    del self._tags[tag]


class StoreInvalidator:
    """The unit of work's invalidator over a response store (``domain.ports.Invalidator``)."""

    def __init__(self, store: RedisResponseStore | MemoryResponseStore) -> None:
        self._store = store

    async def invalidate(self, tags: frozenset[str]) -> None:
        await self._store.invalidate(tags)


def cache_wire(settings: Settings) -> RedisWire | None:
    """The response cache's connection to Redis, when the cache is on Redis."""
    if not settings.response_cache or settings.redis_url is None:
        return None
    return RedisWire(settings.redis_url, timeout=settings.cache_timeout_seconds)


def response_store(
    settings: Settings, wire: RedisWire | None, breaker: RedisBreaker
) -> RedisResponseStore | MemoryResponseStore | None:
    """The response cache's store: on Redis (``wire``, from ``cache_wire``), shared by every
    process, with near copies of the bodies it handles in this one, when configured; else
    an LRU in this process (the embedded default runs one process). None when off."""
    if not settings.response_cache:
        return None
    if wire is not None:
        near = NearCopies(settings.cache_max_entries, settings.cache_near_bytes)
        return RedisResponseStore(wire, settings.redis_key_prefix, breaker, near=near)
    return MemoryResponseStore(settings.cache_max_entries, settings.cache_max_bytes)
