"""The response stores, on real Redis and in process: the same rules for both.

The rule that matters most: a response read before a write committed is never kept
after the write's invalidation, whichever of its store and the invalidation comes first.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator

import pytest

from domain.ports import CachedResponse, ResponseStore
from infra.cache import MemoryResponseStore, RedisResponseStore
from infra.redis import RedisBreaker, create_redis
from infra.redis_wire import RedisWire
from tests.conftest import REDIS_URL

TAGS = frozenset({"Market:1", "markets"})


@pytest.fixture(params=["redis", "memory"])
async def store(request: pytest.FixtureRequest) -> AsyncIterator[ResponseStore]:
    if request.param == "memory":
        yield MemoryResponseStore(max_entries=100, max_bytes=100_000)
        return
    prefix = f"mgtest-store:{uuid.uuid4().hex[:8]}:"
    wire = RedisWire(REDIS_URL, timeout=1.0)
    found = RedisResponseStore(wire, prefix, RedisBreaker())
    yield found
    await found.close()
    await wire.close()
    client = create_redis(REDIS_URL, pool_size=4)
    keys = [key async for key in client.scan_iter(match="{" + prefix + "*")]
    if keys:
        await client.delete(*keys)
    await client.aclose(close_connection_pool=True)


def entry(generation: int, body: bytes = b'{"data":{"x":1}}') -> CachedResponse:
    now = time.time()
    return CachedResponse(body, 3, 'W/"e"', now, now + 60, generation)


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
