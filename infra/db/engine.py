"""The async engine, tuned per database.

PostgreSQL pool: ``DB_POOL_SIZE`` connections per process (default 16), no overflow
by default; the compiled read path has a pool of its own (``DB_READ_POOL_SIZE``, 16),
so a process holds at most 32 sessions, the concurrency one process is expected to
serve. Overflow connections are
closed as soon as they are returned, so a pool smaller than its load opens and closes
sessions all the time (10 + 10 overflow opened 170 PostgreSQL sessions per 5 s at 32
concurrent requests); a pool sized for the load keeps every connection. A request that
finds the pool exhausted waits up to ``DB_POOL_TIMEOUT_SECONDS`` (back-pressure, not an
outage), then gets ``sqlalchemy.exc.TimeoutError``. Connections live at most 30 minutes
(``pool_recycle``), connecting gives up after 5 s and a statement after 30 s.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from infra.metrics import (
    DB_CONNECTIONS_OPENED,
    DB_POOL_IN_USE,
    DB_POOL_IN_USE_BY_POOL,
    DB_POOL_OPEN,
    DB_POOL_OPEN_BY_POOL,
    SQL_STATEMENTS,
)
from infra.settings import Settings


def create_engine(settings: Settings) -> AsyncEngine:
    if settings.is_sqlite:
        return _sqlite_engine(settings.database_url)
    engine = create_async_engine(
        settings.database_url,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_pool_overflow,
        pool_timeout=settings.db_pool_timeout_seconds,
        pool_pre_ping=False,
        pool_recycle=1800,
        connect_args={
            "timeout": 5,
            "command_timeout": 30,
            # Names the API's sessions in pg_stat_activity.
            "server_settings": {"application_name": "marketgraph"},
        },
    )
    _count_statements(engine)
    return engine


def read_engine(engine: AsyncEngine) -> AsyncEngine:
    """The same pool in autocommit: batch reads skip the BEGIN/ROLLBACK round trips."""
    return engine.execution_options(isolation_level="AUTOCOMMIT")


def _sqlite_engine(url: str) -> AsyncEngine:
    database = make_url(url).database
    if database:
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_async_engine(url, connect_args={"timeout": 15})

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control from the driver so BEGIN IMMEDIATE is ours to send.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=15000")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # SQLite ignores SELECT ... FOR UPDATE; a writing transaction takes the
        # write lock up front instead, so read-then-write cannot interleave.
        if conn.get_execution_options().get("isolation_level") != "AUTOCOMMIT":
            conn.exec_driver_sql("BEGIN IMMEDIATE")

    _count_statements(engine)
    return engine


def _count_statements(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "before_cursor_execute")
    def _count(*_args: Any) -> None:
        SQL_STATEMENTS.inc()


class PoolGauges:
    """One pool's part of the pool gauges: its own series (``pool`` label) and the totals.

    A process may hold several pools of a kind (tests run several apps in one process):
    each moves the gauges by its own changes, so they show the sum.
    """

    def __init__(self, pool: str) -> None:
        self._open = (DB_POOL_OPEN, DB_POOL_OPEN_BY_POOL.labels(pool))
        self._in_use = (DB_POOL_IN_USE, DB_POOL_IN_USE_BY_POOL.labels(pool))
        self._reported = (0, 0)

    def move(self, opened: int = 0, in_use: int = 0) -> None:
        """Count a change: connections opened (negative: closed), lent (negative: back)."""
        if opened:
            for gauge in self._open:
                gauge.inc(opened)
        if in_use:
            for gauge in self._in_use:
                gauge.inc(in_use)

    def report(self, held: int, in_use: int) -> None:
        """Set this pool's part from a sample of its state (for a pool that samples)."""
        open_before, in_use_before = self._reported
        self._reported = (held, in_use)
        self.move(held - open_before, in_use - in_use_before)


def observe_pool(engine: AsyncEngine) -> None:
    """Keep the pool gauges and the connections-opened counter of the API's engine, exactly:
    SQLAlchemy's pool events say each change."""
    target = engine.sync_engine
    gauges = PoolGauges("sqlalchemy")

    @event.listens_for(target, "connect")
    def _connected(*_args: Any) -> None:
        DB_CONNECTIONS_OPENED.inc()
        gauges.move(opened=1)

    @event.listens_for(target, "close")
    def _closed(*_args: Any) -> None:
        gauges.move(opened=-1)

    @event.listens_for(target, "close_detached")
    def _closed_detached(*_args: Any) -> None:
        gauges.move(opened=-1)

    @event.listens_for(target, "checkout")
    def _checked_out(*_args: Any) -> None:
        gauges.move(in_use=1)

    @event.listens_for(target, "checkin")
    def _checked_in(*_args: Any) -> None:
        gauges.move(in_use=-1)
