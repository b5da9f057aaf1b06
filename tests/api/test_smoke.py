"""The first operation a newcomer runs, on both backends."""

from __future__ import annotations

import pytest

from tests.support import GraphQLClient, MakeAccount, MakeMarket

pytestmark = pytest.mark.embedded


async def test_markets_lists_what_was_created(
    gql: GraphQLClient, make_account: MakeAccount, make_market: MakeMarket, backend: str
) -> None:
    owner = await make_account("Smoke Owner")
    market = await make_market(owner, name=f"Smoke market on {backend}?")
    data = await gql.data(
        "query ($id: ID!) { market(id: $id) { name yesPrice noPrice creator { displayName } } }",
        {"id": market["id"]},
    )
    assert data["market"] == {
        "name": f"Smoke market on {backend}?",
        "yesPrice": "0.50000000",
        "noPrice": "0.50000000",
        "creator": {"displayName": "Smoke Owner"},
    }
