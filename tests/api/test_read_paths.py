"""Which executor ran a query, and that the resolvers still answer what the read model lacks.

A server compiling reads and one running the resolvers only, over the same
data. A query whose every field is in the read model is compiled; one that
reaches outside it (price histories, the caller's budget, jobs) runs on the
resolver path, whole, with the answer the resolver-only server gives. Each
operation's log line says which path ran (``"path"``), and the tests read it
there, per request (tests/api/answered.py).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest

from domain.entities import Outcome
from infra.db.engine import create_engine
from infra.settings import Settings
from tests.api import answered, roomy
from tests.api.readside import Seed, global_id, now
from tests.support import GraphQLClient, LiveServer, promote, sign_up_and_in, without_extensions

paths = answered.paths


@pytest.fixture(scope="module")
def compiling(settings: Settings) -> Iterator[LiveServer]:
    # No response cache: a stored answer would say "cache", not which executor made it.
    with roomy.running(roomy.roomy(settings, response_cache=False)) as live:
        yield live


@pytest.fixture(scope="module")
def resolving(settings: Settings) -> Iterator[LiveServer]:
    with roomy.running(roomy.roomy(settings, response_cache=False, compiled_reads=False)) as live:
        yield live


@pytest.fixture(scope="module")
async def clients(
    compiling: LiveServer, resolving: LiveServer
) -> AsyncIterator[tuple[GraphQLClient, GraphQLClient]]:
    async with (
        httpx.AsyncClient(base_url=compiling.url, timeout=30) as left,
        httpx.AsyncClient(base_url=resolving.url, timeout=30) as right,
    ):
        yield GraphQLClient(left), GraphQLClient(right)


@pytest.fixture(scope="module")
async def market(settings: Settings) -> str:
    """A market with a few trades an hour apart, so its price history has several points."""
    seed = Seed()
    people = [seed.user(f"Paths {i}") for i in range(3)]
    start = now() - timedelta(hours=5)
    made = seed.market(people[0].id, f"paths{uuid.uuid4().hex[:8]}", created_at=start)
    for i, person in enumerate(people):
        outcome = Outcome.YES if i % 2 == 0 else Outcome.NO
        seed.buy(person.id, made, outcome, Decimal(2 + i), start + timedelta(hours=i + 1))
    engine = create_engine(settings)
    await seed.save(engine)
    await engine.dispose()
    return made.gid


@pytest.fixture(scope="module")
async def admin(clients: tuple[GraphQLClient, GraphQLClient], settings: Settings) -> str:
    account = await sign_up_and_in(clients[0], "Paths admin")
    engine = create_engine(settings)
    await promote(engine, account, "ADMIN")
    await engine.dispose()
    return account.token


async def both(
    clients: tuple[GraphQLClient, GraphQLClient],
    compiling: LiveServer,
    paths: answered.Paths,
    query: str,
    variables: dict[str, Any],
    token: str | None = None,
) -> tuple[dict[str, Any], str | None, dict[str, Any]]:
    """The compiling server's answer and the path that made it; the resolver-only server's
    answer (its log line checked to say "resolver")."""
    compiling.compiled_sql.reset()
    left = await clients[0].post(query, variables, token)
    sent = list(compiling.compiled_sql.statements)
    right = await clients[1].post(query, variables, token)
    assert left.status_code == right.status_code == 200, (left.text, right.text)
    assert paths.of(right) == "resolver"
    path = paths.of(left)
    if path == "resolver":
        assert not sent, sent
    return without_extensions(left.json()), path, without_extensions(right.json())


READ_MODEL = """
query ($id: ID!) {
  market(id: $id) {
    id name yesPrice creator { displayName }
    trades(first: 5) { totalCount nodes { shares user { displayName } } }
  }
}
"""


async def test_a_read_model_query_logs_the_compiled_path(
    clients: tuple[GraphQLClient, GraphQLClient],
    compiling: LiveServer,
    paths: answered.Paths,
    market: str,
) -> None:
    compiled, path, resolved = await both(clients, compiling, paths, READ_MODEL, {"id": market})
    assert path == "compiled"
    assert compiled == resolved
    assert compiled["data"]["market"]["trades"]["totalCount"] == 3
    assert len(compiling.compiled_sql.statements) == 1


# Each reaches outside the read model in one field (or one root field) and reads the model
# in others: the whole operation runs on the resolver path.
OUTSIDE = {
    "priceHistory": """
query ($id: ID!) {
  market(id: $id) {
    id name creator { displayName }
    priceHistory(interval: HOUR) { start open high low close volume trades }
  }
}
""",
    "priceHistory in a fragment on a node": """
fragment History on Market { priceHistory(interval: HOUR) { close trades } }
query ($id: ID!) { node(id: $id) { id ... on Market { name ...History } } }
""",
    "rateLimit": """
query ($id: ID!) {
  market(id: $id) { id name }
  rateLimit { limit restoreRate }
}
""",
    "job": """
query ($id: ID!, $job: ID!) {
  market(id: $id) { id name }
  job(id: $job) { id state }
}
""",
    "a Job id in nodes": """
query ($id: ID!, $job: ID!) {
  nodes(ids: [$id, $job]) { id ... on Market { name } }
}
""",
}


@pytest.mark.parametrize("viewer", ["anonymous", "admin"])
@pytest.mark.parametrize("name", list(OUTSIDE))
async def test_fields_outside_the_read_model_run_the_resolvers(
    clients: tuple[GraphQLClient, GraphQLClient],
    compiling: LiveServer,
    paths: answered.Paths,
    market: str,
    admin: str,
    name: str,
    viewer: str,
) -> None:
    variables = {"id": market, "job": global_id("Job", uuid.uuid4())}
    if "$job" not in OUTSIDE[name]:
        del variables["job"]
    token = admin if viewer == "admin" else None
    compiled, path, resolved = await both(
        clients, compiling, paths, OUTSIDE[name], variables, token
    )
    assert path == "resolver"
    assert compiled == resolved
    # Not vacuous: the read-model part was answered, and the outside part too.
    data = compiled["data"]
    if name.startswith("priceHistory"):
        market_data = data.get("market") or data["node"]
        assert market_data["id"] == market
        assert len(market_data["priceHistory"]) >= 2, market_data
    elif name == "rateLimit":
        assert data["market"]["id"] == market
        assert data["rateLimit"]["limit"] > 0
    elif name == "job":
        assert data["market"]["id"] == market
        # No such job; and only holders of job:read may look (an error for the others).
        assert data["job"] is None
        assert ("errors" in compiled) is (viewer == "anonymous"), compiled
    else:
        assert data["nodes"][0] == {"id": market, "name": data["nodes"][0]["name"]}
        assert data["nodes"][1] is None


async def test_a_resolver_only_server_logs_the_resolver_path_for_everything(
    clients: tuple[GraphQLClient, GraphQLClient], paths: answered.Paths, market: str
) -> None:
    """The contrast for the tests above: with COMPILED_READS=false nothing is compiled."""
    response = await clients[1].post(READ_MODEL, {"id": market})
    assert response.status_code == 200
    assert paths.of(response) == "resolver"
