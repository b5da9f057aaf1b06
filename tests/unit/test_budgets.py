"""The budget algorithm (GCRA) on the in-process budgets, with the clock in the test's hands,
and the per-role sizes and identity keys of domain.limits."""

from __future__ import annotations

import uuid

import pytest

from domain.entities import Role
from domain.limits import BudgetSpec, RoleBudgets, budget_key
from infra.budgets import MemoryBudgets

TWO_A_SECOND = BudgetSpec(capacity=10, restore_per_second=2)


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


async def test_points_come_back_at_the_restore_rate() -> None:
    clock = Clock()
    budgets = MemoryBudgets(clock)
    assert (await budgets.take("k", 10, TWO_A_SECOND)).remaining == 0
    clock.now += 1.25
    state = await budgets.peek("k", TWO_A_SECOND)
    assert state.remaining == 2  # 2.5 points back: whole points only
    assert state.reset_seconds == pytest.approx(3.75)
    refused = await budgets.take("k", 5, TWO_A_SECOND)
    assert not refused.allowed
    assert refused.retry_after_seconds == pytest.approx(1.25)  # 2.5 points more at 2 a second
    clock.now += 1.25
    taken = await budgets.take("k", 5, TWO_A_SECOND)
    assert taken.allowed
    assert taken.remaining == 0
    clock.now += 60
    assert (await budgets.peek("k", TWO_A_SECOND)).remaining == 10  # never above capacity


async def test_full_budgets_are_forgotten() -> None:
    clock = Clock()
    budgets = MemoryBudgets(clock)
    for i in range(100):
        await budgets.take(f"k{i}", 1, TWO_A_SECOND)
    assert len(budgets._tats) == 100
    clock.now += 61  # past the sweep interval, and every budget has refilled
    await budgets.peek("other", TWO_A_SECOND)
    assert budgets._tats == {}
    await budgets.take("k0", 2, TWO_A_SECOND)
    await budgets.refund("k0", 2, TWO_A_SECOND)
    assert budgets._tats == {}


async def test_negative_amounts_are_refused() -> None:
    budgets = MemoryBudgets()
    with pytest.raises(ValueError, match="cost"):
        await budgets.take("k", -1, TWO_A_SECOND)
    with pytest.raises(ValueError, match="points"):
        await budgets.refund("k", -1, TWO_A_SECOND)


def test_each_role_has_its_budget() -> None:
    budgets = RoleBudgets()
    assert budgets.for_role(None) == BudgetSpec(500, 25)
    assert budgets.for_role(Role.USER) == BudgetSpec(1_000, 50)
    assert budgets.for_role(Role.MODERATOR) == BudgetSpec(2_000, 100)
    assert budgets.for_role(Role.ADMIN) == BudgetSpec(2_000, 100)


def test_a_budget_must_hold_and_refill_something() -> None:
    with pytest.raises(ValueError, match="point"):
        BudgetSpec(0, 1)
    with pytest.raises(ValueError, match="rate"):
        BudgetSpec(10, 0)


def test_budgets_belong_to_the_user_else_to_the_client_address() -> None:
    user = uuid.uuid4()
    assert budget_key(user, "203.0.113.9") == f"budget:user:{user}"
    assert budget_key(None, "203.0.113.9") == "budget:client:203.0.113.9"
    assert budget_key(None, "2001:db8:1:2::7") == "budget:client:2001:db8:1:2::/64"
    assert budget_key(None, None) == "budget:client:unknown"
