"""Running tracked jobs: attempts, state and errors on the job's row, whoever runs it.

Whatever carries the work (saq workers, the in-process runner) calls ``run``
for one attempt. An attempt that fails records its error and raises
``AttemptFailed``; the carrier retries with backoff unless it is ``final``.
A job is never run past ``max_attempts``: an attempt beyond (a worker died
mid-run and the job was handed over again) marks it FAILED without running.
Job functions are idempotent, so a second run of a finished job is harmless.
"""

from __future__ import annotations

from datetime import timedelta
from uuid import UUID

from domain.entities import Job, JobKind, JobState
from domain.ports import Clock, JobQueue, UnitOfWorkFactory
from domain.services.lifecycle import Heartbeat, MarketLifecycle

MAX_ATTEMPTS = 5
ERROR_MAX = 2000
# A job whose row has not changed for this long while unfinished is handed over again
# (its hand-over failed, or its carrier lost it); a live one is not disturbed by that.
STALE_AFTER = timedelta(minutes=2)


class AttemptFailed(Exception):
    """One attempt of a job failed; ``final`` when no attempt is left."""

    def __init__(self, job: Job, message: str, final: bool) -> None:
        super().__init__(message)
        self.job = job
        self.final = final


class JobRunner:
    def __init__(
        self,
        uow: UnitOfWorkFactory,
        clock: Clock,
        lifecycle: MarketLifecycle,
        queue: JobQueue,
        max_attempts: int = MAX_ATTEMPTS,
    ) -> None:
        self._uow = uow
        self._clock = clock
        self._lifecycle = lifecycle
        self._queue = queue
        self.max_attempts = max_attempts

    async def get(self, job_id: UUID) -> Job | None:
        async with self._uow() as uow:
            return await uow.jobs.get(job_id)

    async def run(self, job_id: UUID, heartbeat: Heartbeat | None = None) -> Job | None:
        """One attempt of the job; None for a job that does not exist."""
        async with self._uow() as uow:
            job = await uow.jobs.start(job_id, self._clock())
            await uow.commit()
        if job is None:
            return None
        if job.attempts > self.max_attempts:
            return await self._finish(
                job, JobState.FAILED, f"Gave up after {self.max_attempts} attempts: {job.error}"
            )
        try:
            await self._work(job, heartbeat)
        except Exception as error:
            message = f"{type(error).__name__}: {error}"[:ERROR_MAX]
            final = job.attempts >= self.max_attempts
            failed = await self._finish(
                job, JobState.FAILED if final else JobState.RETRYING, message
            )
            raise AttemptFailed(failed, message, final) from error
        return await self._finish(job, JobState.COMPLETE, None)

    async def redispatch(self, stale_after: timedelta = STALE_AFTER, limit: int = 100) -> int:
        """Hand unfinished jobs over again; the queue ignores those still in its hands."""
        async with self._uow() as uow:
            stale = await uow.jobs.unfinished(self._clock() - stale_after, limit)
        for job in stale:
            await self._queue.enqueue(job)
        return len(stale)

    async def _work(self, job: Job, heartbeat: Heartbeat | None) -> None:
        if job.kind in (JobKind.MARKET_PAYOUT, JobKind.MARKET_REFUND):
            if job.market_id is None:
                raise ValueError("a settlement job must name its market")
            await self._lifecycle.settle(job.market_id, heartbeat)
            return
        raise ValueError(f"no work for jobs of kind {job.kind}")

    async def _finish(self, job: Job, state: JobState, error: str | None) -> Job:
        async with self._uow() as uow:
            finished = await uow.jobs.finish(job.id, state, error, self._clock())
            await uow.commit()
        return finished
