"""A charge (what a cache hit pays): the take of the requested cost and the refund of
what the answer did not spend, in one atomic call, on real Redis and in process."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from domain.limits import BudgetSpec
from domain.ports import Budgets
from infra.budgets import MemoryBudgets, RedisBudgets
from infra.redis import RedisBreaker
from infra.redis_wire import RedisWire
from tests.conftest import REDIS_URL

# Refills one point in 1,000 s: nothing comes back while a test runs.
TEN = BudgetSpec(capacity=10, restore_per_second=0.001)


@pytest.fixture(params=["redis", "in-process"])
async def budgets(request: pytest.FixtureRequest) -> AsyncIterator[Budgets]:
    if request.param == "in-process":
        yield MemoryBudgets()
        return
    prefix = f"mgtest-charge:{uuid.uuid4().hex[:12]}:"
    wire = RedisWire(REDIS_URL)
    breaker = RedisBreaker()
    yield RedisBudgets(wire, prefix, breaker)
    assert breaker.outages == 0
    await wire.close()
    raw = Redis.from_url(REDIS_URL)
    keys = [key async for key in raw.scan_iter(match=f"{prefix}*")]
    if keys:
        await raw.delete(*keys)
    await raw.aclose()


async def test_a_charge_keeps_only_what_was_spent(budgets: Budgets) -> None:
    state = await budgets.charge("k", 8, 3, TEN)
    assert state.allowed
    assert state.remaining == 7
    # The same as a take followed by its refund.
    taken = await budgets.take("other", 8, TEN)
    assert taken.remaining == 2
    assert (await budgets.refund("other", 5, TEN)).remaining == state.remaining


async def test_a_charge_needs_the_whole_requested_cost_to_fit(budgets: Budgets) -> None:
    assert (await budgets.take("k", 6, TEN)).remaining == 4
    refused = await budgets.charge("k", 5, 1, TEN)
    assert not refused.allowed
    assert refused.remaining == 4
    assert refused.retry_after_seconds is not None
    assert (await budgets.peek("k", TEN)).remaining == 4
    never = await budgets.charge("k", 11, 0, TEN)
    assert not never.allowed
    assert never.retry_after_seconds is None


async def test_concurrent_charges_admit_exactly_what_takes_would(budgets: Budgets) -> None:
    # Each asks for 5 and spends 1: admitted while 5 are left, so 6 of them (10 - 1 * 5 = 5).
    states = await asyncio.gather(*(budgets.charge("burst", 5, 1, TEN) for _ in range(100)))
    assert sum(state.allowed for state in states) == 6
    assert (await budgets.peek("burst", TEN)).remaining == 4


async def test_spending_more_than_taken_keeps_what_was_taken(budgets: Budgets) -> None:
    assert (await budgets.charge("k", 3, 9, TEN)).remaining == 7
    with pytest.raises(ValueError, match="spent"):
        await budgets.charge("k", 3, -1, TEN)
