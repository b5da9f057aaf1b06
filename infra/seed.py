"""Demo and benchmark data.

Every row keeps the domain's invariants: each position comes from a recorded
BUY trade at the market maker's price, each trade debits the buyer through a
ledger entry, balances equal the sum of ledger entries, and each market's
outstanding shares and volume equal the sum of its trades.
"""

from __future__ import annotations

import math
import random
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from domain.entities import LedgerKind, MarketStatus, Outcome, Role, TradeSide
from domain.money import charge
from domain.pricing import quoted_yes_price
from infra.db.models import ledger_entries, markets, positions, trades, users

BATCH = 5000
DEMO_PASSWORD = "marketgraph-demo"
_TOPICS = [
    "Will it rain in Lisbon on {d}?",
    "Will the Q{q} inflation print exceed 3% by {d}?",
    "Will a crewed lunar landing happen by {d}?",
    "Will the city marathon record fall by {d}?",
    "Will open-source model #{n} top the leaderboard by {d}?",
    "Will the central bank cut rates by {d}?",
    "Will the new bridge open to traffic by {d}?",
    "Will team {n} win the league by {d}?",
]


@dataclass
class _Book:
    """A market's running state while its trades are generated."""

    q_yes: float = 0.0
    q_no: float = 0.0
    yes_shares: Decimal = Decimal(0)
    no_shares: Decimal = Decimal(0)
    volume: Decimal = Decimal(0)


@dataclass(frozen=True)
class SeedSize:
    users: int
    markets: int
    positions: int


DEMO = SeedSize(users=12, markets=40, positions=240)


def _fmt(x: float) -> Decimal:
    return Decimal(repr(round(x, 8))).quantize(Decimal("1e-8"))


# The LMSR again, in floats: 200,000 seeded trades in Decimal would take minutes. The
# amounts are recorded, not recomputed, so balances, ledger and volume stay consistent.
def _yes_price(q_yes: float, q_no: float, b: float) -> float:
    return 1.0 / (1.0 + math.exp((q_no - q_yes) / b))


def _cost(q_yes: float, q_no: float, b: float) -> float:
    top = max(q_yes, q_no) / b
    return b * (top + math.log(math.exp(q_yes / b - top) + math.exp(q_no / b - top)))


async def is_empty(engine: AsyncEngine) -> bool:
    async with engine.connect() as conn:
        return (await conn.execute(sa.select(sa.func.count()).select_from(users))).scalar_one() == 0


async def seed(engine: AsyncEngine, size: SeedSize, password_hash: str, rng_seed: int = 7) -> None:
    """Insert ``size`` worth of users, markets and positions (with their trades and ledger)."""
    rng = random.Random(rng_seed)  # noqa: S311 - reproducible demo data, not secrets
    now = datetime.now(UTC).replace(microsecond=0)
    grant = Decimal(1000)
    user_rows: list[dict[str, Any]] = []
    for i in range(size.users):
        role = Role.ADMIN if i == 0 else Role.MODERATOR if i == 1 else Role.USER
        user_rows.append(
            {
                "id": uuid.UUID(int=rng.getrandbits(128), version=4),
                "email": f"user{i}@example.com",
                "display_name": f"Trader {i}",
                "password_hash": password_hash,
                "role": role,
                "balance": grant,
                "created_at": now - timedelta(days=60, minutes=i),
            }
        )
    market_rows: list[dict[str, Any]] = []
    for i in range(size.markets):
        created = now - timedelta(days=30, minutes=i * 7)
        end = now + timedelta(days=1 + rng.randrange(365), hours=rng.randrange(24))
        topic = _TOPICS[i % len(_TOPICS)].format(d=end.date().isoformat(), q=1 + i % 4, n=i)
        market_rows.append(
            {
                "id": uuid.UUID(int=rng.getrandbits(128), version=4),
                "name": f"{topic} [#{i}]",
                "description": "Resolves YES if a reputable source reports it by the end date.",
                "status": MarketStatus.ACTIVE if i % 10 else MarketStatus.CLOSED,
                "outcome": None,
                "creator_id": user_rows[i % size.users]["id"],
                "end_date": end,
                "liquidity": Decimal(100),
                "q_yes": Decimal(0),
                "q_no": Decimal(0),
                "volume": Decimal(0),
                "created_at": created,
                "updated_at": created,
            }
        )
    books = {m["id"]: _Book() for m in market_rows}
    spent = {u["id"]: Decimal(0) for u in user_rows}
    holders: set[tuple[int, int, Outcome]] = set()
    position_rows: list[dict[str, Any]] = []
    trade_rows: list[dict[str, Any]] = []
    ledger_rows: list[dict[str, Any]] = []
    while len(position_rows) < size.positions:
        ui, mi = rng.randrange(size.users), rng.randrange(size.markets)
        outcome = Outcome.YES if rng.random() < 0.55 else Outcome.NO
        if (ui, mi, outcome) in holders:
            continue
        holders.add((ui, mi, outcome))
        user, market = user_rows[ui], market_rows[mi]
        book = books[market["id"]]
        shares = Decimal(rng.randrange(1, 9))
        q_yes, q_no, b = book.q_yes, book.q_no, 100.0
        before = _yes_price(q_yes, q_no, b)
        if outcome is Outcome.YES:
            new_yes, new_no = q_yes + float(shares), q_no
        else:
            new_yes, new_no = q_yes, q_no + float(shares)
        cost = charge(_fmt(_cost(new_yes, new_no, b) - _cost(q_yes, q_no, b)))
        book.q_yes, book.q_no = new_yes, new_no
        if outcome is Outcome.YES:
            book.yes_shares += shares
        else:
            book.no_shares += shares
        book.volume += cost
        spent[user["id"]] += cost
        at = market["created_at"] + timedelta(seconds=len(position_rows) + 1)
        trade_id = uuid.UUID(int=rng.getrandbits(128), version=4)
        price_before = _fmt(before if outcome is Outcome.YES else 1 - before)
        after = _yes_price(new_yes, new_no, b)
        price_after = _fmt(after if outcome is Outcome.YES else 1 - after)
        trade_rows.append(
            {
                "id": trade_id,
                "user_id": user["id"],
                "market_id": market["id"],
                "outcome": outcome,
                "side": TradeSide.BUY,
                "shares": shares,
                "amount": cost,
                "price_before": price_before,
                "price_after": price_after,
                "created_at": at,
            }
        )
        ledger_rows.append(
            {
                "id": uuid.UUID(int=rng.getrandbits(128), version=4),
                "user_id": user["id"],
                "amount": -cost,
                "kind": LedgerKind.TRADE,
                "market_id": market["id"],
                "trade_id": trade_id,
                "created_at": at,
            }
        )
        position_rows.append(
            {
                "id": uuid.UUID(int=rng.getrandbits(128), version=4),
                "user_id": user["id"],
                "market_id": market["id"],
                "outcome": outcome,
                "shares": shares,
                "cost_basis": cost,
                "created_at": at,
                "updated_at": at,
            }
        )
    for user in user_rows:
        user["balance"] = grant - spent[user["id"]]
        if user["balance"] < 0:
            raise ValueError("seed too dense: a user would go below zero; add users")
    for market in market_rows:
        book = books[market["id"]]
        market["q_yes"], market["q_no"] = book.yes_shares, book.no_shares
        market["volume"] = book.volume
        market["yes_price"] = quoted_yes_price(market["q_yes"], market["q_no"], market["liquidity"])
    grants = [
        {
            "id": uuid.UUID(int=rng.getrandbits(128), version=4),
            "user_id": u["id"],
            "amount": grant,
            "kind": LedgerKind.SIGNUP_GRANT,
            "market_id": None,
            "trade_id": None,
            "created_at": u["created_at"],
        }
        for u in user_rows
    ]
    async with engine.begin() as conn:
        for table, rows in (
            (users, user_rows),
            (markets, market_rows),
            (trades, trade_rows),
            (ledger_entries, grants + ledger_rows),
            (positions, position_rows),
        ):
            for start in range(0, len(rows), BATCH):
                await conn.execute(sa.insert(table), rows[start : start + BATCH])
