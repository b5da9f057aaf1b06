"""What a cache hit pays: a take whose command is sent before it is awaited (``take_now``),
and a refund nobody waits for (``refund_later``), on real Redis and in process."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from domain.limits import BudgetSpec
from domain.ports import Budgets
from infra.budgets import MemoryBudgets, RedisBudgets
from infra.redis import RedisBreaker
from infra.redis_wire import RedisWire
from tests.conftest import REDIS_URL
from tests.support import RedisProcess

# Refills one point in 1,000 s: nothing comes back while a test runs.
TEN = BudgetSpec(capacity=10, restore_per_second=0.001)


@pytest.fixture
async def wire() -> AsyncIterator[RedisWire]:
    wire = RedisWire(REDIS_URL)
    await wire.connect()
    yield wire
    await wire.close()


@pytest.fixture(params=["redis", "in-process"])
async def budgets(
    request: pytest.FixtureRequest, wire: RedisWire, prefix: str
) -> AsyncIterator[Budgets]:
    if request.param == "in-process":
        yield MemoryBudgets()
        return
    breaker = RedisBreaker()
    yield RedisBudgets(wire, prefix, breaker)
    assert breaker.outages == 0


async def test_take_now_answers_what_take_does(budgets: Budgets) -> None:
    state = await budgets.take_now("k", 8, TEN)
    assert (state.allowed, state.remaining) == (True, 2)
    refused = await budgets.take_now("k", 5, TEN)
    assert not refused.allowed
    assert refused.remaining == 2
    assert refused.retry_after_seconds is not None
    never = await budgets.take_now("k", 11, TEN)
    assert not never.allowed
    assert never.retry_after_seconds is None
    assert (await budgets.peek("k", TEN)).remaining == 2


async def test_concurrent_takes_now_admit_exactly_what_the_budget_covers(
    budgets: Budgets,
) -> None:
    # All sent before any is awaited, as a burst of cache hits sends them.
    pending = [budgets.take_now("burst", 3, TEN) for _ in range(50)]
    states = await asyncio.gather(*pending)
    assert sum(state.allowed for state in states) == 3
    assert (await budgets.peek("burst", TEN)).remaining == 1


async def test_a_later_refund_answers_what_the_budget_then_holds(budgets: Budgets) -> None:
    taken = await budgets.take_now("k", 8, TEN)
    answered = budgets.refund_later("k", 5, TEN, taken.reset_seconds)
    assert answered.remaining == 7
    # The refund went first on the connection: a later call sees it.
    assert (await budgets.peek("k", TEN)).remaining == answered.remaining
    # Never above the capacity.
    assert budgets.refund_later("k", 50, TEN, answered.reset_seconds).remaining == 10
    assert (await budgets.peek("k", TEN)).remaining == 10
    with pytest.raises(ValueError, match="points"):
        budgets.refund_later("k", -1, TEN, 0.0)


async def test_take_now_sends_its_command_before_it_is_awaited(
    wire: RedisWire, prefix: str
) -> None:
    budgets = RedisBudgets(wire, prefix, RedisBreaker())
    writes = wire.writes
    pending = budgets.take_now("k", 4, TEN)
    await asyncio.sleep(0)  # the end of this turn: the wire writes what it was given
    assert wire.writes == writes + 1
    assert wire.pending == 1
    state = await pending
    assert state.remaining == 6
    assert wire.writes == writes + 1


async def test_take_now_after_redis_lost_its_scripts_loads_them_and_takes_once(
    own_redis: RedisProcess,
) -> None:
    # A redis-server of the test's own: SCRIPT FLUSH would reach every user of the shared one.
    wire = RedisWire(own_redis.url)
    breaker = RedisBreaker()
    budgets = RedisBudgets(wire, "t:", breaker)
    try:
        assert (await budgets.take("k", 1, TEN)).remaining == 9  # the script is loaded
        assert await wire.call("SCRIPT", "FLUSH") == b"OK"
        # NOSCRIPT took nothing; the take is made again with the script loaded.
        assert (await budgets.take_now("k", 2, TEN)).remaining == 7
        assert (await budgets.peek("k", TEN)).remaining == 7
        assert breaker.outages == 0
    finally:
        await wire.close()


async def test_with_the_breaker_open_both_go_to_the_fallback(wire: RedisWire, prefix: str) -> None:
    breaker = RedisBreaker(retry_seconds=3600)
    fallback = MemoryBudgets()
    budgets = RedisBudgets(wire, prefix, breaker, fallback)
    breaker.failed(ConnectionError("test: Redis away"))
    writes = wire.writes
    taken = await budgets.take_now("k", 6, TEN)
    assert taken.remaining == 4
    assert budgets.refund_later("k", 6, TEN, taken.reset_seconds).remaining == 10
    assert (await fallback.peek("k", TEN)).remaining == 10
    assert wire.writes == writes  # nothing was sent to Redis
