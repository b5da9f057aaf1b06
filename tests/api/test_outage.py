"""PostgreSQL stopped during requests: 503 with Retry-After, then normal answers, no restart;
each outage logged and counted once.

The database is a PostgreSQL this test starts in a temporary directory on a
spare port (never the machine's shared one); the server runs on it without
Redis. Both read paths, a mutation and a signed-in request are asked.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families

from infra.db.engine import create_engine
from infra.db.migrate import upgrade
from infra.settings import Settings
from tests.support import GraphQLClient, LiveServer, PostgresProcess, sign_up_and_in

COMPILED = "{ markets(first: 5) { totalCount nodes { id name } } }"
RESOLVED = "{ rateLimit { limit } markets(first: 5) { totalCount nodes { id name } } }"
VIEWER = "{ viewer { id displayName } }"
CREATE = """
mutation ($input: CreateMarketInput!) {
  createMarket(input: $input) { __typename ... on CreateMarketSuccess { market { id } } }
}
"""


@pytest.fixture
async def own_postgres() -> AsyncIterator[PostgresProcess]:
    postgres = PostgresProcess()
    postgres.init()
    postgres.start()
    try:
        admin = await asyncpg.connect(f"postgresql://postgres@127.0.0.1:{postgres.port}/postgres")
        await admin.execute("CREATE DATABASE marketgraph")
        await admin.close()
        yield postgres
    finally:
        postgres.close()


async def post(
    http: httpx.AsyncClient, query: str, token: str | None = None, **variables: Any
) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return await http.post(
        "/graphql", json={"query": query, "variables": variables}, headers=headers
    )


async def test_requests_get_503_while_the_database_is_down_and_recover_after(
    own_postgres: PostgresProcess, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    config = dataclasses.replace(
        settings, database_url=own_postgres.url, redis_url=None, db_pool_timeout_seconds=1.0
    )
    engine = create_engine(config)
    await upgrade(engine)
    await engine.dispose()
    server = LiveServer(config)
    server.start()
    caplog.set_level(logging.INFO, logger="marketgraph.http")
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
            account = await sign_up_and_in(GraphQLClient(http), "Outage")
            market = {"name": "Will the database come back?", "endDate": "2099-01-01T00:00:00Z"}
            created = await post(http, CREATE, account.token, input=market)
            assert created.json()["data"]["createMarket"]["__typename"] == "CreateMarketSuccess"
            before = {q: (await post(http, q)).json()["data"] for q in (COMPILED, RESOLVED)}
            assert before[COMPILED]["markets"]["totalCount"] == 1
            outages = await database_outages(http)

            own_postgres.stop()
            down = [
                await post(http, COMPILED),
                await post(http, RESOLVED),
                await post(http, VIEWER, account.token),
                await post(http, CREATE, account.token, input={**market, "name": "Lost?"}),
                await post(http, COMPILED),
            ]
            for response in down:
                assert response.status_code == 503, response.text
                assert response.headers["Retry-After"] == "5"
                error = response.json()["errors"][0]
                assert error["extensions"]["code"] == "SERVICE_UNAVAILABLE"
                assert "Traceback" not in response.text
                assert "data" not in response.json()

            own_postgres.start()
            recovered = await _eventually_ok(http, COMPILED)
            assert recovered == before[COMPILED]
            assert (await post(http, RESOLVED)).json()["data"] == before[RESOLVED]
            viewer = await post(http, VIEWER, account.token)
            assert viewer.json()["data"]["viewer"]["displayName"] == "Outage"
            # The mutation refused during the outage wrote nothing.
            assert recovered["markets"]["totalCount"] == 1
            # Five requests refused, one outage counted.
            assert await database_outages(http) == outages + 1

            # A second outage counts again.
            own_postgres.stop()
            assert (await post(http, COMPILED)).status_code == 503
            assert (await post(http, RESOLVED)).status_code == 503
            own_postgres.start()
            await _eventually_ok(http, COMPILED)
            assert await database_outages(http) == outages + 2
    finally:
        server.stop()
    events = [
        orjson.loads(r.getMessage())["event"]
        for r in caplog.records
        if r.name == "marketgraph.http"
    ]
    assert events.count("dependency.unavailable") == 2
    assert events.count("dependency.available") == 2


async def database_outages(http: httpx.AsyncClient) -> float:
    """``marketgraph_database_outages_total`` as /metrics shows it."""
    response = await http.get("/metrics")
    assert response.status_code == 200
    for family in text_string_to_metric_families(response.text):
        if family.name == "marketgraph_database_outages":
            return float(family.samples[0].value)
    raise AssertionError("/metrics has no marketgraph_database_outages_total")


async def _eventually_ok(http: httpx.AsyncClient, query: str) -> dict[str, Any]:
    """The first normal answer after the database is back: stale pooled connections may
    each cost one 503 first, never an internal error."""
    deadline = time.monotonic() + 20
    while True:
        response = await post(http, query)
        if response.status_code == 200:
            data: dict[str, Any] = response.json()["data"]
            return data
        assert response.status_code == 503, response.text
        assert time.monotonic() < deadline, "the server did not recover"
        await asyncio.sleep(0.1)
