"""DataLoaders, one per access path, built fresh for every request.

A loader caches what it loaded for the rest of its request only; sharing one
across requests would leak one viewer's data into another's and bind it to
whichever event loop first used it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable, Sequence
from typing import Any, TypeVar
from uuid import UUID

from aiodataloader import DataLoader

from domain.entities import Job, LedgerEntry, Market, Position, Trade, User
from domain.reads import ChildPageKey, Page
from infra.db.readers import Readers

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
        self.trade_by_id = _loader(readers.trades_by_ids)
        self.ledger_entry_by_id = _loader(readers.ledger_entries_by_ids)
        self.job_by_id = _loader(readers.jobs_by_ids)
        self.trades_by_market = _loader(readers.trades_by_market)
        self.trades_by_user = _loader(readers.trades_by_user)
        self.ledger_by_user = _loader(readers.ledger_by_user)
        self.trade_count_by_market = _loader(readers.trade_count_by_market)
        self.trade_count_by_market_holder = _loader(readers.trade_count_by_market_holder)
        self.trade_count_by_user = _loader(readers.trade_count_by_user)
        self.ledger_count_by_user = _loader(readers.ledger_count_by_user)
        self.price_history = _loader(readers.price_history)

    async def user(self, user_id: UUID) -> User | None:
        return await self.user_by_id.load(user_id)

    async def market(self, market_id: UUID) -> Market | None:
        return await self.market_by_id.load(market_id)

    async def position(self, position_id: UUID) -> Position | None:
        return await self.position_by_id.load(position_id)

    async def trade(self, trade_id: UUID) -> Trade | None:
        return await self.trade_by_id.load(trade_id)

    async def ledger_entry(self, entry_id: UUID) -> LedgerEntry | None:
        return await self.ledger_entry_by_id.load(entry_id)

    async def job(self, job_id: UUID) -> Job | None:
        return await self.job_by_id.load(job_id)

    @staticmethod
    async def page(loader: DataLoader[ChildPageKey, Page[T]], key: ChildPageKey) -> Page[T]:
        return await loader.load(key)

    @staticmethod
    async def count(loader: DataLoader[UUID, int], parent_id: UUID) -> int:
        return await loader.load(parent_id)

    def traded(self, user: User, market: Market, position: Position) -> None:
        """A trade just committed: what this request loaded before it is stale.

        The viewer is primed at authentication and the market or position may have
        been read earlier in the document; the committed values replace them, and
        the lists and counts a trade changes are forgotten.
        """
        for loader, key, value in (
            (self.user_by_id, user.id, user),
            (self.market_by_id, market.id, market),
            (self.position_by_id, position.id, position),
        ):
            _replace(loader, key, value)
        for stale in (
            self.positions_by_market,
            self.positions_by_user,
            self.position_count_by_market,
            self.position_count_by_market_holder,
            self.position_count_by_user,
            self.trades_by_market,
            self.trades_by_user,
            self.trade_count_by_market,
            self.trade_count_by_market_holder,
            self.trade_count_by_user,
            self.ledger_by_user,
            self.ledger_count_by_user,
            self.price_history,
        ):
            stale.clear_all()


def _replace(loader: DataLoader[Any, Any], key: Hashable, value: object) -> None:
    loader.clear(key)
    loader.prime(key, value)
