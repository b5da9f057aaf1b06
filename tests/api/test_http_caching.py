"""HTTP caching over real HTTP: Cache-Control from the policy, ETag and If-None-Match
(304 for GET queries), and Vary on Authorization."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson
import pytest

from domain.limits import BudgetSpec, RoleBudgets
from infra.settings import Settings
from tests.api.caching import CacheClient, cache_server, cached_settings
from tests.support import Account, GraphQLClient, sign_up_and_in

pytestmark = pytest.mark.embedded

PUBLIC = "query { markets(first: 3) { nodes { id name } } }"
PRIVATE = "query { viewer { id email } }"


@pytest.fixture(scope="module")
async def cached(settings: Settings) -> AsyncIterator[CacheClient]:
    # Without budgets a response carries nothing of its caller: PUBLIC ones are public.
    tuned = cached_settings(settings, cache_max_age_seconds=120, rate_limits=False)
    async with cache_server(tuned) as client:
        yield client


@pytest.fixture(scope="module")
async def budgeted(settings: Settings) -> AsyncIterator[CacheClient]:
    # Budgets that do not refill during the test, so that what a request pays shows.
    spec = BudgetSpec(capacity=1_000_000, restore_per_second=0.001)
    budgets = RoleBudgets(anonymous=spec, user=spec, moderator=spec, admin=spec)
    tuned = cached_settings(settings, cache_max_age_seconds=120, budgets=budgets)
    async with cache_server(tuned) as client:
        yield client


@pytest.fixture(scope="module")
async def account(cached: CacheClient) -> Account:
    return await sign_up_and_in(GraphQLClient(cached.http), "Watcher")


async def get(
    cached: CacheClient, query: str, token: str | None = None, **headers: str
) -> httpx.Response:
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return await cached.http.get("/graphql", params={"query": query}, headers=headers)


def unique(query: str) -> str:
    return f"{query} # {uuid.uuid4().hex}"


async def test_a_public_query_is_public_with_its_max_age_and_an_etag(cached: CacheClient) -> None:
    response = await get(cached, unique(PUBLIC))
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "public, max-age=120"
    assert response.headers["ETag"].startswith('W/"')
    assert "Authorization" in response.headers["Vary"]


async def test_a_private_query_is_private(cached: CacheClient, account: Account) -> None:
    response = await get(cached, unique(PRIVATE), token=account.token)
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "private, max-age=120"
    assert "Authorization" in response.headers["Vary"]


async def test_a_hit_says_how_long_it_stays_fresh(cached: CacheClient) -> None:
    query = unique(PUBLIC)
    first = await get(cached, query)
    second = await get(cached, query)
    assert second.json()["extensions"]["cache"] == "HIT"
    max_age = int(second.headers["Cache-Control"].removeprefix("public, max-age="))
    assert 0 < max_age <= 120
    assert second.headers["ETag"] == first.headers["ETag"]


async def test_if_none_match_gets_304_for_a_get(cached: CacheClient) -> None:
    query = unique(PUBLIC)
    first = await get(cached, query)
    etag = first.headers["ETag"]
    # Still the same data, from the cache or not: 304 without a body.
    for _ in range(2):
        again = await get(cached, query, **{"If-None-Match": etag})
        assert again.status_code == 304
        assert again.content == b""
        assert again.headers["ETag"] == etag
        assert again.headers["Cache-Control"].startswith("public, max-age=")
    listed = await get(cached, query, **{"If-None-Match": f'"other", {etag}'})
    assert listed.status_code == 304
    assert (await get(cached, query, **{"If-None-Match": "*"})).status_code == 304


async def test_a_stale_etag_gets_the_full_answer(cached: CacheClient) -> None:
    response = await get(cached, unique(PUBLIC), **{"If-None-Match": 'W/"not-this-one"'})
    assert response.status_code == 200
    assert response.json()["data"]["markets"] is not None


async def test_a_changed_answer_gets_a_new_etag(cached: CacheClient, account: Account) -> None:
    query = unique("query { viewer { id balance } }")
    first = await get(cached, query, token=account.token)
    # A different viewer is a different answer: its ETag differs, and the first one's
    # ETag does not get it a 304.
    other = await sign_up_and_in(GraphQLClient(cached.http), "Other")
    theirs = await get(cached, query, token=other.token, **{"If-None-Match": first.headers["ETag"]})
    assert theirs.status_code == 200
    assert theirs.headers["ETag"] != first.headers["ETag"]


async def test_post_never_gets_304(cached: CacheClient) -> None:
    query = unique(PUBLIC)
    first = await cached.http.post("/graphql", json={"query": query})
    again = await cached.http.post(
        "/graphql", json={"query": query}, headers={"If-None-Match": first.headers["ETag"]}
    )
    assert again.status_code == 200
    assert again.json()["extensions"]["cache"] == "HIT"


def an_address() -> str:
    return f"10.8.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}"


async def test_a_304_still_pays_for_the_operation(budgeted: CacheClient) -> None:
    query = unique(PUBLIC)
    client = an_address()
    first = await get(budgeted, query, **{"X-Forwarded-For": client})
    remaining = int(first.headers["RateLimit-Remaining"])
    again = await get(
        budgeted, query, **{"X-Forwarded-For": client, "If-None-Match": first.headers["ETag"]}
    )
    assert again.status_code == 304
    assert int(again.headers["RateLimit-Remaining"]) < remaining


async def test_a_hit_carries_its_own_callers_budget(budgeted: CacheClient) -> None:
    """The entry is shared; the budget around it is the caller's, taken for this request."""
    query = unique(PUBLIC)
    spender, newcomer = an_address(), an_address()
    replies = [await get(budgeted, query, **{"X-Forwarded-For": spender}) for _ in range(3)]
    assert [r.json()["extensions"]["cache"] for r in replies] == ["MISS", "HIT", "HIT"]
    hit = await get(budgeted, query, **{"X-Forwarded-For": newcomer})
    assert hit.json()["extensions"]["cache"] == "HIT"
    cost = hit.json()["extensions"]["cost"]
    fresh = 1_000_000 - cost["actualQueryCost"]
    assert cost["throttleStatus"]["currentlyAvailable"] == fresh
    assert int(hit.headers["RateLimit-Remaining"]) == fresh
    spent = replies[-1].json()["extensions"]["cost"]["throttleStatus"]["currentlyAvailable"]
    assert spent == 1_000_000 - 3 * cost["actualQueryCost"]


async def test_an_answer_that_carries_its_callers_budget_is_private(
    budgeted: CacheClient,
) -> None:
    """A shared HTTP cache would hand one client's budget (extensions.cost.throttleStatus,
    RateLimit-*) to the next: with budgets on, even a PUBLIC answer is Cache-Control:
    private (this server's cache still shares it)."""
    query = unique(PUBLIC)
    first = await get(budgeted, query, **{"X-Forwarded-For": an_address()})
    second = await get(budgeted, query, **{"X-Forwarded-For": an_address()})
    assert second.json()["extensions"]["cache"] == "HIT"
    for response in (first, second):
        assert response.json()["extensions"]["cost"]["throttleStatus"] is not None
        assert "RateLimit-Remaining" in response.headers
        assert response.headers["Cache-Control"].startswith("private, max-age=")
        assert response.headers["ETag"] == first.headers["ETag"]


async def test_without_budgets_a_public_answer_carries_no_callers_figures(
    cached: CacheClient,
) -> None:
    response = await get(cached, unique(PUBLIC), **{"X-Forwarded-For": an_address()})
    assert response.headers["Cache-Control"] == "public, max-age=120"
    assert response.json()["extensions"]["cost"]["throttleStatus"] is None
    assert not [name for name in response.headers if name.lower().startswith("ratelimit")]


@pytest.mark.parametrize(
    "query",
    [
        "query { rateLimit { remaining } }",
        # An anonymous viewer may not read jobs: an error beside the data.
        "query { markets(first: 1) { nodes { id } }"
        ' job(id: "Sm9iOjAwMDAwMDAwLTAwMDAtMDAwMC0wMDAwLTAwMDAwMDAwMDAwMA") { id } }',
    ],
    ids=["uncacheable", "errors"],
)
async def test_what_is_not_kept_is_no_store_without_an_etag(
    cached: CacheClient, query: str
) -> None:
    response = await get(cached, unique(query))
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    assert "ETag" not in response.headers


async def test_mutations_carry_no_validator(cached: CacheClient, account: Account) -> None:
    response = await cached.http.post(
        "/graphql",
        content=orjson.dumps({"query": "mutation { signOut { signedOut } }"}),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {account.token}"},
    )
    payload: dict[str, Any] = response.json()
    assert payload["data"] == {"signOut": {"signedOut": True}}
    assert "ETag" not in response.headers


async def test_http_caching_does_not_need_the_response_cache(settings: Settings) -> None:
    tuned = cached_settings(settings, response_cache=False, rate_limits=False)
    async with cache_server(tuned) as client:
        query = unique(PUBLIC)
        first = await get(client, query)
        assert first.json()["extensions"]["cache"] == "BYPASS"
        assert first.headers["Cache-Control"] == "public, max-age=60"
        again = await get(client, query, **{"If-None-Match": first.headers["ETag"]})
        assert again.status_code == 304
