"""Trades under concurrency on PostgreSQL: every limit holds, no money appears or vanishes.

The expected costs come from an independent 80-digit LMSR here, not from the code
under test.
"""

from __future__ import annotations

import asyncio
import random
from collections import defaultdict
from decimal import MAX_EMAX, MIN_EMIN, ROUND_CEILING, Context, Decimal, localcontext
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from infra.db.models import trades
from tests.api.readside import uuid_of
from tests.api.trading import balance, buy, ledger_sum, market_row, rows, sell, shares_held
from tests.support import GraphQLClient, MakeAccount, MakeMarket

START = Decimal(1000)
B = Decimal(100)
REFERENCE = Context(prec=80, Emax=MAX_EMAX, Emin=MIN_EMIN)


def reference_costs(shares: Decimal, count: int) -> list[Decimal]:
    """What the k-th purchase of ``shares`` YES costs in a fresh market, rounded up."""

    def cost(q: Decimal) -> Decimal:
        return B * ((q / B).exp() + 1).ln()

    with localcontext(REFERENCE):
        return [
            (cost(shares * (k + 1)) - cost(shares * k)).quantize(
                Decimal("0.00000001"), rounding=ROUND_CEILING
            )
            for k in range(count)
        ]


async def test_two_hundred_racing_purchases_spend_exactly_what_the_balance_allows(
    gql: GraphQLClient, make_account: MakeAccount, make_market: MakeMarket, db: AsyncEngine
) -> None:
    owner, buyer = await make_account("House"), await make_account("Spender")
    market_ids = [(await make_market(owner))["id"] for _ in range(5)]
    shares = Decimal(10)
    # 40 purchases in each of 5 markets at once: the markets' rows serialize each market's
    # trades, and only the buyer's row (the conditional debit) stands between them.
    attempts = [market_ids[i % 5] for i in range(200)]
    random.Random(8).shuffle(attempts)
    results = await asyncio.gather(
        *(buy(gql, buyer, market_id, "YES", shares=str(shares)) for market_id in attempts)
    )
    kinds = [r["__typename"] for r in results]
    assert set(kinds) <= {"BuySharesSuccess", "InsufficientBalanceError"}, set(kinds)
    successes = kinds.count("BuySharesSuccess")
    assert 0 < successes < 200

    final = await balance(db, buyer.uuid)
    assert final >= 0
    assert await ledger_sum(db, buyer.uuid) == final
    expected = reference_costs(shares, 40)
    spent = Decimal(0)
    for market_id in market_ids:
        found = await rows(
            db,
            sa.select(trades.c.amount)
            .where(trades.c.market_id == uuid_of(market_id))
            .order_by(trades.c.created_at, trades.c.id),
        )
        paid = sorted(amount for (amount,) in found)
        held = len(paid)
        # Each market's purchases went through one after another at rising prices.
        assert paid == expected[:held], market_id
        row = await market_row(db, uuid_of(market_id))
        assert row.q_yes == shares * held
        spent += sum(paid, Decimal(0))
        attempted = attempts.count(market_id)
        if held < attempted:
            # A refusal there means the next purchase in that market was unaffordable,
            # and the balance only fell afterwards: it still cannot pay for it.
            assert final < expected[held], (market_id, final, expected[held])
    assert spent == START - final
    assert successes == sum(1 for r in results if r["__typename"] == "BuySharesSuccess")
    # Every refusal reports a balance that could not cover what was asked.
    for refused in (r for r in results if r["__typename"] == "InsufficientBalanceError"):
        assert Decimal(refused["available"]) < Decimal(refused["required"])


async def test_two_hundred_racing_trades_by_twenty_users_keep_the_market_whole(
    gql: GraphQLClient, make_account: MakeAccount, make_market: MakeMarket, db: AsyncEngine
) -> None:
    owner = await make_account("Venue")
    market_id = (await make_market(owner))["id"]
    traders = [await make_account(f"Crowd {i}") for i in range(20)]
    # Give everyone something to sell first, so that sales race with purchases below.
    await asyncio.gather(*(buy(gql, t, market_id, "YES", shares="6") for t in traders))
    await asyncio.gather(*(buy(gql, t, market_id, "NO", shares="6") for t in traders))

    rng = random.Random(20)
    plan: list[tuple[Any, str, str, str]] = []
    for _ in range(200):
        trader = rng.choice(traders)
        outcome = rng.choice(["YES", "NO"])
        side = rng.choice(["buy", "buy-shares", "sell"])
        size = str(Decimal(rng.randint(1, 400)) / 100)
        plan.append((trader, side, outcome, size))

    async def trade(trader: Any, side: str, outcome: str, size: str) -> dict[str, Any]:
        if side == "buy":
            return await buy(gql, trader, market_id, outcome, amount=size)
        if side == "buy-shares":
            return await buy(gql, trader, market_id, outcome, shares=size)
        return await sell(gql, trader, market_id, outcome, shares=size)

    results = await asyncio.gather(*(trade(*step) for step in plan))
    kinds = {r["__typename"] for r in results}
    assert kinds <= {"BuySharesSuccess", "SellSharesSuccess", "InsufficientSharesError"}, kinds

    market = uuid_of(market_id)
    row = await market_row(db, market)
    held = await shares_held(db, market)
    assert (row.q_yes, row.q_no) == (held["YES"], held["NO"])
    found = await rows(
        db,
        sa.select(trades.c.user_id, trades.c.side, trades.c.amount).where(
            trades.c.market_id == market
        ),
    )
    succeeded = sum(r["__typename"].endswith("Success") for r in results)
    assert len(found) == 40 + succeeded
    assert row.volume == sum((amount for _, _, amount in found), Decimal(0))
    flows: dict[Any, Decimal] = defaultdict(Decimal)
    for user_id, side, amount in found:
        flows[user_id] += amount if str(side) == "SELL" else -amount
    for trader in traders:
        assert await balance(db, trader.uuid) == START + flows[trader.uuid]
        assert await ledger_sum(db, trader.uuid) == START + flows[trader.uuid]
