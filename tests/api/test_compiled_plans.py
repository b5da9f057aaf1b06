"""The compiled path's plans: kept per document, bounded, built once for trusted documents,
and never confused with one another.

Plan builds are counted (``Planner.built``) on servers of this module's own with a small
plan cache (``PLAN_CACHE_SIZE``), so that evictions happen after a handful of documents.
The many documents are anonymous operations: each operation name is a metrics series, and
the process keeps only so many.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from graph.compiled import Planner
from infra.settings import Settings
from tests.api import roomy
from tests.support import Account, GraphQLClient, LiveServer, MakeAccount, MakeMarket

SMALL = 2


@pytest.fixture(scope="module")
def small(settings: Settings) -> Iterator[LiveServer]:
    with roomy.running(roomy.roomy(settings, plan_cache_size=SMALL)) as live:
        yield live


@pytest.fixture(scope="module")
async def client(small: LiveServer) -> AsyncIterator[GraphQLClient]:
    async with httpx.AsyncClient(base_url=small.url, timeout=30) as http:
        yield GraphQLClient(http)


def planner(server: LiveServer) -> Planner:
    found = server.app.state.planner
    assert isinstance(found, Planner)
    return found


@pytest.fixture
async def owner(make_account: MakeAccount) -> Account:
    return await make_account("Planner")


async def test_a_document_never_runs_another_documents_sql(
    small: LiveServer, client: GraphQLClient, owner: Account, make_market: MakeMarket
) -> None:
    """Plans evicted from the plan cache free their objects, and Python gives their
    addresses to new ones: SQL kept by address served one document another's answer."""
    market = await make_market(owner)
    variables = {"id": market["id"]}
    before = len(small.compiled_sql.statements)
    rounds = 250
    for i in range(rounds):
        named = await client.data(
            f"query ($id: ID!) {{ market(id: $id) {{ n{i}: name }} }}", variables
        )
        assert named == {"market": {f"n{i}": market["name"]}}, i
        status = await client.data(
            f"query ($id: ID!) {{ market(id: $id) {{ s{i}: status }} }}", variables
        )
        assert status == {"market": {f"s{i}": market["status"]}}, i
    # Every answer came from the compiled path, the one that keeps SQL.
    assert len(small.compiled_sql.statements) - before == 2 * rounds


async def test_the_plan_cache_is_bounded_and_a_repeated_document_reuses_its_plan(
    small: LiveServer, client: GraphQLClient
) -> None:
    plans = planner(small)
    token = uuid.uuid4().hex[:8]
    documents = [
        f"query ($first: Int!) {{ markets(first: $first) {{ t{i}_{token}: totalCount }} }}"
        for i in range(SMALL + 3)
    ]
    built = plans.built
    for document in documents:
        await client.data(document, {"first": 1})
    assert plans.built - built == len(documents)
    assert len(plans) == SMALL
    # The most recent document, again with other variables: its plan is reused.
    for first in (2, 3, 4):
        await client.data(documents[-1], {"first": first})
    assert plans.built - built == len(documents)
    # The first was evicted: it is planned again.
    await client.data(documents[0], {"first": 1})
    assert plans.built - built == len(documents) + 1
    assert len(plans) == SMALL
