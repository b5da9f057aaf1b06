"""Buying and selling shares."""

from __future__ import annotations

from decimal import Decimal
from functools import partial
from typing import Annotated

import strawberry
from strawberry.types import Info

from domain.commands import BuyShares, SellShares
from domain.entities import Outcome as DomainOutcome
from domain.problems import Problems
from domain.services.trading import TradeOutcome
from graph.context import Context
from graph.enums import Outcome
from graph.errors import (
    IdempotencyKeyReusedError,
    InsufficientBalanceError,
    InsufficientSharesError,
    MarketNotActiveError,
    NotFoundError,
    SlippageExceededError,
    ValidationError,
)
from graph.ids import input_id
from graph.markets.types import MarketType
from graph.outcomes import outcome
from graph.permissions import signed_in
from graph.positions.types import PositionType
from graph.trading.types import TradeType
from graph.users.types import UserType

_KEY_HELP = (
    "Optional, 1 to 128 visible ASCII characters (a UUID, say), chosen by the client per"
    " intended trade. Repeating the request with the same key and input within 24 hours"
    " returns the original trade (`replayed: true`) and moves no money; the same key with"
    " other input is refused with IDEMPOTENCY_KEY_REUSED."
)


@strawberry.input(description="A purchase of shares. Give exactly one of `amount` and `shares`.")
class BuySharesInput:
    market_id: strawberry.ID = strawberry.field(description="The Market to buy in.")
    outcome: Outcome = strawberry.field(description="The outcome to buy shares of.")
    amount: Decimal | None = strawberry.field(
        default=None,
        description="Money to spend: buys as many shares as it pays for (to 8 places) and"
        " charges what they cost, at most this. More than 0, at most 1000000.",
    )
    shares: Decimal | None = strawberry.field(
        default=None, description="Exactly this many shares. More than 0, at most 1000000."
    )
    max_average_price: Decimal | None = strawberry.field(
        default=None,
        description="Refuse the trade (SLIPPAGE_EXCEEDED) if the average price per share"
        " would be above this, between 0 and 1.",
    )
    idempotency_key: str | None = strawberry.field(default=None, description=_KEY_HELP)

    def to_command(self) -> BuyShares:
        problems = Problems()
        market_id = problems.check(partial(input_id, self.market_id, "Market", "marketId"))
        return BuyShares(
            market_id=market_id,
            outcome=DomainOutcome[self.outcome.name],
            amount=self.amount,
            shares=self.shares,
            max_average_price=self.max_average_price,
            idempotency_key=self.idempotency_key,
            problems=problems.found,
        )


@strawberry.input(description="A sale of shares back to the market maker.")
class SellSharesInput:
    market_id: strawberry.ID = strawberry.field(description="The Market to sell in.")
    outcome: Outcome = strawberry.field(description="The outcome whose shares to sell.")
    shares: Decimal = strawberry.field(
        description="How many shares to sell: more than 0, at most what the position holds."
    )
    min_average_price: Decimal | None = strawberry.field(
        default=None,
        description="Refuse the trade (SLIPPAGE_EXCEEDED) if the average price per share"
        " would be below this, between 0 and 1.",
    )
    idempotency_key: str | None = strawberry.field(default=None, description=_KEY_HELP)

    def to_command(self) -> SellShares:
        problems = Problems()
        market_id = problems.check(partial(input_id, self.market_id, "Market", "marketId"))
        return SellShares(
            market_id=market_id,
            outcome=DomainOutcome[self.outcome.name],
            shares=self.shares,
            min_average_price=self.min_average_price,
            idempotency_key=self.idempotency_key,
            problems=problems.found,
        )


@strawberry.type(description="The shares were bought. Everything here is as committed.")
class BuySharesSuccess:
    trade: TradeType = strawberry.field(description="The trade.")
    position: PositionType = strawberry.field(description="The position after the trade.")
    market: MarketType = strawberry.field(description="The market with its new prices.")
    user: UserType = strawberry.field(description="The signed-in user with their new balance.")
    replayed: bool = strawberry.field(
        description="True when this repeats an earlier request with the same idempotency key:"
        " `trade` is that request's trade, the rest is as it is now, and no money moved."
    )


@strawberry.type(description="The shares were sold. Everything here is as committed.")
class SellSharesSuccess:
    trade: TradeType = strawberry.field(description="The trade.")
    position: PositionType = strawberry.field(description="The position after the trade.")
    market: MarketType = strawberry.field(description="The market with its new prices.")
    user: UserType = strawberry.field(description="The signed-in user with their new balance.")
    replayed: bool = strawberry.field(
        description="True when this repeats an earlier request with the same idempotency key:"
        " `trade` is that request's trade, the rest is as it is now, and no money moved."
    )


BuySharesResult = Annotated[
    BuySharesSuccess
    | ValidationError
    | NotFoundError
    | MarketNotActiveError
    | InsufficientBalanceError
    | SlippageExceededError
    | IdempotencyKeyReusedError,
    strawberry.union("BuySharesResult", description="The outcome of `buyShares`."),
]
SellSharesResult = Annotated[
    SellSharesSuccess
    | ValidationError
    | NotFoundError
    | MarketNotActiveError
    | InsufficientSharesError
    | SlippageExceededError
    | IdempotencyKeyReusedError,
    strawberry.union("SellSharesResult", description="The outcome of `sellShares`."),
]


def shown(context: Context, result: TradeOutcome) -> tuple[PositionType, MarketType, UserType]:
    """The position, market and user of a success, from the values the trade committed.

    The request's loaders were primed before the trade (the viewer when the token
    was checked, anything the document read earlier); they get the new values too,
    so no later field of this request shows what the trade changed as it was.
    """
    context.loaders.traded(result.user, result.market, result.position)
    return (
        PositionType.from_entity(result.position),
        MarketType.from_entity(result.market),
        UserType.from_entity(result.user),
    )


def _bought(context: Context, result: TradeOutcome) -> BuySharesSuccess:
    position, market, user = shown(context, result)
    trade = TradeType.from_entity(result.trade)
    return BuySharesSuccess(
        trade=trade, position=position, market=market, user=user, replayed=result.replayed
    )


def _sold(context: Context, result: TradeOutcome) -> SellSharesSuccess:
    position, market, user = shown(context, result)
    trade = TradeType.from_entity(result.trade)
    return SellSharesSuccess(
        trade=trade, position=position, market=market, user=user, replayed=result.replayed
    )


@strawberry.type
class TradingMutations:
    @strawberry.mutation(
        description="Buy shares of one outcome from the market maker, at the price its"
        " LMSR sets. One transaction: the cost leaves the balance only if it covers it.",
        extensions=signed_in(),
    )
    async def buy_shares(
        self,
        info: Info[Context, None],
        input: Annotated[BuySharesInput, strawberry.argument(description="The purchase.")],
    ) -> BuySharesResult | None:
        context = info.context
        actor = await context.require_actor()
        return await outcome(
            lambda: context.services.trading.buy(actor, input.to_command()),
            lambda result: _bought(context, result),
        )

    @strawberry.mutation(
        description="Sell shares back to the market maker; the proceeds join the balance.",
        extensions=signed_in(),
    )
    async def sell_shares(
        self,
        info: Info[Context, None],
        input: Annotated[SellSharesInput, strawberry.argument(description="The sale.")],
    ) -> SellSharesResult | None:
        context = info.context
        actor = await context.require_actor()
        return await outcome(
            lambda: context.services.trading.sell(actor, input.to_command()),
            lambda result: _sold(context, result),
        )
