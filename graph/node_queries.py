"""``node`` and ``nodes``: fetch any object by its global id.

They build the same types as every other path, so the same field rules apply.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Annotated, Any
from uuid import UUID

import strawberry
from strawberry.types import Info

from domain.policy import Permission, has_permission
from domain.readmodel import TYPES, row_visible
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
    if type_name == "Job":
        if not has_permission(await context.actor(), Permission.JOB_READ):
            return None
        job = await loaders.job(ident)
        return None if job is None else JobType.from_entity(job)
    kind = TYPES[type_name]
    entity = await loaders.objects(kind).load(ident)
    if entity is None:
        return None
    # Private rows (positions and trades when configured private, ledger entries) are as
    # invisible through `node` as through any other path: the read model's one rule.
    owner = getattr(entity, kind.owner) if kind.owner else None
    if not row_visible(kind, await context.actor(), owner, context.services.public_rules):
        return None
    return _BUILD[type_name](entity)


_BUILD: dict[str, Callable[[Any], Node]] = {
    "Market": MarketType.from_entity,
    "User": UserType.from_entity,
    "Position": PositionType.from_entity,
    "Trade": TradeType.from_entity,
    "LedgerEntry": LedgerEntryType.from_entity,
}


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
