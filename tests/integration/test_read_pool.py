"""The compiled read path's pool on real PostgreSQL: never more connections than its size,
every wait and lease bounded, nothing lost to a cancelled or interrupted reader."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import asyncpg
import pytest

from infra.db.read_pool import TICK_SECONDS, ReadPool
from infra.settings import Settings
from tests.conftest import _asyncpg_dsn

pytestmark = pytest.mark.usefixtures("settings")


class Opened:
    """The connect function a pool is given, counting what it opens."""

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
        self.count = 0

    async def __call__(self) -> asyncpg.Connection:
        self.count += 1
        return await asyncpg.connect(self.dsn)


@pytest.fixture
def opened(settings: Settings) -> Opened:
    return Opened(_asyncpg_dsn(settings.database_url))


def pool_of(
    opened: Opened,
    size: int,
    *,
    acquire: float = 5.0,
    lease: float = 30.0,
    idle: float = 300.0,
) -> ReadPool:
    return ReadPool(opened, size, acquire_seconds=acquire, lease_seconds=lease, idle_seconds=idle)


@pytest.fixture
async def pool(opened: Opened) -> AsyncIterator[ReadPool]:
    made = pool_of(opened, 3)
    await made.open()
    yield made
    await made.close()


async def read(pool: ReadPool, sql: str = "SELECT pg_backend_pid()") -> int:
    connection = await pool.acquire()
    try:
        return int(await connection.fetchval(sql))
    finally:
        pool.release(connection)


async def test_fifty_concurrent_readers_share_the_pools_connections(
    pool: ReadPool, opened: Opened
) -> None:
    backends = await asyncio.gather(
        *(read(pool, "SELECT pg_backend_pid() FROM pg_sleep(0.02)") for _ in range(50))
    )
    assert len(set(backends)) == 3
    assert opened.count == 3
    assert pool.size == 3
    assert pool.lent == 0
    # Warm: more reads open nothing.
    await asyncio.gather(*(read(pool) for _ in range(50)))
    assert opened.count == 3


async def test_a_reader_waits_at_most_its_bound(opened: Opened) -> None:
    pool = pool_of(opened, 1, acquire=0.5)
    await pool.open()
    held = await pool.acquire()
    try:
        with pytest.raises(TimeoutError):
            await pool.acquire()
    finally:
        pool.release(held)
    # The pool still serves once the connection is back.
    assert await read(pool) == await read(pool)
    await pool.close()


async def test_a_cancelled_waiter_loses_nothing(opened: Opened) -> None:
    pool = pool_of(opened, 1)
    await pool.open()
    held = await pool.acquire()
    waiting = asyncio.create_task(pool.acquire())
    await asyncio.sleep(0.05)
    # Handed the connection and cancelled before it runs: the connection must come back.
    pool.release(held)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert pool.lent == 0
    assert pool.size == 1
    await read(pool)
    assert opened.count == 1
    await pool.close()


async def test_an_interrupted_connection_is_replaced(pool: ReadPool, opened: Opened) -> None:
    connection = await pool.acquire()
    first = await connection.fetchval("SELECT pg_backend_pid()")
    pool.release(connection, reusable=False)
    assert connection.is_closed()
    assert pool.size == 0
    assert await read(pool) != first


async def test_a_connection_the_server_dropped_is_not_lent_again(
    pool: ReadPool, settings: Settings
) -> None:
    victim = await read(pool)
    admin = await asyncpg.connect(_asyncpg_dsn(settings.database_url))
    assert await admin.fetchval("SELECT pg_terminate_backend($1)", victim)
    await admin.close()
    await asyncio.sleep(0.1)  # asyncpg notices the closed socket
    backends = {await read(pool) for _ in range(3)}
    assert victim not in backends


async def test_a_stuck_lease_is_cut(opened: Opened) -> None:
    pool = pool_of(opened, 1, lease=0.2)
    await pool.open()
    connection = await pool.acquire()
    with pytest.raises(asyncpg.exceptions.ConnectionDoesNotExistError):
        await connection.fetchval("SELECT pg_sleep(10)")
    pool.release(connection, reusable=False)
    assert pool.size == 0
    assert await read(pool) > 0
    await pool.close()


async def test_idle_connections_close_but_one(opened: Opened) -> None:
    pool = pool_of(opened, 4, idle=0.1)
    await pool.open()
    await asyncio.gather(
        *(read(pool, "SELECT pg_backend_pid() FROM pg_sleep(0.05)") for _ in range(4))
    )
    assert pool.size == 4
    await asyncio.sleep(TICK_SECONDS * 2.5)
    assert pool.size == 1
    await pool.close()


async def test_a_closed_pool_refuses_and_lets_waiters_go(opened: Opened) -> None:
    pool = pool_of(opened, 1)
    await pool.open()
    held = await pool.acquire()
    waiting = asyncio.create_task(pool.acquire())
    await asyncio.sleep(0.05)
    await pool.close()
    with pytest.raises(asyncpg.InterfaceError):
        await waiting
    with pytest.raises(asyncpg.InterfaceError):
        await pool.acquire()
    assert held.is_closed()
