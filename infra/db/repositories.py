"""Repositories: the writes of the use cases, on the unit of work's connection."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from domain.changes import MARKETS, Changes, Kind, Relation
from domain.entities import LedgerKind, Market, MarketStatus, Outcome, Role, User, UserCredentials
from domain.errors import Conflict
from domain.ports import NewLedgerEntry, NewUser
from infra.db.models import ledger_entries, markets, trades, users
from infra.db.rows import MARKET_COLUMNS, USER_COLUMNS, to_market, to_user
from infra.db.types import Money


def _violates_unique(error: IntegrityError, table: sa.Table, column: str) -> bool:
    """True when ``error`` is the unique constraint on ``table.column`` and nothing else.

    asyncpg reports the constraint by name (``uq_users_email``, from the naming
    convention); SQLite only says which column, in a fixed message. Matching
    exactly keeps another violation (a check, a foreign key) from being
    reported to the client as a taken name or email.
    """
    name = getattr(getattr(error.orig, "__cause__", None), "constraint_name", None)
    if name is not None:
        return bool(name == f"uq_{table.name}_{column}")
    return str(error.orig) == f"UNIQUE constraint failed: {table.name}.{column}"


class SqlUserRepository:
    """Users; every change to what a user shows is recorded in ``changes`` (``domain.changes``)."""

    def __init__(self, conn: AsyncConnection, changes: Changes | None = None) -> None:
        self._conn = conn
        self._changes = changes if changes is not None else Changes()

    async def add(self, user: NewUser) -> User:
        stmt = (
            sa.insert(users)
            .values(
                id=user.id,
                email=user.email,
                display_name=user.display_name,
                password_hash=user.password_hash,
                balance=user.balance,
                created_at=user.created_at,
            )
            .returning(*USER_COLUMNS)
        )
        try:
            row = (await self._conn.execute(stmt)).one()
        except IntegrityError as error:
            if _violates_unique(error, users, "email"):
                raise Conflict("email", "An account with this email already exists.") from None
            raise
        self._changes.entity(Kind.USER, user.id)
        return to_user(row)

    async def get(self, user_id: UUID) -> User | None:
        row = (
            await self._conn.execute(sa.select(*USER_COLUMNS).where(users.c.id == user_id))
        ).one_or_none()
        return None if row is None else to_user(row)

    async def credentials_by_email(self, email: str) -> UserCredentials | None:
        return await self._credentials(users.c.email == email)

    async def set_password_hash(self, user_id: UUID, password_hash: str) -> None:
        await self._conn.execute(
            sa.update(users).where(users.c.id == user_id).values(password_hash=password_hash)
        )

    async def credentials(self, user_id: UUID) -> UserCredentials | None:
        return await self._credentials(users.c.id == user_id)

    async def _credentials(self, where: sa.ColumnElement[bool]) -> UserCredentials | None:
        stmt = sa.select(
            users.c.id, users.c.password_hash, users.c.disabled, users.c.token_version
        ).where(where)
        row = (await self._conn.execute(stmt)).one_or_none()
        return None if row is None else UserCredentials(*row)

    async def bump_token_version(self, user_id: UUID) -> None:
        self._changes.entity(Kind.USER, user_id)
        await self._conn.execute(
            sa.update(users)
            .where(users.c.id == user_id)
            .values(token_version=users.c.token_version + 1)
        )

    async def set_role(self, user_id: UUID, role: Role) -> User | None:
        return await self._update(user_id, role=role)

    async def set_disabled(self, user_id: UUID, disabled: bool) -> User | None:
        return await self._update(user_id, disabled=disabled)

    async def credit(self, user_id: UUID, amount: Decimal) -> None:
        self._changes.entity(Kind.USER, user_id)
        await self._conn.execute(
            sa.update(users).where(users.c.id == user_id).values(balance=users.c.balance + amount)
        )

    async def debit(self, user_id: UUID, amount: Decimal) -> User | None:
        """Take ``amount`` only if the balance covers it, in one conditional update.

        The condition is evaluated on the row as locked by the update itself, so
        concurrent debits of one user can never take the balance below zero.
        """
        self._changes.entity(Kind.USER, user_id)
        stmt = (
            sa.update(users)
            .where(users.c.id == user_id, users.c.balance >= amount)
            .values(balance=users.c.balance - amount)
            .returning(*USER_COLUMNS)
        )
        row = (await self._conn.execute(stmt)).one_or_none()
        return None if row is None else to_user(row)

    async def credit_returning(self, user_id: UUID, amount: Decimal) -> User:
        self._changes.entity(Kind.USER, user_id)
        stmt = (
            sa.update(users)
            .where(users.c.id == user_id)
            .values(balance=users.c.balance + amount)
            .returning(*USER_COLUMNS)
        )
        return to_user((await self._conn.execute(stmt)).one())

    async def credit_many(self, credits: Sequence[tuple[UUID, Decimal]]) -> None:
        """Credit several users, in user-id order: concurrent batches lock rows in the
        same order, so they cannot deadlock on each other."""
        totals: dict[UUID, Decimal] = defaultdict(Decimal)
        for user_id, amount in credits:
            totals[user_id] += amount
        rows = [{"uid": user_id, "amount": totals[user_id]} for user_id in sorted(totals)]
        if not rows:
            return
        for user_id in totals:
            self._changes.entity(Kind.USER, user_id)
        stmt = (
            sa.update(users)
            .where(users.c.id == sa.bindparam("uid", type_=sa.Uuid()))
            .values(balance=users.c.balance + sa.bindparam("amount", type_=Money()))
        )
        await self._conn.execute(stmt, rows)

    async def _update(self, user_id: UUID, **values: object) -> User | None:
        self._changes.entity(Kind.USER, user_id)
        stmt = (
            sa.update(users).where(users.c.id == user_id).values(**values).returning(*USER_COLUMNS)
        )
        row = (await self._conn.execute(stmt)).one_or_none()
        return None if row is None else to_user(row)


class SqlMarketRepository:
    """Markets; every change is recorded in ``changes``: the market itself and the
    ``markets`` list (any change can move it in an order or a filter), and a new or
    deleted market in its creator's list too."""

    def __init__(self, conn: AsyncConnection, changes: Changes | None = None) -> None:
        self._conn = conn
        self._changes = changes if changes is not None else Changes()

    def _changed(self, market_id: UUID) -> None:
        self._changes.entity(Kind.MARKET, market_id)
        self._changes.listing(MARKETS)

    async def add(self, market: Market) -> Market:
        values = {column.name: getattr(market, column.name) for column in MARKET_COLUMNS}
        stmt = sa.insert(markets).values(**values).returning(*MARKET_COLUMNS)
        self._changed(market.id)
        self._changes.relation(Kind.USER, market.creator_id, Relation.MARKETS)
        return to_market(await self._write(stmt))

    async def get(self, market_id: UUID) -> Market | None:
        row = (
            await self._conn.execute(sa.select(*MARKET_COLUMNS).where(markets.c.id == market_id))
        ).one_or_none()
        return None if row is None else to_market(row)

    async def get_for_update(self, market_id: UUID) -> Market | None:
        row = (
            await self._conn.execute(
                sa.select(*MARKET_COLUMNS).where(markets.c.id == market_id).with_for_update()
            )
        ).one_or_none()
        return None if row is None else to_market(row)

    async def save(self, market: Market) -> Market:
        self._changed(market.id)
        stmt = (
            sa.update(markets)
            .where(markets.c.id == market.id)
            .values(
                name=market.name,
                description=market.description,
                end_date=market.end_date,
                updated_at=market.updated_at,
            )
            .returning(*MARKET_COLUMNS)
        )
        return to_market(await self._write(stmt))

    async def set_status(self, market_id: UUID, status: MarketStatus, now: datetime) -> Market:
        self._changed(market_id)
        stmt = (
            sa.update(markets)
            .where(markets.c.id == market_id)
            .values(status=status, updated_at=now)
            .returning(*MARKET_COLUMNS)
        )
        return to_market((await self._conn.execute(stmt)).one())

    async def resolve(self, market_id: UUID, outcome: Outcome, now: datetime) -> Market:
        self._changed(market_id)
        stmt = (
            sa.update(markets)
            .where(markets.c.id == market_id)
            .values(status=MarketStatus.RESOLVED, outcome=outcome, updated_at=now)
            .returning(*MARKET_COLUMNS)
        )
        return to_market((await self._conn.execute(stmt)).one())

    async def apply_trade(
        self,
        market_id: UUID,
        q_yes: Decimal,
        q_no: Decimal,
        volume: Decimal,
        yes_price: Decimal,
        now: datetime,
    ) -> Market:
        """Write the state a trade left; the caller holds the market row's lock."""
        self._changed(market_id)
        stmt = (
            sa.update(markets)
            .where(markets.c.id == market_id)
            .values(q_yes=q_yes, q_no=q_no, volume=volume, yes_price=yes_price, updated_at=now)
            .returning(*MARKET_COLUMNS)
        )
        return to_market((await self._conn.execute(stmt)).one())

    async def close_expired(self, now: datetime) -> list[UUID]:
        stmt = (
            sa.update(markets)
            .where(markets.c.status == MarketStatus.ACTIVE, markets.c.end_date <= now)
            .values(status=MarketStatus.CLOSED, updated_at=now)
            .returning(markets.c.id)
        )
        closed: list[UUID] = [row[0] for row in (await self._conn.execute(stmt)).all()]
        for market_id in closed:
            self._changed(market_id)
        return closed

    async def has_trades(self, market_id: UUID) -> bool:
        stmt = sa.select(sa.exists().where(trades.c.market_id == market_id))
        return bool((await self._conn.execute(stmt)).scalar())

    async def delete(self, market_id: UUID) -> None:
        stmt = sa.delete(markets).where(markets.c.id == market_id).returning(markets.c.creator_id)
        creator = (await self._conn.execute(stmt)).scalar_one_or_none()
        self._changed(market_id)
        if creator is not None:
            self._changes.relation(Kind.USER, creator, Relation.MARKETS)

    async def _write(self, stmt: sa.Executable) -> sa.Row[object]:
        # A violation aborts the transaction; the use case ends with it, so no savepoint.
        try:
            return (await self._conn.execute(stmt)).one()
        except IntegrityError as error:
            if _violates_unique(error, markets, "name"):
                raise Conflict("name", "A market with this name already exists.") from None
            raise


class SqlLedgerRepository:
    def __init__(self, conn: AsyncConnection, changes: Changes | None = None) -> None:
        self._conn = conn
        self._changes = changes if changes is not None else Changes()

    async def add(
        self,
        user_id: UUID,
        amount: Decimal,
        kind: LedgerKind,
        at: datetime,
        market_id: UUID | None = None,
        trade_id: UUID | None = None,
    ) -> None:
        self._changes.relation(Kind.USER, user_id, Relation.LEDGER)
        await self._conn.execute(
            sa.insert(ledger_entries).values(
                id=uuid.uuid4(),
                user_id=user_id,
                amount=amount,
                kind=kind,
                market_id=market_id,
                trade_id=trade_id,
                created_at=at,
            )
        )

    async def add_many(self, entries: Sequence[NewLedgerEntry]) -> None:
        if not entries:
            return
        for entry in entries:
            self._changes.relation(Kind.USER, entry.user_id, Relation.LEDGER)
        await self._conn.execute(
            sa.insert(ledger_entries),
            [
                {
                    "id": uuid.uuid4(),
                    "user_id": entry.user_id,
                    "amount": entry.amount,
                    "kind": entry.kind,
                    "market_id": entry.market_id,
                    "trade_id": None,
                    "created_at": entry.at,
                }
                for entry in entries
            ],
        )
