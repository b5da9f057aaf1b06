"""Creating, editing and deleting markets."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable
from decimal import Decimal
from uuid import UUID

from domain import validation
from domain.commands import UNSET, CreateMarket, UpdateMarket
from domain.entities import Market, MarketStatus
from domain.errors import Forbidden, InvalidState, NotFound
from domain.policy import Actor, Permission, has_permission, may_delete_market, may_update_market
from domain.ports import Clock, UnitOfWork, UnitOfWorkFactory
from domain.pricing import quoted_yes_price

DEFAULT_LIQUIDITY = Decimal(100)


class MarketService:
    def __init__(self, uow: UnitOfWorkFactory, clock: Clock) -> None:
        self._uow = uow
        self._clock = clock

    async def create(self, actor: Actor, cmd: CreateMarket) -> Market:
        if not has_permission(actor, Permission.MARKET_CREATE):
            raise Forbidden("This needs the 'market:create' permission.")
        now = self._clock()
        market = Market(
            id=uuid.uuid4(),
            name=validation.market_name(cmd.name),
            description=validation.market_description(cmd.description),
            status=MarketStatus.ACTIVE,
            outcome=None,
            creator_id=actor.user_id,
            end_date=validation.end_date(cmd.end_date, now),
            liquidity=validation.liquidity(
                DEFAULT_LIQUIDITY if cmd.liquidity is None else cmd.liquidity
            ),
            q_yes=Decimal(0),
            q_no=Decimal(0),
            volume=Decimal(0),
            created_at=now,
            updated_at=now,
            yes_price=quoted_yes_price(Decimal(0), Decimal(0), Decimal(1)),
        )
        async with self._uow() as uow:
            created = await uow.markets.add(market)
            await uow.commit()
        return created

    async def update(self, actor: Actor, cmd: UpdateMarket) -> Market:
        """Apply a partial update: fields left UNSET keep their value, None clears."""
        now = self._clock()
        async with self._uow() as uow:
            market = await self._editable(uow, actor, cmd.market_id, may_update_market)
            changes: dict[str, object] = {}
            if cmd.name is not UNSET:
                changes["name"] = validation.market_name(cmd.name)
            if cmd.description is not UNSET:
                changes["description"] = validation.market_description(cmd.description)
            if cmd.end_date is not UNSET:
                changes["end_date"] = validation.end_date(cmd.end_date, now)
            if changes:
                market = await uow.markets.save(
                    dataclasses.replace(market, updated_at=now, **changes)  # type: ignore[arg-type]
                )
                await uow.commit()
        return market

    async def delete(self, actor: Actor, market_id: UUID) -> UUID:
        """Delete a market nobody has traded in yet."""
        async with self._uow() as uow:
            market = await self._editable(uow, actor, market_id, may_delete_market)
            if await uow.markets.has_trades(market.id):
                raise InvalidState("A market that has trades cannot be deleted.")
            await uow.markets.delete(market.id)
            await uow.commit()
        return market.id

    @staticmethod
    async def _editable(
        uow: UnitOfWork,
        actor: Actor,
        market_id: UUID,
        allowed: Callable[[Actor, Market], bool],
    ) -> Market:
        market = await uow.markets.get_for_update(market_id)
        if market is None:
            raise NotFound("No market has that id.")
        if not allowed(actor, market):
            raise Forbidden("Only the creator of a market (or an admin) may change it.")
        if market.status is not MarketStatus.ACTIVE:
            raise InvalidState("Only an active market can be changed.")
        return market
