"""buyShares and sellShares through real HTTP: results as committed, typed errors that
change nothing, idempotency keys, and createMarket's initial purchase."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from datetime import timedelta
from decimal import ROUND_CEILING, ROUND_HALF_EVEN, Context, Decimal, localcontext
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from domain.entities import MarketStatus, Outcome
from domain.services.trading import TradingService
from infra.db.models import idempotency_keys, ledger_entries, markets, trades
from infra.db.uow import SqlUnitOfWork
from tests.api.readside import Seed, global_id, now, uuid_of
from tests.api.trading import (
    BUY,
    balance,
    buy,
    ledger_sum,
    market_row,
    rows,
    sell,
    shares_held,
    trade_count,
)
from tests.conftest import CREATE_MARKET, future
from tests.support import Account, GraphQLClient, MakeAccount, MakeMarket

pytestmark = pytest.mark.embedded

START = Decimal(1000)
UNIT = Decimal("0.00000001")
LIQUIDITY = Decimal(100)  # a new market's, when not given


async def fresh(make_account: MakeAccount, make_market: MakeMarket) -> tuple[Account, str]:
    """A trader with the starting balance and someone else's new market."""
    owner = await make_account("Owner")
    market = await make_market(owner)
    return await make_account("Trader"), market["id"]


async def unchanged(db: AsyncEngine, trader: Account, market_id: str) -> None:
    """Nothing was traded: balance, ledger, trades and the market as they started."""
    assert await balance(db, trader.uuid) == START
    assert await ledger_sum(db, trader.uuid) == START
    assert await trade_count(db, uuid_of(market_id)) == 0
    row = await market_row(db, uuid_of(market_id))
    assert (row.q_yes, row.q_no, row.volume) == (0, 0, 0)


async def test_buying_for_an_amount_shows_what_the_trade_committed(
    gql: GraphQLClient, make_account: MakeAccount, make_market: MakeMarket, db: AsyncEngine
) -> None:
    trader, market_id = await fresh(make_account, make_market)
    result = await buy(gql, trader, market_id, "YES", amount="10")
    assert result["__typename"] == "BuySharesSuccess", result
    trade, position, market, user = (result[k] for k in ("trade", "position", "market", "user"))
    paid, shares = Decimal(trade["amount"]), Decimal(trade["shares"])
    assert trade["side"] == "BUY"
    assert trade["outcome"] == "YES"
    assert 0 < paid <= 10
    assert shares > paid  # a price below 1 buys more than a share per unit of money
    assert Decimal(trade["priceBefore"]) == Decimal("0.5")
    assert Decimal(trade["priceAfter"]) == Decimal(market["yesPrice"]) > Decimal("0.5")
    assert result["replayed"] is False
    # Post-trade values everywhere, also through the loaders the request primed before the
    # trade: the viewer's row at authentication.
    new_balance = START - paid
    assert Decimal(user["balance"]) == new_balance
    assert Decimal(position["user"]["balance"]) == new_balance
    assert position["market"]["yesPrice"] == market["yesPrice"]
    assert Decimal(position["shares"]) == shares
    assert Decimal(position["costBasis"]) == paid
    assert (Decimal(market["yesShares"]), Decimal(market["noShares"])) == (shares, Decimal(0))
    assert Decimal(market["volume"]) == paid
    # And the database agrees.
    assert await balance(db, trader.uuid) == new_balance
    assert await ledger_sum(db, trader.uuid) == new_balance
    row = await market_row(db, uuid_of(market_id))
    assert (row.q_yes, row.q_no, row.volume) == (shares, 0, paid)
    assert await shares_held(db, uuid_of(market_id)) == {"YES": shares, "NO": 0}


POST_TRADE = """
mutation ($market: ID!, $key: String!) {
  before: buyShares(
    input: {marketId: $market, outcome: YES, shares: "10", idempotencyKey: $key}
  ) { ...Shown }
  first: buyShares(input: {marketId: $market, outcome: YES, shares: "10"}) { ...Shown }
  second: buyShares(input: {marketId: $market, outcome: NO, shares: "5"}) { ...Shown }
}
fragment Shown on BuySharesResult {
  __typename
  ... on BuySharesSuccess {
    replayed
    trade { amount market { yesPrice yesShares noShares volume } user { balance } }
    position { outcome shares costBasis market { yesPrice noShares } user { balance } }
    market { yesPrice noPrice yesShares noShares volume }
    user { balance positions(first: 5) { nodes { outcome shares costBasis } } }
  }
}
"""
REFERENCE = Context(prec=80)


def reference_buy(q_yes: Decimal, q_no: Decimal, outcome: str, shares: Decimal) -> Decimal:
    """What the purchase costs, from the textbook LMSR at 80 digits, rounded up to 8 places."""

    def cost(yes: Decimal, no: Decimal) -> Decimal:
        return LIQUIDITY * ((yes / LIQUIDITY).exp() + (no / LIQUIDITY).exp()).ln()

    with localcontext(REFERENCE):
        after = (q_yes + shares, q_no) if outcome == "YES" else (q_yes, q_no + shares)
        return (cost(*after) - cost(q_yes, q_no)).quantize(UNIT, rounding=ROUND_CEILING)


def reference_yes_price(q_yes: Decimal, q_no: Decimal) -> Decimal:
    """The YES price a market shows: at 8 places, rounded half-even."""
    with localcontext(REFERENCE):
        yes, no = (q_yes / LIQUIDITY).exp(), (q_no / LIQUIDITY).exp()
        return (yes / (yes + no)).quantize(UNIT, rounding=ROUND_HALF_EVEN)


@dataclass(frozen=True)
class After:
    """What one purchase of the document below should show."""

    replayed: bool
    amount: Decimal  # what the trade cost
    shares: tuple[Decimal, Decimal]  # the market's YES and NO shares after it
    spent: Decimal  # by the trader (the market's only one) in all, after it
    outcome: str  # of the trade's position
    holdings: dict[str, tuple[Decimal, Decimal]]  # every position: shares, cost basis


async def test_each_trade_of_a_document_shows_its_own_post_trade_values(
    gql: GraphQLClient, make_account: MakeAccount, make_market: MakeMarket
) -> None:
    """Three purchases in one request, each result checked against values computed here.

    ``before`` replays an earlier purchase: it reads the market, the position and the user
    as they are before ``first`` and leaves them in the request's loaders, through which
    ``trade.market``, ``trade.user``, ``position.market`` and ``position.user`` are read.
    ``first`` must show what it committed, not what ``before`` read; ``second`` (the other
    outcome) what both left.
    """
    trader, market_id = await fresh(make_account, make_market)
    key = str(uuid.uuid4())
    opening = await buy(gql, trader, market_id, "YES", shares="10", idempotencyKey=key)
    assert opening["__typename"] == "BuySharesSuccess", opening
    data = await gql.data(POST_TRADE, {"market": market_id, "key": key}, token=trader.token)

    zero, five, ten, twenty = (Decimal(n) for n in (0, 5, 10, 20))
    c1 = reference_buy(zero, zero, "YES", ten)
    c2 = reference_buy(ten, zero, "YES", ten)
    c3 = reference_buy(twenty, zero, "NO", five)
    expected = {
        "before": After(True, c1, (ten, zero), c1, "YES", {"YES": (ten, c1)}),
        "first": After(False, c2, (twenty, zero), c1 + c2, "YES", {"YES": (twenty, c1 + c2)}),
        "second": After(
            False,
            c3,
            (twenty, five),
            c1 + c2 + c3,
            "NO",
            {"YES": (twenty, c1 + c2), "NO": (five, c3)},
        ),
    }
    for field, then in expected.items():
        shown = data[field]
        assert shown["__typename"] == "BuySharesSuccess", (field, shown)
        assert shown["replayed"] is then.replayed, field
        price = reference_yes_price(*then.shares)
        left = START - then.spent
        market = shown["market"]
        assert Decimal(market["yesPrice"]) == price, field
        assert Decimal(market["noPrice"]) == 1 - price, field
        assert (Decimal(market["yesShares"]), Decimal(market["noShares"])) == then.shares
        # The trader is the market's only one: its volume is what they spent.
        assert Decimal(market["volume"]) == then.spent, field
        trade = shown["trade"]
        assert Decimal(trade["amount"]) == then.amount, field
        assert Decimal(trade["market"]["yesPrice"]) == price, field
        traded = trade["market"]
        assert (Decimal(traded["yesShares"]), Decimal(traded["noShares"])) == then.shares
        assert Decimal(traded["volume"]) == then.spent, field
        assert Decimal(trade["user"]["balance"]) == left, field
        position = shown["position"]
        assert position["outcome"] == then.outcome, field
        held = (Decimal(position["shares"]), Decimal(position["costBasis"]))
        assert held == then.holdings[then.outcome], field
        assert Decimal(position["market"]["yesPrice"]) == price, field
        assert Decimal(position["market"]["noShares"]) == then.shares[1], field
        assert Decimal(position["user"]["balance"]) == left, field
        user = shown["user"]
        assert Decimal(user["balance"]) == left, field
        assert {
            p["outcome"]: (Decimal(p["shares"]), Decimal(p["costBasis"]))
            for p in user["positions"]["nodes"]
        } == then.holdings, field


async def test_buying_shares_then_selling_them_back(
    gql: GraphQLClient, make_account: MakeAccount, make_market: MakeMarket, db: AsyncEngine
) -> None:
    trader, market_id = await fresh(make_account, make_market)
    bought = await buy(gql, trader, market_id, "NO", shares="25")
    assert bought["__typename"] == "BuySharesSuccess", bought
    cost = Decimal(bought["trade"]["amount"])
    assert Decimal(bought["trade"]["shares"]) == 25
    assert Decimal(bought["market"]["noPrice"]) > Decimal("0.5")

    sold = await sell(gql, trader, market_id, "NO", shares="25")
    assert sold["__typename"] == "SellSharesSuccess", sold
    proceeds = Decimal(sold["trade"]["amount"])
    assert sold["trade"]["side"] == "SELL"
    assert 0 < proceeds <= cost  # a round trip never makes money
    assert Decimal(sold["position"]["shares"]) == 0
    assert Decimal(sold["position"]["costBasis"]) == 0
    assert Decimal(sold["user"]["balance"]) == START - cost + proceeds
    assert Decimal(sold["market"]["noShares"]) == 0
    assert Decimal(sold["market"]["volume"]) == cost + proceeds
    assert await ledger_sum(db, trader.uuid) == START - cost + proceeds


async def test_a_partial_sale_keeps_the_rest_of_the_cost_basis(
    gql: GraphQLClient, make_account: MakeAccount, make_market: MakeMarket
) -> None:
    trader, market_id = await fresh(make_account, make_market)
    bought = await buy(gql, trader, market_id, "YES", shares="10")
    cost = Decimal(bought["trade"]["amount"])
    sold = await sell(gql, trader, market_id, "YES", shares="4")
    assert sold["__typename"] == "SellSharesSuccess", sold
    # 4/10 of the basis leaves, rounded up: what stays never exceeds its share.
    leaving = (cost * 4 / 10).quantize(UNIT, rounding=ROUND_CEILING)
    assert Decimal(sold["position"]["costBasis"]) == cost - leaving
    assert Decimal(sold["position"]["shares"]) == 6


async def test_a_purchase_the_balance_cannot_cover_changes_nothing(
    gql: GraphQLClient, make_account: MakeAccount, make_market: MakeMarket, db: AsyncEngine
) -> None:
    trader, market_id = await fresh(make_account, make_market)
    result = await buy(gql, trader, market_id, "YES", shares="5000")
    assert result["__typename"] == "InsufficientBalanceError", result
    assert result["code"] == "INSUFFICIENT_BALANCE"
    assert Decimal(result["available"]) == START
    assert Decimal(result["required"]) > START
    await unchanged(db, trader, market_id)


async def test_selling_more_than_is_held_changes_nothing(
    gql: GraphQLClient, make_account: MakeAccount, make_market: MakeMarket, db: AsyncEngine
) -> None:
    trader, market_id = await fresh(make_account, make_market)
    nothing = await sell(gql, trader, market_id, "YES", shares="1")
    assert nothing["__typename"] == "InsufficientSharesError", nothing
    assert (Decimal(nothing["requested"]), Decimal(nothing["held"])) == (Decimal(1), Decimal(0))
    await unchanged(db, trader, market_id)
    await buy(gql, trader, market_id, "YES", shares="3")
    more = await sell(gql, trader, market_id, "YES", shares="3.00000001")
    assert more["__typename"] == "InsufficientSharesError", more
    assert Decimal(more["held"]) == 3
    # The other outcome's shares are another position.
    other = await sell(gql, trader, market_id, "NO", shares="1")
    assert other["code"] == "INSUFFICIENT_SHARES"
    assert await trade_count(db, uuid_of(market_id)) == 1


async def test_slippage_bounds_refuse_the_trade_and_change_nothing(
    gql: GraphQLClient, make_account: MakeAccount, make_market: MakeMarket, db: AsyncEngine
) -> None:
    trader, market_id = await fresh(make_account, make_market)
    # From 0.5 the price rises while buying 10 shares: the average is above 0.5.
    refused = await buy(gql, trader, market_id, "YES", shares="10", maxAveragePrice="0.5")
    assert refused["__typename"] == "SlippageExceededError", refused
    assert refused["code"] == "SLIPPAGE_EXCEEDED"
    assert Decimal(refused["averagePrice"]) > Decimal(refused["limit"]) == Decimal("0.5")
    await unchanged(db, trader, market_id)

    bought = await buy(gql, trader, market_id, "YES", shares="10", maxAveragePrice="0.52")
    assert bought["__typename"] == "BuySharesSuccess", bought
    assert Decimal(bought["trade"]["averagePrice"]) <= Decimal("0.52")
    low = await sell(gql, trader, market_id, "YES", shares="10", minAveragePrice="0.99")
    assert low["__typename"] == "SlippageExceededError", low
    assert Decimal(low["averagePrice"]) < Decimal("0.99")
    assert await trade_count(db, uuid_of(market_id)) == 1


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        pytest.param({"amount": "0"}, ["amount"], id="zero"),
        pytest.param({"amount": "-5"}, ["amount"], id="negative"),
        pytest.param({"amount": "1.000000001"}, ["amount"], id="nine-places"),
        pytest.param({"amount": "1000000.00000001"}, ["amount"], id="above-the-maximum"),
        pytest.param({"shares": "0.000000001"}, ["shares"], id="shares-nine-places"),
        pytest.param({"amount": "5", "shares": "5"}, ["amount"], id="both-amount-and-shares"),
        pytest.param({}, ["amount"], id="neither-amount-nor-shares"),
        pytest.param({"amount": "5", "maxAveragePrice": "1.5"}, ["maxAveragePrice"], id="limit"),
        pytest.param({"amount": "5", "idempotencyKey": "a key"}, ["idempotencyKey"], id="key"),
        pytest.param(
            {
                "marketId": "junk",
                "amount": "0",
                "maxAveragePrice": "-1",
                "idempotencyKey": "",
            },
            ["marketId", "amount", "maxAveragePrice", "idempotencyKey"],
            id="every-field-at-once",
        ),
    ],
)
async def test_bad_trade_input_names_every_bad_field_and_changes_nothing(
    gql: GraphQLClient,
    make_account: MakeAccount,
    make_market: MakeMarket,
    db: AsyncEngine,
    fields: dict[str, str],
    expected: list[str],
) -> None:
    trader, market_id = await fresh(make_account, make_market)
    variables = {"input": {"marketId": market_id, "outcome": "YES", **fields}}
    result = (await gql.data(BUY, variables, token=trader.token))["buyShares"]
    assert result["__typename"] == "ValidationError", result
    assert result["code"] == "VALIDATION_FAILED"
    assert [f["field"] for f in result["fields"]] == expected
    assert result["field"] == expected[0]
    assert all(f["message"] for f in result["fields"])
    await unchanged(db, trader, market_id)


async def test_a_sale_of_bad_share_counts_is_refused(
    gql: GraphQLClient, make_account: MakeAccount, make_market: MakeMarket
) -> None:
    trader, market_id = await fresh(make_account, make_market)
    for shares in ("0", "-1", "0.123456789", "1000001"):
        result = await sell(gql, trader, market_id, "YES", shares=shares)
        assert result["__typename"] == "ValidationError", result
        assert [f["field"] for f in result["fields"]] == ["shares"]


async def test_an_unknown_market_is_not_found(
    gql: GraphQLClient, make_account: MakeAccount
) -> None:
    trader = await make_account("Lost")
    nowhere = global_id("Market", uuid.uuid4())
    assert (await buy(gql, trader, nowhere, amount="1"))["code"] == "NOT_FOUND"
    assert (await sell(gql, trader, nowhere, shares="1"))["code"] == "NOT_FOUND"


async def test_trading_needs_a_signed_in_user(gql: GraphQLClient) -> None:
    payload = await gql(
        BUY, {"input": {"marketId": global_id("Market", uuid.uuid4()), "outcome": "YES"}}
    )
    assert payload["data"] == {"buyShares": None}
    assert [e["extensions"]["code"] for e in payload["errors"]] == ["UNAUTHENTICATED"]


@pytest.mark.parametrize(
    "status", [MarketStatus.CLOSED, MarketStatus.RESOLVED, MarketStatus.CANCELLED, "ended"]
)
async def test_only_an_active_market_before_its_end_date_trades(
    gql: GraphQLClient, make_account: MakeAccount, db: AsyncEngine, status: object
) -> None:
    owner, trader = await make_account("Owner"), await make_account("Late")
    seed = Seed()
    if status == "ended":
        # Still ACTIVE: the scheduled close has not come round yet, but the end date has.
        market = seed.market(owner.uuid, f"Ended {uuid.uuid4().hex}?", end_date=now())
    else:
        assert isinstance(status, MarketStatus)
        market = seed.market(owner.uuid, f"{status} {uuid.uuid4().hex}?", status=status)
    await seed.save(db)
    result = await buy(gql, trader, market.gid, amount="5")
    assert result["__typename"] == "MarketNotActiveError", result
    assert result["code"] == "MARKET_NOT_ACTIVE"
    assert await balance(db, trader.uuid) == START


# --- idempotency keys ----------------------------------------------------------------------


async def test_a_repeat_with_the_same_key_returns_the_trade_and_moves_no_money(
    gql: GraphQLClient, make_account: MakeAccount, make_market: MakeMarket, db: AsyncEngine
) -> None:
    trader, market_id = await fresh(make_account, make_market)
    key = str(uuid.uuid4())
    first = await buy(gql, trader, market_id, "YES", amount="20", idempotencyKey=key)
    assert first["__typename"] == "BuySharesSuccess", first
    after_first = await balance(db, trader.uuid)
    again = await buy(gql, trader, market_id, "YES", amount="20.00000000", idempotencyKey=key)
    assert again["replayed"] is True
    # Nothing traded since: the replay shows what the first request showed, position too.
    assert again["trade"] == first["trade"]
    assert again["position"] == first["position"]
    assert Decimal(again["position"]["shares"]) == Decimal(first["trade"]["shares"])
    assert again["user"] == first["user"]
    assert again["market"] == first["market"]
    assert await balance(db, trader.uuid) == after_first
    assert await trade_count(db, uuid_of(market_id)) == 1

    reused = await buy(gql, trader, market_id, "YES", amount="21", idempotencyKey=key)
    assert reused["__typename"] == "IdempotencyKeyReusedError", reused
    assert reused["code"] == "IDEMPOTENCY_KEY_REUSED"
    as_sale = await sell(gql, trader, market_id, "YES", shares="1", idempotencyKey=key)
    assert as_sale["code"] == "IDEMPOTENCY_KEY_REUSED"
    assert await trade_count(db, uuid_of(market_id)) == 1
    assert await balance(db, trader.uuid) == after_first

    # Keys belong to their user: someone else's identical key is their own.
    other = await make_account("Other")
    theirs = await buy(gql, other, market_id, "YES", amount="20", idempotencyKey=key)
    assert theirs["__typename"] == "BuySharesSuccess"
    assert theirs["replayed"] is False
    assert theirs["trade"]["id"] != first["trade"]["id"]


async def test_a_refused_trade_does_not_use_up_its_key(
    gql: GraphQLClient, make_account: MakeAccount, make_market: MakeMarket
) -> None:
    trader, market_id = await fresh(make_account, make_market)
    key = str(uuid.uuid4())
    refused = await buy(gql, trader, market_id, "YES", shares="5000", idempotencyKey=key)
    assert refused["code"] == "INSUFFICIENT_BALANCE"
    done = await buy(gql, trader, market_id, "YES", shares="5", idempotencyKey=key)
    assert done["__typename"] == "BuySharesSuccess"
    assert done["replayed"] is False


async def test_twenty_racing_replays_trade_exactly_once(
    gql: GraphQLClient, make_account: MakeAccount, make_market: MakeMarket, db: AsyncEngine
) -> None:
    trader, market_id = await fresh(make_account, make_market)
    key = str(uuid.uuid4())
    results = await asyncio.gather(
        *(buy(gql, trader, market_id, "NO", amount="7", idempotencyKey=key) for _ in range(20))
    )
    assert {r["__typename"] for r in results} == {"BuySharesSuccess"}
    assert len({r["trade"]["id"] for r in results}) == 1
    assert sorted(r["replayed"] for r in results) == [False] + [True] * 19
    assert await trade_count(db, uuid_of(market_id)) == 1
    paid = Decimal(results[0]["trade"]["amount"])
    assert await balance(db, trader.uuid) == START - paid
    assert await ledger_sum(db, trader.uuid) == START - paid


async def test_an_expired_key_is_free_again_and_the_purge_removes_expired_keys(
    gql: GraphQLClient,
    make_account: MakeAccount,
    make_market: MakeMarket,
    db: AsyncEngine,
) -> None:
    trader, market_id = await fresh(make_account, make_market)
    old, live = str(uuid.uuid4()), str(uuid.uuid4())
    await buy(gql, trader, market_id, "YES", amount="3", idempotencyKey=old)
    await buy(gql, trader, market_id, "YES", amount="3", idempotencyKey=live)
    async with db.begin() as conn:
        await conn.execute(
            sa.update(idempotency_keys)
            .where(idempotency_keys.c.key == old)
            .values(expires_at=now() - timedelta(seconds=1))
        )
    # Past its 24 hours the key may stand for a new, different trade.
    fresh_use = await buy(gql, trader, market_id, "NO", amount="4", idempotencyKey=old)
    assert fresh_use["__typename"] == "BuySharesSuccess", fresh_use
    assert fresh_use["replayed"] is False

    async with db.begin() as conn:
        await conn.execute(
            sa.update(idempotency_keys)
            .where(idempotency_keys.c.key == old)
            .values(expires_at=now() - timedelta(seconds=1))
        )
    # The scheduled task that workers run: here on the test's own connection pool.
    purged = await TradingService(lambda: SqlUnitOfWork(db), now).purge_expired_keys()
    assert purged >= 1
    kept = await rows(
        db,
        sa.select(idempotency_keys.c.key).where(idempotency_keys.c.user_id == trader.uuid),
    )
    assert [key for (key,) in kept] == [live]


# --- createMarket with an initial purchase -------------------------------------------------


async def create(gql: GraphQLClient, account: Account, **fields: Any) -> dict[str, Any]:
    document = CREATE_MARKET.replace(
        "... on CreateMarketSuccess { market { id name description endDate status yesPrice } }",
        "... on CreateMarketSuccess { market { id yesPrice yesShares volume }"
        " position { id outcome shares costBasis } }"
        " ... on InsufficientBalanceError { required available }",
    )
    assert document != CREATE_MARKET
    variables = {"input": {"name": f"Opening {uuid.uuid4().hex}?", "endDate": future(), **fields}}
    result: dict[str, Any] = (await gql.data(document, variables, token=account.token))[
        "createMarket"
    ]
    return result


async def test_a_market_opens_with_its_creators_first_purchase(
    gql: GraphQLClient, make_account: MakeAccount, db: AsyncEngine
) -> None:
    creator = await make_account("Opener")
    result = await create(gql, creator, initialPurchase={"outcome": "YES", "amount": "50"})
    assert result["__typename"] == "CreateMarketSuccess", result
    position, market = result["position"], result["market"]
    assert position["outcome"] == "YES"
    assert Decimal(position["shares"]) == Decimal(market["yesShares"]) > 0
    paid = Decimal(position["costBasis"])
    assert 0 < paid <= 50
    assert Decimal(market["volume"]) == paid
    assert Decimal(market["yesPrice"]) > Decimal("0.5")
    assert await balance(db, creator.uuid) == START - paid
    assert await trade_count(db, uuid_of(market["id"])) == 1


async def test_an_unaffordable_initial_purchase_creates_nothing(
    gql: GraphQLClient, make_account: MakeAccount, db: AsyncEngine
) -> None:
    creator = await make_account("Overreach")
    name = f"Unaffordable {uuid.uuid4().hex}?"
    result = await create(
        gql, creator, name=name, initialPurchase={"outcome": "NO", "amount": "1500"}
    )
    assert result["__typename"] == "InsufficientBalanceError", result
    assert Decimal(result["available"]) == START
    assert await rows(db, sa.select(markets.c.id).where(markets.c.name == name)) == []
    assert await balance(db, creator.uuid) == START
    assert await rows(db, sa.select(trades.c.id).where(trades.c.user_id == creator.uuid)) == []
    entries = await rows(
        db, sa.select(ledger_entries.c.kind).where(ledger_entries.c.user_id == creator.uuid)
    )
    assert [str(kind) for (kind,) in entries] == ["SIGNUP_GRANT"]


async def test_create_market_reports_every_bad_field_together(
    gql: GraphQLClient, make_account: MakeAccount
) -> None:
    creator = await make_account("Sloppy")
    document = CREATE_MARKET.replace(
        "... on ValidationError { field }", "... on ValidationError { field fields { field } }"
    )
    variables = {
        "input": {
            "name": " ",
            "endDate": (now() - timedelta(days=1)).isoformat(),
            "liquidity": "0",
            "initialPurchase": {"outcome": "YES", "amount": "0"},
        }
    }
    result = (await gql.data(document, variables, token=creator.token))["createMarket"]
    assert result["__typename"] == "ValidationError", result
    assert [f["field"] for f in result["fields"]] == [
        "name",
        "endDate",
        "liquidity",
        "initialPurchase.amount",
    ]
    assert result["field"] == "name"


async def test_the_seeded_outcomes_are_the_api_outcomes() -> None:
    # The tests above pass outcome names straight through; the enums must agree.
    assert [o.value for o in Outcome] == ["YES", "NO"]
