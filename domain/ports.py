"""What the use cases need from the outside world, as protocols the infra layer implements."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from types import TracebackType
from typing import Protocol, Self
from uuid import UUID

from domain.entities import LedgerKind, Market, User, UserCredentials

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


class UserRepository(Protocol):
    async def add(self, user: NewUser) -> User:
        """Insert a user; raises ``Conflict`` when the email is taken."""

    async def get(self, user_id: UUID) -> User | None: ...

    async def credentials_by_email(self, email: str) -> UserCredentials | None: ...

    async def set_password_hash(self, user_id: UUID, password_hash: str) -> None: ...


class MarketRepository(Protocol):
    async def add(self, market: Market) -> Market:
        """Insert a market; raises ``Conflict`` when the name is taken."""

    async def get_for_update(self, market_id: UUID) -> Market | None:
        """Load and lock the market row for the rest of the transaction."""

    async def save(self, market: Market) -> Market:
        """Write the editable fields back; raises ``Conflict`` when the name is taken."""

    async def has_trades(self, market_id: UUID) -> bool: ...

    async def delete(self, market_id: UUID) -> None: ...


class LedgerRepository(Protocol):
    async def add(self, user_id: UUID, amount: Decimal, kind: LedgerKind, at: datetime) -> None: ...


class UnitOfWork(Protocol):
    """One transaction; leaving the block without ``commit`` rolls everything back."""

    @property
    def users(self) -> UserRepository: ...

    @property
    def markets(self) -> MarketRepository: ...

    @property
    def ledger(self) -> LedgerRepository: ...

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
    def issue_access(self, user: User) -> AccessToken: ...
