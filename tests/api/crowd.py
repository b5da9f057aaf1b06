"""A crowd of markets and holders for statement-count tests, seeded once per module.

Import the fixture into a test module by assignment (``crowd = shared.crowd``).
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

import pytest

from domain.entities import MarketStatus, Outcome
from infra.db.engine import create_engine
from infra.settings import Settings
from tests.api.readside import Seed, SeedMarket, SeedUser, now
from tests.support import GraphQLClient, LiveServer

MARKETS = 130
HOLDERS_PER_MARKET = (10, 14)

Q1 = """
query Q1($first: Int!, $token: String!) {
  markets(first: $first, filter: {status: ACTIVE, nameContains: $token},
          orderBy: {field: VOLUME, direction: DESC}) {
    %s
    nodes { id name volume endDate yesPrice }
  }
}
"""
Q2 = """
query Q2($first: Int!, $token: String!) {
  markets(first: $first, filter: {status: ACTIVE, nameContains: $token},
          orderBy: {field: VOLUME, direction: DESC}) {
    %s
    nodes {
      id name volume endDate yesPrice
      creator { displayName %s }
      positions(first: 10) { %s nodes { shares user { displayName %s } } }
    }
  }
}
"""
Q3 = "query Q3($id: ID!) { market(id: $id) { id name yesPrice creator { displayName %s } } }"


@dataclass
class Crowd:
    token: str
    users: dict[UUID, SeedUser]
    markets: list[SeedMarket]  # ACTIVE ones, most volume first
    holders: dict[str, list[str]]  # market global id -> display names of its first 10 holders
    counts: dict[str, int]  # market global id -> number of positions


@pytest.fixture(scope="module")
async def crowd(settings: Settings) -> Crowd:
    rng = random.Random(99)
    token = f"crowd{uuid.uuid4().hex[:10]}"
    seed = Seed()
    people = [seed.user(f"Crowd {i}") for i in range(40)]
    base = now() - timedelta(days=1)
    made: list[SeedMarket] = []
    for i in range(MARKETS):
        creator = people[i % 15]
        status = MarketStatus.CLOSED if i % 11 == 0 else MarketStatus.ACTIVE
        market = seed.market(creator.id, f"{token} market {i}", status=status, created_at=base)
        chosen = rng.sample(people, rng.randint(*HOLDERS_PER_MARKET))
        for j, holder in enumerate(chosen):
            outcome = Outcome.YES if rng.random() < 0.5 else Outcome.NO
            shares = Decimal(rng.randint(1, 4))
            seed.buy(holder.id, market, outcome, shares, base + timedelta(seconds=i * 20 + j))
        made.append(market)
    engine = create_engine(settings)
    await seed.save(engine)
    await engine.dispose()
    by_id = {p.id: p for p in people}
    active = sorted(
        (m for m in made if m.status is MarketStatus.ACTIVE),
        key=lambda m: (m.volume, m.id),
        reverse=True,
    )
    holders: dict[str, list[str]] = {}
    for market in active:
        mine = sorted(
            (p for p in seed.positions if p.market_id == market.id),
            key=lambda p: (p.created_at, p.id),
        )
        holders[market.gid] = [by_id[p.user_id].display_name for p in mine[:10]]
    counts = {m.gid: sum(p.market_id == m.id for p in seed.positions) for m in active}
    return Crowd(token, by_id, active, holders, counts)


async def counted(
    gql: GraphQLClient,
    server: LiveServer,
    query: str,
    variables: dict[str, Any],
    token: str | None = None,
) -> tuple[dict[str, Any], int]:
    server.sql.reset()
    data = await gql.data(query, variables, token=token)
    return data, server.sql.count


def q2(total: str = "", nested_total: str = "", private: str = "") -> str:
    return Q2 % (total, private, nested_total, private)


def check_q2(crowd: Crowd, data: dict[str, Any], first: int) -> None:
    nodes = data["markets"]["nodes"]
    assert [n["id"] for n in nodes] == [m.gid for m in crowd.markets[:first]]
    names = {m.gid: crowd.users[m.creator_id].display_name for m in crowd.markets}
    for node in nodes:
        assert node["creator"]["displayName"] == names[node["id"]]
        holders = [p["user"]["displayName"] for p in node["positions"]["nodes"]]
        assert holders == crowd.holders[node["id"]]
        assert len(holders) == 10
