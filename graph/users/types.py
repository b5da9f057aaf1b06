"""The User type, with the fields only the user themself may see."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Annotated
from uuid import UUID

import strawberry
from strawberry.types import Info

from domain.entities import LedgerEntry, Market, Position, Trade, User
from domain.entities import Role as DomainRole
from domain.policy import ROLE_PERMISSIONS, may_read_private
from domain.readmodel import USER
from domain.reads import Page
from graph.connections import child_connection
from graph.context import Context
from graph.enums import Role
from graph.ids import to_global_id
from graph.node import Node
from graph.pagination import Connection
from graph.selection import items_select

if TYPE_CHECKING:
    from graph.markets.types import MarketType
    from graph.positions.types import PositionType
    from graph.trading.types import LedgerEntryType, TradeType

PageSize = Annotated[
    int | None, strawberry.argument(description="Page size, 1 to 100 (default 20).")
]
After = Annotated[str | None, strawberry.argument(description="Start after this cursor.")]


@strawberry.type(name="User", description="A person who trades and creates markets.")
class UserType(Node):
    display_name: str = strawberry.field(description="The name shown to others.")
    role: Role = strawberry.field(description="What the user may do.")
    created_at: datetime = strawberry.field(description="When the user signed up (UTC).")
    user_id: strawberry.Private[UUID]
    private_email: strawberry.Private[str]
    private_balance: strawberry.Private[Decimal]
    private_disabled: strawberry.Private[bool]
    private_role: strawberry.Private[DomainRole]

    @classmethod
    def from_entity(cls, user: User) -> UserType:
        return cls(
            id=strawberry.ID(to_global_id("User", user.id)),
            display_name=user.display_name,
            role=Role(user.role.value),
            created_at=user.created_at,
            user_id=user.id,
            private_email=user.email,
            private_balance=user.balance,
            private_disabled=user.disabled,
            private_role=user.role,
        )

    @strawberry.field(
        description="Whether the account is disabled. Null unless the viewer is this user or"
        " holds `user:read:private`."
    )
    async def disabled(self, info: Info[Context, None]) -> bool | None:
        if may_read_private(await info.context.actor(), self.user_id):
            return self.private_disabled
        return None

    @strawberry.field(
        description="What the user's role lets them do (`market:create`, `user:manage`, ...)."
        " Null unless the viewer is this user or holds `user:read:private`."
    )
    async def permissions(self, info: Info[Context, None]) -> list[str] | None:
        if may_read_private(await info.context.actor(), self.user_id):
            return sorted(p.value for p in ROLE_PERMISSIONS[self.private_role])
        return None

    @strawberry.field(
        description="The sign-in email. Null unless the viewer is this user or holds"
        " `user:read:private`."
    )
    async def email(self, info: Info[Context, None]) -> str | None:
        if may_read_private(await info.context.actor(), self.user_id):
            return self.private_email
        return None

    @strawberry.field(
        description="Play money available to trade. Null unless the viewer is this user or"
        " holds `user:read:private`."
    )
    async def balance(self, info: Info[Context, None]) -> Decimal | None:
        if may_read_private(await info.context.actor(), self.user_id):
            return self.private_balance
        return None

    @strawberry.field(description="Markets this user created, newest first.")
    async def markets(
        self, info: Info[Context, None], first: PageSize = None, after: After = None
    ) -> Connection[Annotated[MarketType, strawberry.lazy("graph.markets.types")]]:
        from graph.markets.types import market_nodes

        async def nodes(page: Page[Market]) -> Callable[[Market], MarketType]:
            return await market_nodes(info, [market for _, market in page.items])

        found = await child_connection(info, USER, "markets", self.user_id, first, after, nodes)
        assert found is not None, "the markets a user created are public"
        return found

    @strawberry.field(
        description="What this user holds, oldest first. Where positions are configured"
        " private: null unless the viewer is this user or holds `user:read:private`."
    )
    async def positions(
        self, info: Info[Context, None], first: PageSize = None, after: After = None
    ) -> Connection[Annotated[PositionType, strawberry.lazy("graph.positions.types")]] | None:
        from graph.positions.types import PositionType

        async def nodes(page: Page[Position]) -> Callable[[Position], PositionType]:
            markets: dict[UUID, Market] = {}
            if page.items and any(
                items_select(info, field) for field in ("market", "currentValue", "unrealizedPnl")
            ):
                # One batch for the page's markets, rather than a resolver coroutine each.
                loaded = await info.context.loaders.markets([p.market_id for _, p in page.items])
                markets = {market.id: market for market in loaded if market is not None}
            return lambda position: PositionType.from_entity(
                position, self, markets.get(position.market_id)
            )

        return await child_connection(info, USER, "positions", self.user_id, first, after, nodes)

    @strawberry.field(
        description="This user's trades, newest first. Where positions are configured private:"
        " null unless the viewer is this user or holds `user:read:private`."
    )
    async def trades(
        self, info: Info[Context, None], first: PageSize = None, after: After = None
    ) -> Connection[Annotated[TradeType, strawberry.lazy("graph.trading.types")]] | None:
        from graph.trading.types import TradeType

        async def nodes(_page: Page[Trade]) -> Callable[[Trade], TradeType]:
            return lambda trade: TradeType.from_entity(trade, self)

        return await child_connection(info, USER, "trades", self.user_id, first, after, nodes)

    @strawberry.field(
        description="Every change of this user's balance, newest first; `balance` is their"
        " sum. Null unless the viewer is this user or holds `user:read:private`."
    )
    async def ledger(
        self, info: Info[Context, None], first: PageSize = None, after: After = None
    ) -> Connection[Annotated[LedgerEntryType, strawberry.lazy("graph.trading.types")]] | None:
        from graph.trading.types import LedgerEntryType

        async def nodes(_page: Page[LedgerEntry]) -> Callable[[LedgerEntry], LedgerEntryType]:
            return LedgerEntryType.from_entity

        return await child_connection(info, USER, "ledger", self.user_id, first, after, nodes)
