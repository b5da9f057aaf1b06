"""Documents and helpers shared by the trading, lifecycle and worker tests."""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from infra.db.models import ledger_entries, markets, positions, trades, users
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
