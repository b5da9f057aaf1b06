"""The schema. ``schema`` is the development build that ``schema.graphql`` is exported from."""

from __future__ import annotations

import strawberry
from strawberry.schema.config import StrawberryConfig

from graph.admin.mutations import AdminMutations
from graph.errors import ERROR_TYPES
from graph.jobs.types import JobQueries, JobType
from graph.markets.mutations import MarketMutations
from graph.markets.queries import MarketQueries
from graph.markets.types import MarketType
from graph.node_queries import NodeQueries
from graph.positions.types import PositionType
from graph.ratelimit import RateLimitQueries
from graph.scalars import SCALARS
from graph.sessions.mutations import SessionMutations
from graph.trading.mutations import TradingMutations
from graph.trading.types import LedgerEntryType, TradeType
from graph.users.mutations import UserMutations
from graph.users.queries import UserQueries
from graph.users.types import UserType


@strawberry.type(
    description="Reading the market: markets, users, positions, trades, jobs and the viewer."
)
class Query(MarketQueries, UserQueries, NodeQueries, JobQueries, RateLimitQueries):
    pass


@strawberry.type(
    description="Changing things. Each mutation takes one `input` and returns a result union"
    " of its success type and its expected errors. A mutation's result is null only when a"
    " top-level error says why (UNAUTHENTICATED, FORBIDDEN, RATE_LIMITED), so one refused"
    " mutation does not blank the others of the same document."
)
class Mutation(UserMutations, SessionMutations, MarketMutations, TradingMutations, AdminMutations):
    pass


def build_schema(*, field_suggestions: bool = True) -> strawberry.Schema:
    """The schema's types and resolvers. Documents are parsed, limited, validated and
    executed by the HTTP edge (``graph.http``), not by Strawberry's own pipeline, so
    the schema carries no extensions; introspection is switched off in validation."""
    return strawberry.Schema(
        query=Query,
        mutation=Mutation,
        types=[
            MarketType,
            UserType,
            PositionType,
            TradeType,
            LedgerEntryType,
            JobType,
            *ERROR_TYPES,
        ],
        config=StrawberryConfig(
            disable_field_suggestions=not field_suggestions, scalar_map=SCALARS
        ),
    )


schema = build_schema()
