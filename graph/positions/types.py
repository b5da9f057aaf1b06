"""The Position type."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Annotated
from uuid import UUID

import strawberry
from strawberry.types import Info

from domain.entities import Position
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
    market_id: strawberry.Private[UUID]
    user_id: strawberry.Private[UUID]
    holder: strawberry.Private[UserType | None]

    @classmethod
    def from_entity(cls, position: Position, holder: UserType | None = None) -> PositionType:
        """``holder`` is the position's user when the caller fetched it ahead."""
        return cls(
            id=strawberry.ID(to_global_id("Position", position.id)),
            outcome=Outcome(position.outcome.value),
            shares=position.shares,
            cost_basis=position.cost_basis,
            created_at=position.created_at,
            market_id=position.market_id,
            user_id=position.user_id,
            holder=holder,
        )

    @strawberry.field(description="The market the shares are in.")
    async def market(
        self, info: Info[Context, None]
    ) -> Annotated[MarketType, strawberry.lazy("graph.markets.types")]:
        from graph.markets.types import MarketType

        market = await info.context.loaders.market(self.market_id)
        assert market is not None, "a position's market always exists (foreign key)"
        return MarketType.from_entity(market)

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
