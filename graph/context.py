"""The per-request context: who is asking, the services and fresh loaders."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from uuid import UUID

from domain.access import Actor
from domain.services.markets import MarketService
from domain.services.users import UserService
from graph.errors import unauthenticated
from graph.loaders import Loaders
from infra.db.readers import Readers
from infra.tokens import AccessClaims


@dataclass(frozen=True, slots=True)
class Services:
    """What the composition root built once for the process."""

    users: UserService
    markets: MarketService
    readers: Readers


@dataclass
class Context:
    request_id: str
    services: Services
    loaders: Loaders
    claims: AccessClaims | None
    internal_errors: int = 0
    _actor: asyncio.Future[Actor | None] | None = field(default=None, repr=False)

    async def actor(self) -> Actor | None:
        """The signed-in user as the database has them now, or None when anonymous.

        A valid signature is not enough: the account must still exist and be
        enabled, and the token must not predate a sign-out everywhere.
        Raises UNAUTHENTICATED when the token no longer stands.
        """
        # One shared future: concurrent resolvers asking at once all wait for the same load.
        if self._actor is None:
            self._actor = asyncio.ensure_future(self._load_actor())
        return await self._actor

    async def _load_actor(self) -> Actor | None:
        if self.claims is None:
            return None
        user = await self.loaders.user(self.claims.user_id)
        if user is None or user.disabled or user.token_version != self.claims.token_version:
            raise unauthenticated("The access token is no longer valid; sign in again.")
        return Actor(user_id=user.id, role=user.role)

    async def require_actor(self) -> Actor:
        actor = await self.actor()
        if actor is None:
            raise unauthenticated()
        return actor

    @property
    def viewer_id(self) -> UUID | None:
        return None if self.claims is None else self.claims.user_id
