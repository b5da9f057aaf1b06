"""Documents and helpers shared by the trading, lifecycle and worker tests."""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from domain.entities import Outcome
from infra.db.engine import create_engine
from infra.db.models import ledger_entries, markets, positions, trades, users
from infra.settings import Settings
from tests.api.readside import GRANT, Seed, global_id, now
from tests.support import Account, GraphQLClient

SUCCESS_FIELDS = """
      replayed
      trade { id side outcome shares amount averagePrice priceBefore priceAfter }
      position { id shares costBasis user { id balance } market { id yesPrice } }
      market { id yesPrice noPrice yesShares noShares volume }
      user { id balance }
"""
COMMON_ERRORS = """
    ... on ValidationError { field fields { field message } }
    ... on SlippageExceededError { averagePrice limit }
    ... on Error { code message }
"""
BUY = (
    "mutation ($input: BuySharesInput!) { buyShares(input: $input) { __typename"
    " ... on BuySharesSuccess { " + SUCCESS_FIELDS + " }"
    " ... on InsufficientBalanceError { required available }" + COMMON_ERRORS + " } }"
)
SELL = (
    "mutation ($input: SellSharesInput!) { sellShares(input: $input) { __typename"
    " ... on SellSharesSuccess { " + SUCCESS_FIELDS + " }"
    " ... on InsufficientSharesError { requested held }" + COMMON_ERRORS + " } }"
)
RESOLVE = """
mutation ($input: ResolveMarketInput!) {
  resolveMarket(input: $input) {
    __typename
    ... on ResolveMarketSuccess { market { id status outcome } job { id kind state } }
    ... on ValidationError { field }
    ... on Error { code message }
  }
}
"""
CANCEL = """
mutation ($input: MarketIdInput!) {
  cancelMarket(input: $input) {
    __typename
    ... on MarketChangeSuccess { market { id status } job { id kind state } }
    ... on Error { code message }
  }
}
"""


async def buy(
    gql: GraphQLClient, account: Account, market_id: str, outcome: str = "YES", **fields: Any
) -> dict[str, Any]:
    data = await gql.data(
        BUY, {"input": {"marketId": market_id, "outcome": outcome, **fields}}, token=account.token
    )
    result: dict[str, Any] = data["buyShares"]
    return result


async def sell(
    gql: GraphQLClient, account: Account, market_id: str, outcome: str = "YES", **fields: Any
) -> dict[str, Any]:
    data = await gql.data(
        SELL, {"input": {"marketId": market_id, "outcome": outcome, **fields}}, token=account.token
    )
    result: dict[str, Any] = data["sellShares"]
    return result


async def rows(engine: AsyncEngine, query: sa.Select[Any]) -> list[Any]:
    async with engine.connect() as conn:
        return list((await conn.execute(query)).all())


async def balance(engine: AsyncEngine, user_id: UUID) -> Decimal:
    [(value,)] = await rows(engine, sa.select(users.c.balance).where(users.c.id == user_id))
    assert isinstance(value, Decimal)
    return value


async def ledger_sum(engine: AsyncEngine, user_id: UUID) -> Decimal:
    found = await rows(
        engine, sa.select(ledger_entries.c.amount).where(ledger_entries.c.user_id == user_id)
    )
    return sum((amount for (amount,) in found), Decimal(0))


async def market_row(engine: AsyncEngine, market_id: UUID) -> Any:
    [row] = await rows(engine, sa.select(markets).where(markets.c.id == market_id))
    return row


async def trade_count(engine: AsyncEngine, market_id: UUID) -> int:
    [(count,)] = await rows(
        engine,
        sa.select(sa.func.count()).select_from(trades).where(trades.c.market_id == market_id),
    )
    return int(count)


async def shares_held(engine: AsyncEngine, market_id: UUID) -> dict[str, Decimal]:
    """Shares of each outcome summed over the market's positions."""
    found = await rows(
        engine,
        sa.select(positions.c.outcome, positions.c.shares).where(
            positions.c.market_id == market_id
        ),
    )
    totals: dict[str, Decimal] = defaultdict(Decimal)
    for outcome, shares in found:
        totals[str(outcome)] += shares
    return {"YES": totals["YES"], "NO": totals["NO"]}


@dataclass
class History:
    """Pages' worth of trades: an owner's in many markets, and a busy market's."""

    owner: Account
    busy: str  # the global id of the market a crowd traded in
    owner_trades: list[str]  # the owner's trade ids, newest first
    owner_amounts: dict[str, Decimal]  # trade id -> what it cost
    owner_ledger: list[str]  # the owner's ledger entry ids, newest first (the grant first)
    busy_trades: list[str]  # the busy market's trade ids, newest first


async def seed_history(
    settings: Settings, owner: Account, markets: int = 30, crowd: int = 60
) -> History:
    """``owner`` (just signed up) buys YES and NO in each of ``markets`` markets (2 trades
    each, and as many ledger entries after the sign-up grant), and ``crowd`` people buy once
    each in one busy market. Every trade is older than the owner's grant."""
    seed = Seed()
    seed.existing_user(owner.uuid, GRANT)
    host = seed.user("History Host")
    base = now() - timedelta(hours=2)
    at = iter(base + timedelta(seconds=i) for i in range(2 * markets + crowd))
    for i in range(markets):
        market = seed.market(host.id, f"History {uuid.uuid4().hex} {i}?", created_at=base)
        seed.buy(owner.uuid, market, Outcome.YES, Decimal(1), next(at))
        seed.buy(owner.uuid, market, Outcome.NO, Decimal(1), next(at))
    busy = seed.market(host.id, f"Busy {uuid.uuid4().hex}?", created_at=base)
    for i in range(crowd):
        seed.buy(seed.user(f"Crowd {i}").id, busy, Outcome.YES, Decimal(1), next(at))
    engine = create_engine(settings)
    try:
        await seed.save(engine)
        async with engine.connect() as conn:
            [grant] = (
                await conn.execute(
                    sa.select(ledger_entries.c.id).where(
                        ledger_entries.c.user_id == owner.uuid,
                        ledger_entries.c.trade_id.is_(None),
                    )
                )
            ).all()
    finally:
        await engine.dispose()

    def newest_first(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return sorted(rows, key=lambda r: r["created_at"], reverse=True)

    mine = newest_first([r for r in seed.trade_rows if r["user_id"] == owner.uuid])
    entries = newest_first([r for r in seed.ledger_rows if r["user_id"] == owner.uuid])
    busy_rows = newest_first([r for r in seed.trade_rows if r["market_id"] == busy.id])
    return History(
        owner=owner,
        busy=busy.gid,
        owner_trades=[global_id("Trade", r["id"]) for r in mine],
        owner_amounts={global_id("Trade", r["id"]): r["amount"] for r in mine},
        owner_ledger=[global_id("LedgerEntry", grant[0])]
        + [global_id("LedgerEntry", r["id"]) for r in entries],
        busy_trades=[global_id("Trade", r["id"]) for r in busy_rows],
    )
