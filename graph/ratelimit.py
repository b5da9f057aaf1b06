"""The ``rateLimit`` query field: the caller's budget, as GitHub shows its point budget."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import strawberry
from strawberry.types import Info

from graph.context import Context
from graph.cost import Cost


@strawberry.type(
    name="RateLimit",
    description="The caller's query-cost budget after this operation took its cost (README,"
    " 'Query cost and budgets'). Points come back continuously at `restoreRate` per second.",
)
class RateLimitType:
    limit: int = strawberry.field(description="The most points the budget holds.")
    remaining: int = strawberry.field(description="Points left after this operation's cost.")
    cost: int = strawberry.field(
        description="What this operation may cost (its requested cost); the part it does not"
        " use is refunded after it runs."
    )
    restore_rate: float = strawberry.field(description="Points restored per second.")
    reset_at: datetime = strawberry.field(description="When the budget will be full again (UTC).")


@strawberry.type
class RateLimitQueries:
    @strawberry.field(
        description="The caller's budget: the signed-in user's, else the client address's."
        " Null when the server runs without budgets. Costs nothing.",
        directives=[Cost(weight=0)],
    )
    def rate_limit(self, info: Info[Context, None]) -> RateLimitType | None:
        allowance = info.context.allowance
        if not allowance.limited:
            return None
        return RateLimitType(
            limit=allowance.capacity,
            remaining=allowance.remaining,
            cost=info.context.requested_cost,
            restore_rate=allowance.restore_per_second,
            reset_at=datetime.now(UTC) + timedelta(seconds=allowance.reset_after),
        )
