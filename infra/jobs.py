"""Job queues: saq on Redis, and an in-process runner for the embedded default.

Both carry the same work: a tracked job (``JobRunner.run``, one attempt per
call, retried with exponential backoff and jitter) and three scheduled tasks
(close markets at their end date, remove expired idempotency keys, hand over
jobs whose hand-over was lost). The job's database row is its status; saq
carries it to a worker, retries it, and recovers it when its worker dies (a
job that stops sending heartbeats is swept and run again).

saq de-duplicates by job key: a tracked job's key is its id, and a scheduled
task's key is fixed, so however many workers schedule a tick, it runs once.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import structlog
from croniter import croniter
from prometheus_client import Counter
from redis.asyncio import BlockingConnectionPool, Redis
from redis.backoff import NoBackoff
from redis.exceptions import RedisError
from redis.retry import Retry
from saq import CronJob, Worker
from saq import Job as SaqJob
from saq.queue.redis import RedisQueue
from saq.types import PartialTimersDict
from structlog.contextvars import bound_contextvars

from domain.entities import Job
from domain.services.jobs import AttemptFailed, JobRunner

log = structlog.get_logger("marketgraph.jobs")

JOB_EVENTS = Counter(
    "marketgraph_job_events_total",
    "Tracked-job events in this process: enqueued, enqueue_failed, completed, failed, retried.",
    ["event"],
)
PURGE_CRON = "*/10 * * * *"
REDISPATCH_CRON = "* * * * *"
# Enqueueing happens on the request path (after resolveMarket commits): a stalled Redis
# must cost it a fraction of a second, and the dispatcher hands the job over later.
ENQUEUE_TIMEOUT = 0.5
# Workers block on Redis for new jobs this long per call; the socket waits longer.
DEQUEUE_TIMEOUT = 5.0
WORKER_SOCKET_TIMEOUT = 15.0


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    max_attempts: int
    delay_seconds: float
    max_delay_seconds: float
    timeout_seconds: int
    heartbeat_seconds: int

    def backoff(self, attempts: int) -> float:
        """Exponential backoff with full jitter: up to ``delay · 2^(attempts-1)``, capped."""
        ceiling = min(self.max_delay_seconds, self.delay_seconds * 2 ** max(attempts - 1, 0))
        return random.uniform(0, ceiling)  # noqa: S311 - jitter, not a secret


@dataclass(frozen=True, slots=True)
class Scheduled:
    """A periodic task: a name, a cron expression (UTC) and what to run."""

    name: str
    cron: str
    run: Callable[[], Awaitable[object]]


@dataclass(frozen=True, slots=True)
class WorkerTasks:
    """What a worker runs: tracked jobs through the runner, and the periodic tasks."""

    runner: JobRunner
    scheduled: Sequence[Scheduled]

    def task(self, name: str) -> Scheduled:
        return next(task for task in self.scheduled if task.name == name)


# --- saq ----------------------------------------------------------------------------------


def enqueue_redis(url: str) -> Redis:
    """A Redis client for handing jobs over from the API: short timeouts, no retries."""
    pool = BlockingConnectionPool.from_url(
        url,
        max_connections=16,
        timeout=ENQUEUE_TIMEOUT,
        socket_timeout=ENQUEUE_TIMEOUT,
        socket_connect_timeout=ENQUEUE_TIMEOUT,
        retry=Retry(NoBackoff(), 0),
        retry_on_timeout=False,
    )
    return Redis(connection_pool=pool)


def worker_redis(url: str) -> Redis:
    """A Redis client for workers, whose blocking dequeue outlasts the API's timeouts."""
    return Redis.from_url(
        url,
        socket_timeout=WORKER_SOCKET_TIMEOUT,
        socket_connect_timeout=5,
        health_check_interval=30,
    )


def saq_queue(redis: Redis, name: str) -> RedisQueue:
    return RedisQueue(redis, name=name)


class SaqJobQueue:
    """The ``JobQueue`` port on saq: the job's key is its id, so handing it over twice
    while it waits or runs is a no-op."""

    def __init__(self, queue: RedisQueue, policy: RetryPolicy) -> None:
        self._queue = queue
        self._policy = policy

    async def enqueue(self, job: Job) -> None:
        policy = self._policy
        try:
            await self._queue.enqueue(
                SaqJob(
                    function=run_job.__qualname__,
                    kwargs={"job_id": str(job.id)},
                    key=str(job.id),
                    timeout=policy.timeout_seconds,
                    heartbeat=policy.heartbeat_seconds,
                    retries=policy.max_attempts,
                    retry_delay=policy.delay_seconds,
                    retry_backoff=policy.max_delay_seconds,
                    ttl=86_400,
                )
            )
        except (RedisError, OSError, TimeoutError) as error:
            JOB_EVENTS.labels("enqueue_failed").inc()
            log.warning(
                "jobs.enqueue_failed", job_id=str(job.id), kind=job.kind.value, error=repr(error)
            )
            return
        JOB_EVENTS.labels("enqueued").inc()

    async def close(self) -> None:
        await self._queue.disconnect()


async def run_job(ctx: dict[str, Any], *, job_id: str) -> str:
    """saq's entry for a tracked job: one attempt; a failure raises so that saq retries."""
    tasks: WorkerTasks = ctx["tasks"]
    carrier: SaqJob = ctx["job"]

    async def heartbeat() -> None:
        await carrier.update()

    try:
        with bound_contextvars(job_id=job_id):
            job = await tasks.runner.run(UUID(job_id), heartbeat)
    except AttemptFailed as failed:
        JOB_EVENTS.labels("failed" if failed.final else "retried").inc()
        log.warning(
            "jobs.attempt_failed",
            job_id=job_id,
            attempt=failed.job.attempts,
            final=failed.final,
            error=str(failed),
        )
        raise
    JOB_EVENTS.labels("completed").inc()
    return "missing" if job is None else job.state.value


async def _scheduled(ctx: dict[str, Any], name: str) -> object:
    tasks: WorkerTasks = ctx["tasks"]
    carrier: SaqJob = ctx["job"]
    with bound_contextvars(scheduled_task=name):
        result = await tasks.task(name).run()
    # One line per tick: with several workers, each tick appears once across all of them.
    log.info("jobs.scheduled", task=name, scheduled=carrier.scheduled, worker=ctx["worker"].id)
    return _summary(result)


def _summary(result: object) -> object:
    """What saq stores as the task's result: JSON, so a count rather than the ids."""
    if isinstance(result, list | tuple):
        return len(result)
    return result if isinstance(result, int | str) else None


async def close_expired_markets(ctx: dict[str, Any]) -> object:
    return await _scheduled(ctx, "close_expired_markets")


async def purge_idempotency_keys(ctx: dict[str, Any]) -> object:
    return await _scheduled(ctx, "purge_idempotency_keys")


async def redispatch_jobs(ctx: dict[str, Any]) -> object:
    return await _scheduled(ctx, "redispatch_jobs")


_SAQ_TASKS = {
    "close_expired_markets": close_expired_markets,
    "purge_idempotency_keys": purge_idempotency_keys,
    "redispatch_jobs": redispatch_jobs,
}


class QuietWorker(Worker[Any]):
    """A saq worker that leaves signal handling to its host (uvicorn, or our CLI)."""

    SIGNALS: list[Any] = []


def saq_worker(
    queue: RedisQueue,
    tasks: WorkerTasks,
    *,
    concurrency: int,
    sweep_seconds: int,
    worker_id: str | None = None,
) -> Worker[Any]:
    # saq's defaults but for the sweep, which finds jobs of dead workers (stale heartbeats).
    timers: PartialTimersDict = {
        "schedule": 1,
        "worker_info": 10,
        "sweep": sweep_seconds,
        "abort": 1,
    }
    worker = QuietWorker(
        queue,
        functions=[run_job],
        cron_jobs=[
            CronJob(_SAQ_TASKS[task.name], cron=task.cron, timeout=600) for task in tasks.scheduled
        ],
        concurrency=concurrency,
        timers=timers,
        dequeue_timeout=DEQUEUE_TIMEOUT,
        id=worker_id,
    )
    worker.context["tasks"] = tasks
    return worker


# --- in process ---------------------------------------------------------------------------


class InProcessJobs:
    """The ``JobQueue`` port without Redis: the same job functions as asyncio tasks of
    the API process, retried with the same backoff, and the scheduled tasks on a timer.

    Jobs left unfinished by a crash are picked up at start (and by the dispatcher).
    """

    def __init__(self, policy: RetryPolicy) -> None:
        self._policy = policy
        self._tasks: WorkerTasks | None = None
        self._running: dict[UUID, asyncio.Task[None]] = {}
        self._timer: asyncio.Task[None] | None = None

    def attach(self, tasks: WorkerTasks) -> None:
        self._tasks = tasks

    async def enqueue(self, job: Job) -> None:
        if job.id in self._running:
            return
        task = asyncio.get_running_loop().create_task(self._drive(job.id))
        self._running[job.id] = task
        task.add_done_callback(lambda _done: self._running.pop(job.id, None))
        JOB_EVENTS.labels("enqueued").inc()

    async def start(self) -> None:
        tasks = self._require()
        self._timer = asyncio.get_running_loop().create_task(self._schedule(tasks.scheduled))
        # Whatever is unfinished now was left by a process that stopped: take it all up.
        # (Were another process still running one of them, the job would run twice, which
        # job functions allow.)
        await tasks.runner.redispatch(stale_after=timedelta(0))

    async def stop(self) -> None:
        pending = [task for task in (self._timer, *self._running.values()) if task is not None]
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

    async def wait_idle(self) -> None:
        """Until no job is running (for an orderly shutdown, and for tests)."""
        while self._running:
            await asyncio.gather(*list(self._running.values()), return_exceptions=True)

    def _require(self) -> WorkerTasks:
        if self._tasks is None:
            raise RuntimeError("attach the worker tasks before starting the job runner")
        return self._tasks

    async def _drive(self, job_id: UUID) -> None:
        runner = self._require().runner
        while True:
            try:
                with bound_contextvars(job_id=str(job_id)):
                    await runner.run(job_id)
            except AttemptFailed as failed:
                log.warning(
                    "jobs.attempt_failed",
                    job_id=str(job_id),
                    attempt=failed.job.attempts,
                    final=failed.final,
                    error=str(failed),
                )
                if failed.final:
                    JOB_EVENTS.labels("failed").inc()
                    return
                JOB_EVENTS.labels("retried").inc()
                await asyncio.sleep(self._policy.backoff(failed.job.attempts))
                continue
            except Exception:
                # Not the job's own failure (the database is down, say): the row says
                # RUNNING, and the dispatcher hands the job over again later.
                log.exception("jobs.runner_failed", job_id=str(job_id))
                return
            JOB_EVENTS.labels("completed").inc()
            return

    async def _schedule(self, scheduled: Sequence[Scheduled]) -> None:
        now = datetime.now(UTC)
        due = {task.name: croniter(task.cron, now).get_next(datetime) for task in scheduled}
        while True:
            name = min(due, key=lambda n: due[n])
            await asyncio.sleep(max(0.0, (due[name] - datetime.now(UTC)).total_seconds()))
            task = next(t for t in scheduled if t.name == name)
            try:
                with bound_contextvars(scheduled_task=name):
                    await task.run()
            except Exception:
                # The next tick tries again; a failing task must not stop the others.
                log.exception("jobs.scheduled_failed", task=name)
            else:
                log.info("jobs.scheduled", task=name, scheduled=due[name].isoformat())
            due[name] = croniter(task.cron, datetime.now(UTC)).get_next(datetime)


def scheduled_tasks(
    close_expired: Callable[[], Awaitable[object]],
    purge_keys: Callable[[], Awaitable[object]],
    redispatch: Callable[[], Awaitable[object]],
    close_cron: str,
) -> list[Scheduled]:
    return [
        Scheduled("close_expired_markets", close_cron, close_expired),
        Scheduled("purge_idempotency_keys", PURGE_CRON, purge_keys),
        Scheduled("redispatch_jobs", REDISPATCH_CRON, redispatch),
    ]
