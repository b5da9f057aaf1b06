"""Signing up: a user and their starting balance."""

from __future__ import annotations

import uuid
from decimal import Decimal
from functools import partial

from domain import validation
from domain.clients import client_key
from domain.commands import SignUp
from domain.entities import LedgerKind, User
from domain.errors import RateLimited
from domain.ports import Clock, NewUser, PasswordHasher, Throttle, UnitOfWorkFactory
from domain.problems import Problems

SIGN_UP_WINDOW_SECONDS = 3600


class UserService:
    def __init__(
        self,
        uow: UnitOfWorkFactory,
        hasher: PasswordHasher,
        clock: Clock,
        starting_balance: Decimal,
        throttle: Throttle | None = None,
        sign_ups_per_client: int = 10,
    ) -> None:
        self._uow = uow
        self._hasher = hasher
        self._clock = clock
        self._starting_balance = starting_balance
        self._throttle = throttle
        self._per_client = sign_ups_per_client

    async def sign_up(self, cmd: SignUp) -> User:
        """Create the user and grant the starting balance as a ledger entry, in one transaction."""
        problems = Problems()
        email = problems.check(partial(validation.email, cmd.email))
        display_name = problems.check(partial(validation.display_name, cmd.display_name))
        password = problems.check(partial(validation.password, cmd.password))
        problems.raise_any()
        assert email is not None
        assert display_name is not None
        assert password is not None
        if self._throttle is not None and cmd.client_ip is not None:
            # Every sign-up counts, successful or not: each costs a hash, grants play
            # money, and a taken email tells whether an address has an account.
            slot = await self._throttle.acquire(
                f"signup:client:{client_key(cmd.client_ip)}",
                self._per_client,
                SIGN_UP_WINDOW_SECONDS,
            )
            if slot.retry_after is not None:
                raise RateLimited(slot.retry_after)
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
