"""Unit of work: one connection, one transaction, the repositories bound to it."""

from __future__ import annotations

from types import TracebackType
from typing import Self

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncTransaction

from infra.db.repositories import SqlLedgerRepository, SqlMarketRepository, SqlUserRepository
from infra.db.sessions import SqlSessionRepository


class SqlUnitOfWork:
    """Begins on enter; rolls back on exit unless ``commit`` was called."""

    users: SqlUserRepository
    markets: SqlMarketRepository
    ledger: SqlLedgerRepository
    sessions: SqlSessionRepository

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._conn: AsyncConnection | None = None
        self._tx: AsyncTransaction | None = None

    async def __aenter__(self) -> Self:
        self._conn = await self._engine.connect()
        try:
            self._tx = await self._conn.begin()
        except BaseException:
            # __aexit__ does not run when __aenter__ fails (SQLite's BEGIN IMMEDIATE
            # can time out on a busy database): give the connection back here.
            await self._conn.close()
            raise
        self.users = SqlUserRepository(self._conn)
        self.markets = SqlMarketRepository(self._conn)
        self.ledger = SqlLedgerRepository(self._conn)
        self.sessions = SqlSessionRepository(self._conn)
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

    async def commit(self) -> None:
        assert self._tx is not None
        await self._tx.commit()
