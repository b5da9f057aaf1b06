"""The PostgreSQL pools keep their connections: no churn under load, a prompt error when exhausted.

A server has two pools: SQLAlchemy's (writes, identities, the resolver path) and
the compiled read path's (asyncpg). TopMarkets is compiled; the same query with
``rateLimit`` (outside the read model) runs the resolvers: bursts mix both.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Iterator

import asyncpg
import httpx
import pytest
import sqlalchemy as sa
import sqlalchemy.exc
from prometheus_client import REGISTRY
from sqlalchemy.engine import make_url

from infra.db.engine import create_engine
from infra.settings import Settings
from tests.support import LiveServer, MakeAccount, MakeMarket

POOL = 8
CONCURRENCY = 32
TOP_MARKETS = """
query TopMarkets {
  markets(first: 20, filter: { status: ACTIVE }, orderBy: { field: VOLUME, direction: DESC }) {
    totalCount
    edges { node { id name yesPrice creator { displayName } } }
  }
}
"""


RESOLVED_MARKETS = """
query ResolvedMarkets {
  rateLimit { limit }
  markets(first: 20, filter: { status: ACTIVE }, orderBy: { field: VOLUME, direction: DESC }) {
    totalCount
    edges { node { id name yesPrice creator { displayName } } }
  }
}
"""


@pytest.fixture(scope="module")
def pooled_server(settings: Settings) -> Iterator[LiveServer]:
    """A server whose pools (8 each, no overflow) are smaller than the 32 requests it serves."""
    server = LiveServer(
        dataclasses.replace(settings, db_pool_size=POOL, db_pool_overflow=0, db_read_pool_size=POOL)
    )
    server.start()
    yield server
    server.stop()


@pytest.fixture
async def observer(settings: Settings) -> AsyncIterator[asyncpg.Connection]:
    """A connection of the test's own, named so it is not mistaken for the server's."""
    dsn = make_url(settings.database_url).set(drivername="postgresql")
    conn = await asyncpg.connect(
        dsn.render_as_string(hide_password=False),
        server_settings={"application_name": "mg-test-observer"},
    )
    yield conn
    await conn.close()


async def server_sessions(observer: asyncpg.Connection) -> set[int]:
    """Backend PIDs of the API's sessions on the test database."""
    rows = await observer.fetch(
        "SELECT pid FROM pg_stat_activity"
        " WHERE datname = current_database() AND application_name = 'marketgraph'"
    )
    return {row["pid"] for row in rows}


async def burst(client: httpx.AsyncClient) -> None:
    responses = await asyncio.gather(
        *(
            client.post("/graphql", json={"query": (TOP_MARKETS, RESOLVED_MARKETS)[i % 2]})
            for i in range(CONCURRENCY)
        )
    )
    for response in responses:
        assert response.status_code == 200, response.text
        assert "errors" not in response.json(), response.text


def opened() -> float:
    return REGISTRY.get_sample_value("marketgraph_db_connections_opened_total") or 0.0


async def test_no_new_connections_after_warm_up(
    pooled_server: LiveServer,
    observer: asyncpg.Connection,
    make_account: MakeAccount,
    make_market: MakeMarket,
) -> None:
    creator = await make_account("Pool Tester")
    for _ in range(3):
        await make_market(creator)
    pool = pooled_server.app.state.engine.sync_engine.pool
    reads = pooled_server.app.state.compiled_reads
    before = await server_sessions(observer)
    limits = httpx.Limits(max_connections=CONCURRENCY, max_keepalive_connections=CONCURRENCY)
    async with httpx.AsyncClient(base_url=pooled_server.url, timeout=60, limits=limits) as client:
        # Warm-up: bursts until the pool holds all it may hold.
        for _ in range(20):
            await burst(client)
            if pool.checkedin() + pool.checkedout() == POOL and reads.size == POOL:
                break
        assert pool.checkedin() + pool.checkedout() == POOL
        assert reads.size == POOL
        warm = await server_sessions(observer)
        # 32 concurrent requests never opened more sessions than the pools hold (their
        # start-up checks had opened the first ones already).
        assert 0 < len(warm - before) <= 2 * POOL
        opened_when_warm = opened()

        for _ in range(5):
            await burst(client)

    # The same PostgreSQL sessions served every later request: none opened, none closed.
    assert await server_sessions(observer) == warm
    assert opened() == opened_when_warm
    assert pool.overflow() <= 0


async def test_an_exhausted_pool_raises_promptly(settings: Settings) -> None:
    engine = create_engine(
        dataclasses.replace(
            settings, db_pool_size=1, db_pool_overflow=0, db_pool_timeout_seconds=0.2
        )
    )
    try:
        async with engine.connect() as held:
            await held.execute(sa.text("SELECT 1"))
            # The timeout is the pool's (0.2 s); wait_for only guards against a hang.
            with pytest.raises(sqlalchemy.exc.TimeoutError):
                await asyncio.wait_for(engine.connect().__aenter__(), timeout=30)
        async with engine.connect() as again:  # the pool works again once the holder is back
            assert (await again.execute(sa.text("SELECT 1"))).scalar_one() == 1
    finally:
        await engine.dispose()
