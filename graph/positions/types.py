"""The Position type."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Annotated
from uuid import UUID

import strawberry
from strawberry.types import Info

from domain.entities import Market, Position
from domain.valuation import position_value, unrealized_pnl
from graph.context import Context
from graph.enums import Outcome
from graph.ids import to_global_id
from graph.node import Node
from graph.users.loading import load_user

if TYPE_CHECKING:
    from graph.markets.types import MarketType
    from graph.users.types import UserType


@strawberry.type(name="Position", description="What one user holds of one outcome of one market.")
class PositionType(Node):
    outcome: Outcome = strawberry.field(description="The outcome the shares pay on.")
    shares: Decimal = strawberry.field(description="Shares held.")
    cost_basis: Decimal = strawberry.field(description="What the shares held cost in total.")
    created_at: datetime = strawberry.field(description="When the first share was bought (UTC).")
    settled_at: datetime | None = strawberry.field(
        description="When settlement paid this position (a resolved or cancelled market);"
        " null until then. A settled position is never paid again."
    )
    payout: Decimal | None = strawberry.field(
        description="What settlement paid: 1 per winning share, 0 for a losing position, the"
        " cost basis for a cancelled market. Null until settled."
    )
    entity: strawberry.Private[Position]
    market_id: strawberry.Private[UUID]
    user_id: strawberry.Private[UUID]
    holder: strawberry.Private[UserType | None]
    prefetched_market: strawberry.Private[Market | None]

    @classmethod
    def from_entity(
        cls, position: Position, holder: UserType | None = None, market: Market | None = None
    ) -> PositionType:
        """``holder`` and ``market`` are the position's user and market when the caller
        has them already (a market's own positions, a page fetched ahead)."""
        return cls(
            id=strawberry.ID(to_global_id("Position", position.id)),
            outcome=Outcome(position.outcome.value),
            shares=position.shares,
            cost_basis=position.cost_basis,
            created_at=position.created_at,
            settled_at=position.settled_at,
            payout=position.settled_amount,
            entity=position,
            market_id=position.market_id,
            user_id=position.user_id,
            holder=holder,
            prefetched_market=market,
        )

    async def _market(self, info: Info[Context, None]) -> Market:
        if self.prefetched_market is not None:
            return self.prefetched_market
        market = await info.context.loaders.market(self.market_id)
        assert market is not None, "a position's market always exists (foreign key)"
        return market

    @strawberry.field(description="The market the shares are in.")
    async def market(
        self, info: Info[Context, None]
    ) -> Annotated[MarketType, strawberry.lazy("graph.markets.types")]:
        from graph.markets.types import MarketType

        return MarketType.from_entity(await self._market(info))

    @strawberry.field(
        description="What the shares are worth at the market's current price (rounded down)."
        " Once the market is resolved: 1 per winning share, 0 otherwise; once cancelled: the"
        " cost basis."
    )
    async def current_value(self, info: Info[Context, None]) -> Decimal:
        return position_value(self.entity, await self._market(info))

    @strawberry.field(
        description="`currentValue` minus `costBasis`: the gain (or loss) not yet paid out."
        " 0 once settlement has paid the position (`settledAt` set): its gain or loss is then"
        " realized, `payout` minus `costBasis`."
    )
    async def unrealized_pnl(self, info: Info[Context, None]) -> Decimal:
        return unrealized_pnl(self.entity, await self._market(info))

    @strawberry.field(description="The holder.")
    def user(
        self, info: Info[Context, None]
    ) -> Annotated[UserType, strawberry.lazy("graph.users.types")]:
        # Fetched ahead by the list this position came from, or loaded now. Returning the
        # awaitable from a plain resolver lets graphql-core await only when needed, which
        # spares the common case (a page of positions with their users) a coroutine per item.
        if self.holder is not None:
            return self.holder
        return load_user(info.context, self.user_id)  # type: ignore[return-value]
