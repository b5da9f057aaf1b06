"""Single flight: identical concurrent misses run the operation once (twice at most when a
write lands meanwhile, and those that arrive after it see it); an expiry under load sends
one request to the database while the others are answered at once.

To make sure the requests really overlap, the test holds a lock on the markets table:
the one request that runs the operation blocks on it, so every other one arrives while it
is in flight. The statements the server sends are counted as it sends them.
"""

from __future__ import annotations

import asyncio
import uuid

import httpx
import pytest
from prometheus_client import REGISTRY
from sqlalchemy.ext.asyncio import AsyncEngine

from infra.metrics import tally
from infra.settings import Settings
from tests.api.caching import CacheClient, cache_server, cached_settings, markets_locked, until
from tests.conftest import CREATE_MARKET, future
from tests.support import GraphQLClient, promote, sign_up_and_in

CONCURRENCY = 50
WAITS = "marketgraph_cache_single_flight_waits_total"
STALE = "marketgraph_cache_stale_served_total"


def metric(name: str) -> float:
    tally.flush()  # the server's batch of per-request counts, as a scrape writes it first
    return REGISTRY.get_sample_value(name) or 0.0


class Listing:
    """A query of its own (no other test shares its cache key), sent many times at once."""

    def __init__(self, client: CacheClient) -> None:
        self.client = client
        self.query = (
            "query ($word: String!) { markets(first: 10, filter: {nameContains: $word})"
            " { totalCount nodes { id name } } }"
        )
        self.variables = {"word": uuid.uuid4().hex[:10]}

    def send(self) -> asyncio.Future[httpx.Response]:
        body = {"query": self.query, "variables": self.variables}
        return asyncio.ensure_future(self.client.http.post("/graphql", json=body))

    def burst(self, count: int) -> list[asyncio.Future[httpx.Response]]:
        return [self.send() for _ in range(count)]


def statuses(responses: list[httpx.Response]) -> list[str]:
    return sorted(str(r.json()["extensions"]["cache"]) for r in responses)


@pytest.mark.parametrize("compiled", [True, False], ids=["compiled", "resolvers"])
async def test_fifty_concurrent_cold_queries_run_the_sql_once(
    settings: Settings, db: AsyncEngine, compiled: bool
) -> None:
    async with cache_server(cached_settings(settings, compiled_reads=compiled)) as client:
        # What one execution of the operation sends, measured on a query of its own.
        alone = Listing(client)
        client.reset()
        assert (await alone.send()).json()["extensions"]["cache"] == "MISS"
        once = len(client.statements())
        assert once >= 1
        listing = Listing(client)
        client.reset()
        waits = metric(WAITS)
        async with markets_locked(db):
            requests = listing.burst(CONCURRENCY)
            # Every request but the one running the operation waits for it.
            await until(
                lambda: metric(WAITS) >= waits + CONCURRENCY - 1,
                "the other requests wait for the one in flight",
            )
            assert not any(request.done() for request in requests)
        responses = [await request for request in requests]
        statements = client.statements()
    assert len(statements) == once, statements
    assert {r.status_code for r in responses} == {200}
    assert len({r.content.split(b',"extensions"')[0] for r in responses}) == 1
    assert statuses(responses) == ["HIT"] * (CONCURRENCY - 1) + ["MISS"]


async def test_an_expiry_under_load_refreshes_once_and_serves_the_rest_at_once(
    settings: Settings, db: AsyncEngine
) -> None:
    tuned = cached_settings(settings, cache_max_age_seconds=1, cache_stale_seconds=60)
    async with cache_server(tuned) as client:
        listing = Listing(client)
        assert (await listing.send()).json()["extensions"]["cache"] == "MISS"
        assert (await listing.send()).json()["extensions"]["cache"] == "HIT"
        await asyncio.sleep(1.2)  # past its max age, within its stale grace
        client.reset()
        stale = metric(STALE)
        async with markets_locked(db):
            requests = listing.burst(CONCURRENCY)
            # The refresh is blocked on the lock; everyone else is answered all the same.
            await until(
                lambda: sum(r.done() for r in requests) == CONCURRENCY - 1,
                "all but the refreshing request are answered",
            )
            answered = [r.result() for r in requests if r.done()]
            [refreshing] = [r for r in requests if not r.done()]
        refreshed = await refreshing
        statements = client.statements()
        after = await listing.send()
    assert len(statements) == 1, statements
    assert statuses(answered) == ["HIT"] * (CONCURRENCY - 1)
    assert metric(STALE) - stale == CONCURRENCY - 1
    assert refreshed.json()["extensions"]["cache"] == "MISS"
    assert after.json()["extensions"]["cache"] == "HIT"


async def test_a_wait_is_bounded_then_the_request_runs_itself(
    settings: Settings, db: AsyncEngine
) -> None:
    async with cache_server(cached_settings(settings, cache_wait_seconds=0.2)) as client:
        listing = Listing(client)
        compiled = client.server.compiled_sql
        compiled.reset()
        waits = metric(WAITS)
        async with markets_locked(db):
            requests = listing.burst(3)
            await until(lambda: compiled.count == 3, "the waiters give up and run the operation")
        responses = [await request for request in requests]
    assert metric(WAITS) - waits == 2
    assert {r.status_code for r in responses} == {200}
    assert statuses(responses) == ["MISS"] * 3


ROLE_LISTING = (
    "query ($word: String!) { markets(first: 10, filter: {nameContains: $word})"
    " { totalCount nodes { id name creator { id role } } } }"
)
SET_ROLE = """
mutation ($input: SetUserRoleInput!) {
  setUserRole(input: $input) { __typename }
}
"""


def reads_markets(statements: list[str]) -> int:
    """Statements that read the markets table: those of the listing, not of a write."""
    return sum("FROM markets" in statement for statement in statements)


@pytest.mark.parametrize("related", [True, False], ids=["related", "unrelated"])
@pytest.mark.parametrize("compiled", [True, False], ids=["compiled", "resolvers"])
async def test_a_write_during_a_cold_burst_costs_at_most_one_more_execution(
    settings: Settings, db: AsyncEngine, compiled: bool, related: bool
) -> None:
    """Half the burst arrives before a write commits, half after. Those after must see
    it; the whole burst still runs the operation at most twice (once when the write
    touches nothing the answer shows)."""
    async with cache_server(cached_settings(settings, compiled_reads=compiled)) as client:
        gql = GraphQLClient(client.http)
        admin = await sign_up_and_in(gql, "Admin")
        await promote(db, admin, "ADMIN")
        creator = await sign_up_and_in(gql, "Creator")
        bystander = await sign_up_and_in(gql, "Bystander")
        word = uuid.uuid4().hex[:10]
        created = await gql.data(
            CREATE_MARKET,
            {"input": {"name": f"Will {word} hold?", "endDate": future()}},
            token=creator.token,
        )
        assert created["createMarket"]["__typename"] == "CreateMarketSuccess"
        # What one execution reads, measured under a text of its own.
        client.reset()
        alone = await client.ask(ROLE_LISTING + " # alone", {"word": word})
        assert alone.cache == "MISS"
        once = reads_markets(client.statements())
        assert once >= 1
        target = creator if related else bystander
        half = CONCURRENCY // 2

        def send() -> asyncio.Future[httpx.Response]:
            body = {"query": ROLE_LISTING, "variables": {"word": word}}
            return asyncio.ensure_future(client.http.post("/graphql", json=body))

        client.reset()
        waits = metric(WAITS)
        async with markets_locked(db):
            early = [send() for _ in range(half)]
            await until(lambda: metric(WAITS) >= waits + half - 1, "the early half waits")
            changed = await gql.data(
                SET_ROLE, {"input": {"userId": target.id, "role": "MODERATOR"}}, admin.token
            )
            assert changed["setUserRole"]["__typename"] == "UserChangeSuccess"
            # Committed and invalidated: everything sent from here on must see it.
            late = [send() for _ in range(half)]
            await until(
                lambda: metric(WAITS) >= waits + 2 * half - 2, "the late half is in the cache"
            )
            assert not any(request.done() for request in early + late)
        responses = [await request for request in early + late]
        executions = reads_markets(client.statements())
        after = await client.ask(ROLE_LISTING, {"word": word})
    assert {r.status_code for r in responses} == {200}
    roles = [r.json()["data"]["markets"]["nodes"][0]["creator"]["role"] for r in responses]
    assert roles[half:] == (["MODERATOR"] if related else ["USER"]) * half
    assert executions <= (2 if related else 1) * once, client.statements()
    assert statuses(responses).count("MISS") <= (2 if related else 1)
    assert after.cache == "HIT"
    assert after.data["markets"]["nodes"][0]["creator"]["role"] == roles[-1]
