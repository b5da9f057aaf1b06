"""A real deadlock in PostgreSQL comes out of the unit of work as TransientConflict."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sqlalchemy.ext.asyncio import AsyncEngine

from domain.entities import Market, MarketStatus
from domain.errors import TransientConflict
from domain.retry import retrying
from infra.db.uow import SqlUnitOfWork
from tests.support import MakeAccount


def market(creator: uuid.UUID) -> Market:
    now = datetime.now(UTC)
    return Market(
        id=uuid.uuid4(),
        name=f"Deadlock {uuid.uuid4().hex}",
        description=None,
        status=MarketStatus.ACTIVE,
        outcome=None,
        creator_id=creator,
        end_date=now + timedelta(days=3),
        liquidity=Decimal(100),
        q_yes=Decimal(0),
        q_no=Decimal(0),
        volume=Decimal(0),
        created_at=now,
        updated_at=now,
        yes_price=Decimal("0.5"),
    )


async def test_crossed_row_locks_deadlock_into_a_transient_conflict(
    db: AsyncEngine, make_account: MakeAccount, backend: str
) -> None:
    owner = await make_account("Deadlocker")
    first, second = market(owner.uuid), market(owner.uuid)
    async with SqlUnitOfWork(db) as uow:
        await uow.markets.add(first)
        await uow.markets.add(second)
        await uow.commit()

    async def lock(a: Market, b: Market, both_hold_one: asyncio.Barrier) -> str:
        async with SqlUnitOfWork(db) as uow:
            await uow.markets.get_for_update(a.id)
            await both_hold_one.wait()
            await uow.markets.get_for_update(b.id)  # PostgreSQL breaks the cycle here
            await uow.commit()
        return "committed"

    barrier = asyncio.Barrier(2)
    outcomes = await asyncio.gather(
        lock(first, second, barrier), lock(second, first, barrier), return_exceptions=True
    )
    assert sum(isinstance(o, TransientConflict) for o in outcomes) == 1
    assert outcomes.count("committed") == 1

    # Run again, the sacrificed transaction goes through.
    assert await retrying(lambda: lock(second, first, asyncio.Barrier(1))) == "committed"
