"""DataLoaders, one per access path, built fresh for every request and only when used.

Access paths come from the read model (``domain/readmodel.py``): objects of a
type by id, pages of a relation and its counts; plus the price histories and
jobs. A loader caches what it loaded for the rest of its request only; sharing
one across requests would leak one viewer's data into another's and bind it to
whichever event loop first used it. Loaders are made on first use, because most
requests (every compiled one) use none.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable, Sequence
from typing import Any, TypeVar
from uuid import UUID

from aiodataloader import DataLoader

from domain.entities import Job, LedgerEntry, Market, Position, Trade, User
from domain.ports import BatchReads, CountKey
from domain.readmodel import LEDGER_ENTRY, MARKET, POSITION, TRADE, USER, Children, ObjectType
from domain.reads import ChildPageKey, HistoryKey, Page, PriceBucket

K = TypeVar("K")
V = TypeVar("V")


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
    def __init__(self, reads: BatchReads) -> None:
        self._reads = reads
        self._objects: dict[str, DataLoader[UUID, Any]] = {}
        self._pages: dict[Children, DataLoader[ChildPageKey, Page[Any]]] = {}
        self._counts: dict[Children, DataLoader[CountKey, int]] = {}
        self._histories: DataLoader[HistoryKey, list[PriceBucket]] | None = None
        self._jobs: DataLoader[UUID, Job | None] | None = None

    # --- access paths ----------------------------------------------------------------------

    def objects(self, kind: ObjectType) -> DataLoader[UUID, Any]:
        loader = self._objects.get(kind.name)
        if loader is None:
            reads = self._reads

            async def batch(ids: Sequence[UUID]) -> list[Any]:
                return await reads.objects(kind, ids)

            loader = self._objects[kind.name] = _loader(batch)
        return loader

    def pages(self, children: Children) -> DataLoader[ChildPageKey, Page[Any]]:
        loader = self._pages.get(children)
        if loader is None:
            reads = self._reads

            async def batch(keys: Sequence[ChildPageKey]) -> list[Page[Any]]:
                return await reads.pages(children, keys)

            loader = self._pages[children] = _loader(batch)
        return loader

    def counts(self, children: Children) -> DataLoader[CountKey, int]:
        loader = self._counts.get(children)
        if loader is None:
            reads = self._reads

            async def batch(keys: Sequence[CountKey]) -> list[int]:
                return await reads.counts(children, keys)

            loader = self._counts[children] = _loader(batch)
        return loader

    @property
    def price_history(self) -> DataLoader[HistoryKey, list[PriceBucket]]:
        if self._histories is None:
            self._histories = _loader(self._reads.price_history)
        return self._histories

    # --- the usual questions ---------------------------------------------------------------

    async def user(self, user_id: UUID) -> User | None:
        found: User | None = await self.objects(USER).load(user_id)
        return found

    async def users(self, ids: Sequence[UUID]) -> list[User | None]:
        found: list[User | None] = await self.objects(USER).load_many(list(ids))
        return found

    async def market(self, market_id: UUID) -> Market | None:
        found: Market | None = await self.objects(MARKET).load(market_id)
        return found

    async def markets(self, ids: Sequence[UUID]) -> list[Market | None]:
        found: list[Market | None] = await self.objects(MARKET).load_many(list(ids))
        return found

    async def position(self, position_id: UUID) -> Position | None:
        found: Position | None = await self.objects(POSITION).load(position_id)
        return found

    async def trade(self, trade_id: UUID) -> Trade | None:
        found: Trade | None = await self.objects(TRADE).load(trade_id)
        return found

    async def ledger_entry(self, entry_id: UUID) -> LedgerEntry | None:
        found: LedgerEntry | None = await self.objects(LEDGER_ENTRY).load(entry_id)
        return found

    async def job(self, job_id: UUID) -> Job | None:
        if self._jobs is None:
            self._jobs = _loader(self._reads.jobs_by_ids)
        return await self._jobs.load(job_id)

    async def page(self, children: Children, key: ChildPageKey) -> Page[Any]:
        return await self.pages(children).load(key)

    async def count(self, children: Children, key: CountKey) -> int:
        return await self.counts(children).load(key)

    # --- what this request knows already ---------------------------------------------------

    def know_user(self, user: User) -> None:
        """The viewer's row, loaded at authentication: later reads of it need no query."""
        _replace(self.objects(USER), user.id, user)

    def traded(self, user: User, market: Market, position: Position) -> None:
        """A trade just committed: what this request loaded before it is stale.

        The viewer is primed at authentication and the market or position may have
        been read earlier in the document; the committed values replace them, and
        the lists and counts a trade changes are forgotten.
        """
        _replace(self.objects(USER), user.id, user)
        _replace(self.objects(MARKET), market.id, market)
        _replace(self.objects(POSITION), position.id, position)
        stale: list[DataLoader[Any, Any]] = [*self._pages.values(), *self._counts.values()]
        for loader in stale:
            loader.clear_all()
        if self._histories is not None:
            self._histories.clear_all()


def _replace(loader: DataLoader[Any, Any], key: Hashable, value: object) -> None:
    loader.clear(key)
    loader.prime(key, value)
