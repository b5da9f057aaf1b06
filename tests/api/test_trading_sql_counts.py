"""SQL statements of the trading reads (constant in page size) and of one trade (exact)."""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest

from domain.entities import Outcome
from infra.db.engine import create_engine
from infra.settings import Settings
from tests.api import roomy
from tests.api.crowd import counted
from tests.api.readside import Seed, SeedMarket, SeedUser, now
from tests.api.trading import BUY
from tests.support import Account, GraphQLClient, LiveServer, MakeAccount, MakeMarket, promote

pytestmark = pytest.mark.embedded

# Forty markets' trades and price histories are over the default cost limit: this module has
# its own server, running the resolvers only (the compiled path's counts, one statement per
# root field, are in test_compiled_reads.py).
server, http, gql = roomy.resolver_server, roomy.http, roomy.gql

MARKETS = 40


@dataclass
class Traded:
    token: str
    markets: list[SeedMarket]
    users: list[SeedUser]
    seed: Seed


@pytest.fixture(scope="module")
async def traded(server: LiveServer, settings: Settings) -> Traded:
    rng = random.Random(31)
    token = f"traded{uuid.uuid4().hex[:10]}"
    seed = Seed()
    people = [seed.user(f"Trader {i}") for i in range(30)]
    base = now() - timedelta(hours=6)
    made = []
    for i in range(MARKETS):
        market = seed.market(people[i % 7].id, f"{token} market {i}", created_at=base)
        for j, holder in enumerate(rng.sample(people, 12)):
            outcome = Outcome.YES if rng.random() < 0.5 else Outcome.NO
            at = base + timedelta(minutes=i + 7 * j)
            seed.buy(holder.id, market, outcome, Decimal(rng.randint(1, 3)), at)
        made.append(market)
    engine = create_engine(settings)
    await seed.save(engine)
    await engine.dispose()
    return Traded(token, made, people, seed)


def markets_query(inner: str) -> str:
    return (
        "query ($first: Int!, $token: String!) { markets(first: $first,"
        " filter: {nameContains: $token}) { nodes { id " + inner + " } } }"
    )


async def same_count_for_few_and_many(
    gql: GraphQLClient, server: LiveServer, query: str, variables: dict[str, Any], token: str | None
) -> tuple[dict[str, Any], int]:
    _, few_count = await counted(gql, server, query, {**variables, "first": 5}, token)
    many, many_count = await counted(gql, server, query, {**variables, "first": MARKETS}, token)
    assert few_count == many_count, server.sql.statements
    assert len(many["markets"]["nodes"]) == MARKETS
    return many, many_count


async def test_market_trades_cost_the_same_for_five_and_forty_markets(
    gql: GraphQLClient, server: LiveServer, traded: Traded
) -> None:
    query = markets_query(
        "trades(first: 10) { totalCount nodes { id amount createdAt user { displayName }"
        " market { id } } }"
    )
    data, count = await same_count_for_few_and_many(
        gql, server, query, {"token": traded.token}, None
    )
    # Markets page, every market's first trades, their counts, the traders (a trade's
    # market is the page's own market).
    assert count == 4, server.sql.statements
    for node in data["markets"]["nodes"]:
        page = node["trades"]
        assert page["totalCount"] == 12
        stamps = [t["createdAt"] for t in page["nodes"]]
        assert stamps == sorted(stamps, reverse=True)  # newest first
        assert {t["market"]["id"] for t in page["nodes"]} == {node["id"]}


async def test_price_history_is_one_statement_for_all_markets(
    gql: GraphQLClient, server: LiveServer, traded: Traded
) -> None:
    query = markets_query("priceHistory(interval: DAY) { start trades volume open close }")
    data, count = await same_count_for_few_and_many(
        gql, server, query, {"token": traded.token}, None
    )
    assert count == 2, server.sql.statements
    by_id = {m.gid: m for m in traded.markets}
    for node in data["markets"]["nodes"]:
        buckets = node["priceHistory"]
        assert sum(b["trades"] for b in buckets) == 12
        assert sum(Decimal(b["volume"]) for b in buckets) == by_id[node["id"]].volume
        assert Decimal(buckets[0]["open"]) == Decimal("0.5")


async def test_position_values_cost_one_statement_for_the_markets(
    gql: GraphQLClient, server: LiveServer, traded: Traded
) -> None:
    query = markets_query("positions(first: 5) { nodes { currentValue unrealizedPnl costBasis } }")
    data, count = await same_count_for_few_and_many(
        gql, server, query, {"token": traded.token}, None
    )
    # Markets, positions: a market's positions are valued at that market's own prices.
    assert count == 2, server.sql.statements
    for node in data["markets"]["nodes"]:
        for position in node["positions"]["nodes"]:
            value, basis = Decimal(position["currentValue"]), Decimal(position["costBasis"])
            assert Decimal(position["unrealizedPnl"]) == value - basis


USERS_LEDGER = """
query ($ids: [ID!]!) {
  nodes(ids: $ids) {
    ... on User {
      id
      balance
      ledger(first: 100) { totalCount nodes { amount kind trade { id amount } } }
      trades(first: 100) { totalCount nodes { id side user { id } } }
    }
  }
}
"""


async def test_ledgers_and_trades_of_many_users_cost_the_same_as_of_few(
    gql: GraphQLClient,
    server: LiveServer,
    traded: Traded,
    make_account: MakeAccount,
    db: Any,
) -> None:
    admin = await make_account("Auditor")
    await promote(db, admin, "ADMIN")
    few = [u.gid for u in traded.users[:3]]
    many = [u.gid for u in traded.users[:25]]
    small, small_count = await counted(gql, server, USERS_LEDGER, {"ids": few}, admin.token)
    large, large_count = await counted(gql, server, USERS_LEDGER, {"ids": many}, admin.token)
    # Identity, users, ledger pages, ledger counts, the entries' trades, trade pages, trade
    # counts (a user's trades are that user's: no query for the traders).
    assert small_count == large_count == 7, server.sql.statements
    balances = {u.gid: traded.seed.balance(u.id) for u in traded.users}
    for node in large["nodes"]:
        ledger = node["ledger"]
        # Seeded users have their grant and one entry per purchase: all of them fit.
        assert ledger["totalCount"] == len(ledger["nodes"]) == 1 + node["trades"]["totalCount"]
        assert sum(Decimal(e["amount"]) for e in ledger["nodes"]) == balances[node["id"]]
        assert Decimal(node["balance"]) == balances[node["id"]]
        for entry in ledger["nodes"]:
            if entry["kind"] == "TRADE":
                assert Decimal(entry["amount"]) == -Decimal(entry["trade"]["amount"])
            else:
                assert entry["trade"] is None
    assert len(small["nodes"]) == 3


USERS_POSITIONS = """
query ($ids: [ID!]!) {
  nodes(ids: $ids) {
    ... on User { positions(first: 100) { nodes { currentValue unrealizedPnl market { id } } } }
  }
}
"""


async def test_position_values_of_many_users_cost_the_same_as_of_few(
    gql: GraphQLClient, server: LiveServer, traded: Traded
) -> None:
    few = [u.gid for u in traded.users[:3]]
    many = [u.gid for u in traded.users[:25]]
    _, small_count = await counted(gql, server, USERS_POSITIONS, {"ids": few})
    large, large_count = await counted(gql, server, USERS_POSITIONS, {"ids": many})
    # Users, their position pages, the positions' markets (fetched ahead, one batch).
    assert small_count == large_count == 3, server.sql.statements
    held = {(p.user_id, p.market_id) for p in traded.seed.positions}
    assert sum(len(n["positions"]["nodes"]) for n in large["nodes"]) == sum(
        1 for user_id, _ in held if user_id in {u.id for u in traded.users[:25]}
    )


async def test_a_purchase_is_a_fixed_number_of_statements(
    gql: GraphQLClient,
    server: LiveServer,
    make_account: MakeAccount,
    make_market: MakeMarket,
    backend: str,
) -> None:
    owner, trader = await make_account("Counted Owner"), await make_account("Counted Trader")
    market = await make_market(owner)

    async def purchase(account: Account, **fields: str) -> int:
        variables = {"input": {"marketId": market["id"], "outcome": "YES", **fields}}
        data, count = await counted(gql, server, BUY, variables, account.token)
        assert data["buyShares"]["__typename"] == "BuySharesSuccess", data
        return count

    # Token check; lock the market; debit; position; trade; ledger; market state;
    # (SQLite's BEGIN IMMEDIATE is a statement of its own, PostgreSQL's BEGIN is not).
    begin = 1 if backend == "sqlite" else 0
    assert await purchase(trader, amount="5") == 7 + begin, server.sql.statements
    assert await purchase(trader, shares="5") == 7 + begin, server.sql.statements
    # An idempotency key adds its claim and its record.
    key = str(uuid.uuid4())
    assert await purchase(trader, amount="5", idempotencyKey=key) == 9 + begin
    # A replay: claim, read the key, then the trade, position, market and user.
    assert await purchase(trader, amount="5", idempotencyKey=key) == 7 + begin
