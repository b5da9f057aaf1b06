"""Resolution and cancellation through the API, paid by the job the mutation queued.

The test server runs jobs in process (saq on Redis against PostgreSQL, the
in-process runner on SQLite); ``tests/api/test_worker.py`` does the same with
real ``marketgraph worker`` processes.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from domain.entities import LedgerKind, Outcome
from infra.db.models import ledger_entries, positions
from infra.settings import Settings
from tests.api.readside import Seed, SeedPosition, global_id, now, uuid_of
from tests.api.trading import CANCEL, RESOLVE, balance, buy, rows, sell
from tests.support import Account, GraphQLClient, MakeAccount, MakeMarket, promote, wait_for_job

pytestmark = pytest.mark.embedded

POSITION = """
query ($id: ID!) {
  node(id: $id) { ... on Position { shares costBasis settledAt payout currentValue unrealizedPnl } }
}
"""


@dataclass
class Held:
    market_gid: str
    market_id: UUID
    positions: list[SeedPosition]
    users: list[UUID]


async def seed_market(db: AsyncEngine, owner: Account, holders: int = 9) -> Held:
    """A market with holders of YES, of NO, and of both."""
    seed = Seed()
    people = [seed.user(f"Holder {i}") for i in range(holders)]
    market = seed.market(owner.uuid, f"Settle {uuid.uuid4().hex}?")
    at = now() - timedelta(minutes=10)
    made = []
    for i, person in enumerate(people):
        if i % 3 != 1:
            made.append(seed.buy(person.id, market, Outcome.YES, Decimal(i + 1), at))
        if i % 3 != 0:
            made.append(seed.buy(person.id, market, Outcome.NO, Decimal(2 * i + 1), at))
    await seed.save(db)
    return Held(market.gid, market.id, made, [p.id for p in people])


async def balances(db: AsyncEngine, ids: list[UUID]) -> dict[UUID, Decimal]:
    return {ident: await balance(db, ident) for ident in ids}


async def settlement_entries(
    db: AsyncEngine, market_id: UUID, kind: LedgerKind
) -> list[tuple[UUID, Decimal]]:
    found = await rows(
        db,
        sa.select(ledger_entries.c.user_id, ledger_entries.c.amount).where(
            ledger_entries.c.market_id == market_id, ledger_entries.c.kind == kind
        ),
    )
    return sorted((user_id, amount) for user_id, amount in found)


async def settled(db: AsyncEngine, market_id: UUID) -> dict[UUID, Decimal | None]:
    found = await rows(
        db,
        sa.select(positions.c.id, positions.c.settled_amount, positions.c.settled_at).where(
            positions.c.market_id == market_id
        ),
    )
    return {ident: (amount if at is not None else None) for ident, amount, at in found}


@pytest.fixture
async def moderator(make_account: MakeAccount, db: AsyncEngine) -> Account:
    account = await make_account("Moderator")
    await promote(db, account, "MODERATOR")
    return account


async def resolve(
    gql: GraphQLClient, account: Account, market_gid: str, outcome: str
) -> dict[str, Any]:
    variables = {"input": {"marketId": market_gid, "outcome": outcome}}
    result: dict[str, Any] = (await gql.data(RESOLVE, variables, token=account.token))[
        "resolveMarket"
    ]
    return result


async def test_resolution_pays_every_winning_position_exactly_once(
    gql: GraphQLClient,
    make_account: MakeAccount,
    moderator: Account,
    db: AsyncEngine,
) -> None:
    owner = await make_account("Question")
    held = await seed_market(db, owner)
    before = await balances(db, held.users)

    result = await resolve(gql, moderator, held.market_gid, "NO")
    assert result["__typename"] == "ResolveMarketSuccess", result
    assert result["market"] == {"id": held.market_gid, "status": "RESOLVED", "outcome": "NO"}
    assert result["job"]["kind"] == "MARKET_PAYOUT"
    job = await wait_for_job(gql, result["job"]["id"], moderator.token)
    assert (job["state"], job["error"]) == ("COMPLETE", None), job

    winners = [p for p in held.positions if p.outcome is Outcome.NO]
    won: dict[UUID, Decimal] = defaultdict(Decimal)
    for p in winners:
        won[p.user_id] += p.shares
    assert await balances(db, held.users) == {u: before[u] + won[u] for u in held.users}
    assert await settlement_entries(db, held.market_id, LedgerKind.PAYOUT) == sorted(
        (p.user_id, p.shares) for p in winners
    )
    # Every position is marked with what it was paid: 1 per winning share, 0 otherwise.
    assert await settled(db, held.market_id) == {
        p.id: p.shares if p.outcome is Outcome.NO else Decimal(0) for p in held.positions
    }
    # Paid, a position's gain or loss is realized (payout - cost basis): none is unrealized.
    loser = next(p for p in held.positions if p.outcome is Outcome.YES)
    shown = (await gql.data(POSITION, {"id": loser.gid}))["node"]
    assert shown["settledAt"] is not None
    assert Decimal(shown["payout"]) == Decimal(shown["currentValue"]) == 0
    assert Decimal(shown["unrealizedPnl"]) == 0
    winner = next(p for p in held.positions if p.outcome is Outcome.NO)
    shown = (await gql.data(POSITION, {"id": winner.gid}))["node"]
    assert shown["settledAt"] is not None
    assert Decimal(shown["payout"]) == Decimal(shown["currentValue"]) == winner.shares
    assert Decimal(shown["unrealizedPnl"]) == 0


async def test_a_resolved_market_neither_trades_nor_resolves_nor_cancels_again(
    gql: GraphQLClient, make_account: MakeAccount, make_market: MakeMarket, moderator: Account
) -> None:
    owner, trader = await make_account("Done"), await make_account("Latecomer")
    market = await make_market(owner)
    bought = await buy(gql, trader, market["id"], "YES", shares="2")
    assert bought["__typename"] == "BuySharesSuccess"
    first = await resolve(gql, moderator, market["id"], "YES")
    await wait_for_job(gql, first["job"]["id"], moderator.token)
    assert (await buy(gql, trader, market["id"], "YES", amount="1"))["code"] == "MARKET_NOT_ACTIVE"
    assert (await sell(gql, trader, market["id"], "YES", shares="1"))["code"] == "MARKET_NOT_ACTIVE"
    again = await resolve(gql, moderator, market["id"], "NO")
    assert again["code"] == "INVALID_STATE"
    cancel = await gql.data(CANCEL, {"input": {"id": market["id"]}}, token=moderator.token)
    assert cancel["cancelMarket"]["code"] == "INVALID_STATE"


async def test_cancellation_refunds_what_each_position_still_cost(
    gql: GraphQLClient,
    make_account: MakeAccount,
    make_market: MakeMarket,
    moderator: Account,
    db: AsyncEngine,
) -> None:
    owner, trader = await make_account("Called Off"), await make_account("Refunded")
    market = await make_market(owner)
    bought = await buy(gql, trader, market["id"], "YES", shares="10")
    sold = await sell(gql, trader, market["id"], "YES", shares="4")
    other = await buy(gql, trader, market["id"], "NO", amount="3")
    basis = Decimal(sold["position"]["costBasis"]) + Decimal(other["trade"]["amount"])
    assert Decimal(bought["trade"]["amount"]) > Decimal(sold["position"]["costBasis"])
    before = await balance(db, trader.uuid)

    result = (await gql.data(CANCEL, {"input": {"id": market["id"]}}, token=moderator.token))[
        "cancelMarket"
    ]
    assert result["market"]["status"] == "CANCELLED"
    assert result["job"]["kind"] == "MARKET_REFUND"
    job = await wait_for_job(gql, result["job"]["id"], moderator.token)
    assert job["state"] == "COMPLETE", job
    # Sale proceeds are the trader's to keep; the cost basis left is what comes back.
    assert await balance(db, trader.uuid) == before + basis
    refunds = await settlement_entries(db, uuid_of(market["id"]), LedgerKind.REFUND)
    assert sorted(amount for _, amount in refunds) == sorted(
        [Decimal(sold["position"]["costBasis"]), Decimal(other["trade"]["amount"])]
    )


async def test_resolving_needs_market_resolve(
    gql: GraphQLClient, make_account: MakeAccount, make_market: MakeMarket
) -> None:
    owner, user = await make_account("Asker"), await make_account("Pretender")
    market = await make_market(owner)
    variables = {"input": {"marketId": market["id"], "outcome": "YES"}}
    for account in (owner, user):
        payload = await gql(RESOLVE, variables, token=account.token)
        assert payload["data"] == {"resolveMarket": None}
        assert [e["extensions"]["code"] for e in payload["errors"]] == ["FORBIDDEN"]
    payload = await gql(RESOLVE, variables)
    assert [e["extensions"]["code"] for e in payload["errors"]] == ["UNAUTHENTICATED"]
    still = await gql.data("query ($id: ID!) { market(id: $id) { status } }", {"id": market["id"]})
    assert still == {"market": {"status": "ACTIVE"}}


async def test_resolving_an_unknown_or_malformed_market(
    gql: GraphQLClient, moderator: Account, make_account: MakeAccount
) -> None:
    nowhere = global_id("Market", uuid.uuid4())
    assert (await resolve(gql, moderator, nowhere, "YES"))["code"] == "NOT_FOUND"
    someone = await make_account("Not A Market")
    wrong = await resolve(gql, moderator, someone.id, "YES")
    assert (wrong["__typename"], wrong["field"]) == ("ValidationError", "marketId")


async def test_jobs_are_visible_with_job_read_only(
    gql: GraphQLClient,
    make_account: MakeAccount,
    make_market: MakeMarket,
    moderator: Account,
) -> None:
    owner = await make_account("Watched")
    market = await make_market(owner)
    job_id = (await resolve(gql, moderator, market["id"], "YES"))["job"]["id"]
    query = "query ($id: ID!) { job(id: $id) { id kind market { id } } }"
    payload = await gql(query, {"id": job_id}, token=owner.token)
    assert payload["data"] == {"job": None}
    assert [e["extensions"]["code"] for e in payload["errors"]] == ["FORBIDDEN"]
    seen = (await gql.data(query, {"id": job_id}, token=moderator.token))["job"]
    assert seen == {"id": job_id, "kind": "MARKET_PAYOUT", "market": {"id": market["id"]}}
    node = "query ($id: ID!) { node(id: $id) { ... on Job { kind } } }"
    assert (await gql.data(node, {"id": job_id}, token=owner.token))["node"] is None
    assert (await gql.data(node, {"id": job_id}))["node"] is None
    assert (await gql.data(node, {"id": job_id}, token=moderator.token))["node"] == {
        "kind": "MARKET_PAYOUT"
    }
    missing = global_id("Job", uuid.uuid4())
    assert (await gql.data(query, {"id": missing}, token=moderator.token))["job"] is None


LEDGER_PATHS = {
    "user": "query ($id: ID!) { user(id: $id) { ledger(first: 5) { totalCount } } }",
    "node": (
        "query ($id: ID!) { node(id: $id) { ... on User { ledger(first: 5) { totalCount } } } }"
    ),
}


async def test_a_ledger_is_as_private_as_the_balance_on_every_path(
    gql: GraphQLClient,
    make_account: MakeAccount,
    make_market: MakeMarket,
    db: AsyncEngine,
    settings: Settings,
) -> None:
    owner, trader, stranger = (
        await make_account("Ledger Owner"),
        await make_account("Ledger Trader"),
        await make_account("Stranger"),
    )
    admin = await make_account("Ledger Admin")
    await promote(db, admin, "ADMIN")
    market = await make_market(owner)
    bought = await buy(gql, trader, market["id"], "YES", amount="4")
    trade_id = bought["trade"]["id"]
    for query in LEDGER_PATHS.values():
        for viewer, visible in ((trader, True), (admin, True), (stranger, False), (None, False)):
            token = None if viewer is None else viewer.token
            data = await gql.data(query, {"id": trader.id}, token=token)
            ledger = next(iter(data.values()))["ledger"]
            assert (ledger == {"totalCount": 2}) if visible else ledger is None, (query, viewer)
    through_trade = """
    query ($id: ID!) { node(id: $id) { ... on Trade { user { balance ledger(first: 5) {
      nodes { amount kind trade { id } } } } } } }
    """
    mine = (await gql.data(through_trade, {"id": trade_id}, token=trader.token))["node"]["user"]
    entries = mine["ledger"]["nodes"]
    assert [e["kind"] for e in entries] == ["TRADE", "SIGNUP_GRANT"]  # newest first
    assert entries[0]["trade"] == {"id": trade_id}
    assert sum(Decimal(e["amount"]) for e in entries) == Decimal(mine["balance"])
    theirs = (await gql.data(through_trade, {"id": trade_id}, token=stranger.token))["node"]
    assert theirs["user"] == {"balance": None, "ledger": None}
    # A ledger entry fetched by id is as private as the ledger.
    entry_query = "{ viewer { ledger(first: 1) { nodes { id } } } }"
    entry_id = (await gql.data(entry_query, token=trader.token))["viewer"]["ledger"]["nodes"][0][
        "id"
    ]
    by_id = "query ($id: ID!) { node(id: $id) { ... on LedgerEntry { amount } } }"
    assert (await gql.data(by_id, {"id": entry_id}, token=stranger.token))["node"] is None
    assert (await gql.data(by_id, {"id": entry_id}, token=trader.token))["node"] == {
        "amount": "-" + bought["trade"]["amount"]
    }
    assert settings.positions_public  # the trades themselves are public here


async def test_trades_and_price_history_of_a_market(
    gql: GraphQLClient, make_account: MakeAccount, make_market: MakeMarket
) -> None:
    owner, alice, bob = (
        await make_account("Chart"),
        await make_account("Alice"),
        await make_account("Bob"),
    )
    market = await make_market(owner)
    made = [
        await buy(gql, alice, market["id"], "YES", amount="6"),
        await buy(gql, bob, market["id"], "NO", shares="3"),
        await sell(gql, alice, market["id"], "YES", shares="2"),
        await buy(gql, bob, market["id"], "YES", amount="2"),
    ]
    query = """
    query ($id: ID!) {
      market(id: $id) {
        yesPrice
        trades(first: 3) { totalCount pageInfo { hasNextPage } nodes { id side user { id } } }
        priceHistory(interval: DAY) { start open high low close volume trades }
      }
    }
    """
    data = (await gql.data(query, {"id": market["id"]}))["market"]
    page = data["trades"]
    assert page["totalCount"] == 4
    assert page["pageInfo"]["hasNextPage"] is True
    assert [t["id"] for t in page["nodes"]] == [m["trade"]["id"] for m in reversed(made)][:3]
    assert [t["user"]["id"] for t in page["nodes"]] == [bob.id, alice.id, bob.id]
    assert len(data["priceHistory"]) == 1, data["priceHistory"]
    [bucket] = data["priceHistory"]
    assert bucket["trades"] == 4
    assert Decimal(bucket["volume"]) == sum(Decimal(m["trade"]["amount"]) for m in made)
    assert Decimal(bucket["open"]) == Decimal("0.5")
    assert bucket["close"] == data["yesPrice"]  # the last trade was a YES purchase
    yes_prices = [Decimal("0.5")] + [Decimal(m["market"]["yesPrice"]) for m in made]
    assert Decimal(bucket["high"]) == max(yes_prices)
    assert Decimal(bucket["low"]) == min(yes_prices)
    hours = await gql.data(
        "query ($id: ID!) { market(id: $id) { priceHistory(interval: MINUTE) { trades } } }",
        {"id": market["id"]},
    )
    assert sum(b["trades"] for b in hours["market"]["priceHistory"]) == 4


async def test_price_history_buckets_trades_by_the_interval(
    gql: GraphQLClient, make_account: MakeAccount, db: AsyncEngine
) -> None:
    owner = await make_account("Historian")
    seed = Seed()
    people = [seed.user(f"Dated {i}") for i in range(5)]
    base = now().replace(minute=0, second=0) - timedelta(hours=5)
    market = seed.market(owner.uuid, f"History {uuid.uuid4().hex}?", created_at=base)
    moments = [
        base + timedelta(minutes=5),
        base + timedelta(minutes=20),
        base + timedelta(minutes=59, seconds=59),
        base + timedelta(hours=1),
        base + timedelta(hours=3, minutes=30),
    ]
    for person, at in zip(people, moments, strict=True):
        seed.buy(person.id, market, Outcome.YES, Decimal(2), at)
    await seed.save(db)
    query = (
        "query ($id: ID!, $from: DateTime!, $to: DateTime!) { market(id: $id) {"
        " priceHistory(from: $from, to: $to, interval: HOUR) { start trades open close } } }"
    )
    variables = {
        "id": market.gid,
        "from": base.isoformat(),
        "to": (base + timedelta(hours=5)).isoformat(),
    }
    buckets = (await gql.data(query, variables))["market"]["priceHistory"]
    hours = [datetime.fromisoformat(b["start"]) for b in buckets]
    assert hours == [base, base + timedelta(hours=1), base + timedelta(hours=3)]
    assert [b["trades"] for b in buckets] == [3, 1, 1]
    # Each bucket opens where the one before closed: only trades move the price.
    assert [b["open"] for b in buckets[1:]] == [b["close"] for b in buckets[:-1]]
    later = {**variables, "from": (base + timedelta(hours=1)).isoformat()}
    assert [b["trades"] for b in (await gql.data(query, later))["market"]["priceHistory"]] == [1, 1]


async def test_price_history_ranges_are_bounded(
    gql: GraphQLClient, make_market: MakeMarket, make_account: MakeAccount
) -> None:
    market = await make_market(await make_account("Bounded"))
    query = (
        "query ($id: ID!, $from: DateTime, $to: DateTime) { market(id: $id) {"
        " priceHistory(from: $from, to: $to, interval: MINUTE) { trades } } }"
    )
    start = now()
    for variables, argument in (
        ({"from": (start - timedelta(days=1)).isoformat()}, "from"),
        ({"from": start.isoformat(), "to": (start - timedelta(hours=1)).isoformat()}, "from"),
        ({"to": start.replace(tzinfo=None).isoformat()}, "to"),
    ):
        payload = await gql(query, {"id": market["id"], **variables})
        [error] = payload["errors"]
        assert error["extensions"] == {"code": "BAD_USER_INPUT", "argument": argument}, payload
