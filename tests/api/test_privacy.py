"""A user's ``email`` and ``balance`` reach that user only, whichever path leads to the user."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from domain.entities import MarketStatus, Outcome
from infra.settings import Settings
from tests.api.readside import Seed, SeedMarket, global_id, now, uuid_of
from tests.support import Account, GraphQLClient, MakeAccount, MakeMarket

pytestmark = pytest.mark.embedded

PRIVATE = "id email balance"

# Every path to a User the schema has, each selecting the private fields.
EVERY_PATH = f"""
query ($alice: ID!, $bob: ID!, $market: ID!, $position: ID!) {{
  viewer {{ {PRIVATE} }}
  byId: user(id: $alice) {{ {PRIVATE} }}
  bobById: user(id: $bob) {{ {PRIVATE} }}
  node(id: $alice) {{ ... on User {{ {PRIVATE} }} }}
  nodes(ids: [$bob, $alice, $position]) {{
    ... on User {{ {PRIVATE} }}
    ... on Position {{ user {{ {PRIVATE} }} }}
  }}
  positionNode: node(id: $position) {{ ... on Position {{ user {{ {PRIVATE} }} }} }}
  market(id: $market) {{
    creator {{ {PRIVATE} }}
    positions {{ nodes {{ user {{ {PRIVATE} }} market {{ creator {{ {PRIVATE} }} }} }} }}
  }}
  markets(first: 5, filter: {{creatorId: $alice}}) {{
    edges {{ node {{ creator {{ {PRIVATE} markets {{ nodes {{ creator {{ {PRIVATE} }} }} }} }} }} }}
  }}
  holdings: user(id: $bob) {{
    positions {{ nodes {{ user {{ {PRIVATE} }} market {{ creator {{ {PRIVATE} }} }} }} }}
  }}
}}
"""


@dataclass
class People:
    alice: Account
    bob: Account
    market: dict[str, Any]
    balances: dict[str, Decimal]
    position: str

    def email(self, gid: str) -> str:
        return {self.alice.id: self.alice.email, self.bob.id: self.bob.email}[gid]


@pytest.fixture
async def people(
    make_account: MakeAccount, make_market: MakeMarket, db: AsyncEngine, settings: Settings
) -> People:
    alice = await make_account("Alice Private")
    bob = await make_account("Bob Private")
    market = await make_market(alice)
    seed = Seed()
    start = settings.starting_balance
    for account in (alice, bob):
        seed.existing_user(uuid_of(account.id), start)
    stored = SeedMarket(
        id=uuid_of(market["id"]),
        name=market["name"],
        creator_id=uuid_of(alice.id),
        status=MarketStatus.ACTIVE,
        end_date=now(),
        created_at=now(),
    )
    at = now() - timedelta(seconds=5)
    mine = seed.buy(uuid_of(alice.id), stored, Outcome.YES, Decimal(4), at)
    seed.buy(uuid_of(bob.id), stored, Outcome.NO, Decimal(7), at + timedelta(seconds=1))
    # The market row exists already (made through the API); only the holdings are new.
    seed.markets.clear()
    await seed.save(db)
    balances = {a.id: seed.balance(uuid_of(a.id)) for a in (alice, bob)}
    assert balances[alice.id] < start
    assert balances[bob.id] < start
    return People(alice, bob, market, balances, global_id("Position", mine.id))


def users_in(value: Any) -> Iterator[dict[str, Any]]:
    """Every User object in a response: the dicts that carry the private fields."""
    if isinstance(value, dict):
        if "email" in value:
            yield value
        for item in value.values():
            yield from users_in(item)
    elif isinstance(value, list):
        for item in value:
            yield from users_in(item)


async def every_path(gql: GraphQLClient, people: People, token: str | None) -> dict[str, Any]:
    variables = {
        "alice": people.alice.id,
        "bob": people.bob.id,
        "market": people.market["id"],
        "position": people.position,
    }
    return await gql.data(EVERY_PATH, variables, token=token)


def check(data: dict[str, Any], people: People, viewer: Account | None) -> None:
    seen: dict[str, int] = {people.alice.id: 0, people.bob.id: 0}
    for user in users_in(data):
        seen[user["id"]] += 1
        if viewer is not None and user["id"] == viewer.id:
            assert user["email"] == viewer.email
            assert Decimal(user["balance"]) == people.balances[viewer.id]
        else:
            assert user["email"] is None, user
            assert user["balance"] is None, user
    # Each path above reached the users: a path that lost them would hide a leak.
    viewing = 1 if viewer is not None else 0
    assert seen[people.alice.id] == 12 + (viewing if viewer is people.alice else 0)
    assert seen[people.bob.id] == 4 + (viewing if viewer is people.bob else 0)


async def test_anonymous_sees_no_private_fields(gql: GraphQLClient, people: People) -> None:
    data = await every_path(gql, people, None)
    assert data["viewer"] is None
    check(data, people, None)


async def test_another_user_sees_no_private_fields(gql: GraphQLClient, people: People) -> None:
    data = await every_path(gql, people, people.bob.token)
    assert data["viewer"]["id"] == people.bob.id
    check(data, people, people.bob)


async def test_the_user_sees_their_own_private_fields(gql: GraphQLClient, people: People) -> None:
    data = await every_path(gql, people, people.alice.token)
    assert data["viewer"] == {
        "id": people.alice.id,
        "email": people.alice.email,
        "balance": data["viewer"]["balance"],
    }
    assert Decimal(data["viewer"]["balance"]) == people.balances[people.alice.id]
    check(data, people, people.alice)


async def test_a_fresh_account_sees_its_starting_balance(
    gql: GraphQLClient, make_account: MakeAccount, settings: Settings
) -> None:
    carol = await make_account("Carol Private")
    data = await gql.data("{ viewer { id email balance } }", token=carol.token)
    assert data["viewer"]["id"] == carol.id
    assert data["viewer"]["email"] == carol.email
    assert Decimal(data["viewer"]["balance"]) == settings.starting_balance
