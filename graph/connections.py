"""A to-many relation of the read model as a Relay connection, seen by one viewer.

Every list under an object (a market's positions and trades, a user's markets,
positions, trades and ledger) is read the same way: the arguments checked and
decoded, the viewer's scope from ``domain.readmodel.list_scope`` (the one rule
for who sees which rows), the page and its count through the request's loaders.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar
from uuid import UUID

from strawberry.types import Info

from domain.readmodel import ObjectType, list_scope
from domain.readmodel import relation as to_many
from domain.reads import ChildPageKey, Page
from graph.context import Context
from graph.pagination import Connection, connection, page_request

NodeT = TypeVar("NodeT")
NodeBuilder = Callable[[Page[Any]], Awaitable[Callable[[Any], NodeT]]]

_NOTHING: Page[Any] = Page(items=[], has_next=False, has_previous=False)


async def _zero() -> int:
    return 0


async def child_connection(
    info: Info[Context, None],
    parent: ObjectType,
    relation: str,
    parent_id: UUID,
    first: int | None,
    after: str | None,
    nodes: NodeBuilder[NodeT],
) -> Connection[NodeT] | None:
    """One page of ``parent.relation`` for ``parent_id``; None where the viewer may not see
    the list at all. ``nodes`` turns the page's entities into GraphQL objects (fetching
    what they select ahead, once for the page)."""
    children = to_many(parent, relation)
    sort = children.sort
    context = info.context
    signing = context.services.cursor_key
    request = page_request(sort.name, sort.kind, first, after, signing=signing)
    scope = list_scope(children, await context.actor(), parent_id, context.services.public_rules)
    if scope.hidden:
        return None
    if scope.empty:
        return connection(_NOTHING, sort.name, await nodes(_NOTHING), _zero, signing)
    loaders = context.loaders
    key = ChildPageKey(parent_id, request.size, request.after, holder=scope.holder)
    page = await loaders.page(children, key)
    return connection(
        page,
        sort.name,
        await nodes(page),
        lambda: loaders.count(children, (parent_id, scope.holder)),
        signing,
    )
