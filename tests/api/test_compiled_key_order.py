"""Objects of more than 50 keys keep the request's key order on the compiled path.

PostgreSQL's ``json_build_object`` takes at most 100 arguments, so a larger object is
built from several; the response must still list its keys as the request did (GraphQL
orders a response's keys as the selection set). The alias limit is raised for this
module's own servers.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from infra.settings import Settings
from tests.api import roomy
from tests.api.answered import recorded
from tests.support import Account, GraphQLClient, LiveServer, MakeAccount, MakeMarket

FIELDS = ("id", "name", "description", "status", "volume", "yesPrice", "noPrice", "endDate")
ALIASES = 130


def tuned(settings: Settings, **changes: object) -> Settings:
    return roomy.roomy(settings, query_max_aliases=1_000, query_max_selections=100_000, **changes)


@pytest.fixture(scope="module")
def compiled(settings: Settings) -> Iterator[LiveServer]:
    with roomy.running(tuned(settings)) as live:
        yield live


@pytest.fixture(scope="module")
def resolver(settings: Settings) -> Iterator[LiveServer]:
    with roomy.running(tuned(settings, compiled_reads=False)) as live:
        yield live


@pytest.fixture(scope="module")
async def clients(
    compiled: LiveServer, resolver: LiveServer
) -> AsyncIterator[tuple[GraphQLClient, GraphQLClient]]:
    async with (
        httpx.AsyncClient(base_url=compiled.url, timeout=30) as left,
        httpx.AsyncClient(base_url=resolver.url, timeout=30) as right,
    ):
        yield GraphQLClient(left), GraphQLClient(right)


def selection(count: int, seed: int) -> tuple[list[str], str]:
    """``count`` aliased fields, their aliases in a shuffled order (not sorted, not
    grouped by field), and the selection text."""
    rng = random.Random(seed)
    aliases = [f"k{i}" for i in range(count)]
    rng.shuffle(aliases)
    text = " ".join(f"{alias}: {rng.choice(FIELDS)}" for alias in aliases)
    return aliases, text


@pytest.mark.parametrize("count", [50, 51, 100, ALIASES])
async def test_a_large_object_keeps_the_requests_key_order(
    compiled: LiveServer,
    clients: tuple[GraphQLClient, GraphQLClient],
    make_account: MakeAccount,
    make_market: MakeMarket,
    count: int,
    caplog: pytest.LogCaptureFixture,
) -> None:
    owner: Account = await make_account("Keys")
    market = await make_market(owner)
    aliases, fields = selection(count, count)
    document = f"query ($id: ID!) {{ market(id: $id) {{ {fields} }} }}"
    left, right = clients
    with recorded(caplog) as paths:
        answer = await left.data(document, {"id": market["id"]})
    assert paths == ["compiled"]
    assert list(answer["market"]) == aliases
    assert answer == await right.data(document, {"id": market["id"]})


async def test_large_objects_in_a_page_keep_the_requests_key_order(
    compiled: LiveServer,
    clients: tuple[GraphQLClient, GraphQLClient],
    make_account: MakeAccount,
    make_market: MakeMarket,
    caplog: pytest.LogCaptureFixture,
) -> None:
    owner = await make_account("Keys")
    for _ in range(3):
        await make_market(owner)
    aliases, fields = selection(ALIASES, 7)
    # Keys of the connection and of each edge too, more than 50 of each.
    edge = " ".join(f"e{i}: cursor" for i in range(60))
    page = " ".join(f"c{i}: totalCount" for i in range(60))
    document = (
        "query ($id: ID!) { user(id: $id) { markets(first: 3) {"
        f" {page} edges {{ {edge} node {{ {fields} }} }} }} }} }}"
    )
    left, right = clients
    with recorded(caplog) as paths:
        answer = await left.data(document, {"id": owner.id})
    assert paths == ["compiled"]
    connection = answer["user"]["markets"]
    assert list(connection) == [*(f"c{i}" for i in range(60)), "edges"]
    assert len(connection["edges"]) == 3
    for item in connection["edges"]:
        assert list(item) == [*(f"e{i}" for i in range(60)), "node"]
        assert list(item["node"]) == aliases
    assert answer == await right.data(document, {"id": owner.id})
