"""What the use cases need from the outside world, as protocols the infra layer implements."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from types import TracebackType
from typing import Protocol, Self
from uuid import UUID

from domain.entities import LedgerKind, Market, MarketStatus, Role, User, UserCredentials
from domain.limits import BudgetSpec, BudgetState
from domain.readplan import Bound, Plan

Clock = Callable[[], datetime]


@dataclass(frozen=True, slots=True)
class NewUser:
    id: UUID
    email: str
    display_name: str
    password_hash: str
    balance: Decimal
    created_at: datetime


@dataclass(frozen=True, slots=True)
class AccessToken:
    token: str
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class RefreshRecord:
    """A stored refresh token, with what rotation needs to know of its session."""

    id: UUID
    session_id: UUID
    user_id: UUID
    expires_at: datetime
    used_at: datetime | None
    session_revoked: bool
    session_created_at: datetime


@dataclass(frozen=True, slots=True)
class Slot:
    """A place taken in an attempt window, or (no id) the seconds until one frees up."""

    id: str
    retry_after: int | None


class UserRepository(Protocol):
    async def add(self, user: NewUser) -> User:
        """Insert a user; raises ``Conflict`` when the email is taken."""

    async def get(self, user_id: UUID) -> User | None: ...

    async def credentials_by_email(self, email: str) -> UserCredentials | None: ...

    async def set_password_hash(self, user_id: UUID, password_hash: str) -> None: ...

    async def credentials(self, user_id: UUID) -> UserCredentials | None: ...

    async def bump_token_version(self, user_id: UUID) -> None:
        """Invalidate every access token issued to the user so far."""

    async def set_role(self, user_id: UUID, role: Role) -> User | None: ...

    async def set_disabled(self, user_id: UUID, disabled: bool) -> User | None: ...

    async def credit(self, user_id: UUID, amount: Decimal) -> None:
        """Add to the balance in one atomic update."""


class MarketRepository(Protocol):
    async def add(self, market: Market) -> Market:
        """Insert a market; raises ``Conflict`` when the name is taken."""

    async def get_for_update(self, market_id: UUID) -> Market | None:
        """Load and lock the market row for the rest of the transaction."""

    async def save(self, market: Market) -> Market:
        """Write the editable fields back; raises ``Conflict`` when the name is taken."""

    async def has_trades(self, market_id: UUID) -> bool: ...

    async def delete(self, market_id: UUID) -> None: ...

    async def set_status(self, market_id: UUID, status: MarketStatus, now: datetime) -> Market: ...

    async def cost_basis_by_holder(self, market_id: UUID) -> list[tuple[UUID, Decimal]]:
        """What each holder paid for their positions in the market, in total."""


class LedgerRepository(Protocol):
    async def add(
        self,
        user_id: UUID,
        amount: Decimal,
        kind: LedgerKind,
        at: datetime,
        market_id: UUID | None = None,
    ) -> None: ...


class SessionRepository(Protocol):
    async def start(self, session_id: UUID, user_id: UUID, now: datetime) -> None: ...

    async def add_token(
        self,
        token_id: UUID,
        session_id: UUID,
        token_hash: str,
        now: datetime,
        expires_at: datetime,
    ) -> None: ...

    async def token_for_update(self, token_hash: str) -> RefreshRecord | None:
        """Find and lock a refresh token by its hash."""

    async def mark_used(self, token_id: UUID, now: datetime) -> None: ...

    async def revoke(self, session_id: UUID, now: datetime) -> None: ...

    async def revoke_all(self, user_id: UUID, now: datetime, keep: UUID | None = None) -> None: ...


class UnitOfWork(Protocol):
    """One transaction; leaving the block without ``commit`` rolls everything back."""

    @property
    def users(self) -> UserRepository: ...

    @property
    def markets(self) -> MarketRepository: ...

    @property
    def ledger(self) -> LedgerRepository: ...

    @property
    def sessions(self) -> SessionRepository: ...

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

    async def commit(self) -> None: ...


UnitOfWorkFactory = Callable[[], UnitOfWork]


class PasswordHasher(Protocol):
    async def hash(self, password: str) -> str: ...

    async def verify(self, password_hash: str, password: str) -> bool: ...

    def needs_rehash(self, password_hash: str) -> bool: ...


class TokenIssuer(Protocol):
    def issue_access(self, user: User, session_id: UUID) -> AccessToken: ...


class Throttle(Protocol):
    async def acquire(self, key: str, limit: int, window_seconds: int) -> Slot:
        """Take a place in the window of ``key``, unless ``limit`` places are taken."""

    async def release(self, key: str, slot_id: str) -> None:
        """Give a place back (the attempt succeeded, so it does not count)."""


class CompiledReads(Protocol):
    async def read(self, plan: Plan, bound: Bound) -> list[str | None]:
        """Each root field's JSON text (None for null), in the plan's order: one statement each."""


class Budgets(Protocol):
    """Cost budgets (``domain.limits``): buckets of points keyed by identity.

    Every call is atomic: concurrent ``take`` calls against one budget never
    take more than it holds. A budget nobody has touched (or that has refilled
    completely) is full.
    """

    async def take(self, key: str, cost: int, spec: BudgetSpec) -> BudgetState:
        """Take ``cost`` points if the budget holds them; otherwise take nothing and
        answer ``allowed=False`` with the wait until it will."""

    async def refund(self, key: str, points: int, spec: BudgetSpec) -> BudgetState:
        """Give back ``points`` (taken but not spent); a budget never exceeds its capacity."""

    async def peek(self, key: str, spec: BudgetSpec) -> BudgetState:
        """The budget as it stands, changing nothing."""
