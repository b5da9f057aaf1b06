"""Settlement and the job runner on the real databases: batches, repeats, races, retries.

The services run on the test's own connection pool; the queue they hand jobs to
only records them (what carries a job is tested in tests/api/test_worker.py).
"""

from __future__ import annotations

import asyncio
import uuid
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from uuid import UUID

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from domain.commands import ResolveMarket
from domain.entities import Job, JobState, LedgerKind, MarketStatus, Outcome, Role
from domain.policy import Actor
from domain.services.jobs import AttemptFailed, JobRunner
from domain.services.lifecycle import MarketLifecycle
from infra.db.migrate import upgrade
from infra.db.models import ledger_entries, markets, positions, users
from infra.db.uow import SqlUnitOfWork
from tests.api.readside import Seed, SeedPosition, now

pytestmark = pytest.mark.embedded

MODERATOR = Actor(user_id=uuid.uuid4(), role=Role.MODERATOR)


class RecordingQueue:
    """A JobQueue that keeps what it was handed."""

    def __init__(self) -> None:
        self.jobs: list[Job] = []

    async def enqueue(self, job: Job) -> None:
        self.jobs.append(job)


def clock() -> datetime:
    return datetime.now(UTC)


@pytest.fixture
async def engine(db: AsyncEngine) -> AsyncEngine:
    await upgrade(db)  # the SQLite file, when no server has migrated it yet
    return db


def services(
    engine: AsyncEngine, batch: int = 4, max_attempts: int = 3
) -> tuple[MarketLifecycle, JobRunner, RecordingQueue]:
    queue = RecordingQueue()
    lifecycle = MarketLifecycle(lambda: SqlUnitOfWork(engine), clock, queue, batch_size=batch)
    runner = JobRunner(lambda: SqlUnitOfWork(engine), clock, lifecycle, queue, max_attempts)
    return lifecycle, runner, queue


async def seeded(engine: AsyncEngine, holders: int = 11) -> tuple[UUID, list[SeedPosition]]:
    seed = Seed()
    owner = seed.user("Owner")
    market = seed.market(owner.id, f"Settlement {uuid.uuid4().hex}?")
    made = []
    at = now() - timedelta(minutes=5)
    for i in range(holders):
        person = seed.user(f"Holder {i}")
        made.append(seed.buy(person.id, market, Outcome.YES, Decimal(i + 1), at))
        if i % 2:
            made.append(seed.buy(person.id, market, Outcome.NO, Decimal("0.5"), at))
    await seed.save(engine)
    return market.id, made


async def paid(
    engine: AsyncEngine, market_id: UUID, kind: LedgerKind
) -> list[tuple[UUID, Decimal]]:
    async with engine.connect() as conn:
        found = await conn.execute(
            sa.select(ledger_entries.c.user_id, ledger_entries.c.amount).where(
                ledger_entries.c.market_id == market_id, ledger_entries.c.kind == kind
            )
        )
        return sorted((row[0], row[1]) for row in found)


async def unsettled(engine: AsyncEngine, market_id: UUID) -> int:
    async with engine.connect() as conn:
        count = await conn.execute(
            sa.select(sa.func.count())
            .select_from(positions)
            .where(positions.c.market_id == market_id, positions.c.settled_at.is_(None))
        )
        return int(count.scalar_one())


async def test_a_payout_job_pays_each_winner_once_in_batches_and_a_rerun_pays_nothing(
    engine: AsyncEngine,
) -> None:
    market_id, made = await seeded(engine)
    lifecycle, runner, queue = services(engine, batch=4)
    settlement = await lifecycle.resolve(MODERATOR, ResolveMarket(market_id, Outcome.YES))
    assert settlement.market.status is MarketStatus.RESOLVED
    assert queue.jobs == [settlement.job]
    assert settlement.job.state is JobState.QUEUED

    beats = 0

    async def heartbeat() -> None:
        nonlocal beats
        beats += 1

    job = await runner.run(settlement.job.id, heartbeat)
    assert job is not None
    assert (job.state, job.attempts, job.error) == (JobState.COMPLETE, 1, None)
    assert job.finished_at is not None
    assert beats == 4  # 16 positions in batches of 4: one heartbeat per batch
    winners = sorted((p.user_id, p.shares) for p in made if p.outcome is Outcome.YES)
    assert await paid(engine, market_id, LedgerKind.PAYOUT) == winners
    assert await unsettled(engine, market_id) == 0

    again = await runner.run(settlement.job.id)
    assert again is not None
    assert (again.state, again.attempts) == (JobState.COMPLETE, 2)
    assert await paid(engine, market_id, LedgerKind.PAYOUT) == winners


async def test_racing_settlements_of_one_market_pay_once(engine: AsyncEngine) -> None:
    market_id, made = await seeded(engine, holders=20)
    lifecycle, _, _ = services(engine, batch=3)
    await lifecycle.cancel(MODERATOR, market_id)
    counts = await asyncio.gather(*(lifecycle.settle(market_id) for _ in range(4)))
    # Together they settled every position, each exactly once.
    assert sum(counts) == len(made)
    refunds: dict[UUID, Decimal] = defaultdict(Decimal)
    for position in made:
        refunds[position.user_id] += position.cost_basis
    found: dict[UUID, Decimal] = defaultdict(Decimal)
    for user_id, amount in await paid(engine, market_id, LedgerKind.REFUND):
        found[user_id] += amount
    assert found == refunds


async def test_only_open_markets_are_resolved_or_cancelled(engine: AsyncEngine) -> None:
    from domain.errors import InvalidState, NotFound

    market_id, _ = await seeded(engine, holders=1)
    lifecycle, _, queue = services(engine)
    await lifecycle.cancel(MODERATOR, market_id)
    with pytest.raises(InvalidState):
        await lifecycle.resolve(MODERATOR, ResolveMarket(market_id, Outcome.NO))
    with pytest.raises(InvalidState):
        await lifecycle.cancel(MODERATOR, market_id)
    with pytest.raises(NotFound):
        await lifecycle.cancel(MODERATOR, uuid.uuid4())
    assert len(queue.jobs) == 1


async def test_a_failing_attempt_keeps_its_error_and_the_last_one_fails_the_job(
    engine: AsyncEngine,
) -> None:
    market_id, _ = await seeded(engine, holders=2)
    lifecycle, runner, _ = services(engine, max_attempts=2)
    settlement = await lifecycle.resolve(MODERATOR, ResolveMarket(market_id, Outcome.YES))
    # A job whose market is gone cannot settle: every attempt fails the same way.
    async with engine.begin() as conn:
        await conn.execute(
            sa.text("UPDATE jobs SET market_id = NULL WHERE id = :id").bindparams(
                sa.bindparam("id", settlement.job.id, type_=sa.Uuid())
            )
        )
    with pytest.raises(AttemptFailed) as first:
        await runner.run(settlement.job.id)
    assert not first.value.final
    assert first.value.job.state is JobState.RETRYING
    assert "must name its market" in (first.value.job.error or "")
    with pytest.raises(AttemptFailed) as last:
        await runner.run(settlement.job.id)
    assert last.value.final
    failed = await runner.get(settlement.job.id)
    assert failed is not None
    assert (failed.state, failed.attempts) == (JobState.FAILED, 2)
    assert failed.error
    assert "must name its market" in failed.error
    assert failed.finished_at is not None
    # Handed over once more (a worker died, say): never run past its attempts.
    beyond = await runner.run(settlement.job.id)
    assert beyond is not None
    assert (beyond.state, beyond.attempts) == (JobState.FAILED, 3)
    assert beyond.error
    assert beyond.error.startswith("Gave up after 2 attempts")
    assert await unsettled(engine, market_id) == 3


async def test_closing_at_the_end_date_and_handing_lost_jobs_over_again(
    engine: AsyncEngine,
) -> None:
    seed = Seed()
    owner = seed.user("Closer")
    ended = seed.market(owner.id, f"Ended {uuid.uuid4().hex}?", end_date=now())
    running = seed.market(owner.id, f"Running {uuid.uuid4().hex}?")
    await seed.save(engine)
    lifecycle, runner, queue = services(engine)
    # (The test server's own schedule may close it first: either way it is closed once.)
    closed = await lifecycle.close_expired()
    assert running.id not in closed
    assert ended.id not in await lifecycle.close_expired()  # once closed, never again
    async with engine.connect() as conn:
        statuses = dict(
            (
                await conn.execute(
                    sa.select(markets.c.id, markets.c.status).where(
                        markets.c.id.in_([ended.id, running.id])
                    )
                )
            ).all()
        )
    assert statuses == {ended.id: MarketStatus.CLOSED, running.id: MarketStatus.ACTIVE}

    settlement = await lifecycle.cancel(MODERATOR, ended.id)
    queue.jobs.clear()
    # A fresh job is left alone; one that has not moved for long is handed over again.
    assert await runner.redispatch(stale_after=timedelta(minutes=2)) == 0
    assert queue.jobs == []
    assert await runner.redispatch(stale_after=timedelta(seconds=-1)) >= 1
    assert settlement.job.id in {job.id for job in queue.jobs}


async def test_a_balance_never_goes_negative_through_the_repository(engine: AsyncEngine) -> None:
    seed = Seed()
    person = seed.user("Debtor")
    await seed.save(engine)
    async with SqlUnitOfWork(engine) as uow:
        assert await uow.users.debit(person.id, Decimal("1000.00000001")) is None
        user = await uow.users.debit(person.id, Decimal("1000"))
        assert user is not None
        assert user.balance == 0
        # Rolled back: the ledger entry that would go with it is not written here.
    async with engine.connect() as conn:
        stored = await conn.execute(sa.select(users.c.balance).where(users.c.id == person.id))
        assert stored.scalar_one() == Decimal(1000)
