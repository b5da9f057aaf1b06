"""``node`` and ``nodes``: fetch any object by its global id.

They build the same types as every other path, so the same field rules apply.
"""

from __future__ import annotations

import asyncio
from typing import Annotated
from uuid import UUID

import strawberry
from strawberry.types import Info

from domain.policy import Permission, has_permission, may_read_positions, may_read_private
from graph.context import Context
from graph.errors import bad_input
from graph.ids import from_global_id
from graph.jobs.types import JobType
from graph.markets.types import MarketType
from graph.node import Node
from graph.positions.types import PositionType
from graph.trading.types import LedgerEntryType, TradeType
from graph.users.types import UserType

MAX_IDS = 100


async def _resolve(context: Context, type_name: str, ident: UUID) -> Node | None:
    loaders = context.loaders
    if type_name == "Market":
        market = await loaders.market(ident)
        return None if market is None else MarketType.from_entity(market)
    if type_name == "User":
        user = await loaders.user(ident)
        return None if user is None else UserType.from_entity(user)
    if type_name == "Trade":
        trade = await loaders.trade(ident)
        if trade is None or not await _may_see_holdings(context, trade.user_id):
            return None
        return TradeType.from_entity(trade)
    if type_name == "LedgerEntry":
        entry = await loaders.ledger_entry(ident)
        # As private as the balance it adds up to.
        if entry is None or not may_read_private(await context.actor(), entry.user_id):
            return None
        return LedgerEntryType.from_entity(entry)
    if type_name == "Job":
        if not has_permission(await context.actor(), Permission.JOB_READ):
            return None
        job = await loaders.job(ident)
        return None if job is None else JobType.from_entity(job)
    position = await loaders.position(ident)
    if position is None:
        return None
    # Private positions are as invisible through `node` as through any other path.
    if not await _may_see_holdings(context, position.user_id):
        return None
    return PositionType.from_entity(position)


async def _may_see_holdings(context: Context, holder_id: UUID) -> bool:
    """Positions and trades: public, or (configured private) the holder's and admins'."""
    return context.services.positions_public or may_read_positions(
        await context.actor(), holder_id, positions_public=False
    )


def parse_node_id(value: str, argument: str) -> tuple[str, UUID]:
    parsed = from_global_id(value)
    if parsed is None:
        raise bad_input(f"'{value}' is not a valid id.", argument)
    return parsed


@strawberry.type
class NodeQueries:
    @strawberry.field(description="Any object by its global id, or null when there is none.")
    async def node(
        self,
        info: Info[Context, None],
        id: Annotated[strawberry.ID, strawberry.argument(description="A global id.")],
    ) -> Node | None:
        return await _resolve(info.context, *parse_node_id(id, "id"))

    @strawberry.field(
        description="Objects by global id, in the order asked; null where there is none."
    )
    async def nodes(
        self,
        info: Info[Context, None],
        ids: Annotated[
            list[strawberry.ID], strawberry.argument(description="Up to 100 global ids.")
        ],
    ) -> list[Node | None]:
        if len(ids) > MAX_IDS:
            raise bad_input(f"At most {MAX_IDS} ids at once.", "ids")
        parsed = [parse_node_id(value, "ids") for value in ids]
        return list(await asyncio.gather(*(_resolve(info.context, t, i) for t, i in parsed)))
