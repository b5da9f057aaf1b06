"""Creating, editing and deleting markets."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated

import strawberry
from strawberry.types import Info

from domain.commands import UNSET, CreateMarket, UpdateMarket
from domain.errors import InvalidInput
from domain.policy import Permission
from graph.context import Context
from graph.errors import (
    ConflictError,
    ForbiddenError,
    InvalidStateError,
    NotFoundError,
    ValidationError,
)
from graph.ids import input_id
from graph.markets.types import MarketType
from graph.outcomes import outcome
from graph.permissions import requires, signed_in


@strawberry.input(description="A new market.")
class CreateMarketInput:
    name: str = strawberry.field(description="The question, 1 to 200 characters, unique.")
    end_date: datetime = strawberry.field(description="When trading ends; must be in the future.")
    description: str | None = strawberry.field(
        default=None, description="Details and resolution criteria, up to 2000 characters."
    )
    liquidity: Decimal | None = strawberry.field(
        default=None, description="The market maker's `b`, 1 to 1000000 (default 100)."
    )


@strawberry.type(description="The market was created.")
class CreateMarketSuccess:
    market: MarketType = strawberry.field(description="The new market.")


CreateMarketResult = Annotated[
    CreateMarketSuccess | ValidationError | ConflictError,
    strawberry.union("CreateMarketResult", description="The outcome of `createMarket`."),
]


@strawberry.input(
    description="Changes to a market. Omitted fields stay as they are; null clears a nullable one."
)
class UpdateMarketInput:
    id: strawberry.ID = strawberry.field(description="The Market to change.")
    name: str | None = strawberry.field(
        default=strawberry.UNSET, description="A new name (cannot be null)."
    )
    description: str | None = strawberry.field(
        default=strawberry.UNSET, description="A new description; null removes it."
    )
    end_date: datetime | None = strawberry.field(
        default=strawberry.UNSET, description="A new end date in the future (cannot be null)."
    )

    def to_command(self) -> UpdateMarket:
        """Omitted (UNSET) leaves a field alone; null clears it where that is allowed."""
        if self.name is None:
            raise InvalidInput("name", "'name' cannot be cleared.")
        if self.end_date is None:
            raise InvalidInput("endDate", "'endDate' cannot be cleared.")
        return UpdateMarket(
            market_id=input_id(self.id, "Market", "id"),
            name=UNSET if self.name is strawberry.UNSET else self.name,
            description=UNSET if self.description is strawberry.UNSET else self.description,
            end_date=UNSET if self.end_date is strawberry.UNSET else self.end_date,
        )


@strawberry.type(description="The market was changed.")
class UpdateMarketSuccess:
    market: MarketType = strawberry.field(description="The market as it is now.")


UpdateMarketResult = Annotated[
    UpdateMarketSuccess
    | ValidationError
    | ConflictError
    | NotFoundError
    | ForbiddenError
    | InvalidStateError,
    strawberry.union("UpdateMarketResult", description="The outcome of `updateMarket`."),
]


@strawberry.input(description="The market to delete.")
class DeleteMarketInput:
    id: strawberry.ID = strawberry.field(description="The Market to delete.")


@strawberry.type(description="The market was deleted.")
class DeleteMarketSuccess:
    deleted_id: strawberry.ID = strawberry.field(description="The id the market had.")


DeleteMarketResult = Annotated[
    DeleteMarketSuccess | ValidationError | NotFoundError | ForbiddenError | InvalidStateError,
    strawberry.union("DeleteMarketResult", description="The outcome of `deleteMarket`."),
]


@strawberry.type
class MarketMutations:
    @strawberry.mutation(
        description="Open a new market. The creator may edit it while it is active.",
        extensions=requires(Permission.MARKET_CREATE),
    )
    async def create_market(
        self,
        info: Info[Context, None],
        input: Annotated[CreateMarketInput, strawberry.argument(description="The new market.")],
    ) -> CreateMarketResult | None:
        actor = await info.context.require_actor()
        command = CreateMarket(
            name=input.name,
            description=input.description,
            end_date=input.end_date,
            liquidity=input.liquidity,
        )
        return await outcome(
            lambda: info.context.services.markets.create(actor, command),
            lambda market: CreateMarketSuccess(market=MarketType.from_entity(market)),
        )

    @strawberry.mutation(description="Change your own active market.", extensions=signed_in())
    async def update_market(
        self,
        info: Info[Context, None],
        input: Annotated[UpdateMarketInput, strawberry.argument(description="The changes.")],
    ) -> UpdateMarketResult | None:
        actor = await info.context.require_actor()
        return await outcome(
            lambda: info.context.services.markets.update(actor, input.to_command()),
            lambda market: UpdateMarketSuccess(market=MarketType.from_entity(market)),
        )

    @strawberry.mutation(
        description="Delete your own active market while nobody has traded in it.",
        extensions=signed_in(),
    )
    async def delete_market(
        self,
        info: Info[Context, None],
        input: Annotated[DeleteMarketInput, strawberry.argument(description="Which market.")],
    ) -> DeleteMarketResult | None:
        actor = await info.context.require_actor()
        return await outcome(
            lambda: info.context.services.markets.delete(actor, input_id(input.id, "Market", "id")),
            lambda _deleted: DeleteMarketSuccess(deleted_id=input.id),
        )
