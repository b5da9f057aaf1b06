"""The per-request context: who is asking, the services and fresh loaders."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime
from uuid import UUID

from domain.cursors import CursorKey
from domain.entities import User
from domain.policy import POSITIONS, Actor
from domain.ports import AccessClaims, BatchReads, Budgets, Identities
from domain.services.admin import AdminService
from domain.services.jobs import JobRunner
from domain.services.lifecycle import MarketLifecycle
from domain.services.markets import MarketService
from domain.services.sessions import SessionService
from domain.services.trading import TradingService
from domain.services.users import UserService
from graph.budgets import UNLIMITED, Allowance
from graph.errors import unauthenticated
from graph.loaders import Loaders


@dataclass(frozen=True, slots=True)
class Services:
    """What the composition root built once for the process."""

    users: UserService
    sessions: SessionService
    markets: MarketService
    admin: AdminService
    readers: BatchReads
    identities: Identities
    trading: TradingService
    lifecycle: MarketLifecycle
    jobs: JobRunner
    # What cursors are signed with (derived from the JWT secrets).
    cursor_key: CursorKey
    positions_public: bool = True
    # Cost budgets; None when RATE_LIMITS=off.
    budgets: Budgets | None = None

    @property
    def public_rules(self) -> frozenset[str]:
        """The visibility rules this deployment made public (``POSITIONS_PUBLIC``)."""
        return frozenset({POSITIONS.name}) if self.positions_public else frozenset()


@dataclass(slots=True)
class Context:
    request_id: str
    services: Services
    claims: AccessClaims | None
    client_ip: str | None = None
    internal_errors: int = 0
    # This operation's requested cost and what the budget said about it (the rateLimit field).
    requested_cost: int = 0
    allowance: Allowance = UNLIMITED
    _now: datetime | None = field(default=None, repr=False)
    _actor: asyncio.Future[Actor | None] | None = field(default=None, repr=False)
    _loaders: Loaders | None = field(default=None, repr=False)
    _viewer: User | None = field(default=None, repr=False)

    @property
    def now(self) -> datetime:
        """ "Now" for defaults of this request's reads (a price history up to now): one
        instant, taken on first use, so that the fields of many objects ask the same
        question and share one batch."""
        if self._now is None:
            self._now = datetime.now(UTC)
        return self._now

    @property
    def loaders(self) -> Loaders:
        """This request's loaders, built on first use: a request answered from the response
        cache never needs them, and building twenty DataLoaders costs more than its answer."""
        if self._loaders is None:
            self._loaders = Loaders(self.services.readers)
            if self._viewer is not None:
                self._loaders.know_user(self._viewer)
        return self._loaders

    async def actor(self) -> Actor | None:
        """The signed-in user as the database has them now, or None when anonymous.

        A valid signature is not enough: the account must still exist and be
        enabled, the session must not have ended, and the token must not
        predate a sign-out everywhere. Raises UNAUTHENTICATED when the token
        no longer stands. Loaded once per request, whoever asks first.
        """
        if self._actor is None:
            if self.claims is None:
                return None  # anonymous: nothing to load (and no task to schedule per request)
            # One shared future: concurrent resolvers asking at once all wait for the same load.
            self._actor = asyncio.ensure_future(self._load_actor())
        return await self._actor

    async def _load_actor(self) -> Actor | None:
        claims = self.claims
        if claims is None:
            return None
        identity = await self.services.identities.identity(claims.user_id, claims.session_id)
        if (
            identity is None
            or not identity.session_active
            or identity.user.disabled
            or identity.user.token_version != claims.token_version
        ):
            raise unauthenticated("The access token is no longer valid; sign in again.")
        # The viewer's row is loaded now; later `viewer`/`user` reads of it need no query.
        self._viewer = identity.user
        if self._loaders is not None:
            self._loaders.know_user(identity.user)
        return Actor(
            user_id=identity.user.id, role=identity.user.role, session_id=claims.session_id
        )

    def signed_in_as(self, actor: Actor) -> None:
        """The request just opened a session (``signIn``, ``refreshSession``): from here on
        it acts as that user, so the result shows them their own private fields."""
        future: asyncio.Future[Actor | None] = asyncio.get_running_loop().create_future()
        future.set_result(actor)
        self._actor = future

    async def require_actor(self) -> Actor:
        actor = await self.actor()
        if actor is None:
            raise unauthenticated()
        return actor

    @property
    def viewer_id(self) -> UUID | None:
        return None if self.claims is None else self.claims.user_id
