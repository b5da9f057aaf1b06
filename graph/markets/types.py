"""The Market type."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Annotated
from uuid import UUID

import strawberry
from strawberry.types import Info

from domain.entities import Market, Position, Trade
from domain.readmodel import MARKET
from domain.reads import HistoryKey, Page
from graph.connections import child_connection
from graph.context import Context
from graph.enums import MarketStatus, Outcome, PriceInterval
from graph.errors import bad_input
from graph.ids import to_global_id
from graph.node import Node
from graph.pagination import Connection
from graph.selection import items_select
from graph.users.loading import load_user

if TYPE_CHECKING:
    from graph.positions.types import PositionType
    from graph.trading.types import PricePointType, TradeType
    from graph.users.types import UserType

INTERVAL_SECONDS = {
    PriceInterval.MINUTE: 60,
    PriceInterval.FIVE_MINUTES: 300,
    PriceInterval.HOUR: 3600,
    PriceInterval.DAY: 86_400,
}
MAX_BUCKETS = 1000


async def market_nodes(
    info: Info[Context, None], markets: list[Market]
) -> Callable[[Market], MarketType]:
    """How to build a list's markets: with their creators fetched ahead when asked for."""
    from graph.users.types import UserType

    if not markets or not items_select(info, "creator"):
        return MarketType.from_entity
    loaded = await info.context.loaders.users([m.creator_id for m in markets])
    creators = {user.id: UserType.from_entity(user) for user in loaded if user is not None}
    return lambda market: MarketType.from_entity(market, creators.get(market.creator_id))


async def _users_ahead(info: Info[Context, None], ids: list[UUID]) -> dict[UUID, UserType]:
    """The users of a page's items, when the items select ``user``; else none."""
    from graph.users.types import UserType

    if not ids or not items_select(info, "user"):
        return {}
    loaded = await info.context.loaders.users(ids)
    return {user.id: UserType.from_entity(user) for user in loaded if user is not None}


@strawberry.type(
    name="Market",
    description="A yes/no question people trade on, priced by an automated market maker.",
)
class MarketType(Node):
    name: str = strawberry.field(description="The question, unique across markets.")
    description: str | None = strawberry.field(description="Details and resolution criteria.")
    status: MarketStatus = strawberry.field(description="Where the market is in its life.")
    outcome: Outcome | None = strawberry.field(description="The answer, once resolved.")
    end_date: datetime = strawberry.field(description="When trading ends (UTC).")
    liquidity: Decimal = strawberry.field(
        description="The market maker's liquidity parameter `b`: higher moves prices less."
    )
    yes_shares: Decimal = strawberry.field(description="YES shares outstanding.")
    no_shares: Decimal = strawberry.field(description="NO shares outstanding.")
    volume: Decimal = strawberry.field(description="Money traded in this market so far.")
    yes_price: Decimal = strawberry.field(
        description="What one YES share costs now, between 0 and 1: the implied probability."
    )
    no_price: Decimal = strawberry.field(description="What one NO share costs now: 1 - yesPrice.")
    created_at: datetime = strawberry.field(description="When the market was created (UTC).")
    updated_at: datetime = strawberry.field(description="When the market last changed (UTC).")
    market_id: strawberry.Private[UUID]
    creator_id: strawberry.Private[UUID]
    prefetched_creator: strawberry.Private[UserType | None]
    source: strawberry.Private[Market]

    @classmethod
    def from_entity(cls, market: Market, creator: UserType | None = None) -> MarketType:
        """``creator`` is the market's creator when the caller fetched it ahead."""
        price = market.yes_price
        return cls(
            id=strawberry.ID(to_global_id("Market", market.id)),
            name=market.name,
            description=market.description,
            status=MarketStatus(market.status.value),
            outcome=None if market.outcome is None else Outcome(market.outcome.value),
            end_date=market.end_date,
            liquidity=market.liquidity,
            yes_shares=market.q_yes,
            no_shares=market.q_no,
            volume=market.volume,
            yes_price=price,
            no_price=1 - price,  # exact: both have 8 places
            created_at=market.created_at,
            updated_at=market.updated_at,
            market_id=market.id,
            creator_id=market.creator_id,
            prefetched_creator=creator,
            source=market,
        )

    @strawberry.field(description="The user who created the market.")
    def creator(
        self, info: Info[Context, None]
    ) -> Annotated[UserType, strawberry.lazy("graph.users.types")]:
        # Fetched ahead by the list this market came from, or an awaitable from the
        # loader (graphql-core awaits what a plain resolver returns, when it must).
        if self.prefetched_creator is not None:
            return self.prefetched_creator
        return load_user(info.context, self.creator_id)  # type: ignore[return-value]

    @strawberry.field(
        description="Holdings in this market, oldest first. Where positions are configured"
        " private, only the viewer's own (all of them for holders of `user:read:private`)."
    )
    async def positions(
        self,
        info: Info[Context, None],
        first: Annotated[
            int | None, strawberry.argument(description="Page size, 1 to 100 (default 20).")
        ] = None,
        after: Annotated[
            str | None, strawberry.argument(description="Start after this cursor.")
        ] = None,
    ) -> Connection[Annotated[PositionType, strawberry.lazy("graph.positions.types")]]:
        from graph.positions.types import PositionType

        async def nodes(page: Page[Position]) -> Callable[[Position], PositionType]:
            # The users come through the user loader, so the pages of all markets share
            # one batch; what is saved is a resolver coroutine per position.
            holders = await _users_ahead(info, [position.user_id for _, position in page.items])
            return lambda position: PositionType.from_entity(
                position, holders.get(position.user_id), self.source
            )

        found = await child_connection(
            info, MARKET, "positions", self.market_id, first, after, nodes
        )
        assert found is not None, "a market's positions are never hidden as a whole"
        return found

    @strawberry.field(
        description="Trades in this market, newest first. Where positions are configured"
        " private, only the viewer's own (all of them for holders of `user:read:private`)."
    )
    async def trades(
        self,
        info: Info[Context, None],
        first: Annotated[
            int | None, strawberry.argument(description="Page size, 1 to 100 (default 20).")
        ] = None,
        after: Annotated[
            str | None, strawberry.argument(description="Start after this cursor.")
        ] = None,
    ) -> Connection[Annotated[TradeType, strawberry.lazy("graph.trading.types")]]:
        from graph.trading.types import TradeType

        async def nodes(page: Page[Trade]) -> Callable[[Trade], TradeType]:
            traders = await _users_ahead(info, [trade.user_id for _, trade in page.items])
            market = self.source
            return lambda trade: TradeType.from_entity(trade, traders.get(trade.user_id), market)

        found = await child_connection(info, MARKET, "trades", self.market_id, first, after, nodes)
        assert found is not None, "a market's trades are never hidden as a whole"
        return found

    @strawberry.field(
        description="The YES price over time, in buckets computed from the trades (buckets"
        f" without trades are left out). At most {MAX_BUCKETS} buckets per request."
    )
    async def price_history(
        self,
        info: Info[Context, None],
        from_: Annotated[
            datetime | None,
            strawberry.argument(
                name="from",
                description=f"Start of the range (default: {MAX_BUCKETS} intervals before `to`).",
            ),
        ] = None,
        to: Annotated[
            datetime | None,
            strawberry.argument(description="End of the range, exclusive (default: now)."),
        ] = None,
        interval: Annotated[
            PriceInterval, strawberry.argument(description="The width of each bucket.")
        ] = PriceInterval.HOUR,
    ) -> list[Annotated[PricePointType, strawberry.lazy("graph.trading.types")]]:
        from graph.trading.types import PricePointType

        seconds = INTERVAL_SECONDS[interval]
        end = _utc(to, "to") if to is not None else info.context.now
        earliest = end - timedelta(seconds=seconds * MAX_BUCKETS)
        # The same default range for every market of the request, so one statement serves all.
        start = _utc(from_, "from") if from_ is not None else earliest
        if start >= end:
            raise bad_input("'from' must be before 'to'.", "from")
        if start < earliest:
            raise bad_input(
                f"At most {MAX_BUCKETS} buckets: narrow the range or widen the interval.", "from"
            )
        buckets = await info.context.loaders.price_history.load(
            HistoryKey(self.market_id, start, end, seconds)
        )
        return [PricePointType.from_bucket(bucket) for bucket in buckets]


def _utc(moment: datetime, argument: str) -> datetime:
    if moment.utcoffset() is None:
        raise bad_input(f"'{argument}' must carry a time zone offset.", argument)
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        raise bad_input(f"'{argument}' is out of range.", argument) from None
