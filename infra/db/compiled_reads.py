"""Running compiled read plans on PostgreSQL: one statement per root field, JSON text back.

The statements go straight to asyncpg, on a pool of their own, rather than
through SQLAlchemy: the SQL is already text and each statement returns one
value, so SQLAlchemy's result machinery and its pool checkout would be most of
the work. asyncpg prepares each statement once per connection and keeps it
(``statement_cache_size``), so a document's statements are parsed and planned
by PostgreSQL once per connection, not once per request.
"""

from __future__ import annotations

from collections.abc import Callable

import asyncpg

from domain.readplan import Bound, Plan
from infra.db.compiler import Compiler
from infra.metrics import SQL_STATEMENTS

STATEMENT_CACHE_SIZE = 1_024


class PgCompiledReads:
    def __init__(self, dsn: str, pool_size: int, public: frozenset[str]) -> None:
        self._dsn = dsn
        self._size = pool_size
        self._compiler = Compiler(public)
        self._pool: asyncpg.Pool | None = None
        # Called with each statement sent (the tests' statement counter listens here).
        self.listeners: list[Callable[[str], None]] = []

    async def open(self) -> None:
        self._pool = await asyncpg.create_pool(
            self._dsn,
            min_size=1,
            max_size=self._size,
            statement_cache_size=STATEMENT_CACHE_SIZE,
            command_timeout=30,
            timeout=5,
        )

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    async def read(self, plan: Plan, bound: Bound) -> list[str | None]:
        assert self._pool is not None, "opened by the app's lifespan"
        statements = [self._compiler.statement(root, bound) for root in plan.roots]
        async with self._pool.acquire() as conn:
            results: list[str | None] = []
            for sql, params in statements:
                SQL_STATEMENTS.inc()
                for listener in self.listeners:
                    listener(sql)
                results.append(await conn.fetchval(sql, *params))
        return results


def asyncpg_dsn(database_url: str) -> str:
    """The plain ``postgresql://`` form asyncpg takes, from SQLAlchemy's URL."""
    return database_url.replace("postgresql+asyncpg://", "postgresql://", 1)
