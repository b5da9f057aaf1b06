"""The compiled path's plans: kept per document, bounded, built once for trusted documents,
and never confused with one another.

Plan builds are counted (``Planner.built``) on servers of this module's own with a small
plan cache (``PLAN_CACHE_SIZE``), so that evictions happen after a handful of documents.
The many documents are anonymous operations: each operation name is a metrics series, and
the process keeps only so many.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from domain.ports import TrustedDocument
from graph.compiled import Planner
from infra.db.engine import create_engine
from infra.db.trusted import SqlTrustedDocuments
from infra.settings import Settings
from tests.api import roomy
from tests.api.answered import recorded
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
    client: GraphQLClient,
    owner: Account,
    make_market: MakeMarket,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Plans evicted from the plan cache free their objects, and Python gives their
    addresses to new ones: SQL kept by address served one document another's answer."""
    market = await make_market(owner)
    variables = {"id": market["id"]}
    rounds = 250
    with recorded(caplog) as paths:
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
    assert paths == ["compiled"] * 2 * rounds


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


@dataclass(frozen=True)
class Trusted:
    """Two registered documents: one operation, and two (run by name)."""

    one: TrustedDocument
    two: TrustedDocument
    names: tuple[str, str]


@pytest.fixture(scope="module")
async def trusted(settings: Settings) -> Trusted:
    token = uuid.uuid4().hex[:8]
    names = (f"TrustedViewer_{token}", f"TrustedUser_{token}")
    bodies = (
        f"query TrustedPlan_{token}($first: Int!) {{ markets(first: $first) {{ totalCount }} }}",
        f"query {names[0]} {{ viewer {{ id }} }}"
        f" query {names[1]}($id: ID!) {{ user(id: $id) {{ displayName }} }}",
    )
    one, two = (
        TrustedDocument(f"plans-{token}-{i}", body, hashlib.sha256(body.encode()).hexdigest(), None)
        for i, body in enumerate(bodies)
    )
    engine = create_engine(settings)
    try:
        await SqlTrustedDocuments(engine).register([one, two], datetime.now(UTC))
    finally:
        await engine.dispose()
    return Trusted(one, two, names)


async def test_trusted_documents_are_planned_once_when_registered(
    settings: Settings, trusted: Trusted, owner: Account, caplog: pytest.LogCaptureFixture
) -> None:
    with roomy.running(roomy.roomy(settings, plan_cache_size=SMALL)) as server:
        plans = planner(server)
        # Planned when the registry loaded them, before any request: every operation of
        # each document (the database holds other modules' documents too).
        loaded = plans.built
        assert loaded >= 3
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:

            async def run(body: dict[str, Any]) -> None:
                response = await http.post("/graphql", json=body)
                assert "errors" not in response.json(), response.text

            async def run_trusted() -> None:
                await run({"documentId": trusted.one.id, "variables": {"first": 1}})
                await run({"documentId": trusted.two.id, "operationName": trusted.names[0]})
                await run(
                    {
                        "documentId": trusted.two.id,
                        "operationName": trusted.names[1],
                        "variables": {"id": owner.id},
                    }
                )

            with recorded(caplog) as paths:
                await run_trusted()
            assert plans.built == loaded
            assert paths == ["compiled"] * 3
            # Other documents, more than the plan cache holds.
            others = SMALL * 3
            for i in range(others):
                other = f"{{ markets {{ other{i}_{uuid.uuid4().hex[:6]}: totalCount }} }}"
                await run({"query": other})
            assert plans.built == loaded + others
            # The trusted documents were not evicted: they are not planned again, whether
            # sent by id or by text.
            await run_trusted()
            await run({"query": trusted.one.body, "variables": {"first": 2}})
            assert plans.built == loaded + others
