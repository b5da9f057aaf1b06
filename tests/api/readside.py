"""Test data for the read side, written straight into the database.

There is no trading mutation yet, so positions are inserted here, each with the
BUY trade and the ledger entry that would have produced it: a user's balance
stays the sum of their ledger entries, and a market's outstanding shares and
volume stay the sum of its trades. Prices come from the domain's LMSR.
"""

from __future__ import annotations

import base64
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from domain.entities import LedgerKind, MarketStatus, Outcome, Role, TradeSide
from domain.money import QUANTUM
from domain.pricing import buy_cost, quoted_yes_price, yes_price
from infra.db.models import ledger_entries, markets, positions, trades, users

GRANT = Decimal(1000)
LIQUIDITY = Decimal(100)


def global_id(type_name: str, ident: UUID) -> str:
    """The id the API gives an object: clients treat it as opaque, tests may build one."""
    return base64.urlsafe_b64encode(f"{type_name}:{ident}".encode()).decode().rstrip("=")


def now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


@dataclass
class SeedUser:
    id: UUID
    email: str
    display_name: str
    balance: Decimal

    @property
    def gid(self) -> str:
        return global_id("User", self.id)


@dataclass
class SeedMarket:
    id: UUID
    name: str
    creator_id: UUID
    status: MarketStatus
    end_date: datetime
    created_at: datetime
    q_yes: Decimal = Decimal(0)
    q_no: Decimal = Decimal(0)
    volume: Decimal = Decimal(0)

    @property
    def gid(self) -> str:
        return global_id("Market", self.id)


@dataclass
class SeedPosition:
    id: UUID
    user_id: UUID
    market_id: UUID
    outcome: Outcome
    shares: Decimal
    cost_basis: Decimal
    created_at: datetime

    @property
    def gid(self) -> str:
        return global_id("Position", self.id)


@dataclass
class Seed:
    """Rows collected in memory, then written in one transaction by ``save``."""

    users: list[SeedUser] = field(default_factory=list)
    markets: list[SeedMarket] = field(default_factory=list)
    positions: list[SeedPosition] = field(default_factory=list)
    _user_rows: list[dict[str, Any]] = field(default_factory=list)
    _trade_rows: list[dict[str, Any]] = field(default_factory=list)
    _ledger_rows: list[dict[str, Any]] = field(default_factory=list)
    _balances: dict[UUID, Decimal] = field(default_factory=dict)
    _existing: dict[UUID, Decimal] = field(default_factory=dict)

    def user(self, display_name: str, created_at: datetime | None = None) -> SeedUser:
        ident = uuid.uuid4()
        at = created_at or now()
        email = f"seed.{ident.hex}@example.com"
        user = SeedUser(ident, email, display_name, GRANT)
        self.users.append(user)
        self._balances[ident] = GRANT
        self._user_rows.append(
            {
                "id": ident,
                "email": email,
                "display_name": display_name,
                "password_hash": "not-a-hash: seeded users never sign in",
                "role": Role.USER,
                "balance": GRANT,
                "created_at": at,
            }
        )
        self._ledger_rows.append(
            self._ledger(ident, GRANT, LedgerKind.SIGNUP_GRANT, None, None, at)
        )
        return user

    def existing_user(self, ident: UUID, balance: Decimal) -> None:
        """A user made through the API: their trades here debit their stored balance."""
        self._existing[ident] = balance
        self._balances[ident] = balance

    def market(
        self,
        creator_id: UUID,
        name: str,
        *,
        status: MarketStatus = MarketStatus.ACTIVE,
        end_date: datetime | None = None,
        created_at: datetime | None = None,
    ) -> SeedMarket:
        at = created_at or now()
        market = SeedMarket(
            id=uuid.uuid4(),
            name=name,
            creator_id=creator_id,
            status=status,
            end_date=end_date or at + timedelta(days=30),
            created_at=at,
        )
        self.markets.append(market)
        return market

    def buy(
        self,
        user_id: UUID,
        market: SeedMarket,
        outcome: Outcome,
        shares: Decimal,
        at: datetime,
    ) -> SeedPosition:
        """A first BUY of ``outcome`` by a user: a new position, its trade and ledger entry."""
        cost = buy_cost(market.q_yes, market.q_no, LIQUIDITY, outcome, shares)
        before = self._price(market, outcome)
        if outcome is Outcome.YES:
            market.q_yes += shares
        else:
            market.q_no += shares
        market.volume += cost
        after = self._price(market, outcome)
        self._balances[user_id] -= cost
        assert self._balances[user_id] >= 0, "seed too dense: a balance would go negative"
        trade_id = uuid.uuid4()
        self._trade_rows.append(
            {
                "id": trade_id,
                "user_id": user_id,
                "market_id": market.id,
                "outcome": outcome,
                "side": TradeSide.BUY,
                "shares": shares,
                "amount": cost,
                "price_before": before,
                "price_after": after,
                "created_at": at,
            }
        )
        self._ledger_rows.append(
            self._ledger(user_id, -cost, LedgerKind.TRADE, market.id, trade_id, at)
        )
        position = SeedPosition(uuid.uuid4(), user_id, market.id, outcome, shares, cost, at)
        self.positions.append(position)
        return position

    def balance(self, user_id: UUID) -> Decimal:
        return self._balances[user_id]

    @property
    def trade_rows(self) -> list[dict[str, Any]]:
        """The trade rows written so far (id, user_id, created_at, ...)."""
        return list(self._trade_rows)

    @property
    def ledger_rows(self) -> list[dict[str, Any]]:
        """The ledger rows written so far, sign-up grants included."""
        return list(self._ledger_rows)

    async def save(self, engine: AsyncEngine) -> None:
        for user in self.users:
            user.balance = self._balances[user.id]
        for row in self._user_rows:
            row["balance"] = self._balances[row["id"]]
        market_rows = [
            {
                "id": m.id,
                "name": m.name,
                "description": None,
                "status": m.status,
                "outcome": None,
                "creator_id": m.creator_id,
                "end_date": m.end_date,
                "liquidity": LIQUIDITY,
                "q_yes": m.q_yes,
                "q_no": m.q_no,
                "volume": m.volume,
                "created_at": m.created_at,
                "updated_at": m.created_at,
                "yes_price": quoted_yes_price(m.q_yes, m.q_no, LIQUIDITY),
            }
            for m in self.markets
        ]
        position_rows = [
            {
                "id": p.id,
                "user_id": p.user_id,
                "market_id": p.market_id,
                "outcome": p.outcome,
                "shares": p.shares,
                "cost_basis": p.cost_basis,
                "created_at": p.created_at,
                "updated_at": p.created_at,
            }
            for p in self.positions
        ]
        async with engine.begin() as conn:
            for table, rows in (
                (users, self._user_rows),
                (markets, market_rows),
                (trades, self._trade_rows),
                (ledger_entries, self._ledger_rows),
                (positions, position_rows),
            ):
                if rows:
                    await conn.execute(sa.insert(table), rows)
            for ident, balance in self._existing.items():
                updated = await conn.execute(
                    sa.update(users)
                    .where(users.c.id == ident, users.c.balance == balance)
                    .values(balance=self._balances[ident])
                )
                assert updated.rowcount == 1, "the user's balance changed under the seed"

    @staticmethod
    def _price(market: SeedMarket, outcome: Outcome) -> Decimal:
        price = yes_price(market.q_yes, market.q_no, LIQUIDITY).quantize(QUANTUM)
        return price if outcome is Outcome.YES else 1 - price

    @staticmethod
    def _ledger(
        user_id: UUID,
        amount: Decimal,
        kind: LedgerKind,
        market_id: UUID | None,
        trade_id: UUID | None,
        at: datetime,
    ) -> dict[str, Any]:
        return {
            "id": uuid.uuid4(),
            "user_id": user_id,
            "amount": amount,
            "kind": kind,
            "market_id": market_id,
            "trade_id": trade_id,
            "created_at": at,
        }


def uuid_of(gid: str) -> UUID:
    """The UUID inside an id the API gave out (checked against ``global_id`` by the tests)."""
    raw = base64.urlsafe_b64decode(gid + "=" * (-len(gid) % 4)).decode()
    type_name, _, ident = raw.partition(":")
    ident_uuid = UUID(ident)
    assert global_id(type_name, ident_uuid) == gid
    return ident_uuid
