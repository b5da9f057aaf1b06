"""The Trade, LedgerEntry and PricePoint types, and the trade lists of markets and users."""

from __future__ import annotations

from datetime import datetime
from decimal import ROUND_HALF_EVEN, Decimal
from typing import TYPE_CHECKING, Annotated
from uuid import UUID

import strawberry
from strawberry.types import Info

from domain.entities import LedgerEntry, Market, Trade
from domain.money import QUANTUM
from domain.reads import PriceBucket
from graph.context import Context
from graph.enums import LedgerKind, Outcome, TradeSide
from graph.ids import to_global_id
from graph.node import Node
from graph.users.loading import load_user

if TYPE_CHECKING:
    from graph.markets.types import MarketType
    from graph.users.types import UserType

MARKET_TRADES_SORT = "market-trades:created_at:desc"
USER_TRADES_SORT = "user-trades:created_at:desc"
LEDGER_SORT = "user-ledger:created_at:desc"


@strawberry.type(name="Trade", description="A purchase or sale of shares. Trades never change.")
class TradeType(Node):
    side: TradeSide = strawberry.field(description="Bought or sold.")
    outcome: Outcome = strawberry.field(description="The outcome whose shares were traded.")
    shares: Decimal = strawberry.field(description="How many shares changed hands.")
    amount: Decimal = strawberry.field(
        description="Money paid (BUY) or received (SELL), exact to 8 places."
    )
    average_price: Decimal = strawberry.field(
        description="`amount` / `shares`, rounded to 8 places."
    )
    price_before: Decimal = strawberry.field(
        description="The traded outcome's price just before the trade."
    )
    price_after: Decimal = strawberry.field(
        description="The traded outcome's price just after the trade."
    )
    created_at: datetime = strawberry.field(description="When the trade happened (UTC).")
    market_id: strawberry.Private[UUID]
    user_id: strawberry.Private[UUID]
    prefetched_user: strawberry.Private[UserType | None]
    prefetched_market: strawberry.Private[Market | None]

    @classmethod
    def from_entity(
        cls, trade: Trade, user: UserType | None = None, market: Market | None = None
    ) -> TradeType:
        """``user`` and ``market`` are the trade's when the caller has them already."""
        return cls(
            id=strawberry.ID(to_global_id("Trade", trade.id)),
            side=TradeSide(trade.side.value),
            outcome=Outcome(trade.outcome.value),
            shares=trade.shares,
            amount=trade.amount,
            average_price=(trade.amount / trade.shares).quantize(QUANTUM, ROUND_HALF_EVEN),
            price_before=trade.price_before,
            price_after=trade.price_after,
            created_at=trade.created_at,
            market_id=trade.market_id,
            user_id=trade.user_id,
            prefetched_user=user,
            prefetched_market=market,
        )

    @strawberry.field(description="The market traded in.")
    async def market(
        self, info: Info[Context, None]
    ) -> Annotated[MarketType, strawberry.lazy("graph.markets.types")]:
        from graph.markets.types import MarketType

        market = self.prefetched_market or await info.context.loaders.market(self.market_id)
        assert market is not None, "a trade's market always exists (foreign key)"
        return MarketType.from_entity(market)

    @strawberry.field(description="Who traded.")
    def user(
        self, info: Info[Context, None]
    ) -> Annotated[UserType, strawberry.lazy("graph.users.types")]:
        if self.prefetched_user is not None:
            return self.prefetched_user
        return load_user(info.context, self.user_id)  # type: ignore[return-value]


@strawberry.type(
    name="LedgerEntry",
    description="One change of a user's balance. The balance is always the sum of the entries.",
)
class LedgerEntryType(Node):
    amount: Decimal = strawberry.field(
        description="Signed: grants, sales, payouts and refunds are positive, purchases negative."
    )
    kind: LedgerKind = strawberry.field(description="Why the balance changed.")
    created_at: datetime = strawberry.field(description="When it changed (UTC).")
    trade_id: strawberry.Private[UUID | None]
    market_id: strawberry.Private[UUID | None]

    @classmethod
    def from_entity(cls, entry: LedgerEntry) -> LedgerEntryType:
        return cls(
            id=strawberry.ID(to_global_id("LedgerEntry", entry.id)),
            amount=entry.amount,
            kind=LedgerKind(entry.kind.value),
            created_at=entry.created_at,
            trade_id=entry.trade_id,
            market_id=entry.market_id,
        )

    @strawberry.field(description="The trade, for a TRADE entry; null otherwise.")
    async def trade(self, info: Info[Context, None]) -> TradeType | None:
        if self.trade_id is None:
            return None
        trade = await info.context.loaders.trade(self.trade_id)
        return None if trade is None else TradeType.from_entity(trade)

    @strawberry.field(
        description="The market a trade, payout or refund was in; null for a sign-up grant."
    )
    async def market(
        self, info: Info[Context, None]
    ) -> Annotated[MarketType, strawberry.lazy("graph.markets.types")] | None:
        from graph.markets.types import MarketType

        if self.market_id is None:
            return None
        market = await info.context.loaders.market(self.market_id)
        return None if market is None else MarketType.from_entity(market)


@strawberry.type(
    name="PricePoint",
    description="The trades of one time bucket of a market: its YES price from the first"
    " trade to the last, and the money traded. Buckets without trades are left out: the"
    " price did not move in them.",
)
class PricePointType:
    start: datetime = strawberry.field(
        description="Where the bucket begins (UTC, aligned to the interval: hours on the hour)."
    )
    open: Decimal = strawberry.field(description="The YES price before the bucket's first trade.")
    high: Decimal = strawberry.field(description="The highest YES price in the bucket.")
    low: Decimal = strawberry.field(description="The lowest YES price in the bucket.")
    close: Decimal = strawberry.field(description="The YES price after the bucket's last trade.")
    volume: Decimal = strawberry.field(description="Money traded in the bucket.")
    trades: int = strawberry.field(description="How many trades the bucket holds.")

    @classmethod
    def from_bucket(cls, bucket: PriceBucket) -> PricePointType:
        return cls(
            start=bucket.start,
            open=bucket.open,
            high=bucket.high,
            low=bucket.low,
            close=bucket.close,
            volume=bucket.volume,
            trades=bucket.trades,
        )
