"""Repositories of trading: positions, trades and idempotency keys, on the unit of work.

Upserts use ``INSERT ... ON CONFLICT``, which PostgreSQL and SQLite both have;
SQLAlchemy spells it per dialect, so ``_insert`` picks the dialect's construct.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from domain.changes import Changes, Kind, Relation
from domain.entities import Outcome, Position, Trade
from domain.ports import KeyRecord
from infra.db.models import idempotency_keys, positions, trades
from infra.db.rows import POSITION_COLUMNS, TRADE_COLUMNS, to_position, to_trade
from infra.db.types import Money, UTCDateTime


def _insert(conn: AsyncConnection, table: sa.Table) -> Any:
    """The dialect's INSERT, which knows ON CONFLICT (both dialects spell it alike)."""
    if conn.dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


class SqlPositionRepository:
    """Positions; each change is recorded in ``changes``, with the market's and the
    holder's position lists (a position opened joins both)."""

    def __init__(self, conn: AsyncConnection, changes: Changes | None = None) -> None:
        self._conn = conn
        self._changes = changes if changes is not None else Changes()

    def _changed(self, position: Position) -> Position:
        self._changes.entity(Kind.POSITION, position.id)
        self._changes.relation(Kind.MARKET, position.market_id, Relation.POSITIONS)
        self._changes.relation(Kind.USER, position.user_id, Relation.POSITIONS)
        return position

    async def get(self, user_id: UUID, market_id: UUID, outcome: Outcome) -> Position | None:
        row = (await self._conn.execute(self._holder(user_id, market_id, outcome))).one_or_none()
        return None if row is None else to_position(row)

    async def get_for_update(
        self, user_id: UUID, market_id: UUID, outcome: Outcome
    ) -> Position | None:
        stmt = self._holder(user_id, market_id, outcome).with_for_update()
        row = (await self._conn.execute(stmt)).one_or_none()
        return None if row is None else to_position(row)

    @staticmethod
    def _holder(user_id: UUID, market_id: UUID, outcome: Outcome) -> sa.Select[Any]:
        return sa.select(*POSITION_COLUMNS).where(
            positions.c.user_id == user_id,
            positions.c.market_id == market_id,
            positions.c.outcome == outcome,
        )

    async def add_shares(
        self,
        user_id: UUID,
        market_id: UUID,
        outcome: Outcome,
        shares: Decimal,
        cost: Decimal,
        now: datetime,
    ) -> Position:
        """Open the position or add to it, in one statement."""
        insert = _insert(self._conn, positions).values(
            id=uuid.uuid4(),
            user_id=user_id,
            market_id=market_id,
            outcome=outcome,
            shares=shares,
            cost_basis=cost,
            created_at=now,
            updated_at=now,
        )
        stmt = insert.on_conflict_do_update(
            index_elements=[positions.c.user_id, positions.c.market_id, positions.c.outcome],
            set_={
                "shares": positions.c.shares + insert.excluded.shares,
                "cost_basis": positions.c.cost_basis + insert.excluded.cost_basis,
                "updated_at": insert.excluded.updated_at,
            },
        ).returning(*POSITION_COLUMNS)
        return self._changed(to_position((await self._conn.execute(stmt)).one()))

    async def remove_shares(
        self, position_id: UUID, shares: Decimal, cost_basis: Decimal, now: datetime
    ) -> Position:
        stmt = (
            sa.update(positions)
            .where(positions.c.id == position_id)
            .values(
                shares=positions.c.shares - sa.literal(shares, Money()),
                cost_basis=positions.c.cost_basis - sa.literal(cost_basis, Money()),
                updated_at=now,
            )
            .returning(*POSITION_COLUMNS)
        )
        return self._changed(to_position((await self._conn.execute(stmt)).one()))

    async def unsettled_for_update(self, market_id: UUID, limit: int) -> list[Position]:
        stmt = (
            sa.select(*POSITION_COLUMNS)
            .where(positions.c.market_id == market_id, positions.c.settled_at.is_(None))
            .order_by(positions.c.id)
            .limit(limit)
            .with_for_update()
        )
        return [to_position(row) for row in (await self._conn.execute(stmt)).all()]

    async def mark_settled(self, settled: Sequence[tuple[UUID, Decimal]], now: datetime) -> None:
        if not settled:
            return
        for position_id, _ in settled:
            self._changes.entity(Kind.POSITION, position_id)
        stmt = (
            sa.update(positions)
            .where(
                positions.c.id == sa.bindparam("pid", type_=sa.Uuid()),
                positions.c.settled_at.is_(None),
            )
            .values(
                settled_at=sa.bindparam("at", type_=UTCDateTime()),
                settled_amount=sa.bindparam("paid", type_=Money()),
            )
        )
        await self._conn.execute(
            stmt, [{"pid": pid, "at": now, "paid": amount} for pid, amount in settled]
        )


class SqlTradeRepository:
    def __init__(self, conn: AsyncConnection, changes: Changes | None = None) -> None:
        self._conn = conn
        self._changes = changes if changes is not None else Changes()

    async def add(self, trade: Trade) -> None:
        """Record a trade: a new item of its market's and its trader's trade lists (and of
        the market's price history, which is made of them)."""
        self._changes.entity(Kind.TRADE, trade.id)
        self._changes.relation(Kind.MARKET, trade.market_id, Relation.TRADES)
        self._changes.relation(Kind.USER, trade.user_id, Relation.TRADES)
        values = {column.name: getattr(trade, column.name) for column in TRADE_COLUMNS}
        await self._conn.execute(sa.insert(trades).values(**values))

    async def get(self, trade_id: UUID) -> Trade | None:
        row = (
            await self._conn.execute(sa.select(*TRADE_COLUMNS).where(trades.c.id == trade_id))
        ).one_or_none()
        return None if row is None else to_trade(row)


class SqlIdempotencyRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def claim(
        self, user_id: UUID, key: str, fingerprint: str, now: datetime, expires_at: datetime
    ) -> KeyRecord | None:
        """Take the key for this transaction, or return the live record that holds it.

        One statement: insert the key, or take over an expired one. A concurrent
        transaction claiming the same key waits on the row until this one ends,
        then finds it taken (and reads the record) or free (if this one rolled back).
        """
        insert = _insert(self._conn, idempotency_keys).values(
            user_id=user_id,
            key=key,
            fingerprint=fingerprint,
            trade_id=None,
            created_at=now,
            expires_at=expires_at,
        )
        stmt = insert.on_conflict_do_update(
            index_elements=[idempotency_keys.c.user_id, idempotency_keys.c.key],
            set_={
                "fingerprint": insert.excluded.fingerprint,
                "trade_id": None,
                "created_at": insert.excluded.created_at,
                "expires_at": insert.excluded.expires_at,
            },
            where=idempotency_keys.c.expires_at <= now,
        ).returning(idempotency_keys.c.key)
        if (await self._conn.execute(stmt)).first() is not None:
            return None
        row = (
            await self._conn.execute(
                sa.select(idempotency_keys.c.fingerprint, idempotency_keys.c.trade_id).where(
                    idempotency_keys.c.user_id == user_id, idempotency_keys.c.key == key
                )
            )
        ).one()
        return KeyRecord(fingerprint=row[0], trade_id=row[1])

    async def record(self, user_id: UUID, key: str, trade_id: UUID) -> None:
        await self._conn.execute(
            sa.update(idempotency_keys)
            .where(idempotency_keys.c.user_id == user_id, idempotency_keys.c.key == key)
            .values(trade_id=trade_id)
        )

    async def purge_expired(self, now: datetime, limit: int) -> int:
        """Delete up to ``limit`` expired keys.

        A trade may take an expired key over (``claim``) while this runs. The rows are
        chosen locked, skipping any a claim holds, so none can be re-claimed between
        choosing and deleting; and the delete checks expiry again, on the row as it is
        when locked (PostgreSQL re-reads a row a concurrent transaction changed), so a
        key moved into the future is never removed for the trade that now owns it.
        """
        expired = (
            sa.select(idempotency_keys.c.user_id, idempotency_keys.c.key)
            .where(idempotency_keys.c.expires_at <= now)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        stmt = sa.delete(idempotency_keys).where(
            sa.tuple_(idempotency_keys.c.user_id, idempotency_keys.c.key).in_(expired),
            idempotency_keys.c.expires_at <= now,
        )
        result = await self._conn.execute(stmt)
        return int(result.rowcount)
