"""Creating, editing and deleting markets."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated

import strawberry
from strawberry.types import Info

from domain.commands import UNSET, CreateMarket, InitialPurchase, UpdateMarket
from domain.entities import Outcome as DomainOutcome
from domain.errors import FieldProblem, InvalidInput
from domain.policy import Permission
from domain.services.markets import CreatedMarket
from graph.context import Context
from graph.enums import Outcome
from graph.errors import (
    ConflictError,
    ForbiddenError,
    InsufficientBalanceError,
    InvalidStateError,
    NotFoundError,
    ValidationError,
)
from graph.ids import from_global_id, input_id
from graph.markets.types import MarketType
from graph.outcomes import outcome
from graph.permissions import requires, signed_in
from graph.positions.types import PositionType


@strawberry.input(description="The creator's first purchase, made together with the market.")
class InitialPurchaseInput:
    outcome: Outcome = strawberry.field(description="The outcome to buy shares of.")
    amount: Decimal = strawberry.field(
        description="Money to spend (more than 0, at most 1000000): as many shares as it buys."
    )


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
    initial_purchase: InitialPurchaseInput | None = strawberry.field(
        default=None,
        description="Buy into the new market at once, in the same transaction: when the"
        " balance does not cover it, no market is created either.",
    )

    def to_command(self) -> CreateMarket:
        purchase = self.initial_purchase
        return CreateMarket(
            name=self.name,
            description=self.description,
            end_date=self.end_date,
            liquidity=self.liquidity,
            initial_purchase=None
            if purchase is None
            else InitialPurchase(DomainOutcome[purchase.outcome.name], purchase.amount),
        )


@strawberry.type(description="The market was created.")
class CreateMarketSuccess:
    market: MarketType = strawberry.field(
        description="The new market (with the prices the initial purchase left)."
    )
    position: PositionType | None = strawberry.field(
        description="The creator's position from `initialPurchase`; null without one."
    )


CreateMarketResult = Annotated[
    CreateMarketSuccess | ValidationError | ConflictError | InsufficientBalanceError,
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
        name, end_date = self.name, self.end_date
        problems: list[FieldProblem] = []
        parsed = from_global_id(self.id)
        if parsed is None or parsed[0] != "Market":
            problems.append(FieldProblem("id", "This is not a Market id."))
        if name is None:
            problems.append(FieldProblem("name", "'name' cannot be cleared."))
        if end_date is None:
            problems.append(FieldProblem("endDate", "'endDate' cannot be cleared."))
        if problems:
            raise InvalidInput.of(problems)
        assert parsed is not None
        assert name is not None
        assert end_date is not None
        return UpdateMarket(
            market_id=parsed[1],
            name=UNSET if name is strawberry.UNSET else name,
            description=UNSET if self.description is strawberry.UNSET else self.description,
            end_date=UNSET if end_date is strawberry.UNSET else end_date,
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
        context = info.context
        actor = await context.require_actor()
        return await outcome(
            lambda: context.services.markets.create(actor, input.to_command()),
            lambda created: _created(context, created),
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


def _created(context: Context, created: CreatedMarket) -> CreateMarketSuccess:
    position = None
    if created.purchase is not None:
        bought = created.purchase
        context.loaders.traded(bought.user, bought.market, bought.position)
        position = PositionType.from_entity(bought.position)
    return CreateMarketSuccess(market=MarketType.from_entity(created.market), position=position)
