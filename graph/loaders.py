"""DataLoaders, one per access path, built fresh for every request.

A loader caches what it loaded for the rest of its request only; sharing one
across requests would leak one viewer's data into another's and bind it to
whichever event loop first used it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar
from uuid import UUID

from aiodataloader import DataLoader

from domain.entities import Market, Position, User
from domain.reads import Page
from infra.db.readers import ChildPageKey, Readers

K = TypeVar("K")
V = TypeVar("V")
T = TypeVar("T")


class _SharedLoader(DataLoader):  # type: ignore[type-arg]
    """A DataLoader whose cached futures survive the cancellation of one of their waiters.

    A loader hands every resolver asking for a key the same future. When one
    field fails, graphql-core cancels its siblings, and a task cancelled while
    awaiting a future cancels that future: every other resolver waiting for the
    key, anywhere in the response, then got CancelledError, which is no field
    error and took the whole request down as a bare 500. Each waiter now awaits
    its own shield of the shared future.
    """

    def load(self, key: Any) -> asyncio.Future[Any]:
        return asyncio.shield(super().load(key))


def _loader(batch: Callable[[Sequence[K]], Awaitable[list[V]]]) -> DataLoader[K, V]:
    async def load(keys: list[K]) -> list[V]:
        return await batch(keys)

    return _SharedLoader(load, max_batch_size=1000)


class Loaders:
    def __init__(self, readers: Readers) -> None:
        self.user_by_id = _loader(readers.users_by_ids)
        self.market_by_id = _loader(readers.markets_by_ids)
        self.position_by_id = _loader(readers.positions_by_ids)
        self.positions_by_market = _loader(readers.positions_by_market)
        self.positions_by_user = _loader(readers.positions_by_user)
        self.markets_by_creator = _loader(readers.markets_by_creator)
        self.position_count_by_market = _loader(readers.position_count_by_market)
        self.position_count_by_market_holder = _loader(readers.position_count_by_market_holder)
        self.position_count_by_user = _loader(readers.position_count_by_user)
        self.market_count_by_creator = _loader(readers.market_count_by_creator)

    async def user(self, user_id: UUID) -> User | None:
        return await self.user_by_id.load(user_id)

    async def market(self, market_id: UUID) -> Market | None:
        return await self.market_by_id.load(market_id)

    async def position(self, position_id: UUID) -> Position | None:
        return await self.position_by_id.load(position_id)

    @staticmethod
    async def page(loader: DataLoader[ChildPageKey, Page[T]], key: ChildPageKey) -> Page[T]:
        return await loader.load(key)

    @staticmethod
    async def count(loader: DataLoader[UUID, int], parent_id: UUID) -> int:
        return await loader.load(parent_id)
