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
from infra.metrics import DB_CONNECTIONS_OPENED, SQL_STATEMENTS

STATEMENT_CACHE_SIZE = 1_024
IDLE_SECONDS = 300.0
# PostgreSQL plans a prepared statement anew on each run until a generic plan looks as cheap
# as a custom one, and with ``LIMIT $1 + 1`` it never does: Q1 spent 130 of its 310 µs of
# server CPU planning, every time. The statements are keyset pages and lookups by key, whose
# best plan does not depend on the values (EXPLAIN of the generic plans: the same indexes).
PLAN_CACHE_MODE = "force_generic_plan"
# As long as the other pool waits (DB_POOL_TIMEOUT_SECONDS' default): exhausted for longer
# is an outage (asyncio.TimeoutError, answered 503), not a hang.
ACQUIRE_SECONDS = 5.0


async def _opened(_connection: asyncpg.Connection) -> None:
    DB_CONNECTIONS_OPENED.inc()


async def _keep(_connection: asyncpg.Connection) -> None:
    """Nothing to reset on release: these connections run single read statements and
    never take session state (no SET, LISTEN, advisory locks or transactions). asyncpg's
    default reset sends a query per release: a round trip per request for nothing."""


class PgCompiledReads:
    def __init__(self, dsn: str, pool_size: int, public: frozenset[str]) -> None:
        self._dsn = dsn
        self._size = pool_size
        self._compiler = Compiler(public)
        self._pool: asyncpg.Pool | None = None
        self._reading = 0
        # Called with each statement sent (the tests' statement counter listens here).
        self.listeners: list[Callable[[str], None]] = []

    async def open(self) -> None:
        """Open the pool. Connections are kept (no overflow, so no churn under load); one
        that idles for ``IDLE_SECONDS`` is closed, so a quiet process holds few."""
        self._pool = await asyncpg.create_pool(
            self._dsn,
            min_size=1,
            max_size=self._size,
            max_inactive_connection_lifetime=IDLE_SECONDS,
            statement_cache_size=STATEMENT_CACHE_SIZE,
            command_timeout=30,
            timeout=5,
            init=_opened,
            reset=_keep,
            server_settings={"application_name": "marketgraph", "plan_cache_mode": PLAN_CACHE_MODE},
        )

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    async def read(self, plan: Plan, bound: Bound) -> list[str | None]:
        assert self._pool is not None, "opened by the app's lifespan"
        statements = [self._compiler.statement(root, bound) for root in plan.roots]
        # A wait for a connection is bounded only when every connection may be busy (the
        # timer costs a tenth of a fast request's database work).
        wait = None if self._reading < self._size else ACQUIRE_SECONDS
        self._reading += 1
        try:
            async with self._pool.acquire(timeout=wait) as conn:
                results: list[str | None] = []
                for sql, params in statements:
                    SQL_STATEMENTS.inc()
                    for listener in self.listeners:
                        listener(sql)
                    results.append(await conn.fetchval(sql, *params))
        finally:
            self._reading -= 1
        return results

    @property
    def size(self) -> int:
        """Connections the pool holds now."""
        return 0 if self._pool is None else self._pool.get_size()


def asyncpg_dsn(database_url: str) -> str:
    """The plain ``postgresql://`` form asyncpg takes, from SQLAlchemy's URL."""
    return database_url.replace("postgresql+asyncpg://", "postgresql://", 1)
