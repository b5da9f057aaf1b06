"""The response cache over real HTTP: hits run no SQL, private data stays with its viewer,
errors are never kept, and a hit is charged like a miss.

The PostgreSQL runs use Redis; the embedded runs (SQLite, no Redis) the in-process store.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from domain.limits import BudgetSpec, RoleBudgets
from infra.settings import Settings
from tests.api.caching import CacheClient, cache_server, cached_settings
from tests.api.trading import CANCEL, buy
from tests.conftest import CREATE_MARKET, future
from tests.support import Account, GraphQLClient, promote, sign_up_and_in, wait_for_job

pytestmark = pytest.mark.embedded

MARKETS = (
    "query Top { markets(first: 5) { nodes { id name yesPrice creator { id displayName } } } }"
)


@dataclass
class World:
    """Alice created a market and holds a position in it; Bob has done nothing."""

    alice: Account
    bob: Account
    market: str
    token: str


@pytest.fixture(scope="module")
async def cached(settings: Settings) -> AsyncIterator[CacheClient]:
    async with cache_server(cached_settings(settings)) as client:
        yield client


@pytest.fixture(scope="module")
async def world(cached: CacheClient) -> World:
    gql = GraphQLClient(cached.http)
    alice = await sign_up_and_in(gql, "Alice")
    bob = await sign_up_and_in(gql, "Bob")
    token = uuid.uuid4().hex[:10]
    created = await gql.data(
        CREATE_MARKET,
        {"input": {"name": f"Will {token} be cached?", "endDate": future()}},
        token=alice.token,
    )
    market = created["createMarket"]["market"]["id"]
    bought = await buy(gql, alice, market, amount="10")
    assert bought["__typename"] == "BuySharesSuccess", bought
    return World(alice, bob, market, token)


async def test_a_second_identical_query_is_a_hit_that_runs_no_sql(
    cached: CacheClient, world: World
) -> None:
    query = MARKETS + f" # {uuid.uuid4().hex}"
    first = await cached.ask(query)
    assert first.cache == "MISS"
    assert cached.statements(), "the miss ran the operation"
    cached.reset()
    second = await cached.ask(query)
    assert second.cache == "HIT"
    assert cached.statements() == []
    assert second.data == first.data
    # Each request writes its own cost: requested from its own analysis, actual as stored.
    assert second.payload["extensions"]["cost"]["requestedQueryCost"] == 2 + 5 * 2
    actual = first.payload["extensions"]["cost"]["actualQueryCost"]
    assert second.payload["extensions"]["cost"]["actualQueryCost"] == actual


async def test_a_signed_in_hit_runs_only_the_identity_check(
    cached: CacheClient, world: World
) -> None:
    query = MARKETS + f" # {uuid.uuid4().hex}"
    assert (await cached.ask(query, token=world.alice.token)).cache == "MISS"
    cached.reset()
    second = await cached.ask(query, token=world.alice.token)
    assert second.cache == "HIT"
    [statement] = cached.statements()
    assert "sessions" in statement, "the token must still stand: one identity statement"


async def test_a_public_entry_is_shared_by_every_viewer(cached: CacheClient, world: World) -> None:
    query = MARKETS + f" # {uuid.uuid4().hex}"
    assert (await cached.ask(query, token=world.alice.token)).cache == "MISS"
    assert (await cached.ask(query, token=world.bob.token)).cache == "HIT"
    assert (await cached.ask(query)).cache == "HIT"


async def test_a_response_with_an_error_is_not_cached(cached: CacheClient, world: World) -> None:
    # Anonymous viewers may not read jobs: the markets come back, with an error beside them.
    query = (
        "query { markets(first: 1) { nodes { id } }"
        ' job(id: "Sm9iOjAwMDAwMDAwLTAwMDAtMDAwMC0wMDAwLTAwMDAwMDAwMDAwMA") { id } }'
        f" # {uuid.uuid4().hex}"
    )
    for _ in range(2):
        cached.reset()
        reply = await cached.ask(query)
        assert reply.payload["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
        assert reply.payload["data"]["markets"]["nodes"]
        assert reply.cache == "MISS"
        assert cached.statements(), "nothing was kept: the operation runs every time"
        assert reply.headers["Cache-Control"] == "no-store"


async def test_a_partial_answer_to_bad_input_is_not_cached(
    cached: CacheClient, world: World
) -> None:
    query = (
        "query { markets(first: 1) { nodes { id } }"
        f' market(id: "not-an-id") {{ id }} }} # {uuid.uuid4().hex}'
    )
    for _ in range(2):
        reply = await cached.ask(query)
        assert reply.payload["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
        assert reply.cache == "MISS"


async def test_mutations_bypass_the_cache(cached: CacheClient, world: World) -> None:
    reply = await cached.ask(
        CREATE_MARKET,
        {"input": {"name": f"Bypass {uuid.uuid4().hex[:8]}?", "endDate": future()}},
        token=world.alice.token,
    )
    assert reply.payload["data"]["createMarket"]["__typename"] == "CreateMarketSuccess"
    assert reply.cache == "BYPASS"


async def test_rate_limit_is_never_cached(cached: CacheClient, world: World) -> None:
    query = f"query {{ rateLimit {{ remaining }} }} # {uuid.uuid4().hex}"
    assert (await cached.ask(query)).cache == "BYPASS"
    assert (await cached.ask(query)).cache == "BYPASS"


# --- private data --------------------------------------------------------------------------

# What only a user themself (and holders of user:read:private) sees, and what Alice's value
# looks like: each check is of the value Alice gets, every other viewer must get null.
PRIVATE_FIELDS: dict[str, str] = {
    "email": "email",
    "balance": "balance",
    "disabled": "disabled",
    "permissions": "permissions",
    "ledger": "ledger { totalCount }",
}
# Every path to a user: (variables it needs, the document with SEL where the fields go).
PATHS: dict[str, str] = {
    "user": "query ($alice: ID!) { user(id: $alice) { id SEL } }",
    "node": "query ($alice: ID!) { node(id: $alice) { ... on User { id SEL } } }",
    "nodes": "query ($alice: ID!) { nodes(ids: [$alice]) { ... on User { id SEL } } }",
    "viewer": "query { viewer { id SEL } }",
    "market.creator": "query ($market: ID!) { market(id: $market) { creator { id SEL } } }",
    "position.user": (
        "query ($market: ID!) { market(id: $market) { positions { nodes { user { id SEL } } } } }"
    ),
    "connection": (
        "query ($alice: ID!) { markets(first: 20, filter: {creatorId: $alice})"
        " { edges { node { creator { id SEL } } } } }"
    ),
}


def _alice_objects(data: dict[str, Any], alice: str) -> list[dict[str, Any]]:
    """Every user object in the response that is Alice."""
    found: list[dict[str, Any]] = []

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            if value.get("id") == alice:
                found.append(value)
            for child in value.values():
                walk(child)
        elif isinstance(value, list):
            for child in value:
                walk(child)

    walk(data)
    return found


def _own(field: str, value: Any, alice: Account) -> bool:
    """Whether ``value`` is what Alice herself sees of ``field``."""
    if field == "email":
        return bool(value == alice.email)
    if field == "balance":
        return isinstance(value, str) and value != ""
    if field == "disabled":
        return value is False
    if field == "permissions":
        return isinstance(value, list) and "market:create" in value
    return isinstance(value, dict) and value["totalCount"] >= 2  # grant and trade


@pytest.mark.parametrize("path", list(PATHS))
@pytest.mark.parametrize("field", list(PRIVATE_FIELDS))
async def test_private_data_is_served_only_to_its_viewer(
    cached: CacheClient, world: World, field: str, path: str
) -> None:
    query = PATHS[path].replace("SEL", PRIVATE_FIELDS[field]) + f" # {uuid.uuid4().hex}"
    given = {"alice": world.alice.id, "market": world.market}
    variables = {name: value for name, value in given.items() if f"${name}" in query}

    async def alice_seen(token: str | None) -> tuple[str, list[Any]]:
        reply = await cached.ask(query, variables, token=token)
        objects = _alice_objects(reply.data, world.alice.id)
        return reply.cache, [obj[field] for obj in objects]

    status, values = await alice_seen(world.alice.token)
    assert status == "MISS"
    assert values
    assert all(_own(field, value, world.alice) for value in values), values
    for other in (world.bob.token, None):
        status, values = await alice_seen(other)
        assert status == "MISS", "another viewer must not get Alice's entry"
        # The viewer path shows Bob himself (or nobody): Alice is not in it at all.
        assert all(value is None for value in values), values
    status, values = await alice_seen(world.alice.token)
    assert status == "HIT"
    assert values
    assert all(_own(field, value, world.alice) for value in values)


async def test_private_entries_of_anonymous_viewers_are_shared(
    cached: CacheClient, world: World
) -> None:
    query = f"query {{ viewer {{ id }} }} # {uuid.uuid4().hex}"
    first = await cached.ask(query)
    assert first.cache == "MISS"
    assert first.data == {"viewer": None}
    second = await cached.ask(query)
    assert second.cache == "HIT"
    assert second.data == {"viewer": None}
    own = await cached.ask(query, token=world.bob.token)
    assert own.cache == "MISS"
    assert own.data == {"viewer": {"id": world.bob.id}}


JOB = "query ($id: ID!) { job(id: $id) { id kind state } }"


async def test_a_job_is_served_only_to_viewers_who_may_read_jobs(
    cached: CacheClient, world: World, db: AsyncEngine
) -> None:
    """``job(id)`` needs ``job:read``: a moderator's entry is theirs alone, and a user or an
    anonymous viewer is refused every time (an error is never kept, nor served from an entry)."""
    gql = GraphQLClient(cached.http)
    moderator = await sign_up_and_in(gql, "Moderator")
    colleague = await sign_up_and_in(gql, "Colleague")
    for account in (moderator, colleague):
        await promote(db, account, "MODERATOR")
    created = await gql.data(
        CREATE_MARKET,
        {"input": {"name": f"Cancel {uuid.uuid4().hex[:8]}?", "endDate": future()}},
        token=world.alice.token,
    )
    market = created["createMarket"]["market"]["id"]
    cancelled = await gql.data(CANCEL, {"input": {"id": market}}, token=moderator.token)
    job = cancelled["cancelMarket"]["job"]["id"]
    # Finished, so that no write of the job drops an entry while the test looks.
    assert (await wait_for_job(gql, job, moderator.token))["state"] == "COMPLETE"
    query = JOB + f" # {uuid.uuid4().hex}"
    first = await cached.ask(query, {"id": job}, token=moderator.token)
    assert first.cache == "MISS"
    assert first.data["job"]["id"] == job
    for token, code in ((world.bob.token, "FORBIDDEN"), (None, "UNAUTHENTICATED")):
        for _ in range(2):
            refused = await cached.ask(query, {"id": job}, token=token)
            assert refused.cache == "MISS"
            assert refused.payload["data"] == {"job": None}
            assert refused.payload["errors"][0]["extensions"]["code"] == code
    theirs = await cached.ask(query, {"id": job}, token=colleague.token)
    assert theirs.cache == "MISS", "another moderator must not get the first one's entry"
    assert theirs.data == first.data
    again = await cached.ask(query, {"id": job}, token=moderator.token)
    assert again.cache == "HIT"
    assert again.data == first.data


# --- positions configured private ------------------------------------------------------------


def _count(value: Any) -> int:
    """How many of Alice's holdings a value shows: a connection's total, a list's non-null
    items, an object (1) or null (0)."""
    if value is None:
        return 0
    if isinstance(value, list):
        return sum(_count(item) for item in value)
    if isinstance(value, dict) and "totalCount" in value:
        return int(value["totalCount"])
    return 1


# Every path to Alice's positions, trades and ledger entries: the document, and where in
# its data the holdings are.
HOLDINGS: dict[str, tuple[str, Callable[[Any], int]]] = {
    "market.positions": (
        "query ($market: ID!) { market(id: $market) {"
        " positions { totalCount nodes { id shares } } } }",
        lambda data: _count(data["market"]["positions"]),
    ),
    "market.trades": (
        "query ($market: ID!) { market(id: $market) { trades { totalCount } } }",
        lambda data: _count(data["market"]["trades"]),
    ),
    "market.trades.user": (
        "query ($market: ID!) { market(id: $market) { trades { nodes { id user { id } } } } }",
        lambda data: _count([trade["user"] for trade in data["market"]["trades"]["nodes"]]),
    ),
    "markets.positions": (
        "query ($word: String!) { markets(filter: {nameContains: $word}) {"
        " nodes { positions { totalCount nodes { id } } } } }",
        lambda data: _count([m["positions"] for m in data["markets"]["nodes"]]),
    ),
    "user.positions": (
        "query ($alice: ID!) { user(id: $alice) { positions { totalCount nodes { id } } } }",
        lambda data: _count(data["user"]["positions"]),
    ),
    "user.trades": (
        "query ($alice: ID!) { user(id: $alice) { trades { totalCount } } }",
        lambda data: _count(data["user"]["trades"]),
    ),
    "viewer.positions": (
        "query { viewer { positions { totalCount nodes { id shares } } } }",
        lambda data: _count(data["viewer"] and data["viewer"]["positions"]),
    ),
    "viewer.trades": (
        "query { viewer { trades { totalCount nodes { id } } } }",
        lambda data: _count(data["viewer"] and data["viewer"]["trades"]),
    ),
    "node.position": (
        "query ($position: ID!) { node(id: $position) { ... on Position { id shares } } }",
        lambda data: _count(data["node"]),
    ),
    "nodes.position": (
        "query ($position: ID!) { nodes(ids: [$position]) { ... on Position { id shares } } }",
        lambda data: _count(data["nodes"]),
    ),
    "node.trade.user": (
        "query ($trade: ID!) { node(id: $trade) { ... on Trade { id user { id } } } }",
        lambda data: _count(data["node"] and data["node"]["user"]),
    ),
    "nodes.trade": (
        "query ($trade: ID!) { nodes(ids: [$trade]) { ... on Trade { id amount } } }",
        lambda data: _count(data["nodes"]),
    ),
    "node.ledger": (
        "query ($entry: ID!) { node(id: $entry) { ... on LedgerEntry { id amount } } }",
        lambda data: _count(data["node"]),
    ),
    "nodes.ledger": (
        "query ($entry: ID!) { nodes(ids: [$entry]) { ... on LedgerEntry { id amount } } }",
        lambda data: _count(data["nodes"]),
    ),
}
OWN_HOLDINGS = (
    "query { viewer { positions { nodes { id } } trades { nodes { id } }"
    " ledger { nodes { id kind } } } }"
)


@pytest.fixture(scope="module")
async def private_positions(settings: Settings) -> AsyncIterator[CacheClient]:
    async with cache_server(cached_settings(settings, positions_public=False)) as client:
        yield client


@pytest.mark.parametrize("path", list(HOLDINGS))
async def test_private_positions_are_served_only_to_their_holder(
    private_positions: CacheClient, path: str
) -> None:
    gql = GraphQLClient(private_positions.http)
    alice = await sign_up_and_in(gql, "Holder")
    bob = await sign_up_and_in(gql, "Onlooker")
    created = await gql.data(
        CREATE_MARKET,
        {"input": {"name": f"Private {uuid.uuid4().hex[:8]}?", "endDate": future()}},
        token=alice.token,
    )
    market = created["createMarket"]["market"]["id"]
    assert (await buy(gql, alice, market, amount="5"))["__typename"] == "BuySharesSuccess"
    own = (await gql.data(OWN_HOLDINGS + f" # {uuid.uuid4().hex}", token=alice.token))["viewer"]
    [position], [trade] = own["positions"]["nodes"], own["trades"]["nodes"]
    [entry] = [e for e in own["ledger"]["nodes"] if e["kind"] == "TRADE"]
    query, count = HOLDINGS[path]
    query += f" # {uuid.uuid4().hex}"
    given = {
        "market": market,
        "alice": alice.id,
        "word": created["createMarket"]["market"]["name"].split()[1],
        "position": position["id"],
        "trade": trade["id"],
        "entry": entry["id"],
    }
    variables = {name: value for name, value in given.items() if f"${name}" in query}
    first = await private_positions.ask(query, variables, token=alice.token)
    assert first.cache == "MISS"
    assert count(first.data) == 1
    for other in (bob.token, None):
        reply = await private_positions.ask(query, variables, token=other)
        assert reply.cache == "MISS"
        assert count(reply.data) == 0
    again = await private_positions.ask(query, variables, token=alice.token)
    assert again.cache == "HIT"
    assert count(again.data) == 1


# --- budgets -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
async def budgeted(settings: Settings) -> AsyncIterator[CacheClient]:
    spec = BudgetSpec(capacity=100, restore_per_second=0.001)
    budgets = RoleBudgets(anonymous=spec, user=spec, moderator=spec, admin=spec)
    tuned = dataclasses.replace(cached_settings(settings), budgets=budgets)
    async with cache_server(tuned) as client:
        yield client


async def test_a_hit_is_charged_like_a_miss(budgeted: CacheClient) -> None:
    client = f"10.9.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}"
    # Asks for 20 markets (requested 2 + 20) and finds none (actual 2).
    query = (
        f'query {{ markets(first: 20, filter: {{nameContains: "{uuid.uuid4().hex}"}})'
        " { nodes { id } } }"
    )

    async def ask() -> tuple[int, dict[str, Any]]:
        response = await budgeted.http.post(
            "/graphql", json={"query": query}, headers={"X-Forwarded-For": client}
        )
        return response.status_code, response.json()

    status, first = await ask()
    assert status == 200
    assert first["extensions"]["cache"] == "MISS"
    cost = first["extensions"]["cost"]
    assert (cost["requestedQueryCost"], cost["actualQueryCost"]) == (22, 2)
    assert cost["throttleStatus"]["currentlyAvailable"] == 98
    status, second = await ask()
    assert status == 200
    assert second["extensions"]["cache"] == "HIT"
    assert second["extensions"]["cost"]["actualQueryCost"] == 2
    assert second["extensions"]["cost"]["throttleStatus"]["currentlyAvailable"] == 96
    # The requested cost is still taken first: once fewer than 22 points are left the
    # cached answer is refused like any other, so the budget cannot probe the cache.
    # Each answer nets 2 points: the 40th request finds exactly 22 left, the 41st 20.
    statuses = [(await ask())[0] for _ in range(45)]
    assert statuses[:38] == [200] * 38
    assert set(statuses[38:]) == {429}


async def test_anonymous_callers_share_private_entries_but_never_their_budgets(
    budgeted: CacheClient,
) -> None:
    """Every anonymous viewer is one viewer for PRIVATE entries: no PRIVATE value differs
    between anonymous callers. What does differ, the budget of each client address, is
    never kept: ``rateLimit`` is uncacheable, and each answer's extensions are its own."""
    spender, newcomer = (f"10.7.{uuid.uuid4().int % 250}.{n}" for n in (1, 2))

    async def ask(query: str, address: str) -> dict[str, Any]:
        response = await budgeted.http.post(
            "/graphql", json={"query": query}, headers={"X-Forwarded-For": address}
        )
        assert response.status_code == 200, response.text
        payload: dict[str, Any] = response.json()
        return payload

    viewer = f"query {{ viewer {{ id }} markets(first: 2) {{ totalCount }} }} # {uuid.uuid4().hex}"
    budget = f"query {{ rateLimit {{ remaining }} }} # {uuid.uuid4().hex}"
    mine = [await ask(viewer, spender) for _ in range(3)]
    theirs = await ask(viewer, newcomer)
    assert [p["extensions"]["cache"] for p in [*mine, theirs]] == ["MISS", "HIT", "HIT", "HIT"]
    assert theirs["data"]["viewer"] is None
    assert theirs["data"] == mine[0]["data"]
    status = [p["extensions"]["cost"]["throttleStatus"]["currentlyAvailable"] for p in mine]
    assert theirs["extensions"]["cost"]["throttleStatus"]["currentlyAvailable"] > status[-1]
    spent, fresh = await ask(budget, spender), await ask(budget, newcomer)
    assert (spent["extensions"]["cache"], fresh["extensions"]["cache"]) == ("BYPASS", "BYPASS")
    assert spent["data"]["rateLimit"]["remaining"] < fresh["data"]["rateLimit"]["remaining"]


async def test_metrics_count_what_the_cache_does(cached: CacheClient, world: World) -> None:
    query = MARKETS + f" # {uuid.uuid4().hex}"
    gql = GraphQLClient(cached.http)
    created = await gql.data(
        CREATE_MARKET,
        {"input": {"name": f"Counted {uuid.uuid4().hex[:8]}?", "endDate": future()}},
        token=world.bob.token,
    )
    market = created["createMarket"]["market"]["id"]

    async def counted() -> dict[str, float]:
        text = (await cached.http.get("/metrics")).text
        found = {}
        for line in text.splitlines():
            if line.startswith("marketgraph_cache_") and not line.startswith("#"):
                name, _, value = line.rpartition(" ")
                found[name] = float(value)
        return found

    before = await counted()
    await cached.ask(query)
    await cached.ask(query)
    await cached.ask("query { rateLimit { remaining } }")
    after = await counted()

    def grew(name: str, since: dict[str, float] = before) -> float:
        return after.get(name, 0.0) - since.get(name, 0.0)

    assert grew('marketgraph_cache_requests_total{result="miss"}') >= 1
    assert grew('marketgraph_cache_requests_total{result="hit"}') >= 1
    assert grew('marketgraph_cache_requests_total{result="bypass"}') >= 1
    for name in (
        "marketgraph_cache_single_flight_waits_total",
        "marketgraph_cache_invalidations_total",
        "marketgraph_cache_stale_served_total",
    ):
        assert name in after, name
    # Reads invalidate nothing; an update of a market invalidates its tag, its kind's
    # wildcard and the markets list: three tags.
    assert grew("marketgraph_cache_invalidations_total") == 0
    renamed = await gql.data(
        "mutation ($input: UpdateMarketInput!) { updateMarket(input: $input) { __typename } }",
        {"input": {"id": market, "description": "Counted."}},
        token=world.bob.token,
    )
    assert renamed["updateMarket"]["__typename"] == "UpdateMarketSuccess"
    written, after = after, await counted()
    assert grew("marketgraph_cache_invalidations_total", written) == 3
