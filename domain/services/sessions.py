"""Sessions: sign-in, refresh-token rotation, sign-out, password changes.

A session is a family of refresh tokens. Each refresh spends the presented
token and issues its successor (RFC 9700 rotation). A spent token presented
again within a short grace window (two tabs refreshing at once, a retried
request whose answer was lost) gets a sibling: a fresh token of the same
family, since the successor exists only as a hash and cannot be handed out
again. Presented after the window, it means two parties hold it, so the whole
family is revoked and both the thief and the legitimate holder must sign in
again. A session ends at the latest its absolute lifetime after sign-in;
rotation never moves that end. Access tokens carry the session id, and a
request is authenticated only while that session stands.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from domain import validation
from domain.clients import client_key
from domain.commands import ChangePassword, SignIn
from domain.entities import User
from domain.errors import InvalidCredentials, InvalidInput, RateLimited, SessionInvalid
from domain.policy import Actor
from domain.ports import (
    AccessToken,
    Clock,
    PasswordHasher,
    Throttle,
    TokenIssuer,
    UnitOfWork,
    UnitOfWorkFactory,
)

SIGN_IN_WINDOW_SECONDS = 300
ACCOUNT_CEILING_WINDOW_SECONDS = 3600


@dataclass(frozen=True, slots=True)
class Session:
    user: User
    session_id: uuid.UUID
    access: AccessToken
    refresh_token: str
    refresh_expires_at: datetime


@dataclass(frozen=True, slots=True)
class SignInLimits:
    """Failed sign-ins allowed before further attempts are refused.

    ``per_account_and_client`` and ``per_client`` count in ``window_seconds``;
    ``account_ceiling`` counts every client's failures at one account in
    ``account_window_seconds``. Guessing at an account from one address locks
    out only that address; locking out the owner takes ``account_ceiling``
    failures, i.e. ``account_ceiling / per_account_and_client`` addresses.
    """

    per_account_and_client: int = 5
    per_client: int = 20
    account_ceiling: int = 100
    window_seconds: int = SIGN_IN_WINDOW_SECONDS
    account_window_seconds: int = ACCOUNT_CEILING_WINDOW_SECONDS


@dataclass(frozen=True, slots=True)
class SessionPolicy:
    """How long sessions last: ``lifetime`` from sign-in, whatever rotation happens;
    ``reuse_grace`` is how long a spent refresh token still gets a sibling."""

    lifetime: timedelta = timedelta(days=90)
    reuse_grace: timedelta = timedelta(seconds=10)


def hash_refresh_token(token: str) -> str:
    """Refresh tokens are stored as SHA-256 digests: a database leak yields no usable token."""
    return hashlib.sha256(token.encode()).hexdigest()


class SessionService:
    def __init__(
        self,
        uow: UnitOfWorkFactory,
        hasher: PasswordHasher,
        tokens: TokenIssuer,
        clock: Clock,
        throttle: Throttle,
        refresh_ttl: timedelta,
        limits: SignInLimits = SignInLimits(),
        policy: SessionPolicy = SessionPolicy(),
    ) -> None:
        self._uow = uow
        self._hasher = hasher
        self._tokens = tokens
        self._clock = clock
        self._throttle = throttle
        self._refresh_ttl = refresh_ttl
        self._limits = limits
        self._policy = policy
        self._dummy: str | None = None

    async def sign_in(self, cmd: SignIn) -> Session:
        """Check the password and open a session.

        Every attempt first takes a slot in each window (this client; this
        account from this client; this account from anywhere), before the
        password is checked, so concurrent or aliased attempts cannot all slip
        past the count; a successful attempt gives its slots back. Unknown
        email, wrong password and a disabled account fail alike, and an
        unknown email still pays for one hash verification.
        """
        try:
            email = validation.email(cmd.email)
        except InvalidInput:
            email = ""
        account = hashlib.sha256(email.encode()).hexdigest()[:40]
        client = client_key(cmd.client_ip)
        limits = self._limits
        held = await self._take_slots(
            (f"signin:client:{client}", limits.per_client, limits.window_seconds),
            (
                f"signin:account-client:{account}:{client}",
                limits.per_account_and_client,
                limits.window_seconds,
            ),
            (
                f"signin:account-wide:{account}",
                limits.account_ceiling,
                limits.account_window_seconds,
            ),
        )
        # The hash check runs outside any transaction: it takes tens of milliseconds,
        # and holding a pooled connection (or SQLite's write lock) for it would let a
        # burst of sign-ins starve everything else.
        async with self._uow() as uow:
            creds = await uow.users.credentials_by_email(email) if email else None
        if creds is None:
            await self._hasher.verify(await self._dummy_hash(), cmd.password)
            raise InvalidCredentials
        if not await self._hasher.verify(creds.password_hash, cmd.password) or creds.disabled:
            raise InvalidCredentials
        rehashed = (
            await self._hasher.hash(cmd.password)
            if self._hasher.needs_rehash(creds.password_hash)
            else None
        )
        async with self._uow() as uow:
            user = await uow.users.get(creds.id)
            if user is None or user.disabled:
                raise InvalidCredentials
            if rehashed is not None:
                await uow.users.set_password_hash(creds.id, rehashed)
            session = await self._open(uow, user)
            await uow.commit()
        await self._give_back(held)
        return session

    async def refresh(self, refresh_token: str) -> Session:
        """Spend a refresh token for a new access token and its successor.

        The token row is locked for the transaction, so concurrent refreshes
        with one token run one after another: the first spends it, the others
        find it spent within the grace window and get siblings. The grace
        window runs from the first use and is not extended by later ones.
        """
        now = self._clock()
        async with self._uow() as uow:
            record = await uow.sessions.token_for_update(hash_refresh_token(refresh_token))
            if record is None or record.session_revoked or record.expires_at <= now:
                raise SessionInvalid
            ends_at = record.session_created_at + self._policy.lifetime
            if ends_at <= now:
                raise SessionInvalid
            if record.used_at is None:
                await uow.sessions.mark_used(record.id, now)
            elif now - record.used_at > self._policy.reuse_grace:
                # Reuse of a spent token: revoke the family, and keep that revocation.
                await uow.sessions.revoke(record.session_id, now)
                await uow.commit()
                raise SessionInvalid
            user = await uow.users.get(record.user_id)
            if user is None or user.disabled:
                raise SessionInvalid
            session = await self._issue(uow, user, record.session_id, now, ends_at)
            await uow.commit()
        return session

    async def sign_out(self, actor: Actor) -> None:
        """End the session the access token belongs to (its access tokens die with it)."""
        if actor.session_id is None:
            return
        async with self._uow() as uow:
            await uow.sessions.revoke(actor.session_id, self._clock())
            await uow.commit()

    async def sign_out_everywhere(self, actor: Actor) -> None:
        """End every session and invalidate every outstanding access token of the user."""
        async with self._uow() as uow:
            await uow.sessions.revoke_all(actor.user_id, self._clock())
            await uow.users.bump_token_version(actor.user_id)
            await uow.commit()

    async def change_password(self, actor: Actor, cmd: ChangePassword) -> None:
        """Change the password and end every other session; this one stays signed in."""
        new_password = validation.password(cmd.new_password, field="newPassword")
        # Guessing the current password through this mutation (say with a stolen access
        # token) is throttled like sign-in: failures count, a success gives its slot back.
        held = await self._take_slots(
            (
                f"password:user:{actor.user_id}",
                self._limits.per_account_and_client,
                self._limits.window_seconds,
            )
        )
        async with self._uow() as uow:
            creds = await uow.users.credentials(actor.user_id)
        if creds is None or not await self._hasher.verify(
            creds.password_hash, cmd.current_password
        ):
            raise InvalidCredentials
        new_hash = await self._hasher.hash(new_password)
        async with self._uow() as uow:
            await uow.users.set_password_hash(actor.user_id, new_hash)
            await uow.sessions.revoke_all(actor.user_id, self._clock(), keep=actor.session_id)
            await uow.commit()
        await self._give_back(held)

    async def _take_slots(self, *windows: tuple[str, int, int]) -> list[tuple[str, str]]:
        """A slot in each (key, limit, seconds) window, or RateLimited (with the slots
        taken so far given back)."""
        held: list[tuple[str, str]] = []
        for key, limit, window_seconds in windows:
            slot = await self._throttle.acquire(key, limit, window_seconds)
            if slot.retry_after is not None:
                await self._give_back(held)
                raise RateLimited(slot.retry_after)
            held.append((key, slot.id))
        return held

    async def _give_back(self, held: list[tuple[str, str]]) -> None:
        for key, slot_id in held:
            await self._throttle.release(key, slot_id)

    async def _open(self, uow: UnitOfWork, user: User) -> Session:
        now = self._clock()
        session_id = uuid.uuid4()
        await uow.sessions.start(session_id, user.id, now)
        return await self._issue(uow, user, session_id, now, now + self._policy.lifetime)

    async def _issue(
        self,
        uow: UnitOfWork,
        user: User,
        session_id: uuid.UUID,
        now: datetime,
        session_ends_at: datetime,
    ) -> Session:
        token = secrets.token_urlsafe(32)
        expires = min(now + self._refresh_ttl, session_ends_at)
        await uow.sessions.add_token(
            uuid.uuid4(), session_id, hash_refresh_token(token), now, expires
        )
        return Session(
            user=user,
            session_id=session_id,
            access=self._tokens.issue_access(user, session_id),
            refresh_token=token,
            refresh_expires_at=expires,
        )

    async def _dummy_hash(self) -> str:
        """A hash made with the current parameters, verified when the email is unknown."""
        if self._dummy is None:
            self._dummy = await self._hasher.hash(secrets.token_hex(16))
        return self._dummy
