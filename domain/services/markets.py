"""Creating, editing and deleting markets."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from functools import partial
from uuid import UUID

from domain import trade_rules, validation
from domain.commands import UNSET, CreateMarket, InitialPurchase, UpdateMarket
from domain.entities import Market, MarketStatus, TradeSide
from domain.errors import Forbidden, InvalidState, NotFound
from domain.policy import Actor, Permission, has_permission, may_delete_market, may_update_market
from domain.ports import Clock, UnitOfWork, UnitOfWorkFactory
from domain.pricing import quoted_yes_price
from domain.problems import Problems
from domain.retry import retrying
from domain.services.trading import Order, TradeOutcome, execute

DEFAULT_LIQUIDITY = Decimal(100)


@dataclass(frozen=True, slots=True)
class CreatedMarket:
    """The new market (after the initial purchase, if any) and that purchase."""

    market: Market
    purchase: TradeOutcome | None = None


class MarketService:
    def __init__(self, uow: UnitOfWorkFactory, clock: Clock) -> None:
        self._uow = uow
        self._clock = clock

    async def create(self, actor: Actor, cmd: CreateMarket) -> CreatedMarket:
        """Create the market and, with ``initial_purchase``, the creator's first position in
        the same transaction: both or neither (an unaffordable purchase creates nothing)."""
        if not has_permission(actor, Permission.MARKET_CREATE):
            raise Forbidden("This needs the 'market:create' permission.")
        now = self._clock()
        problems = Problems()
        name = problems.check(partial(validation.market_name, cmd.name))
        description = problems.check(partial(validation.market_description, cmd.description))
        end_date = problems.check(partial(validation.end_date, cmd.end_date, now))
        liquidity = problems.check(
            partial(
                validation.liquidity,
                DEFAULT_LIQUIDITY if cmd.liquidity is None else cmd.liquidity,
            )
        )
        purchase = cmd.initial_purchase
        if purchase is not None:
            problems.check(partial(trade_rules.amount, purchase.amount, "initialPurchase.amount"))
        problems.raise_any()
        assert name is not None
        assert end_date is not None
        assert liquidity is not None
        market = Market(
            id=uuid.uuid4(),
            name=name,
            description=description,
            status=MarketStatus.ACTIVE,
            outcome=None,
            creator_id=actor.user_id,
            end_date=end_date,
            liquidity=liquidity,
            q_yes=Decimal(0),
            q_no=Decimal(0),
            volume=Decimal(0),
            created_at=now,
            updated_at=now,
            yes_price=quoted_yes_price(Decimal(0), Decimal(0), Decimal(1)),
        )
        return await retrying(lambda: self._create(actor, market, purchase))

    async def _create(
        self, actor: Actor, market: Market, purchase: InitialPurchase | None
    ) -> CreatedMarket:
        async with self._uow() as uow:
            created = await uow.markets.add(market)
            bought = None
            if purchase is not None:
                order = Order(created.id, purchase.outcome, TradeSide.BUY, amount=purchase.amount)
                bought = await execute(uow, actor.user_id, created, order, market.created_at)
                created = bought.market
            await uow.commit()
        return CreatedMarket(created, bought)

    async def update(self, actor: Actor, cmd: UpdateMarket) -> Market:
        """Apply a partial update: fields left UNSET keep their value, None clears."""
        now = self._clock()
        async with self._uow() as uow:
            market = await self._editable(uow, actor, cmd.market_id, may_update_market)
            changes: dict[str, object] = {}
            problems = Problems()
            if cmd.name is not UNSET:
                changes["name"] = problems.check(partial(validation.market_name, cmd.name))
            if cmd.description is not UNSET:
                changes["description"] = problems.check(
                    partial(validation.market_description, cmd.description)
                )
            if cmd.end_date is not UNSET:
                changes["end_date"] = problems.check(
                    partial(validation.end_date, cmd.end_date, now)
                )
            problems.raise_any()
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
