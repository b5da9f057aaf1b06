"""Unit of work: one connection, one transaction, the repositories bound to it.

The repositories record what they change (``domain.changes``); after a
successful commit the unit of work hands those tags to its invalidator, the one
place every write, from a mutation or a job, invalidates cached responses.
"""

from __future__ import annotations

from types import TracebackType
from typing import Self

from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncTransaction

from domain.changes import Changes
from domain.errors import TransientConflict
from domain.ports import Invalidator
from infra.db.jobs import SqlJobRepository
from infra.db.repositories import SqlLedgerRepository, SqlMarketRepository, SqlUserRepository
from infra.db.sessions import SqlSessionRepository
from infra.db.trading import SqlIdempotencyRepository, SqlPositionRepository, SqlTradeRepository


class SqlUnitOfWork:
    """Begins on enter; rolls back on exit unless ``commit`` was called.

    A deadlock or serialization failure comes out as ``TransientConflict``, for
    ``domain.retry.retrying`` to run the use case again. ``commit`` returns once
    the transaction is durable and the invalidator has been told what changed,
    so whoever acts on its result (the client of a mutation) reads fresh data.
    """

    users: SqlUserRepository
    markets: SqlMarketRepository
    ledger: SqlLedgerRepository
    sessions: SqlSessionRepository
    positions: SqlPositionRepository
    trades: SqlTradeRepository
    idempotency: SqlIdempotencyRepository
    jobs: SqlJobRepository

    def __init__(self, engine: AsyncEngine, invalidator: Invalidator | None = None) -> None:
        self._engine = engine
        self._invalidator = invalidator
        self._conn: AsyncConnection | None = None
        self._tx: AsyncTransaction | None = None
        self.changes = Changes()

    async def __aenter__(self) -> Self:
        self._conn = await self._engine.connect()
        try:
            self._tx = await self._conn.begin()
        except BaseException:
            # __aexit__ does not run when __aenter__ fails (SQLite's BEGIN IMMEDIATE
            # can time out on a busy database): give the connection back here.
            await self._conn.close()
            raise
        changes = self.changes
        self.users = SqlUserRepository(self._conn, changes)
        self.markets = SqlMarketRepository(self._conn, changes)
        self.ledger = SqlLedgerRepository(self._conn, changes)
        self.sessions = SqlSessionRepository(self._conn, changes)
        self.positions = SqlPositionRepository(self._conn, changes)
        self.trades = SqlTradeRepository(self._conn, changes)
        self.idempotency = SqlIdempotencyRepository(self._conn)
        self.jobs = SqlJobRepository(self._conn, changes)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._conn is not None
        assert self._tx is not None
        try:
            if self._tx.is_active:
                await self._tx.rollback()
        finally:
            await self._conn.close()
        if _transient(exc):
            raise TransientConflict from exc

    async def commit(self) -> None:
        assert self._tx is not None
        try:
            await self._tx.commit()
        except DBAPIError as error:
            if _transient(error):
                raise TransientConflict from error
            raise
        tags = self.changes.tags()
        self.changes.clear()
        if tags and self._invalidator is not None:
            await self._invalidator.invalidate(tags)


# PostgreSQL's serialization failure and deadlock: the transaction was sacrificed
# to let another through, and may succeed when run again.
_TRANSIENT_SQLSTATES = frozenset({"40001", "40P01"})


def _transient(error: BaseException | None) -> bool:
    return (
        isinstance(error, DBAPIError)
        and getattr(error.orig, "sqlstate", None) in _TRANSIENT_SQLSTATES
    )
