"""Administration and moderation: roles, account state, closing markets.

Resolving and cancelling markets, which pay out through jobs, live in
``domain.services.lifecycle``.
"""

from __future__ import annotations

from uuid import UUID

from domain import validation
from domain.entities import Market, MarketStatus, Role, User
from domain.errors import Forbidden, InvalidState, NotFound
from domain.policy import Actor, Permission, has_permission
from domain.ports import Clock, UnitOfWorkFactory


def _require(actor: Actor, permission: Permission) -> None:
    # The GraphQL layer checks the same permission first; the rule lives here.
    if not has_permission(actor, permission):
        raise Forbidden(f"This needs the '{permission.value}' permission.")


class AdminService:
    def __init__(self, uow: UnitOfWorkFactory, clock: Clock) -> None:
        self._uow = uow
        self._clock = clock

    async def set_role(self, actor: Actor, user_id: UUID, role: Role) -> User:
        _require(actor, Permission.USER_MANAGE)
        if user_id == actor.user_id:
            raise InvalidState("You cannot change your own role.")
        async with self._uow() as uow:
            user = await uow.users.set_role(user_id, role)
            if user is None:
                raise NotFound("No user has that id.")
            await uow.commit()
        return user

    async def set_disabled(self, actor: Actor, user_id: UUID, disabled: bool) -> User:
        """Disable or enable an account; disabling also ends all of its sessions."""
        _require(actor, Permission.USER_MANAGE)
        if user_id == actor.user_id:
            raise InvalidState("You cannot disable or enable your own account.")
        async with self._uow() as uow:
            user = await uow.users.set_disabled(user_id, disabled)
            if user is None:
                raise NotFound("No user has that id.")
            if disabled:
                await uow.sessions.revoke_all(user_id, self._clock())
            await uow.commit()
        return user

    async def close_market(self, actor: Actor, market_id: UUID) -> Market:
        """Stop trading in an active market; it awaits resolution."""
        _require(actor, Permission.MARKET_CLOSE)
        async with self._uow() as uow:
            market = await uow.markets.get_for_update(market_id)
            if market is None:
                raise NotFound("No market has that id.")
            if market.status is not MarketStatus.ACTIVE:
                raise InvalidState("Only an active market can be closed.")
            market = await uow.markets.set_status(market.id, MarketStatus.CLOSED, self._clock())
            await uow.commit()
        return market

    async def promote_to_admin(self, email: str) -> User:
        """Make the account with this email an admin: bootstrapping, run by an operator."""
        async with self._uow() as uow:
            creds = await uow.users.credentials_by_email(validation.email(email))
            if creds is None:
                raise NotFound("No account has that email.")
            user = await uow.users.set_role(creds.id, Role.ADMIN)
            assert user is not None
            await uow.commit()
        return user
