"""Trades and ledger pages cost the same number of SQL statements at 5 items as at 50.

Run for their owner (the ledger is private) on both read paths: a server running the
resolvers only, and one compiling reads to SQL (PostgreSQL). The pages' contents are
checked against the rows seeded here, and the two paths must answer alike.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from infra.settings import Settings
from tests.api import roomy
from tests.api.crowd import counted
from tests.api.readside import GRANT
from tests.api.trading import History, seed_history
from tests.support import GraphQLClient, LiveServer, sign_up_and_in

server, resolver_server, http, gql, resolver_gql = (
    roomy.server,
    roomy.resolver_server,
    roomy.http,
    roomy.gql,
    roomy.resolver_gql,
)

MARKETS = 30  # the owner buys YES and NO in each: 60 trades, 61 ledger entries
CROWD = 60  # traders of the busy market, one purchase each
SIZES = (5, 50)

PAGES = """
query ($first: Int!, $market: ID!) {
  viewer {
    ledger(first: $first) {
      totalCount
      edges { cursor node { id amount kind trade { id amount } } }
    }
    trades(first: $first) {
      totalCount
      edges { cursor node { id amount outcome market { id } user { id } } }
    }
  }
  market(id: $market) {
    trades(first: $first) {
      totalCount
      edges { cursor node { id amount user { displayName } } }
    }
  }
}
"""


@pytest.fixture(scope="module")
async def traded(gql: GraphQLClient, settings: Settings) -> History:
    owner = await sign_up_and_in(gql, "Page Owner")
    return await seed_history(settings, owner, markets=MARKETS, crowd=CROWD)


def nodes(connection: dict[str, Any]) -> list[dict[str, Any]]:
    return [edge["node"] for edge in connection["edges"]]


def check_pages(data: dict[str, Any], traded: History, first: int) -> None:
    viewer = data["viewer"]
    ledger, trades = viewer["ledger"], viewer["trades"]
    assert ledger["totalCount"] == 1 + 2 * MARKETS
    entries = nodes(ledger)
    assert [e["id"] for e in entries] == traded.owner_ledger[:first]
    # The sign-up grant is the newest entry, then one purchase per trade, newest first.
    assert (entries[0]["kind"], Decimal(entries[0]["amount"]), entries[0]["trade"]) == (
        "SIGNUP_GRANT",
        GRANT,
        None,
    )
    assert [e["trade"]["id"] for e in entries[1:]] == traded.owner_trades[: first - 1]
    for entry in entries[1:]:
        assert entry["kind"] == "TRADE"
        paid = traded.owner_amounts[entry["trade"]["id"]]
        assert Decimal(entry["amount"]) == -paid == -Decimal(entry["trade"]["amount"])

    assert trades["totalCount"] == 2 * MARKETS
    mine = nodes(trades)
    assert [t["id"] for t in mine] == traded.owner_trades[:first]
    assert {t["user"]["id"] for t in mine} == {traded.owner.id}

    busy = data["market"]["trades"]
    assert busy["totalCount"] == CROWD
    crowd = nodes(busy)
    assert [t["id"] for t in crowd] == traded.busy_trades[:first]
    assert len({t["user"]["displayName"] for t in crowd}) == first


async def counts_by_size(
    client: GraphQLClient, live: LiveServer, traded: History
) -> dict[int, tuple[dict[str, Any], int]]:
    variables = {"market": traded.busy}
    return {
        first: await counted(client, live, PAGES, {**variables, "first": first}, traded.owner.token)
        for first in SIZES
    }


async def test_resolver_pages_of_5_and_50_cost_the_same_statements(
    resolver_gql: GraphQLClient, resolver_server: LiveServer, traded: History
) -> None:
    answers = await counts_by_size(resolver_gql, resolver_server, traded)
    for first, (data, _) in answers.items():
        check_pages(data, traded, first)
    # The token's check, which brings the viewer (1); the ledger page, its count, the
    # entries' trades (3); the trades page, its count, their markets (3: a user's trades
    # are that user's, no query for who made them); the market, its trades page, its
    # count, their traders (4).
    assert answers[5][1] == answers[50][1] == 11, resolver_server.sql.statements


async def test_compiled_pages_of_5_and_50_cost_the_same_statements(
    gql: GraphQLClient,
    server: LiveServer,
    resolver_gql: GraphQLClient,
    resolver_server: LiveServer,
    traded: History,
) -> None:
    statements = {}
    for first in SIZES:
        server.compiled_sql.reset()
        data, statements[first] = await counted(
            gql, server, PAGES, {"market": traded.busy, "first": first}, traded.owner.token
        )
        # One statement per root field (viewer, market), on the compiled path: the owner's
        # ledger is there, not null as for an anonymous reader.
        assert len(server.compiled_sql.statements) == 2, server.compiled_sql.statements
        check_pages(data, traded, first)
        resolved, _ = await counted(
            resolver_gql,
            resolver_server,
            PAGES,
            {"market": traded.busy, "first": first},
            traded.owner.token,
        )
        assert data == resolved
    # And the token's check.
    assert statements[5] == statements[50] == 3, server.sql.statements
