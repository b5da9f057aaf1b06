"""Trades under concurrency on PostgreSQL: every limit holds, no money appears or vanishes.

The expected costs come from an independent 80-digit LMSR here, not from the code
under test.
"""

from __future__ import annotations

import asyncio
import random
from collections import defaultdict
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from decimal import MAX_EMAX, MIN_EMIN, ROUND_CEILING, Context, Decimal, localcontext
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from infra.db.models import trades
from infra.settings import Settings
from tests.api import roomy
from tests.api.readside import uuid_of
from tests.api.trading import balance, buy, ledger_sum, market_row, rows, sell, shares_held
from tests.support import GraphQLClient, LiveServer, MakeAccount, MakeMarket

START = Decimal(1000)
B = Decimal(100)
REFERENCE = Context(prec=80, Emax=MAX_EMAX, Emin=MIN_EMIN)
# Longer than any wait here can last. 200 purchases in one market take turns on its row, each
# holding a pooled connection while it waits: on a busy 2-core machine the last ones wait
# several seconds for a connection, which the default 5 s pool timeout rightly answers with
# 503 (back-pressure). What these tests count is money, not how fast it moves.
PATIENCE = 300


@pytest.fixture(scope="module")
def server(settings: Settings) -> Iterator[LiveServer]:
    """The shared server's configuration with waits as long as ``PATIENCE``."""
    with roomy.running(replace(settings, db_pool_timeout_seconds=PATIENCE)) as live:
        yield live


@pytest.fixture(scope="module")
async def http(server: LiveServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=server.url, timeout=PATIENCE) as client:
        yield client


gql = roomy.gql


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


def affordable(costs: list[Decimal], budget: Decimal) -> int:
    """How many purchases of the ladder ``costs``, in order, ``budget`` pays for."""
    count, spent = 0, Decimal(0)
    for cost in costs:
        if spent + cost > budget:
            break
        count, spent = count + 1, spent + cost
    return count


async def test_two_hundred_racing_identical_purchases_succeed_exactly_as_often_as_affordable(
    gql: GraphQLClient, make_account: MakeAccount, make_market: MakeMarket, db: AsyncEngine
) -> None:
    owner, buyer = await make_account("Ladder"), await make_account("Climber")
    market_id = (await make_market(owner))["id"]
    shares = Decimal(10)
    # One market, one size: the k-th purchase to get through costs the k-th step of the
    # ladder whoever sent it, so how many the balance pays for does not depend on the order
    # in which they arrive.
    ladder = reference_costs(shares, 200)
    n = affordable(ladder, START)
    assert 0 < n < 200  # the balance covers some, not all (106 of them)
    spent = sum(ladder[:n], Decimal(0))

    results = await asyncio.gather(
        *(buy(gql, buyer, market_id, "YES", shares=str(shares)) for _ in range(200))
    )
    won = [r for r in results if r["__typename"] == "BuySharesSuccess"]
    refused = [r for r in results if r["__typename"] == "InsufficientBalanceError"]
    assert len(won) == n
    assert len(refused) == 200 - n, {r["__typename"] for r in results}
    # Each success paid a step of the ladder and saw the balance that step left.
    assert sorted(Decimal(r["trade"]["amount"]) for r in won) == ladder[:n]
    assert sorted(Decimal(r["user"]["balance"]) for r in won) == sorted(
        START - sum(ladder[: k + 1], Decimal(0)) for k in range(n)
    )
    # The purchases lock the market first, so every refusal met the market after all n
    # successes: the next step, and what was left of the balance.
    assert {(Decimal(r["required"]), Decimal(r["available"])) for r in refused} == {
        (ladder[n], START - spent)
    }

    final = await balance(db, buyer.uuid)
    assert final == START - spent
    assert await ledger_sum(db, buyer.uuid) == final
    market = uuid_of(market_id)
    row = await market_row(db, market)
    assert (row.q_yes, row.q_no) == (shares * n, 0)
    assert await shares_held(db, market) == {"YES": row.q_yes, "NO": row.q_no}
    assert row.volume == spent
    paid = await rows(
        db,
        sa.select(trades.c.amount)
        .where(trades.c.market_id == market)
        .order_by(trades.c.created_at, trades.c.id),
    )
    assert sorted(amount for (amount,) in paid) == ladder[:n]


async def test_two_hundred_racing_purchases_spend_exactly_what_the_balance_allows(
    gql: GraphQLClient, make_account: MakeAccount, make_market: MakeMarket, db: AsyncEngine
) -> None:
    # Spread over five markets, how many succeed depends on the order of arrival (each
    # market's ladder is climbed apart): what must hold is that every market stopped only
    # where the balance left could not pay its next step.
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
