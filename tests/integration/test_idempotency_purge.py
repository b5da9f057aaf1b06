"""The purge of expired idempotency keys against a trade re-claiming one, on PostgreSQL.

Each interleaving is forced with two transactions and a row lock: one side holds the
key's row, the other is started and seen waiting on that lock (or finished, when it
skips the row) in ``pg_stat_activity`` before the first commits: no timing decides anything.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from domain.services.trading import TradingService
from infra.db.models import idempotency_keys
from infra.db.trading import SqlIdempotencyRepository
from infra.db.uow import SqlUnitOfWork
from tests.api.readside import Seed

OLD, NEW = "a" * 64, "b" * 64


def clock() -> datetime:
    return datetime.now(UTC)


async def expired_key(db: AsyncEngine) -> tuple[UUID, str]:
    """A user with a key whose 24 hours are over (no trade: the purge does not look)."""
    seed = Seed()
    user = seed.user("Key Holder")
    await seed.save(db)
    key = str(uuid.uuid4())
    at = clock() - timedelta(hours=25)
    async with db.begin() as conn:
        await conn.execute(
            sa.insert(idempotency_keys).values(
                user_id=user.id,
                key=key,
                fingerprint=OLD,
                trade_id=None,
                created_at=at,
                expires_at=at + timedelta(hours=24),
            )
        )
    return user.id, key


async def backend_pid(conn: AsyncConnection) -> int:
    return int((await conn.execute(sa.text("SELECT pg_backend_pid()"))).scalar_one())


async def blocked_by(observer: AsyncConnection, holder: int) -> bool:
    """Whether some session waits on a lock ``holder`` holds."""
    waiting = await observer.execute(
        sa.text(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE datname = current_database() AND :holder = ANY(pg_blocking_pids(pid))"
        ),
        {"holder": holder},
    )
    return int(waiting.scalar_one()) > 0


async def started_against(db: AsyncEngine, holder: int, work: Awaitable[Any]) -> asyncio.Task[Any]:
    """Start ``work`` and return once it waits on ``holder``'s lock or has finished.

    The deadline only bounds a hang: nothing is asserted about how long it took.
    """
    task = asyncio.ensure_future(work)
    deadline = time.monotonic() + 30
    # In autocommit: PostgreSQL keeps one snapshot of pg_stat_activity per transaction, so
    # polling inside one would never see the session that starts waiting after it began.
    async with db.connect() as conn:
        observer = await conn.execution_options(isolation_level="AUTOCOMMIT")
        while True:
            if task.done() or await blocked_by(observer, holder):
                return task
            if time.monotonic() > deadline:
                task.cancel()
                raise AssertionError("the second transaction neither waited nor finished")
            await asyncio.sleep(0.01)


async def stored(db: AsyncEngine, user_id: UUID, key: str) -> list[Any]:
    async with db.connect() as conn:
        found = await conn.execute(
            sa.select(idempotency_keys.c.fingerprint, idempotency_keys.c.expires_at).where(
                idempotency_keys.c.user_id == user_id, idempotency_keys.c.key == key
            )
        )
        return list(found.all())


async def test_a_key_re_claimed_while_the_purge_runs_survives_it(db: AsyncEngine) -> None:
    user_id, key = await expired_key(db)
    purge = TradingService(lambda: SqlUnitOfWork(db), clock).purge_expired_keys
    async with db.connect() as trade:
        async with trade.begin():
            # A new trade takes the expired key over: its row now expires tomorrow, but
            # until this commits, other transactions still see it expired.
            now = clock()
            claim = SqlIdempotencyRepository(trade)
            assert await claim.claim(user_id, key, NEW, now, now + timedelta(hours=24)) is None
            # The purge selects the key as expired and then waits on its row (or passes
            # over it, locked as it is).
            purging = await started_against(db, await backend_pid(trade), purge())
        await purging
    # The re-claimed key stands for the new trade: a retry of that trade finds it, and
    # does not trade a second time.
    [(fingerprint, expires_at)] = await stored(db, user_id, key)
    assert fingerprint == NEW
    assert expires_at > clock()


async def test_a_claim_that_waits_on_the_purge_gets_the_key(db: AsyncEngine) -> None:
    user_id, key = await expired_key(db)
    async with db.connect() as purging:
        async with purging.begin():
            assert await SqlIdempotencyRepository(purging).purge_expired(clock(), 1000) >= 1

            async def claim() -> object:
                async with SqlUnitOfWork(db) as uow:
                    now = clock()
                    held = await uow.idempotency.claim(
                        user_id, key, NEW, now, now + timedelta(hours=24)
                    )
                    await uow.commit()
                return held

            claiming = await started_against(db, await backend_pid(purging), claim())
        # The purge committed its delete: the claim, waiting on the row, inserts it anew.
        assert await claiming is None
    [(fingerprint, expires_at)] = await stored(db, user_id, key)
    assert fingerprint == NEW
    assert expires_at > clock()
