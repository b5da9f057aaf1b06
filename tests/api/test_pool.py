"""The PostgreSQL pools keep their connections: no churn under load, a prompt error when exhausted.

A server has two pools: SQLAlchemy's (writes, identities, the resolver path) and
the compiled read path's (asyncpg). TopMarkets is compiled; the same query with
``rateLimit`` (outside the read model) runs the resolvers: bursts mix both.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import AsyncIterator, Callable, Iterator

import asyncpg
import httpx
import pytest
import sqlalchemy as sa
import sqlalchemy.exc
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families
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
        # Warm-up: a burst whose queries wait on a lock, so that each pool lends all it may at
        # once. (Bursts alone filled the compiled reads' pool only when the database happened
        # to answer slower than the server took the next request: in one CI run, 3 of 8.)
        async with observer.transaction():
            await observer.execute("LOCK TABLE markets IN ACCESS EXCLUSIVE MODE")
            waiting = asyncio.create_task(burst(client))
            deadline = time.monotonic() + 3  # under the pools' 5 s wait for a connection
            while pool.checkedout() < POOL or reads.size < POOL:
                assert time.monotonic() < deadline, (pool.checkedout(), reads.size)
                await asyncio.sleep(0.02)
        await waiting
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


Samples = dict[tuple[str, str], float]


async def gauges(client: httpx.AsyncClient) -> Samples:
    """The pool gauges of a /metrics scrape: (name, pool label or "") -> value."""
    text = (await client.get("/metrics")).text
    found: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name.startswith("marketgraph_db_pool_connections"):
                found[(sample.name, sample.labels.get("pool", ""))] = sample.value
    return found


IN_USE = "marketgraph_db_pool_connections_in_use"
HELD = "marketgraph_db_pool_connections"


async def until(client: httpx.AsyncClient, holds: Callable[[Samples], bool], what: str) -> Samples:
    """Scrape until ``holds`` (the read pool's gauges are sampled once a second).

    The deadline only bounds a hang: nothing is asserted about how long it took.
    """
    deadline = time.monotonic() + 30
    while True:
        samples = await gauges(client)
        if holds(samples):
            return samples
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: {samples}")
        await asyncio.sleep(0.1)


async def waiting_on(observer: asyncpg.Connection, holder: int, count: int) -> None:
    """Return once ``count`` sessions wait on a lock ``holder`` holds (``observer`` must be
    outside a transaction: pg_stat_activity is read once per transaction)."""
    deadline = time.monotonic() + 30
    while True:
        found = await observer.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE $1 = ANY(pg_blocking_pids(pid))", holder
        )
        if found >= count:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"{found} sessions wait on the lock, not {count}")
        await asyncio.sleep(0.05)


async def test_metrics_show_each_pool_in_use_under_load(
    pooled_server: LiveServer,
    observer: asyncpg.Connection,
    settings: Settings,
    make_account: MakeAccount,
    make_market: MakeMarket,
) -> None:
    reads, writes = (IN_USE + "_by_pool", "compiled_reads"), (IN_USE + "_by_pool", "sqlalchemy")
    creator = await make_account("Gauge Tester")
    await make_market(creator)
    limits = httpx.Limits(max_connections=CONCURRENCY, max_keepalive_connections=CONCURRENCY)
    dsn = make_url(settings.database_url).set(drivername="postgresql")
    locker = await asyncpg.connect(dsn.render_as_string(hide_password=False))
    async with httpx.AsyncClient(base_url=pooled_server.url, timeout=60, limits=limits) as client:
        # Other servers of this test process report into the same gauges: they are idle.
        idle = await until(client, lambda s: s[reads] == 0, "reads idle")
        # Reads of markets wait while this transaction holds the table, each holding the
        # connection it took: the compiled queries one of the read pool's, the others
        # (rateLimit is outside the read model) one of SQLAlchemy's.
        lock = locker.transaction()
        await lock.start()
        requests: list[asyncio.Future[httpx.Response]] = []
        try:
            await locker.execute("LOCK TABLE markets IN ACCESS EXCLUSIVE MODE")
            requests += [
                asyncio.ensure_future(
                    client.post("/graphql", json={"query": (TOP_MARKETS, RESOLVED_MARKETS)[i % 2]})
                )
                for i in range(2 * POOL)
            ]
            await waiting_on(observer, locker.get_server_pid(), 2 * POOL)
            busy = await until(client, lambda s: s[reads] == POOL, "every read connection lent")
        finally:
            await lock.rollback()
            await locker.close()
        responses = await asyncio.gather(*requests)
        assert all(r.status_code == 200 and "errors" not in r.json() for r in responses)

        # All 8 of each pool were lent at once (a job of one of the servers may also have
        # waited on the table, with one more of SQLAlchemy's); the totals are the sums.
        assert busy[writes] >= idle[writes] + POOL
        assert busy[(HELD + "_by_pool", "compiled_reads")] >= POOL
        for name in (IN_USE, HELD):
            assert busy[(name, "")] == sum(
                busy[(name + "_by_pool", pool)] for pool in ("sqlalchemy", "compiled_reads")
            )
        # Back in the pools, and kept: none in use, the read connections still held.
        done = await until(
            client, lambda s: s[reads] == 0 and s[writes] == idle[writes], "both pools idle"
        )
        assert done[(HELD + "_by_pool", "compiled_reads")] >= POOL


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
