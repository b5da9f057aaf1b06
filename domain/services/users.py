"""Sign-up and sign-in."""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from decimal import Decimal

from domain import validation
from domain.commands import SignIn, SignUp
from domain.entities import LedgerKind, User
from domain.errors import InvalidCredentials, InvalidInput
from domain.ports import AccessToken, Clock, NewUser, PasswordHasher, TokenIssuer, UnitOfWorkFactory


@dataclass(frozen=True, slots=True)
class Session:
    user: User
    access: AccessToken


class UserService:
    def __init__(
        self,
        uow: UnitOfWorkFactory,
        hasher: PasswordHasher,
        tokens: TokenIssuer,
        clock: Clock,
        starting_balance: Decimal,
    ) -> None:
        self._uow = uow
        self._hasher = hasher
        self._tokens = tokens
        self._clock = clock
        self._starting_balance = starting_balance
        self._dummy: str | None = None

    async def _dummy_hash(self) -> str:
        """A hash made with the current parameters, verified when the email is unknown."""
        if self._dummy is None:
            self._dummy = await self._hasher.hash(secrets.token_hex(16))
        return self._dummy

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

    async def sign_in(self, cmd: SignIn) -> Session:
        """Check the password and issue an access token.

        Unknown email, wrong password and a disabled account fail alike, and an
        unknown email still pays for one hash verification so that timing does
        not tell which emails are registered.
        """
        try:
            email = validation.email(cmd.email)
        except InvalidInput:
            email = ""
        async with self._uow() as uow:
            creds = await uow.users.credentials_by_email(email) if email else None
            if creds is None:
                await self._hasher.verify(await self._dummy_hash(), cmd.password)
                raise InvalidCredentials
            if not await self._hasher.verify(creds.password_hash, cmd.password) or creds.disabled:
                raise InvalidCredentials
            if self._hasher.needs_rehash(creds.password_hash):
                await uow.users.set_password_hash(creds.id, await self._hasher.hash(cmd.password))
                await uow.commit()
            user = await uow.users.get(creds.id)
        assert user is not None
        return Session(user=user, access=self._tokens.issue_access(user))
