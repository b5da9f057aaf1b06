"""Cost budgets at the edge: who pays for an operation, how much, and the refund.

The identity is the signed-in user, else the client address (through
``TRUSTED_PROXIES`` only; IPv6 by /64), and its role sizes the budget
(``domain/limits.py``). An operation takes its requested cost before it runs;
afterwards the difference between requested and actual cost (what the
response really holds) is given back, so a client asking ``first: 100`` for a
list of three pays for three.
"""

from __future__ import annotations

from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any

from domain.limits import BudgetSpec, BudgetState, RoleBudgets, budget_key
from domain.policy import Actor
from domain.ports import Budgets


# Not frozen, though never changed: a frozen dataclass's __init__ sets each field through
# object.__setattr__, and the budget's two objects per request cost a cache hit ~2 µs more.
# Compared by identity (eq=False), which keeps it hashable: UNLIMITED is a field default.
@dataclass(slots=True, eq=False)
class Allowance:
    """What the budget said about one request (a value: never changed once made)."""

    allowed: bool
    # False when budgets are off (RATE_LIMITS=off): no figures to report.
    limited: bool
    key: str = ""
    taken: int = 0
    capacity: int = 0
    remaining: int = 0
    restore_per_second: float = 0.0
    # Seconds until the cost fits; None when it never will (it exceeds the capacity).
    retry_after: float | None = 0.0
    reset_after: float = 0.0
    spec: BudgetSpec | None = None

    def throttle_status(self) -> dict[str, Any] | None:
        if not self.limited:
            return None
        return {
            "maximumAvailable": self.capacity,
            "currentlyAvailable": self.remaining,
            "restoreRate": self.restore_per_second,
        }


UNLIMITED = Allowance(allowed=True, limited=False)


class BudgetGate:
    """Takes and refunds operation costs; with no store (``RATE_LIMITS=off``) it admits all."""

    def __init__(self, store: Budgets | None, sizes: RoleBudgets) -> None:
        self._store = store
        self._sizes = sizes

    def _who(self, actor: Actor | None, client_ip: str | None) -> tuple[str, BudgetSpec]:
        key = budget_key(actor.user_id if actor else None, client_ip)
        return key, self._sizes.for_role(actor.role if actor else None)

    async def take(self, actor: Actor | None, client_ip: str | None, cost: int) -> Allowance:
        if self._store is None:
            return UNLIMITED
        key, spec = self._who(actor, client_ip)
        state = await self._store.take(key, cost, spec)
        return _allowance(state, key, cost if state.allowed else 0, spec)

    def take_now(self, actor: Actor | None, client_ip: str | None, cost: int) -> Taking:
        """``take``, its command sent now: a cache lookup sent next shares its round trip."""
        if self._store is None:
            return Taking(None, "", None, cost, UNLIMITED)
        key, spec = self._who(actor, client_ip)
        return Taking(self._store.take_now(key, cost, spec), key, spec, cost)

    async def settle(self, allowance: Allowance, actual: int) -> Allowance:
        """Give back what the operation was charged beyond its actual cost."""
        if self._store is None or allowance.spec is None:
            return allowance
        refund = allowance.taken - actual
        if refund <= 0:
            return allowance
        state = await self._store.refund(allowance.key, refund, allowance.spec)
        return _allowance(state, allowance.key, actual, allowance.spec)

    def settle_later(self, allowance: Allowance, actual: int) -> Allowance:
        """``settle`` without waiting for the store's answer (a cache hit's refund: the
        next command on the budgets' connection runs after it all the same)."""
        if self._store is None or allowance.spec is None:
            return allowance
        refund = allowance.taken - actual
        if refund <= 0:
            return allowance
        spec = allowance.spec
        state = self._store.refund_later(allowance.key, refund, spec, allowance.reset_after)
        return _allowance(state, allowance.key, actual, spec)

    async def peek(self, actor: Actor | None, client_ip: str | None) -> Allowance:
        if self._store is None:
            return UNLIMITED
        key, spec = self._who(actor, client_ip)
        return _allowance(await self._store.peek(key, spec), key, 0, spec)


class Taking:
    """A take under way (``BudgetGate.take_now``): ``allowance()`` finishes it, once;
    ``abandon()`` when the request ends without it."""

    __slots__ = ("_allowance", "_cost", "_key", "_pending", "_spec")

    def __init__(
        self,
        pending: Coroutine[Any, Any, BudgetState] | None,
        key: str,
        spec: BudgetSpec | None,
        cost: int,
        allowance: Allowance | None = None,
    ) -> None:
        self._pending = pending
        self._key = key
        self._spec = spec
        self._cost = cost
        self._allowance = allowance

    async def allowance(self) -> Allowance:
        if self._allowance is None:
            assert self._pending is not None
            assert self._spec is not None
            state = await self._pending
            taken = self._cost if state.allowed else 0
            self._allowance = _allowance(state, self._key, taken, self._spec)
        return self._allowance

    def abandon(self) -> None:
        if self._allowance is None and self._pending is not None:
            self._pending.close()


def _allowance(state: BudgetState, key: str, taken: int, spec: BudgetSpec) -> Allowance:
    return Allowance(
        allowed=state.allowed,
        limited=True,
        key=key,
        taken=taken,
        capacity=state.capacity,
        remaining=state.remaining,
        restore_per_second=state.restore_per_second,
        retry_after=state.retry_after_seconds,
        reset_after=state.reset_seconds,
        spec=spec,
    )
