"""``marketgraph worker``: runs background jobs from Redis, and the jobs' composition.

``JobSystem`` builds what trading and the market lifecycle need to queue and run
jobs, for the API (``graph/app.py``) and for workers alike: with Redis, jobs go
to saq and any number of ``marketgraph worker`` processes, on any host, run
them (the API may run one in process too, ``RUN_JOBS_IN_PROCESS``); without
Redis, the API process runs the same job functions itself.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import structlog
from saq import Worker

from domain.ports import JobQueue, UnitOfWorkFactory
from domain.services.jobs import JobRunner
from domain.services.lifecycle import MarketLifecycle
from domain.services.trading import TradingService
from infra.jobs import (
    InProcessJobs,
    RetryPolicy,
    SaqJobQueue,
    WorkerTasks,
    enqueue_redis,
    saq_queue,
    saq_worker,
    scheduled_tasks,
    worker_redis,
)
from infra.settings import Settings

log = structlog.get_logger("marketgraph.worker")


def retry_policy(settings: Settings) -> RetryPolicy:
    return RetryPolicy(
        max_attempts=settings.job_max_attempts,
        delay_seconds=settings.job_retry_delay_seconds,
        max_delay_seconds=settings.job_retry_max_delay_seconds,
        timeout_seconds=settings.job_timeout_seconds,
        heartbeat_seconds=settings.job_heartbeat_seconds,
    )


class JobSystem:
    """The services that queue and run jobs, and the runner that carries them here."""

    def __init__(
        self, settings: Settings, uow: UnitOfWorkFactory, clock: Callable[[], datetime]
    ) -> None:
        self._settings = settings
        policy = retry_policy(settings)
        self._local: InProcessJobs | None = None
        self._saq: SaqJobQueue | None = None
        self.queue: JobQueue
        if settings.redis_url:
            self._saq = SaqJobQueue(
                saq_queue(enqueue_redis(settings.redis_url), settings.job_queue), policy
            )
            self.queue = self._saq
        else:
            self._local = InProcessJobs(policy)
            self.queue = self._local
        self.trading = TradingService(uow, clock)
        self.lifecycle = MarketLifecycle(uow, clock, self.queue, settings.settlement_batch_size)
        self.runner = JobRunner(uow, clock, self.lifecycle, self.queue, settings.job_max_attempts)
        self.tasks = WorkerTasks(
            self.runner,
            scheduled_tasks(
                self.lifecycle.close_expired,
                self.trading.purge_expired_keys,
                self.runner.redispatch,
                settings.market_close_cron,
            ),
        )
        if self._local is not None:
            self._local.attach(self.tasks)
        self._worker: Worker[Any] | None = None
        self._worker_task: asyncio.Task[None] | None = None

    def saq_worker(self, worker_id: str | None = None) -> Worker[Any]:
        """A saq worker taking this system's jobs from Redis."""
        settings = self._settings
        assert settings.redis_url, "saq workers take their jobs from Redis"
        return saq_worker(
            saq_queue(worker_redis(settings.redis_url), settings.job_queue),
            self.tasks,
            concurrency=settings.worker_concurrency,
            sweep_seconds=settings.worker_sweep_seconds,
            worker_id=worker_id,
        )

    async def start_in_process(self) -> None:
        """Run jobs in this (API) process: always without Redis, on request with it."""
        if self._local is not None:
            await self._local.start()
        elif self._settings.jobs_in_process:
            worker = self._worker = self.saq_worker()
            await worker.queue.connect()
            self._worker_task = asyncio.get_running_loop().create_task(worker.start())

    async def close(self) -> None:
        if self._worker is not None:
            await self._worker.stop()
            if self._worker_task is not None:
                await asyncio.gather(self._worker_task, return_exceptions=True)
            await self._worker.queue.disconnect()
        if self._local is not None:
            await self._local.stop()
        if self._saq is not None:
            await self._saq.close()


def _utcnow() -> datetime:
    return datetime.now(UTC)


async def run_worker(settings: Settings, concurrency: int | None = None) -> None:
    """Take jobs from Redis until SIGTERM or SIGINT; then finish or hand back what runs."""
    from dataclasses import replace

    from infra.cache import StoreInvalidator, cache_wire, response_store
    from infra.db.engine import create_engine
    from infra.db.migrate import ensure_current
    from infra.db.uow import SqlUnitOfWork
    from infra.logging import configure_logging
    from infra.redis import RedisBreaker

    configure_logging(settings.log_level, settings.log_format)
    if concurrency is not None:
        settings = replace(settings, worker_concurrency=concurrency)
    engine = create_engine(settings)
    assert settings.redis_url, "workers take their jobs from Redis"
    # The jobs' writes invalidate the API's response cache, like the mutations' do.
    wire = cache_wire(settings)
    store = response_store(settings, wire, RedisBreaker())
    invalidator = StoreInvalidator(store) if store is not None else None
    system = JobSystem(settings, lambda: SqlUnitOfWork(engine, invalidator), _utcnow)
    worker = system.saq_worker()
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)
    try:
        await ensure_current(engine)
        await worker.queue.connect()
        running = loop.create_task(worker.start())
        log.info(
            "worker.started",
            queue=settings.job_queue,
            worker_id=worker.id,
            concurrency=settings.worker_concurrency,
        )
        stop = loop.create_task(stopping.wait())
        await asyncio.wait({running, stop}, return_when=asyncio.FIRST_COMPLETED)
        await worker.stop()
        stop.cancel()
        await asyncio.gather(running, stop, return_exceptions=True)
        log.info("worker.stopped", worker_id=worker.id)
    finally:
        await worker.queue.disconnect()
        await system.close()
        if store is not None:
            await store.close()
        if wire is not None:
            await wire.close()
        await engine.dispose()
