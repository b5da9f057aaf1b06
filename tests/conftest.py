"""Fixtures: each run gets its own PostgreSQL database and Redis key prefix, removed after.

Tests marked ``embedded`` run a second time against the embedded default
(a SQLite file, no Redis), in the same pytest run.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import redis.asyncio as aioredis
import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from infra.db.engine import create_engine
from infra.db.migrate import upgrade
from infra.settings import Settings
from tests.support import (
    Account,
    GraphQLClient,
    LiveServer,
    MakeAccount,
    MakeMarket,
    RedisProcess,
    sign_up_and_in,
)

ADMIN_DATABASE_URL = os.environ.get(
    "TEST_DATABASE_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
)
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
BACKENDS = ("postgres", "sqlite")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "backend" in metafunc.fixturenames:
        embedded = metafunc.definition.get_closest_marker("embedded") is not None
        metafunc.parametrize(
            "backend", BACKENDS if embedded else BACKENDS[:1], indirect=True, scope="session"
        )


@pytest.fixture(scope="session")
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def _asyncpg_dsn(url: str, database: str | None = None) -> str:
    parsed = make_url(url).set(drivername="postgresql")
    if database is not None:
        parsed = parsed.set(database=database)
    return parsed.render_as_string(hide_password=False)


@pytest.fixture(scope="session")
async def settings(
    backend: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Settings]:
    """Settings pointing at a fresh, migrated database of this run's own."""
    data_dir = tmp_path_factory.mktemp(f"marketgraph-{backend}")
    prefix = f"mgtest:{uuid.uuid4().hex[:12]}:"
    env = {
        "MARKETGRAPH_ENV": "development",
        "MARKETGRAPH_DATA_DIR": str(data_dir),
        "JWT_SECRET": uuid.uuid4().hex * 2,
        "LOG_LEVEL": "INFO",
        "REDIS_KEY_PREFIX": prefix,
        # Every test signs in from 127.0.0.1; the per-client limit has its own test server.
        "SIGNIN_CLIENT_LIMIT": "1000",
        "SIGNUP_CLIENT_LIMIT": "1000000",
        # Every test runs from 127.0.0.1 too: the shared server's cost budgets are roomy, and
        # the default budgets are tested on servers of their own (tests/api/test_budgets.py).
        **{
            f"BUDGET_{role}": "10000000:1000000"
            for role in ("ANONYMOUS", "USER", "MODERATOR", "ADMIN")
        },
        # Several suites share PostgreSQL's 100 connections: keep at most 10 per server
        # (plus 10 overflow for bursts) rather than production's 32.
        "DB_POOL_SIZE": "10",
        "DB_POOL_OVERFLOW": "10",
        "DB_READ_POOL_SIZE": "5",
        # The test server runs jobs itself: a saq worker in process on Redis, or (SQLite,
        # no Redis) the in-process runner. Tests of `marketgraph worker` start their own.
        "RUN_JOBS_IN_PROCESS": "true",
        "JOB_RETRY_DELAY_SECONDS": "0",
        # The shared server answers every request by running it: the SQL-count and
        # differential tests measure the executors. The cache's tests run servers of
        # their own (TEST_RESPONSE_CACHE=true runs the whole suite through the cache).
        "RESPONSE_CACHE": os.environ.get("TEST_RESPONSE_CACHE", "false"),
    }
    if backend == "sqlite":
        env["DATABASE_URL"] = f"sqlite+aiosqlite:///{data_dir / 'test.db'}"
        yield Settings.from_env(env)
        return
    name = f"mg_test_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(_asyncpg_dsn(ADMIN_DATABASE_URL))
    await admin.execute(f'CREATE DATABASE "{name}"')
    env["DATABASE_URL"] = (
        make_url(ADMIN_DATABASE_URL).set(database=name).render_as_string(hide_password=False)
    )
    env["REDIS_URL"] = REDIS_URL
    settings = Settings.from_env(env)
    engine = create_engine(settings)
    await upgrade(engine)
    await engine.dispose()
    try:
        yield settings
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()
        client = aioredis.from_url(REDIS_URL)
        # saq names its keys saq:<queue>:... and saq:job:<queue>:...; the queue is <prefix>jobs.
        # The response cache's keys carry the prefix inside a Cluster hash tag: {<prefix>cache}.
        patterns = (f"{prefix}*", f"saq:{prefix}*", f"saq:job:{prefix}*", f"{{{prefix}*")
        for pattern in patterns:
            keys = [key async for key in client.scan_iter(match=pattern)]
            if keys:
                await client.delete(*keys)
        await client.aclose()


@pytest.fixture(scope="session")
def server(settings: Settings) -> Iterator[LiveServer]:
    live = LiveServer(settings)
    live.start()
    yield live
    live.stop()


@pytest.fixture(scope="session")
async def http(server: LiveServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        yield client


@pytest.fixture(scope="session")
def gql(http: httpx.AsyncClient) -> GraphQLClient:
    return GraphQLClient(http)


@pytest.fixture(scope="session", autouse=True)
async def ledger_check_engines() -> AsyncIterator[dict[str, AsyncEngine]]:
    """One small pool per test database for the ledger check, made on first use."""
    engines: dict[str, AsyncEngine] = {}
    yield engines
    for engine in engines.values():
        await engine.dispose()


# Every user whose balance is not the sum of their ledger entries: one statement.
UNBALANCED = sa.text(
    "SELECT u.id, u.balance, COALESCE(SUM(l.amount), 0) FROM users u"
    " LEFT JOIN ledger_entries l ON l.user_id = u.id"
    " GROUP BY u.id, u.balance HAVING u.balance <> COALESCE(SUM(l.amount), 0)"
)


@pytest.fixture(autouse=True)
async def balances_match_ledgers(
    request: pytest.FixtureRequest, ledger_check_engines: dict[str, AsyncEngine]
) -> AsyncIterator[None]:
    """After every test that uses a database: each balance is the sum of its ledger.

    Money moves only together with its ledger entry, in one transaction, so this
    holds at every commit, whatever ran concurrently (trades, payout batches).
    """
    if "settings" not in request.fixturenames:
        yield
        return
    # Session-scoped, so already set up for this test: no fixture is run from here.
    settings: Settings = request.getfixturevalue("settings")
    engine = ledger_check_engines.get(settings.database_url)
    if engine is None:
        engine = ledger_check_engines[settings.database_url] = create_engine(settings)
    yield
    async with engine.connect() as conn:
        unbalanced = (await conn.execute(UNBALANCED)).all()
    assert unbalanced == [], f"balance != sum of ledger entries (id, balance, sum): {unbalanced}"


@pytest.fixture
async def db(settings: Settings) -> AsyncIterator[AsyncEngine]:
    """A connection pool of the test's own, for checking what the server wrote."""
    engine = create_engine(settings)
    yield engine
    await engine.dispose()


CREATE_MARKET = """
mutation ($input: CreateMarketInput!) {
  createMarket(input: $input) {
    __typename
    ... on CreateMarketSuccess { market { id name description endDate status yesPrice } }
    ... on ValidationError { field }
    ... on ConflictError { field }
    ... on Error { message code }
  }
}
"""


@pytest.fixture
def make_account(gql: GraphQLClient) -> MakeAccount:
    """Sign a new user up and in through the API."""

    async def make(name: str = "Tester") -> Account:
        return await sign_up_and_in(gql, name)

    return make


def future(days: int = 30) -> str:
    return (datetime.now(UTC) + timedelta(days=days)).isoformat()


@pytest.fixture
def make_market(gql: GraphQLClient) -> MakeMarket:
    """Create a market through the API as the given account."""

    async def make(account: Account, name: str | None = None, **fields: Any) -> dict[str, Any]:
        market_input = {
            "name": name or f"Will test {uuid.uuid4().hex[:10]} pass?",
            "endDate": future(),
            **fields,
        }
        data = await gql.data(CREATE_MARKET, {"input": market_input}, token=account.token)
        result = data["createMarket"]
        assert result["__typename"] == "CreateMarketSuccess", result
        market: dict[str, Any] = result["market"]
        return market

    return make


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return Path(__file__).resolve().parent.parent


@pytest.fixture
def own_redis() -> Iterator[RedisProcess]:
    """A redis-server of the test's own on a spare port: it may be stopped, frozen,
    reconfigured or flushed without touching the machine's shared Redis."""
    server = RedisProcess()
    server.start()
    yield server
    server.close()
