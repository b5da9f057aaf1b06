"""The response stores, on real Redis and in process: the same rules for both.

The rule that matters most: a response read before a write committed is never kept
after the write's invalidation, whichever of its store and the invalidation comes first.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from typing import Any

import pytest

from domain.ports import CachedResponse, ResponseStore
from infra.cache import MemoryResponseStore, RedisResponseStore
from infra.near_copies import NearCopies
from infra.redis import RedisBreaker, create_redis
from infra.redis_wire import RedisWire
from tests.conftest import REDIS_URL

TAGS = frozenset({"Market:1", "markets"})


class RecordingWire(RedisWire):
    """A real wire that also notes each command's name and reply (evalsha goes through call)."""

    def __init__(self, url: str) -> None:
        super().__init__(url, timeout=1.0)
        self.seen: list[tuple[str, Any]] = []

    async def call(self, *args: Any, reuse: bool = False) -> Any:
        reply = await super().call(*args, reuse=reuse)
        self.seen.append((str(args[0]), reply))
        return reply

    async def calls(
        self, *commands: Sequence[Any], raise_on_error: bool = True, reuse: bool = False
    ) -> list[Any]:
        replies = await super().calls(*commands, raise_on_error=raise_on_error, reuse=reuse)
        self.seen += [(str(c[0]), r) for c, r in zip(commands, replies, strict=True)]
        return replies

    def names(self) -> list[str]:
        return [name for name, _ in self.seen]

    def reply_bytes(self) -> int:
        """How many bytes of string replies came back (nested arrays included)."""

        def size(reply: Any) -> int:
            if isinstance(reply, bytes):
                return len(reply)
            if isinstance(reply, list):
                return sum(size(item) for item in reply)
            return 0

        return sum(size(reply) for _, reply in self.seen)


@pytest.fixture
async def prefix() -> AsyncIterator[str]:
    """A key prefix of the test's own, its keys removed afterwards."""
    prefix = f"mgtest-store:{uuid.uuid4().hex[:8]}:"
    yield prefix
    client = create_redis(REDIS_URL, pool_size=4)
    keys = [key async for key in client.scan_iter(match="{" + prefix + "*")]
    if keys:
        await client.delete(*keys)
    await client.aclose(close_connection_pool=True)


@pytest.fixture(params=["redis", "redis-near", "memory"])
async def store(request: pytest.FixtureRequest, prefix: str) -> AsyncIterator[ResponseStore]:
    if request.param == "memory":
        yield MemoryResponseStore(max_entries=100, max_bytes=100_000)
        return
    wire = RedisWire(REDIS_URL, timeout=1.0)
    near = NearCopies(100, 100_000) if request.param == "redis-near" else None
    found = RedisResponseStore(wire, prefix, RedisBreaker(), near=near)
    yield found
    await found.close()
    await wire.close()


def entry(generation: int, body: bytes = b'{"data":{"x":1}}') -> CachedResponse:
    now = time.time()
    return CachedResponse(body, 3, 'W/"e"', now, now + 60, generation)


async def stored(store: ResponseStore, key: str) -> CachedResponse | None:
    """The entry a lookup finds (the store answered)."""
    found = await store.lookup(key)
    assert found is not None
    return found.entry


async def generation(store: ResponseStore, key: str) -> int:
    found = await store.lookup(key)
    assert found is not None
    return found.generation


async def test_a_stored_entry_comes_back_whole(store: ResponseStore) -> None:
    kept = entry(await generation(store, "a"))
    assert await store.store("a", kept, TAGS, 60)
    found = await store.lookup("a")
    assert found is not None
    assert found.entry == kept


async def test_invalidation_drops_the_entries_of_its_tags_only(store: ResponseStore) -> None:
    since = await generation(store, "a")
    assert await store.store("a", entry(since), frozenset({"Market:1"}), 60)
    assert await store.store("b", entry(since), frozenset({"Market:2"}), 60)
    await store.invalidate(frozenset({"Market:1"}))
    dropped, kept = await store.lookup("a"), await store.lookup("b")
    assert dropped is not None
    assert dropped.entry is None
    assert kept is not None
    assert kept.entry is not None
    assert dropped.generation > since


async def test_a_read_that_raced_a_write_is_not_kept(store: ResponseStore) -> None:
    """Looked up, then a write invalidated one of its tags, then it tries to store."""
    since = await generation(store, "a")
    await store.invalidate(frozenset({"markets"}))
    assert not await store.store("a", entry(since), TAGS, 60)
    found = await store.lookup("a")
    assert found is not None
    assert found.entry is None
    # A write to something else does not stop it.
    since = await generation(store, "a")
    await store.invalidate(frozenset({"User:9"}))
    assert await store.store("a", entry(since), TAGS, 60)


async def test_a_read_after_the_write_is_kept(store: ResponseStore) -> None:
    await store.invalidate(frozenset({"markets"}))
    since = await generation(store, "a")
    assert await store.store("a", entry(since), TAGS, 60)


async def test_an_entry_expires_with_its_ttl(store: ResponseStore) -> None:
    assert await store.store("a", entry(await generation(store, "a")), TAGS, 1)
    await asyncio.sleep(1.1)
    found = await store.lookup("a")
    assert found is not None
    assert found.entry is None


async def test_redis_keys_share_one_hash_tag_and_tag_sets_are_pruned() -> None:
    prefix = f"mgtest-store:{uuid.uuid4().hex[:8]}:"
    client = create_redis(REDIS_URL, pool_size=4)
    wire = RedisWire(REDIS_URL, timeout=1.0)
    store = RedisResponseStore(wire, prefix, RedisBreaker())
    try:
        since = await generation(store, "a")
        assert await store.store("a", entry(since), TAGS, 1)
        await store.invalidate(frozenset({"User:1"}))
        keys = [key.decode() async for key in client.scan_iter(match="*" + prefix + "*")]
        # Every key a script touches is in one Cluster slot.
        assert keys
        assert all(key.startswith("{" + prefix + "cache}") for key in keys)
        await asyncio.sleep(2.1)
        since = await generation(store, "b")
        assert await store.store("b", entry(since), TAGS, 60)
        members = await client.zrange("{" + prefix + "cache}:t:markets", 0, -1)
        assert members == [f"{{{prefix}cache}}:e:b".encode()]
    finally:
        await wire.close()
        keys = [key async for key in client.scan_iter(match="{" + prefix + "*")]
        if keys:
            await client.delete(*keys)
        await client.aclose(close_connection_pool=True)


async def test_an_unreachable_redis_is_a_bypass_and_a_lost_invalidation_a_flush() -> None:
    dead = RedisWire("redis://127.0.0.1:1/0", timeout=0.2, connect_timeout=0.2)
    store = RedisResponseStore(dead, "mgtest-dead:", RedisBreaker(), retry_seconds=3600)
    try:
        assert await store.lookup("a") is None
        assert not await store.store("a", entry(0), TAGS, 60)
        await store.invalidate(TAGS)
        assert store.flush_pending
    finally:
        await store.close()
        await dead.close()


async def test_a_hit_on_a_near_copy_reads_only_the_entry_header_from_redis(prefix: str) -> None:
    body = b'{"data":{"big":"' + b"x" * 20_000 + b'"}}'
    wire, other_wire = RecordingWire(REDIS_URL), RecordingWire(REDIS_URL)
    here = RedisResponseStore(wire, prefix, RedisBreaker(), near=NearCopies(10, 1_000_000))
    there = RedisResponseStore(other_wire, prefix, RedisBreaker(), near=NearCopies(10, 1_000_000))
    try:
        kept = entry(await generation(here, "a"), body)
        assert await here.store("a", kept, TAGS, 60)
        wire.seen.clear()
        assert await stored(here, "a") == kept
        # The header, the generation and the floor: no more than 256 bytes and two numbers.
        assert wire.names() == ["GETRANGE", "MGET"]
        assert wire.reply_bytes() <= 256 + 40

        # Another process has no copy: it reads the entry whole once, then from its copy.
        assert await stored(there, "a") == kept
        assert other_wire.names() == ["GETRANGE", "MGET", "MGET"]
        assert other_wire.reply_bytes() > len(body)
        other_wire.seen.clear()
        assert await stored(there, "a") == kept
        assert other_wire.names() == ["GETRANGE", "MGET"]
        assert other_wire.reply_bytes() <= 256 + 40
    finally:
        await wire.close()
        await other_wire.close()


async def test_a_near_copy_never_outlives_what_redis_holds(prefix: str) -> None:
    """Replaced by another process, invalidated, or voided by a flush: Redis decides."""
    wire, other_wire = RedisWire(REDIS_URL, timeout=1.0), RedisWire(REDIS_URL, timeout=1.0)
    here = RedisResponseStore(wire, prefix, RedisBreaker(), near=NearCopies(10, 1_000_000))
    there = RedisResponseStore(other_wire, prefix, RedisBreaker(), near=NearCopies(10, 1_000_000))
    client = create_redis(REDIS_URL, pool_size=2)
    try:
        first = entry(await generation(here, "a"), b'{"data":{"v":1}}')
        assert await here.store("a", first, TAGS, 60)
        second = entry(await generation(there, "a"), b'{"data":{"v":2}}')
        assert await there.store("a", second, TAGS, 60)
        assert await stored(here, "a") == second

        await there.invalidate(frozenset({"markets"}))
        assert await stored(here, "a") is None

        third = entry(await generation(here, "a"), b'{"data":{"v":3}}')
        assert await here.store("a", third, TAGS, 60)
        # A flush raises the floor past every generation read so far.
        await client.set("{" + prefix + "cache}:floor", third.generation + 1)
        assert await stored(here, "a") is None
    finally:
        await wire.close()
        await other_wire.close()
        await client.aclose(close_connection_pool=True)


def test_near_copies_are_bounded_and_answer_only_their_own_header() -> None:
    near = NearCopies(max_entries=2, max_bytes=100)
    a, b, c = entry(0, b"x" * 10), entry(0, b"y" * 10), entry(0, b"z" * 10)
    near.put("a", b"h1", a)
    assert near.get("a", b"h1") is a
    assert near.get("a", b"h2") is None
    near.put("b", b"h1", b)
    near.get("a", b"h1")  # a is now the most recently used
    near.put("c", b"h1", c)
    assert near.get("b", b"h1") is None
    assert len(near) == 2
    d = entry(0, b"w" * 90)
    near.put("d", b"h1", d)  # 92 bytes: only d fits beside nothing else
    assert len(near) == 1
    assert near.bytes == 92
    near.put("e", b"h1", entry(0, b"v" * 200))  # larger than the bound: not kept, d stays
    assert near.get("e", b"h1") is None
    assert near.get("d", b"h1") is d


def test_the_memory_store_is_bounded_in_entries_and_bytes() -> None:
    async def run() -> None:
        store = MemoryResponseStore(max_entries=3, max_bytes=100)
        for key in "abcd":
            assert await store.store(key, entry(0, b"x" * 10), TAGS, 60)
        assert len(store) == 3
        oldest = await store.lookup("a")
        assert oldest is not None
        assert oldest.entry is None
        # 90 more bytes: the oldest go until the rest fits in 100 (d's 10 and these 90).
        assert await store.store("big", entry(0, b"y" * 90), TAGS, 60)
        assert len(store) == 2
        kept = await store.lookup("d")
        assert kept is not None
        assert kept.entry is not None
        assert not await store.store("huge", entry(0, b"z" * 101), TAGS, 60)

    asyncio.run(run())


def test_the_memory_store_forgets_old_generations_conservatively() -> None:
    async def run() -> None:
        store = MemoryResponseStore(max_entries=100, max_bytes=100_000, generations=2)
        found = await store.lookup("a")
        assert found is not None
        since = found.generation
        for tag in ("t1", "t2", "t3"):
            await store.invalidate(frozenset({tag}))
        # t1's generation is forgotten: anything read before it is void, whatever its tags.
        assert not await store.store("a", entry(since), frozenset({"other"}), 60)

    asyncio.run(run())
