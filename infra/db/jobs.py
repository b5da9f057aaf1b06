"""The tracked-jobs table: a job's row is its status, whoever runs it."""

from __future__ import annotations

import uuid
from datetime import datetime
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from domain.changes import Changes, Kind
from domain.entities import Job, JobKind, JobState
from infra.db.models import jobs
from infra.db.rows import JOB_COLUMNS, to_job

_UNFINISHED = (JobState.QUEUED, JobState.RUNNING, JobState.RETRYING)


class SqlJobRepository:
    def __init__(self, conn: AsyncConnection, changes: Changes | None = None) -> None:
        self._conn = conn
        self._changes = changes if changes is not None else Changes()

    def _changed(self, job: Job) -> Job:
        self._changes.entity(Kind.JOB, job.id)
        return job

    async def add(self, kind: JobKind, market_id: UUID | None, now: datetime) -> Job:
        stmt = (
            sa.insert(jobs)
            .values(
                id=uuid.uuid4(),
                kind=kind,
                state=JobState.QUEUED,
                market_id=market_id,
                attempts=0,
                enqueued_at=now,
                updated_at=now,
            )
            .returning(*JOB_COLUMNS)
        )
        return self._changed(to_job((await self._conn.execute(stmt)).one()))

    async def get(self, job_id: UUID) -> Job | None:
        row = (
            await self._conn.execute(sa.select(*JOB_COLUMNS).where(jobs.c.id == job_id))
        ).one_or_none()
        return None if row is None else to_job(row)

    async def start(self, job_id: UUID, now: datetime) -> Job | None:
        """Count one more attempt and mark the job running (one atomic update)."""
        stmt = (
            sa.update(jobs)
            .where(jobs.c.id == job_id)
            .values(
                state=JobState.RUNNING,
                attempts=jobs.c.attempts + 1,
                started_at=now,
                finished_at=None,
                updated_at=now,
            )
            .returning(*JOB_COLUMNS)
        )
        row = (await self._conn.execute(stmt)).one_or_none()
        return None if row is None else self._changed(to_job(row))

    async def finish(self, job_id: UUID, state: JobState, error: str | None, now: datetime) -> Job:
        stmt = (
            sa.update(jobs)
            .where(jobs.c.id == job_id)
            .values(
                state=state,
                error=error,
                finished_at=now if state.finished else None,
                updated_at=now,
            )
            .returning(*JOB_COLUMNS)
        )
        return self._changed(to_job((await self._conn.execute(stmt)).one()))

    async def unfinished(self, changed_before: datetime, limit: int) -> list[Job]:
        stmt = (
            sa.select(*JOB_COLUMNS)
            .where(jobs.c.state.in_(_UNFINISHED), jobs.c.updated_at < changed_before)
            .order_by(jobs.c.enqueued_at)
            .limit(limit)
        )
        return [to_job(row) for row in (await self._conn.execute(stmt)).all()]
