"""Cost budgets: how many query-cost points a caller may spend, and how fast they come back.

A budget is a bucket of ``capacity`` points that refills continuously at
``restore_per_second``; a request takes its cost from it up front and the
unused part is refunded after execution. Budgets belong to identities (a
signed-in user, else a client address) and are sized by role.
"""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from domain.clients import client_key
from domain.entities import Role


@dataclass(frozen=True, slots=True)
class BudgetSpec:
    """The size of a budget: at most ``capacity`` points, refilling at ``restore_per_second``."""

    capacity: int
    restore_per_second: float

    def __post_init__(self) -> None:
        if self.capacity < 1:
            raise ValueError("a budget holds at least one point")
        if not self.restore_per_second > 0:
            raise ValueError("a budget must refill at a positive rate")


@dataclass(slots=True)  # a value, not frozen only for speed (graph.budgets.Allowance)
class BudgetState:
    """A budget after a ``take``, ``refund`` or ``peek``.

    ``allowed`` says whether the points asked for were taken (always True for
    ``refund`` and ``peek``). ``remaining`` is the whole points left now.
    ``retry_after_seconds`` is 0 when allowed, the wait until the points asked
    for will be there when not, and None when they never will (the cost is
    larger than the capacity). ``reset_seconds`` is the wait until the budget
    is full again.
    """

    allowed: bool
    capacity: int
    remaining: int
    restore_per_second: float
    retry_after_seconds: float | None
    reset_seconds: float


@dataclass(frozen=True, slots=True)
class RoleBudgets:
    """The budget of each kind of caller (issue 6's defaults)."""

    anonymous: BudgetSpec = BudgetSpec(capacity=500, restore_per_second=25)
    user: BudgetSpec = BudgetSpec(capacity=1_000, restore_per_second=50)
    moderator: BudgetSpec = BudgetSpec(capacity=2_000, restore_per_second=100)
    admin: BudgetSpec = BudgetSpec(capacity=2_000, restore_per_second=100)

    def for_role(self, role: Role | None) -> BudgetSpec:
        """The budget of a signed-in user of ``role``, or of an anonymous caller (None)."""
        if role is None:
            return self.anonymous
        return {Role.USER: self.user, Role.MODERATOR: self.moderator, Role.ADMIN: self.admin}[role]


def budget_key(user_id: UUID | None, client_ip: str | None) -> str:
    """Whose budget a request spends: the user's when signed in, else the client's
    (an IPv4 address or an IPv6 /64, as the other per-client limits count)."""
    if user_id is not None:
        return f"budget:user:{user_id}"
    return f"budget:client:{client_key(client_ip)}"
