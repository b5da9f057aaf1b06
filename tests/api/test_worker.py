"""Real ``marketgraph worker`` processes on Redis: payouts and refunds exactly once,
also when a job runs twice and when its worker is killed mid-batch and restarted;
scheduled closing de-duplicated across workers.

Each test run has its own queue (its own key prefix); the API server here only
enqueues (``RUN_JOBS_IN_PROCESS=false``). Worker processes are started with
subprocess and always stopped by their PID.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
import orjson
import pytest
import redis
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from domain.entities import Job, JobState, LedgerKind, MarketStatus, Outcome
from domain.services.jobs import JobRunner
from domain.services.lifecycle import MarketLifecycle
from infra.db.models import jobs, ledger_entries, markets, positions, users
from infra.db.rows import JOB_COLUMNS, to_job
from infra.db.uow import SqlUnitOfWork
from infra.jobs import RetryPolicy, SaqJobQueue, saq_queue, worker_redis
from infra.settings import Settings
from tests.api.readside import Seed, SeedPosition, now
from tests.api.trading import CANCEL, RESOLVE
from tests.support import (
    Account,
    GraphQLClient,
    LiveServer,
    MakeAccount,
    free_port,
    promote,
    wait_for_job,
)

MARKETGRAPH = str(Path(sys.executable).with_name("marketgraph"))
BATCH = 5
WAIT_SECONDS = 90.0
WORKER_ENV = {
    # Small batches so that a kill can land mid-settlement; fast heartbeats and sweeps
    # so that a dead worker's job is recovered within seconds.
    "SETTLEMENT_BATCH_SIZE": str(BATCH),
    "JOB_HEARTBEAT_SECONDS": "2",
    "WORKER_SWEEP_SECONDS": "1",
    "JOB_RETRY_DELAY_SECONDS": "0",
    "LOG_FORMAT": "json",
    "LOG_LEVEL": "INFO",
}


@dataclasses.dataclass
class Setup:
    settings: Settings
    gql: GraphQLClient
    env: dict[str, str]
    logs: Path


class Worker:
    """One ``marketgraph worker`` process, stopped (or killed) by its PID."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.log = log
        self._file = log.open("wb")
        self.process = subprocess.Popen(
            [MARKETGRAPH, "worker"],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self._file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def lines(self) -> list[str]:
        if not self._file.closed:
            self._file.flush()
        return self.log.read_text(errors="replace").splitlines()

    def events(self, name: str) -> list[dict[str, Any]]:
        found = []
        for line in self.lines():
            if line.startswith("{") and f'"{name}"' in line:
                event = orjson.loads(line)
                if event.get("event") == name:
                    found.append(event)
        return found

    async def started(self) -> None:
        await eventually(
            lambda: _true(bool(self.events("worker.started"))), "the worker starts", self
        )

    def stop(self) -> int:
        """SIGTERM, and the exit code of an orderly shutdown."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout=30)
        self._file.close()
        return code

    def kill(self) -> None:
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)
        self._file.close()


async def _true(value: bool) -> bool:
    return value


async def eventually(check: Callable[[], Awaitable[bool]], what: str, *workers: Worker) -> None:
    """Wait until ``check`` holds; the deadline only bounds a hang."""
    deadline = time.monotonic() + WAIT_SECONDS
    while not await check():
        for worker in workers:
            if worker.process.poll() is not None:
                raise AssertionError(f"worker exited: {worker.lines()[-20:]}")
        if time.monotonic() > deadline:
            tails = [w.lines()[-20:] for w in workers]
            raise AssertionError(f"timed out waiting until {what}: {tails}")
        await asyncio.sleep(0.1)


@pytest.fixture(scope="module")
def setup(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    prefix = f"mgworker:{uuid.uuid4().hex[:10]}:"
    # The heartbeat and retries of a job are set by whoever hands it over: the API here.
    own = dataclasses.replace(
        settings,
        redis_key_prefix=prefix,
        job_queue=f"{prefix}jobs",
        jobs_in_process=False,
        job_heartbeat_seconds=int(WORKER_ENV["JOB_HEARTBEAT_SECONDS"]),
    )
    server = LiveServer(own)
    server.start()
    yield server
    server.stop()
    # This run's queue: saq:<queue>:..., saq:job:<queue>:... (the queue is <prefix>jobs).
    client = redis.Redis.from_url(settings.redis_url or "")
    # Workers invalidate the response cache too: its keys are {<prefix>cache}:...
    for pattern in (f"{prefix}*", f"saq:{prefix}*", f"saq:job:{prefix}*", f"{{{prefix}*"):
        keys = list(client.scan_iter(match=pattern))
        if keys:
            client.delete(*keys)
    client.close()


@pytest.fixture
async def world(setup: LiveServer, tmp_path: Path) -> AsyncIterator[Setup]:
    settings = setup.settings
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DATABASE_", "REDIS_", "JOB_", "WORKER_", "MARKET_", "SETTLEMENT_"))
    }
    env |= {
        "DATABASE_URL": settings.database_url,
        "REDIS_URL": settings.redis_url or "",
        "REDIS_KEY_PREFIX": settings.redis_key_prefix,
        "JWT_SECRET": settings.jwt_secret,
        "MARKETGRAPH_DATA_DIR": str(tmp_path / "data"),
        **WORKER_ENV,
    }
    async with httpx.AsyncClient(base_url=setup.url, timeout=30) as client:
        yield Setup(settings, GraphQLClient(client), env, tmp_path)


@pytest.fixture
def workers(world: Setup) -> Iterator[Callable[..., Worker]]:
    started: list[Worker] = []

    def start(**extra: str) -> Worker:
        worker = Worker({**world.env, **extra}, world.logs / f"worker-{len(started)}.log")
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.kill()


@pytest.fixture
async def moderator(make_account: MakeAccount, db: AsyncEngine) -> Account:
    account = await make_account("Worker Moderator")
    await promote(db, account, "MODERATOR")
    return account


async def seed_holders(db: AsyncEngine, count: int) -> tuple[UUID, str, list[SeedPosition]]:
    """A market where ``count`` people hold one position each, alternately YES and NO."""
    seed = Seed()
    owner = seed.user("Owner")
    market = seed.market(owner.id, f"Worker {uuid.uuid4().hex}?")
    at = now() - timedelta(minutes=5)
    made = [
        seed.buy(
            seed.user(f"Holder {i}").id,
            market,
            Outcome.YES if i % 2 == 0 else Outcome.NO,
            Decimal(i + 1),
            at,
        )
        for i in range(count)
    ]
    await seed.save(db)
    return market.id, market.gid, made


async def end_market(world: Setup, moderator: Account, market_gid: str, how: str) -> dict[str, Any]:
    if how == "resolve":
        variables: dict[str, Any] = {"input": {"marketId": market_gid, "outcome": "YES"}}
        result = (await world.gql.data(RESOLVE, variables, token=moderator.token))["resolveMarket"]
    else:
        variables = {"input": {"id": market_gid}}
        result = (await world.gql.data(CANCEL, variables, token=moderator.token))["cancelMarket"]
    assert result["job"]["state"] == "QUEUED", result
    job: dict[str, Any] = result["job"]
    return job


def owed(made: list[SeedPosition], how: str) -> list[tuple[UUID, Decimal]]:
    """What settlement must pay, per position: YES wins, or every cost basis comes back."""
    if how == "resolve":
        return sorted((p.user_id, p.shares) for p in made if p.outcome is Outcome.YES)
    return sorted((p.user_id, p.cost_basis) for p in made)


async def settlement_entries(db: AsyncEngine, market_id: UUID) -> list[tuple[UUID, Decimal]]:
    async with db.connect() as conn:
        found = await conn.execute(
            sa.select(ledger_entries.c.user_id, ledger_entries.c.amount).where(
                ledger_entries.c.market_id == market_id,
                ledger_entries.c.kind.in_([LedgerKind.PAYOUT, LedgerKind.REFUND]),
            )
        )
        return sorted((row[0], row[1]) for row in found)


async def settled_count(db: AsyncEngine, market_id: UUID) -> int:
    async with db.connect() as conn:
        found = await conn.execute(
            sa.select(sa.func.count())
            .select_from(positions)
            .where(positions.c.market_id == market_id, positions.c.settled_at.is_not(None))
        )
        return int(found.scalar_one())


async def job_row(db: AsyncEngine, job_gid: str) -> Job:
    from tests.api.readside import uuid_of

    async with db.connect() as conn:
        row = (
            await conn.execute(sa.select(*JOB_COLUMNS).where(jobs.c.id == uuid_of(job_gid)))
        ).one()
    return to_job(row)


async def balances(db: AsyncEngine, ids: list[UUID]) -> dict[UUID, Decimal]:
    async with db.connect() as conn:
        found = await conn.execute(
            sa.select(users.c.id, users.c.balance).where(users.c.id.in_(ids))
        )
        return {row[0]: row[1] for row in found}


@pytest.mark.parametrize("how", ["resolve", "cancel"])
async def test_a_worker_settles_once_and_a_second_run_pays_nothing(
    world: Setup,
    workers: Callable[..., Worker],
    moderator: Account,
    db: AsyncEngine,
    how: str,
) -> None:
    market_id, market_gid, made = await seed_holders(db, 23)
    holders = [p.user_id for p in made]
    before = await balances(db, holders)
    worker = workers()
    await worker.started()

    job = await end_market(world, moderator, market_gid, how)
    done = await wait_for_job(world.gql, job["id"], moderator.token)
    assert (done["state"], done["attempts"], done["error"]) == ("COMPLETE", 1, None), done
    expected = owed(made, how)
    assert await settlement_entries(db, market_id) == expected
    paid = dict.fromkeys(holders, Decimal(0))
    for user_id, amount in expected:
        paid[user_id] += amount
    assert await balances(db, holders) == {u: before[u] + paid[u] for u in holders}

    # The same job handed to the workers again (what a lost acknowledgement would do).
    row = await job_row(db, job["id"])
    policy = RetryPolicy(5, 0, 1, 600, 2)
    queue = SaqJobQueue(
        saq_queue(worker_redis(world.env["REDIS_URL"]), world.settings.job_queue), policy
    )
    try:
        await queue.enqueue(row)
    finally:
        await queue.close()

    async def ran_again() -> bool:
        again: Job = await job_row(db, job["id"])
        return again.attempts == 2 and again.state is JobState.COMPLETE

    await eventually(ran_again, "the job ran a second time", worker)
    assert await settlement_entries(db, market_id) == expected
    assert await balances(db, holders) == {u: before[u] + paid[u] for u in holders}
    assert worker.stop() == 0


@pytest.mark.parametrize("how", ["resolve", "cancel"])
async def test_a_worker_killed_mid_batch_is_replaced_and_nobody_is_paid_twice(
    world: Setup,
    workers: Callable[..., Worker],
    moderator: Account,
    db: AsyncEngine,
    how: str,
) -> None:
    market_id, market_gid, made = await seed_holders(db, 5 * BATCH)
    holders = [p.user_id for p in made]
    before = await balances(db, holders)
    # Batches take positions in id order; hold the row of a holder in the third batch, so
    # that the worker commits two batches and then waits inside the third.
    by_id = sorted(made, key=lambda p: p.id)
    if how == "resolve":
        third = [p for p in by_id if p.outcome is Outcome.YES and p in by_id[2 * BATCH : 3 * BATCH]]
    else:
        third = by_id[2 * BATCH : 3 * BATCH]
    blocker = third[0].user_id
    async with db.connect() as lock:
        transaction = await lock.begin()
        await lock.execute(sa.select(users.c.id).where(users.c.id == blocker).with_for_update())

        first = workers()
        await first.started()
        job = await end_market(world, moderator, market_gid, how)

        async def two_batches_then_waiting() -> bool:
            if await settled_count(db, market_id) != 2 * BATCH:
                return False
            async with db.connect() as conn:
                waiting = await conn.execute(
                    sa.text(
                        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                        " AND wait_event_type = 'Lock'"
                    )
                )
                return int(waiting.scalar_one()) >= 1

        await eventually(two_batches_then_waiting, "two batches are paid, the third waits", first)
        first.kill()  # SIGKILL by PID, in the middle of the third batch
        await transaction.rollback()

    # The killed worker's open transaction never commits: still exactly two batches paid.
    assert await settled_count(db, market_id) == 2 * BATCH
    second = workers()
    await second.started()
    done = await wait_for_job(world.gql, job["id"], moderator.token)
    assert done["state"] == "COMPLETE", done
    assert done["attempts"] >= 2
    expected = owed(made, how)
    assert await settlement_entries(db, market_id) == expected
    assert await settled_count(db, market_id) == len(made)
    paid = dict.fromkeys(holders, Decimal(0))
    for user_id, amount in expected:
        paid[user_id] += amount
    assert await balances(db, holders) == {u: before[u] + paid[u] for u in holders}
    assert second.stop() == 0


async def test_closing_at_the_end_date_runs_once_per_tick_across_workers(
    world: Setup, workers: Callable[..., Worker], db: AsyncEngine
) -> None:
    seed = Seed()
    owner = seed.user("Deadline")
    ended = seed.market(owner.id, f"Deadline {uuid.uuid4().hex}?", end_date=now())
    await seed.save(db)
    every_second = {"MARKET_CLOSE_CRON": "* * * * * *"}
    pair = [workers(**every_second), workers(**every_second)]
    for worker in pair:
        await worker.started()

    async def closed() -> bool:
        async with db.connect() as conn:
            status = await conn.execute(sa.select(markets.c.status).where(markets.c.id == ended.id))
            return MarketStatus(status.scalar_one()) is MarketStatus.CLOSED

    await eventually(closed, "the ended market is closed", *pair)

    def ticks() -> list[int]:
        return [
            event["scheduled"]
            for worker in pair
            for event in worker.events("jobs.scheduled")
            if event["task"] == "close_expired_markets"
        ]

    async def several() -> bool:
        return len(ticks()) >= 4

    await eventually(several, "several ticks have run", *pair)
    for worker in pair:
        assert worker.stop() == 0
    seen = ticks()
    # Both workers schedule every tick; each tick ran on one of them only.
    assert len(seen) == len(set(seen)), seen


async def test_a_resolution_made_while_redis_is_unreachable_is_paid_later(
    setup: LiveServer,
    world: Setup,
    workers: Callable[..., Worker],
    moderator: Account,
    db: AsyncEngine,
) -> None:
    market_id, market_gid, made = await seed_holders(db, 7)
    # An API whose Redis is a port nobody listens on: the job cannot be handed over.
    cut_off = dataclasses.replace(setup.settings, redis_url=f"redis://127.0.0.1:{free_port()}/0")
    server = LiveServer(cut_off)
    server.start()
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
            variables = {"input": {"marketId": market_gid, "outcome": "YES"}}
            data = await GraphQLClient(client).data(RESOLVE, variables, token=moderator.token)
    finally:
        server.stop()
    result = data["resolveMarket"]
    assert result["market"]["status"] == "RESOLVED"
    assert result["job"]["state"] == "QUEUED"
    assert await settled_count(db, market_id) == 0

    # The job's row was written with the resolution; the dispatcher's next tick (run here
    # with no waiting period) hands it to the workers once Redis answers again.
    worker = workers()
    await worker.started()
    queue = SaqJobQueue(
        saq_queue(worker_redis(world.env["REDIS_URL"]), world.settings.job_queue),
        RetryPolicy(5, 0, 1, 600, 2),
    )
    try:
        lifecycle = MarketLifecycle(lambda: SqlUnitOfWork(db), now, queue)
        runner = JobRunner(lambda: SqlUnitOfWork(db), now, lifecycle, queue)
        assert await runner.redispatch(stale_after=timedelta(seconds=-1)) >= 1
    finally:
        await queue.close()
    done = await wait_for_job(world.gql, result["job"]["id"], moderator.token)
    assert done["state"] == "COMPLETE", done
    assert await settlement_entries(db, market_id) == owed(made, "resolve")
    assert worker.stop() == 0


async def test_a_worker_without_redis_says_so_in_one_line(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DATABASE_URL")}
    env["MARKETGRAPH_DATA_DIR"] = str(tmp_path / "data")
    process = await asyncio.create_subprocess_exec(
        MARKETGRAPH, "worker", env=env, stderr=asyncio.subprocess.PIPE
    )
    _, stderr = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode == 2
    [line] = stderr.decode().strip().splitlines()
    assert line.startswith("marketgraph: REDIS_URL: ")
