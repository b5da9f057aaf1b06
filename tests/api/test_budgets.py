"""Cost budgets over real HTTP: take before running, refund after, 429 when empty.

Each test runs servers of its own with small budgets (the shared test server's
are roomy), over the run's database, and with Redis or with the in-process
limiter. The budget is keyed by client address (X-Forwarded-For from the
trusted 127.0.0.1), so each test spends a fresh budget.
"""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from graphql import get_introspection_query

from domain.limits import BudgetSpec, RoleBudgets
from infra.settings import Settings
from tests.serving import ServeProcess
from tests.support import LiveServer, MakeAccount, MakeMarket, RedisProcess

# Costs 2 + 1 = 3 requested, and 3 actual whenever one market exists.
ONE_MARKET = "{ markets(first: 1) { nodes { id } } }"
ONE_MARKET_COST = 3


def small(settings: Settings, capacity: int, rate: float = 0.001, **changes: Any) -> Settings:
    spec = BudgetSpec(capacity=capacity, restore_per_second=rate)
    budgets = RoleBudgets(anonymous=spec, user=spec, moderator=spec, admin=spec)
    return dataclasses.replace(settings, budgets=budgets, **changes)


@asynccontextmanager
async def serving(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    live = LiveServer(settings)
    live.start()
    try:
        limits = httpx.Limits(max_connections=600, max_keepalive_connections=600)
        async with httpx.AsyncClient(base_url=live.url, timeout=60, limits=limits) as client:
            yield client
    finally:
        live.stop()


def client_address() -> str:
    return f"10.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}"


async def ask(http: httpx.AsyncClient, query: str, client: str, **extra: Any) -> httpx.Response:
    return await http.post(
        "/graphql", json={"query": query, **extra}, headers={"X-Forwarded-For": client}
    )


@pytest.fixture(params=["redis", "in-process"])
def limiter(request: pytest.FixtureRequest, settings: Settings) -> Iterator[Settings]:
    if request.param == "in-process":
        yield dataclasses.replace(settings, redis_url=None)
    else:
        assert settings.redis_url, "the PostgreSQL test settings configure Redis"
        yield settings


@pytest.fixture
async def a_market(make_account: MakeAccount, make_market: MakeMarket) -> None:
    """At least one market, so that ONE_MARKET's actual cost is its requested cost."""
    await make_market(await make_account("Budgeted"))


async def test_a_burst_admits_exactly_what_the_budget_covers(
    limiter: Settings, a_market: None
) -> None:
    async with serving(small(limiter, capacity=10 * ONE_MARKET_COST)) as http:
        client = client_address()
        responses = await asyncio.gather(*(ask(http, ONE_MARKET, client) for _ in range(500)))
    admitted = [r for r in responses if r.status_code == 200]
    throttled = [r for r in responses if r.status_code == 429]
    assert 10 <= len(admitted) <= 11  # 11 at most: the budget refills a little meanwhile
    assert len(admitted) + len(throttled) == 500
    for response in admitted:
        assert response.json()["extensions"]["cost"]["actualQueryCost"] == ONE_MARKET_COST
    refused = throttled[0]
    assert int(refused.headers["Retry-After"]) >= 1
    error = refused.json()["errors"][0]
    assert error["extensions"]["code"] == "RATE_LIMITED"
    assert error["extensions"]["retryAfter"] >= 1
    assert "data" not in refused.json()


async def test_a_throttled_operation_runs_nothing(settings: Settings, a_market: None) -> None:
    live = LiveServer(small(settings, capacity=ONE_MARKET_COST))
    live.start()
    try:
        async with httpx.AsyncClient(base_url=live.url, timeout=30) as http:
            client = client_address()
            assert (await ask(http, ONE_MARKET, client)).status_code == 200
            live.sql.reset()
            refused = await ask(http, ONE_MARKET, client)
            assert refused.status_code == 429
            assert live.sql.count == 0
    finally:
        live.stop()


async def test_a_first_hundred_returning_three_is_charged_for_three(
    limiter: Settings, make_account: MakeAccount, make_market: MakeMarket
) -> None:
    token = f"refund{uuid.uuid4().hex[:10]}"
    creator = await make_account("Refunded")
    for i in range(3):
        await make_market(creator, f"{token} market {i}?")
    query = (
        "query ($t: String!) { markets(first: 100, filter: {nameContains: $t}) { nodes { id } } }"
    )
    async with serving(small(limiter, capacity=500)) as http:
        response = await ask(http, query, client_address(), variables={"t": token})
    assert len(response.json()["data"]["markets"]["nodes"]) == 3
    cost = response.json()["extensions"]["cost"]
    assert (cost["requestedQueryCost"], cost["actualQueryCost"]) == (2 + 100, 2 + 3)
    # Charged the actual cost: 102 taken before it ran, 97 given back after.
    assert cost["throttleStatus"]["currentlyAvailable"] == 500 - 5
    assert response.headers["RateLimit-Limit"] == "500"
    assert response.headers["RateLimit-Remaining"] == "495"
    assert int(response.headers["RateLimit-Reset"]) >= 1


async def test_rate_limit_field_shows_the_budget_and_costs_nothing(
    limiter: Settings, a_market: None
) -> None:
    async with serving(small(limiter, capacity=100, rate=5)) as http:
        client = client_address()
        query = "{ rateLimit { limit remaining cost restoreRate resetAt } " + ONE_MARKET[1:]
        response = await ask(http, query, client)
        shown = response.json()["data"]["rateLimit"]
        assert shown["limit"] == 100
        assert shown["cost"] == ONE_MARKET_COST
        assert shown["remaining"] == 100 - ONE_MARKET_COST
        assert shown["restoreRate"] == 5
        assert response.json()["extensions"]["cost"]["requestedQueryCost"] == ONE_MARKET_COST


async def test_a_cost_beyond_the_whole_budget_is_refused_outright(settings: Settings) -> None:
    async with serving(small(settings, capacity=10)) as http:
        response = await http.post(
            "/graphql",
            json={"query": "{ markets(first: 20) { nodes { id } } }"},
            headers={
                "X-Forwarded-For": client_address(),
                "Accept": "application/graphql-response+json",
            },
        )
    assert response.status_code == 400
    error = response.json()["errors"][0]
    assert error["extensions"] == {
        "code": "QUERY_TOO_COMPLEX",
        "limit": "budget",
        "maximum": 10,
        "measured": 22,
    }


async def test_budgets_off_admit_everything_and_report_no_throttle(settings: Settings) -> None:
    async with serving(small(settings, capacity=3, rate_limits=False)) as http:
        client = client_address()
        responses = [await ask(http, ONE_MARKET, client) for _ in range(5)]
    assert [r.status_code for r in responses] == [200] * 5
    assert responses[0].json()["extensions"]["cost"]["throttleStatus"] is None
    assert "RateLimit-Limit" not in responses[0].headers


async def test_a_budget_in_redis_is_shared_by_two_server_processes(
    settings: Settings, a_market: None, tmp_path: Path
) -> None:
    assert settings.redis_url, "the PostgreSQL test settings configure Redis"
    env = {
        "DATABASE_URL": settings.database_url,
        "REDIS_URL": settings.redis_url,
        "REDIS_KEY_PREFIX": settings.redis_key_prefix,
        "JWT_SECRET": settings.jwt_secret,
        "BUDGET_ANONYMOUS": f"{6 * ONE_MARKET_COST}:0.001",
        "RESPONSE_CACHE": "false",
        "DB_POOL_SIZE": "2",
        "DB_READ_POOL_SIZE": "2",
    }
    # Two `marketgraph serve` processes: nothing in memory is shared, only Redis.
    with (
        ServeProcess(tmp_path, "--workers", "1", **env) as one,
        ServeProcess(tmp_path, "--workers", "1", **env) as other,
    ):
        assert one.process is not None
        assert other.process is not None
        assert one.process.pid != other.process.pid
        client = client_address()
        async with (
            httpx.AsyncClient(base_url=one.url, timeout=60) as first,
            httpx.AsyncClient(base_url=other.url, timeout=60) as second,
        ):
            statuses = [
                (await ask(server, ONE_MARKET, client)).status_code
                for _ in range(6)
                for server in (first, second)
            ]
    assert statuses.count(200) == 6
    assert statuses[6:] == [429] * 6


async def test_with_redis_stopped_budgets_hold_in_process(
    settings: Settings, a_market: None
) -> None:
    redis = RedisProcess()
    redis.start()
    try:
        config = small(settings, capacity=4 * ONE_MARKET_COST, redis_url=redis.url)
        async with serving(config) as http:
            client = client_address()
            redis.stop()
            statuses = [(await ask(http, ONE_MARKET, client)).status_code for _ in range(6)]
            ready = await http.get("/health/ready")
        assert statuses == [200] * 4 + [429] * 2
        assert ready.status_code == 200
        assert ready.json()["status"] == "degraded"
        assert ready.json()["checks"]["redis"] == "unavailable, limits in process"
    finally:
        redis.close()


def available(response: httpx.Response) -> int | None:
    """What the answer says is left of the caller's budget (None: not said)."""
    status = response.json()["extensions"]["cost"]["throttleStatus"]
    if status is None:
        assert "RateLimit-Remaining" not in response.headers
        return None
    assert response.headers["RateLimit-Remaining"] == str(status["currentlyAvailable"])
    return int(status["currentlyAvailable"])


async def test_refusals_and_explanations_show_the_budget_and_take_nothing(
    limiter: Settings, a_market: None
) -> None:
    async with serving(small(limiter, capacity=100)) as http:
        client = client_address()
        assert available(await ask(http, "{ markets(", client)) == 100
        assert available(await ask(http, ONE_MARKET, client)) == 100 - ONE_MARKET_COST
        answers = [
            await ask(http, "{ noSuchField }", client),
            await ask(http, "query ($n: Int!) { markets(first: $n) { totalCount } }", client),
            await ask(http, "{ markets(first: 101) { totalCount } }", client),
            await ask(http, ONE_MARKET, client, extensions={"costExplain": True}),
            # 2 + 98 = 100 fits the capacity but not the 97 left: 429.
            await ask(http, "{ markets(first: 98) { nodes { id } } }", client),
        ]
        assert [r.status_code for r in answers] == [200, 200, 200, 200, 429]
        for response in answers:
            assert available(response) == 100 - ONE_MARKET_COST, response.text
        assert answers[4].json()["extensions"]["cost"]["requestedQueryCost"] == 100


async def test_a_signed_in_callers_budget_is_shown_once_their_token_is_checked(
    settings: Settings, make_account: MakeAccount
) -> None:
    account = await make_account("Refused")
    signed_in = {"Authorization": f"Bearer {account.token}"}
    async with serving(small(settings, capacity=100)) as http:
        # Refused before the token is checked against the database: whose budget (and so
        # which role's size) is not known, and is not looked up for a refusal.
        early = await http.post("/graphql", json={"query": "{ nope }"}, headers=signed_in)
        assert early.json()["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
        assert available(early) is None
        # Over the cost limit, refused after the token was checked: the user's budget.
        over = "{ markets(first: 100) { nodes { positions(first: 100) { nodes { id } } } } }"
        late = await http.post("/graphql", json={"query": over}, headers=signed_in)
        assert late.json()["errors"][0]["extensions"]["limit"] == "cost"
        assert available(late) == 100


@pytest.mark.parametrize(
    "options",
    [{}, {"descriptions": True, "specified_by_url": True, "input_value_deprecation": True}],
)
async def test_the_standard_introspection_query_fits_the_default_anonymous_budget(
    settings: Settings, options: dict[str, bool]
) -> None:
    defaults = dataclasses.replace(settings, budgets=RoleBudgets())
    async with serving(defaults) as http:
        response = await ask(http, get_introspection_query(**options), client_address())
    assert response.status_code == 200, response.text
    assert response.json()["data"]["__schema"]["queryType"] == {"name": "Query", "kind": "OBJECT"}
    cost = response.json()["extensions"]["cost"]
    assert cost["throttleStatus"]["maximumAvailable"] == 500
    assert cost["throttleStatus"]["currentlyAvailable"] == 500 - cost["requestedQueryCost"]
