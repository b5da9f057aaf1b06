"""Signing up: a user and their starting balance."""

from __future__ import annotations

import uuid
from decimal import Decimal

from domain import validation
from domain.commands import SignUp
from domain.entities import LedgerKind, User
from domain.ports import Clock, NewUser, PasswordHasher, UnitOfWorkFactory


class UserService:
    def __init__(
        self,
        uow: UnitOfWorkFactory,
        hasher: PasswordHasher,
        clock: Clock,
        starting_balance: Decimal,
    ) -> None:
        self._uow = uow
        self._hasher = hasher
        self._clock = clock
        self._starting_balance = starting_balance

    async def sign_up(self, cmd: SignUp) -> User:
        """Create the user and grant the starting balance as a ledger entry, in one transaction."""
        email = validation.email(cmd.email)
        display_name = validation.display_name(cmd.display_name)
        password = validation.password(cmd.password)
        password_hash = await self._hasher.hash(password)
        now = self._clock()
        async with self._uow() as uow:
            user = await uow.users.add(
                NewUser(
                    id=uuid.uuid4(),
                    email=email,
                    display_name=display_name,
                    password_hash=password_hash,
                    balance=self._starting_balance,
                    created_at=now,
                )
            )
            await uow.ledger.add(user.id, self._starting_balance, LedgerKind.SIGNUP_GRANT, now)
            await uow.commit()
        return user
