"""The compiled read path (PostgreSQL): one SQL statement per root field, the resolvers' answer.

Two servers over the same database: one compiling what it can, one running the
resolvers only. Counts are read from the compiling server; answers are compared
between the two.
"""

from __future__ import annotations

import pytest

from tests.api import crowd as shared
from tests.api import roomy
from tests.api.crowd import Crowd, check_q2, counted, q2
from tests.support import GraphQLClient, LiveServer

server, http, gql = roomy.server, roomy.http, roomy.gql
crowd = shared.crowd


@pytest.mark.parametrize("first", [20, 100])
async def test_q2_is_one_statement_for_any_page_size(
    gql: GraphQLClient, server: LiveServer, crowd: Crowd, first: int
) -> None:
    query = q2("totalCount", "totalCount")
    data, count = await counted(gql, server, query, {"first": first, "token": crowd.token})
    check_q2(crowd, data, first)
    assert count == 1, server.sql.statements
    assert "json_build_object" in server.sql.statements[0]


async def test_each_root_field_is_one_statement(
    gql: GraphQLClient, server: LiveServer, crowd: Crowd
) -> None:
    market = crowd.markets[0]
    query = """
    query ($id: ID!, $token: String!) {
      a: market(id: $id) { name creator { displayName } }
      b: markets(first: 5, filter: {nameContains: $token}) { totalCount nodes { id } }
      c: node(id: $id) { id }
    }
    """
    data, count = await counted(gql, server, query, {"id": market.gid, "token": crowd.token})
    assert data["a"]["name"] == market.name
    assert data["b"]["totalCount"] == shared.MARKETS
    assert data["c"] == {"id": market.gid}
    assert count == 3, server.sql.statements
