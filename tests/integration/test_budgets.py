"""Cost budgets on real Redis and in process: atomic under concurrency, refunds capped,
one budget shared by separate clients, and answered in process while Redis is away."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import AsyncIterator

import orjson
import pytest
from prometheus_client import REGISTRY
from redis.asyncio import Redis

from domain.limits import BudgetSpec
from domain.ports import Budgets
from graph.app import create_app
from infra.budgets import MemoryBudgets, RedisBudgets
from infra.logging import configure_logging
from infra.redis import RedisBreaker, create_redis
from infra.redis_wire import RedisWire
from infra.settings import Settings
from infra.throttle import RedisThrottle
from tests.conftest import REDIS_URL
from tests.support import RedisProcess

# Refills one point in 1,000 s: nothing comes back while a test runs.
TEN = BudgetSpec(capacity=10, restore_per_second=0.001)


@pytest.fixture
async def raw() -> AsyncIterator[Redis]:
    """A plain client, for looking at what the budgets stored."""
    client = Redis.from_url(REDIS_URL)
    yield client
    await client.aclose()


async def redis_budgets(prefix: str) -> AsyncIterator[RedisBudgets]:
    wire = RedisWire(REDIS_URL)
    breaker = RedisBreaker()
    yield RedisBudgets(wire, prefix, breaker)
    # Every answer came from Redis: the breaker never saw an outage.
    assert breaker.outages == 0
    await wire.close()


@pytest.fixture(params=["redis", "in-process"])
async def budgets(request: pytest.FixtureRequest, prefix: str) -> AsyncIterator[Budgets]:
    if request.param == "in-process":
        yield MemoryBudgets()
        return
    async for implementation in redis_budgets(prefix):
        yield implementation


async def test_concurrent_takes_admit_exactly_what_the_budget_covers(budgets: Budgets) -> None:
    states = await asyncio.gather(*(budgets.take("burst", 1, TEN) for _ in range(500)))
    assert sum(state.allowed for state in states) == 10
    assert sorted(state.remaining for state in states if state.allowed) == list(range(10))
    refused = [state for state in states if not state.allowed]
    assert all(state.remaining == 0 for state in refused)
    # One point comes back in 1 / 0.001 s.
    assert all(
        state.retry_after_seconds is not None and 990 < state.retry_after_seconds <= 1000
        for state in refused
    )


async def test_a_refused_take_takes_nothing(budgets: Budgets) -> None:
    assert (await budgets.take("k", 7, TEN)).remaining == 3
    refused = await budgets.take("k", 5, TEN)
    assert not refused.allowed
    assert refused.remaining == 3
    # Two more points are needed: 2,000 s at 0.001 a second.
    assert refused.retry_after_seconds is not None
    assert 1990 < refused.retry_after_seconds <= 2000
    exact = await budgets.take("k", 3, TEN)
    assert exact.allowed
    assert exact.remaining == 0


async def test_refunds_restore_points_and_stop_at_the_capacity(budgets: Budgets) -> None:
    assert (await budgets.take("k", 8, TEN)).remaining == 2
    assert (await budgets.refund("k", 5, TEN)).remaining == 7
    full = await budgets.refund("k", 100, TEN)
    assert full.remaining == 10
    assert full.reset_seconds == 0
    assert (await budgets.peek("k", TEN)).remaining == 10
    # The capacity is the ceiling for takes after the refund too.
    states = await asyncio.gather(*(budgets.take("k", 1, TEN) for _ in range(50)))
    assert sum(state.allowed for state in states) == 10


async def test_peek_changes_nothing(budgets: Budgets) -> None:
    await budgets.take("k", 4, TEN)
    peeks = [await budgets.peek("k", TEN) for _ in range(3)]
    assert [state.remaining for state in peeks] == [6, 6, 6]
    assert all(state.allowed and state.capacity == 10 for state in peeks)
    untouched = await budgets.peek("never-used", TEN)
    assert untouched.remaining == 10
    assert untouched.reset_seconds == 0


async def test_a_cost_above_the_capacity_never_fits_and_takes_nothing(budgets: Budgets) -> None:
    state = await budgets.take("k", 11, TEN)
    assert not state.allowed
    assert state.retry_after_seconds is None
    assert state.remaining == 10


async def test_budgets_refill_at_their_rate(budgets: Budgets) -> None:
    fast = BudgetSpec(capacity=10, restore_per_second=50)
    spent = await budgets.take("k", 10, fast)
    assert spent.remaining == 0
    assert spent.reset_seconds == pytest.approx(0.2, abs=0.01)
    await asyncio.sleep(0.1)
    # At least 0.1 s passed, so at least 5 points are back (more on a slow machine).
    assert (await budgets.peek("k", fast)).remaining >= 5


async def test_redis_keeps_one_namespaced_key_per_budget_that_expires_when_full(
    prefix: str, raw: Redis
) -> None:
    async for budgets in redis_budgets(prefix):
        await budgets.take("budget:user:1", 3, TEN)
        # Full again in 3 / 0.001 s = 3,000 s: the key lives exactly that long.
        ttl_ms = await raw.pttl(f"{prefix}budget:user:1")
        assert 2_990_000 < ttl_ms <= 3_000_000
        assert [key async for key in raw.scan_iter(match=f"{prefix}*")] == [
            f"{prefix}budget:user:1".encode()
        ]
        await budgets.refund("budget:user:1", 3, TEN)
        assert await raw.exists(f"{prefix}budget:user:1") == 0


async def test_two_clients_share_one_budget(prefix: str) -> None:
    first, second = RedisWire(REDIS_URL), RedisWire(REDIS_URL)
    try:
        one = RedisBudgets(first, prefix, RedisBreaker())
        other = RedisBudgets(second, prefix, RedisBreaker())
        states = await asyncio.gather(
            *(budgets.take("shared", 1, TEN) for _ in range(150) for budgets in (one, other))
        )
        assert sum(state.allowed for state in states) == 10
        assert (await one.peek("shared", TEN)).remaining == 0
        await other.refund("shared", 4, TEN)
        assert (await one.peek("shared", TEN)).remaining == 4
    finally:
        await first.close()
        await second.close()


async def test_an_exhausted_pool_is_back_pressure_not_an_outage(prefix: str) -> None:
    """The sign-in throttle's redis-py pool: no connection to be had is overload."""
    client = create_redis(REDIS_URL, pool_size=1, pool_wait_seconds=0.05)
    breaker = RedisBreaker()
    throttle = RedisThrottle(client, prefix, breaker)
    pool = client.connection_pool
    held = await pool.get_connection()  # type: ignore[no-untyped-call]
    try:
        slot = await throttle.acquire("t", 5, 60)
        assert slot.retry_after == 1
        assert breaker.available
        assert breaker.outages == 0
    finally:
        await pool.release(held)
    assert (await throttle.acquire("t", 5, 60)).retry_after is None
    await client.aclose(close_connection_pool=True)


async def test_a_full_wire_is_back_pressure_not_an_outage(own_redis: RedisProcess) -> None:
    """The budgets' wire: more commands waiting than it accepts is overload, answered with
    a refusal to retry in a second, never the in-process count of an outage."""
    wire = RedisWire(own_redis.url, timeout=30, max_pending=2)
    breaker = RedisBreaker()
    budgets = RedisBudgets(wire, "mgtest:", breaker)
    # Connected, and the script loaded (its first run loads it: two commands).
    assert (await budgets.take("other", 1, TEN)).allowed
    own_redis.freeze()
    try:
        waiting = [asyncio.ensure_future(budgets.take("k", 1, TEN)) for _ in range(2)]
        await asyncio.sleep(0)  # their commands are sent and wait on the frozen server
        refused = await budgets.take("k", 1, TEN)
        assert not refused.allowed
        assert refused.retry_after_seconds == 1.0
        assert breaker.available
        assert breaker.outages == 0
    finally:
        own_redis.thaw()
    assert sorted(state.remaining for state in await asyncio.gather(*waiting)) == [8, 9]
    assert (await budgets.take("k", 1, TEN)).remaining == 7
    await wire.close()


def fallbacks() -> float:
    value = REGISTRY.get_sample_value("marketgraph_redis_fallbacks_total", {"component": "budgets"})
    return value or 0.0


def breaker_events(caplog: pytest.LogCaptureFixture) -> list[str]:
    events = [
        orjson.loads(record.getMessage())["event"]
        for record in caplog.records
        if record.name == "marketgraph.redis"
    ]
    caplog.clear()
    return events


async def test_budgets_hold_in_process_while_redis_is_away_and_return_to_it(
    own_redis: RedisProcess, caplog: pytest.LogCaptureFixture
) -> None:
    configure_logging("INFO", "json")  # as the server does: JSON lines through logging
    caplog.set_level(logging.INFO, logger="marketgraph.redis")
    wire = RedisWire(own_redis.url)
    breaker = RedisBreaker(retry_seconds=0.2)
    budgets = RedisBudgets(wire, "mgtest:", breaker)
    raw = Redis.from_url(own_redis.url)
    try:
        assert (await budgets.take("k", 4, TEN)).remaining == 6
        before = fallbacks()
        own_redis.stop()
        caplog.clear()
        states = await asyncio.gather(*(budgets.take("fresh", 1, TEN) for _ in range(100)))
        peeks = [await budgets.peek("k", TEN) for _ in range(5)]
        # Every call was answered, by the in-process budgets, exactly.
        assert sum(state.allowed for state in states) == 10
        # They start full: the 4 points taken in Redis are not known here.
        assert [state.remaining for state in peeks] == [10] * 5
        assert not breaker.available
        assert breaker.describe() == "unavailable, limits in process"
        assert fallbacks() == before + 105
        assert breaker_events(caplog) == ["redis.unavailable"]  # once, not per call

        own_redis.start()  # on the same port, empty
        deadline = time.monotonic() + 10
        while not breaker.available:
            assert time.monotonic() < deadline, "the breaker never closed again"
            await budgets.peek("k", TEN)
            await asyncio.sleep(0.05)
        assert breaker_events(caplog) == ["redis.recovered"]
        assert breaker.outages == 1
        assert (await budgets.take("k", 2, TEN)).remaining == 8
        assert await raw.exists("mgtest:k") == 1  # in Redis again
    finally:
        await raw.aclose()
        await wire.close()


def test_the_app_builds_the_budgets_its_settings_ask_for(settings: Settings) -> None:
    assert isinstance(create_app(settings).state.budgets, RedisBudgets)
    embedded = dataclasses.replace(settings, redis_url=None)
    assert isinstance(create_app(embedded).state.budgets, MemoryBudgets)
    off = dataclasses.replace(settings, rate_limits=False)
    assert create_app(off).state.budgets is None
