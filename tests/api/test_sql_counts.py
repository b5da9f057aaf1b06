"""SQL statements per operation on the resolver path: the guard against N+1 reads.

The counter sees every statement the server sends. Each loader batch is one
statement, so a nested list costs a fixed number of statements however many
parents it has. This module's server runs the resolvers only; the compiled
path's counts (one statement per root field) are in test_compiled_reads.py.
"""

from __future__ import annotations

import pytest

from tests.api import crowd as shared
from tests.api import roomy
from tests.api.crowd import Q1, Q3, Crowd, check_q2, counted, q2
from tests.support import Account, GraphQLClient, LiveServer, MakeAccount

pytestmark = pytest.mark.embedded

# Pages of 100 nested lists are over the default cost limit: this module has its own server.
server, http, gql = roomy.resolver_server, roomy.http, roomy.gql
crowd = shared.crowd


async def test_q2_costs_the_same_for_twenty_and_a_hundred_markets(
    gql: GraphQLClient, server: LiveServer, crowd: Crowd
) -> None:
    assert len(crowd.markets) >= 100
    small, small_count = await counted(gql, server, q2(), {"first": 20, "token": crowd.token})
    check_q2(crowd, small, 20)
    large, large_count = await counted(gql, server, q2(), {"first": 100, "token": crowd.token})
    check_q2(crowd, large, 100)
    # Markets page, their creators, every market's first positions, those positions' users.
    assert small_count == 4, server.sql.statements
    assert large_count == small_count
    windowed = [s for s in server.sql.statements if "row_number" in s.lower()]
    assert len(windowed) == 1, "the positions of all hundred markets come in one statement"


async def test_q1_is_one_statement(gql: GraphQLClient, server: LiveServer, crowd: Crowd) -> None:
    data, count = await counted(gql, server, Q1 % "", {"first": 20, "token": crowd.token})
    assert [n["id"] for n in data["markets"]["nodes"]] == [m.gid for m in crowd.markets[:20]]
    assert count == 1


async def test_q3_is_two_statements(gql: GraphQLClient, server: LiveServer, crowd: Crowd) -> None:
    market = crowd.markets[0]
    data, count = await counted(gql, server, Q3 % "", {"id": market.gid})
    assert data["market"]["creator"]["displayName"] == crowd.users[market.creator_id].display_name
    assert count == 2


async def test_total_counts_cost_one_statement_each(
    gql: GraphQLClient, server: LiveServer, crowd: Crowd
) -> None:
    variables = {"first": 20, "token": crowd.token}
    data, count = await counted(gql, server, Q1 % "totalCount", variables)
    assert data["markets"]["totalCount"] == len(crowd.markets)
    assert count == 2
    data, count = await counted(gql, server, q2(nested_total="totalCount"), variables)
    assert count == 5
    data, count = await counted(
        gql, server, q2(total="totalCount", nested_total="totalCount"), variables
    )
    assert count == 6
    assert data["markets"]["totalCount"] == len(crowd.markets)
    for node in data["markets"]["nodes"]:
        assert node["positions"]["totalCount"] == crowd.counts[node["id"]]
    data, count = await counted(
        gql, server, q2(nested_total="totalCount"), {**variables, "first": 100}
    )
    assert count == 5


@pytest.fixture
async def viewer(make_account: MakeAccount) -> Account:
    return await make_account("Counted Viewer")


async def test_the_viewer_costs_one_lookup_per_request_at_most(
    gql: GraphQLClient, server: LiveServer, crowd: Crowd, viewer: Account
) -> None:
    """Private fields on every user of Q2 need the viewer: once per request, not per user."""
    private = "email balance"
    anonymous, anonymous_count = await counted(
        gql, server, q2(private=private), {"first": 20, "token": crowd.token}
    )
    assert anonymous_count == 4
    signed, signed_count = await counted(
        gql, server, q2(private=private), {"first": 20, "token": crowd.token}, viewer.token
    )
    wide, wide_count = await counted(
        gql, server, q2(private=private), {"first": 100, "token": crowd.token}, viewer.token
    )
    assert signed_count == wide_count, server.sql.statements
    assert signed_count <= anonymous_count + 1, server.sql.statements
    for data in (anonymous, signed, wide):
        for node in data["markets"]["nodes"]:
            assert node["creator"]["email"] is None
            assert {p["user"]["balance"] for p in node["positions"]["nodes"]} == {None}
    creator = crowd.users[crowd.markets[0].creator_id].gid
    data, count = await counted(
        gql,
        server,
        "query ($id: ID!) { viewer { id email } user(id: $id) { displayName email } }",
        {"id": creator},
        token=viewer.token,
    )
    assert data["viewer"] == {"id": viewer.id, "email": viewer.email}
    assert data["user"]["email"] is None
    # The viewer's own row comes with the lookup: `viewer` reads it from there.
    assert count <= 2, server.sql.statements
    data, count = await counted(
        gql, server, Q3 % private, {"id": crowd.markets[0].gid}, token=viewer.token
    )
    assert data["market"]["creator"]["email"] is None
    assert count <= 3, server.sql.statements


HOLDER_SHAPES = {
    "nodes": "positions(first: 10) { nodes { user { displayName } } }",
    "edges": "positions(first: 10) { edges { node { user { displayName } } } }",
    "fragment": "positions(first: 10) { nodes { ...Holder } }",
    "inline fragment": (
        "positions(first: 10) { nodes { ... on Position { user { displayName } } } }"
    ),
}


@pytest.mark.parametrize("shape", list(HOLDER_SHAPES))
async def test_position_holders_cost_one_batch_however_they_are_asked_for(
    gql: GraphQLClient, server: LiveServer, crowd: Crowd, shape: str
) -> None:
    # The holders are fetched ahead when the page's items select `user`: through
    # nodes, edges or fragments alike, all markets' holders still come in one statement.
    query = (
        "query ($token: String!) { markets(first: 20, filter: {status: ACTIVE,"
        " nameContains: $token}, orderBy: {field: VOLUME, direction: DESC}) {"
        f" nodes {{ id {HOLDER_SHAPES[shape]} }} }} }}"
    )
    if shape == "fragment":
        query += " fragment Holder on Position { user { displayName } }"
    data, count = await counted(gql, server, query, {"token": crowd.token})
    for node in data["markets"]["nodes"]:
        page = node["positions"]
        items = page["nodes"] if "nodes" in page else [e["node"] for e in page["edges"]]
        assert [p["user"]["displayName"] for p in items] == crowd.holders[node["id"]]
    assert count == 3, server.sql.statements  # markets, positions, holders


async def test_positions_without_holders_fetch_no_users(
    gql: GraphQLClient, server: LiveServer, crowd: Crowd
) -> None:
    query = (
        "query ($token: String!) { markets(first: 20, filter: {status: ACTIVE,"
        " nameContains: $token}) { nodes { positions(first: 10) { nodes { shares } } } } }"
    )
    _, count = await counted(gql, server, query, {"token": crowd.token})
    assert count == 2, server.sql.statements  # markets, positions
