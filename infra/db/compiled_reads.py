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

from domain.cursors import CursorKey
from domain.readplan import Bound, Plan
from infra.db.compiler import Compiler
from infra.db.engine import PoolGauges
from infra.db.read_pool import ReadPool
from infra.metrics import DB_CONNECTIONS_OPENED, SQL_STATEMENTS

STATEMENT_CACHE_SIZE = 1_024
IDLE_SECONDS = 300.0
# As long as the other pool waits (DB_POOL_TIMEOUT_SECONDS' default): exhausted for longer
# is an outage (TimeoutError, answered 503), not a hang.
ACQUIRE_SECONDS = 5.0
# PostgreSQL ends a statement after this (statement_timeout: no client timer per statement);
# a connection lent for a while longer is cut, for a server that stopped answering at all.
STATEMENT_SECONDS = 30
LEASE_SECONDS = STATEMENT_SECONDS + 5.0
# PostgreSQL plans a prepared statement anew on each run until a generic plan looks as cheap
# as a custom one, and with ``LIMIT $1 + 1`` it never does: Q1 spent 130 of its 310 µs of
# server CPU planning, every time. The statements are keyset pages and lookups by key, whose
# best plan does not depend on the values (EXPLAIN of the generic plans: the same indexes).
PLAN_CACHE_MODE = "force_generic_plan"


class PgCompiledReads:
    def __init__(
        self, dsn: str, pool_size: int, public: frozenset[str], signing: CursorKey
    ) -> None:
        self._dsn = dsn
        self._compiler = Compiler(signing, public)
        self._pool = ReadPool(
            self._connect,
            pool_size,
            acquire_seconds=ACQUIRE_SECONDS,
            lease_seconds=LEASE_SECONDS,
            idle_seconds=IDLE_SECONDS,
            report=PoolGauges("compiled_reads").report,
        )
        # Called with each statement sent (the tests' statement counter listens here).
        self.listeners: list[Callable[[str], None]] = []

    async def _connect(self) -> asyncpg.Connection:
        # Nothing to reset between readers: these connections run single read statements
        # and never take session state (no SET, LISTEN, advisory locks or transactions).
        connection = await asyncpg.connect(
            self._dsn,
            statement_cache_size=STATEMENT_CACHE_SIZE,
            timeout=5,
            server_settings={
                "application_name": "marketgraph",
                "plan_cache_mode": PLAN_CACHE_MODE,
                "statement_timeout": f"{STATEMENT_SECONDS}s",
            },
        )
        DB_CONNECTIONS_OPENED.inc()
        return connection

    async def open(self) -> None:
        """Open the pool: connections are kept (no churn under load) and one that idles for
        ``IDLE_SECONDS`` is closed, so a quiet process holds few."""
        await self._pool.open()

    async def close(self) -> None:
        await self._pool.close()

    async def read(self, plan: Plan, bound: Bound) -> list[str | None]:
        statements = [self._compiler.statement(root, bound) for root in plan.roots]
        connection = await self._pool.acquire()
        reusable = False
        try:
            results: list[str | None] = []
            for sql, params in statements:
                SQL_STATEMENTS.inc()
                for listener in self.listeners:
                    listener(sql)
                results.append(await connection.fetchval(sql, *params))
            reusable = True
        except asyncpg.PostgresError:
            reusable = True  # the server refused the statement; the connection is as it was
            raise
        finally:
            # Interrupted otherwise (cancelled, cut): what the connection is in is unknown.
            self._pool.release(connection, reusable=reusable)
        return results

    @property
    def size(self) -> int:
        """Connections the pool holds now."""
        return self._pool.size


def asyncpg_dsn(database_url: str) -> str:
    """The plain ``postgresql://`` form asyncpg takes, from SQLAlchemy's URL."""
    return database_url.replace("postgresql+asyncpg://", "postgresql://", 1)
