"""DataLoaders, one per access path, built fresh for every request.

A loader caches what it loaded for the rest of its request only; sharing one
across requests would leak one viewer's data into another's and bind it to
whichever event loop first used it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar
from uuid import UUID

from aiodataloader import DataLoader

from domain.entities import Market, Position, User
from domain.reads import Page
from infra.db.readers import ChildPageKey, Readers

K = TypeVar("K")
V = TypeVar("V")


def _loader(batch: Callable[[Sequence[K]], Awaitable[list[V]]]) -> DataLoader:
    async def load(keys: list[K]) -> list[V]:
        return await batch(keys)

    return DataLoader(load, max_batch_size=1000)


class Loaders:
    def __init__(self, readers: Readers) -> None:
        self.user_by_id: DataLoader = _loader(readers.users_by_ids)
        self.market_by_id: DataLoader = _loader(readers.markets_by_ids)
        self.position_by_id: DataLoader = _loader(readers.positions_by_ids)
        self.positions_by_market: DataLoader = _loader(readers.positions_by_market)
        self.positions_by_user: DataLoader = _loader(readers.positions_by_user)
        self.markets_by_creator: DataLoader = _loader(readers.markets_by_creator)
        self.position_count_by_market: DataLoader = _loader(readers.position_count_by_market)
        self.position_count_by_user: DataLoader = _loader(readers.position_count_by_user)
        self.market_count_by_creator: DataLoader = _loader(readers.market_count_by_creator)

    async def user(self, user_id: UUID) -> User | None:
        result: User | None = await self.user_by_id.load(user_id)
        return result

    async def market(self, market_id: UUID) -> Market | None:
        result: Market | None = await self.market_by_id.load(market_id)
        return result

    async def position(self, position_id: UUID) -> Position | None:
        result: Position | None = await self.position_by_id.load(position_id)
        return result

    async def page(self, loader: DataLoader, key: ChildPageKey) -> Page[Any]:
        result: Page[Any] = await loader.load(key)
        return result

    async def count(self, loader: DataLoader, parent_id: UUID) -> int:
        result: int = await loader.load(parent_id)
        return result
