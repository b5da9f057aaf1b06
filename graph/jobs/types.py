"""The Job type and the ``job`` query."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated
from uuid import UUID

import strawberry
from strawberry.types import Info

from domain.entities import Job
from domain.policy import Permission
from graph.context import Context
from graph.enums import JobKind, JobState
from graph.ids import expect_id, to_global_id
from graph.node import Node
from graph.permissions import requires

if TYPE_CHECKING:
    from graph.markets.types import MarketType


@strawberry.type(
    name="Job",
    description="A background job (a payout or a refund), as its workers left it. Visible with"
    " `job:read`, and in the result of the mutation that started it.",
)
class JobType(Node):
    kind: JobKind = strawberry.field(description="What the job does.")
    state: JobState = strawberry.field(description="Where the job is.")
    attempts: int = strawberry.field(description="Attempts started so far.")
    error: str | None = strawberry.field(
        description="What the last failed attempt hit; null while none has failed, and once"
        " the job completed."
    )
    enqueued_at: datetime = strawberry.field(description="When the job was created (UTC).")
    started_at: datetime | None = strawberry.field(
        description="When its latest attempt started (UTC); null before the first."
    )
    finished_at: datetime | None = strawberry.field(
        description="When it completed or finally failed (UTC); null until then."
    )
    market_id: strawberry.Private[UUID | None]

    @classmethod
    def from_entity(cls, job: Job) -> JobType:
        return cls(
            id=strawberry.ID(to_global_id("Job", job.id)),
            kind=JobKind(job.kind.value),
            state=JobState(job.state.value),
            attempts=job.attempts,
            error=job.error,
            enqueued_at=job.enqueued_at,
            started_at=job.started_at,
            finished_at=job.finished_at,
            market_id=job.market_id,
        )

    @strawberry.field(description="The market the job settles.")
    async def market(
        self, info: Info[Context, None]
    ) -> Annotated[MarketType, strawberry.lazy("graph.markets.types")] | None:
        from graph.markets.types import MarketType

        if self.market_id is None:
            return None
        market = await info.context.loaders.market(self.market_id)
        return None if market is None else MarketType.from_entity(market)


@strawberry.type
class JobQueries:
    @strawberry.field(
        description="One background job by id (needs `job:read`), or null when there is none.",
        extensions=requires(Permission.JOB_READ),
    )
    async def job(
        self,
        info: Info[Context, None],
        id: Annotated[strawberry.ID, strawberry.argument(description="A Job id.")],
    ) -> JobType | None:
        job = await info.context.loaders.job(expect_id(id, "Job", "id"))
        return None if job is None else JobType.from_entity(job)
