"""The schema. ``schema`` is the development build that ``schema.graphql`` is exported from."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import strawberry
from strawberry.schema.config import StrawberryConfig
from strawberry.types.scalar import ScalarDefinition, scalar

from graph.admin.mutations import AdminMutations
from graph.errors import (
    ConflictError,
    ForbiddenError,
    InvalidCredentialsError,
    InvalidStateError,
    InvalidTokenError,
    NotFoundError,
    ValidationError,
)
from graph.markets.mutations import MarketMutations
from graph.markets.queries import MarketQueries
from graph.markets.types import MarketType
from graph.node_queries import NodeQueries
from graph.positions.types import PositionType
from graph.ratelimit import RateLimitQueries
from graph.sessions.mutations import SessionMutations
from graph.users.mutations import UserMutations
from graph.users.queries import UserQueries
from graph.users.types import UserType


@strawberry.type(description="Reading the market: markets, users, positions and the viewer.")
class Query(MarketQueries, UserQueries, NodeQueries, RateLimitQueries):
    pass


@strawberry.type(
    description="Changing things. Each mutation takes one `input` and returns a result union"
    " of its success type and its expected errors. A mutation's result is null only when a"
    " top-level error says why (UNAUTHENTICATED, FORBIDDEN, RATE_LIMITED), so one refused"
    " mutation does not blank the others of the same document."
)
class Mutation(UserMutations, SessionMutations, MarketMutations, AdminMutations):
    pass


def _instant(value: datetime) -> str:
    # Always with microseconds: isoformat() drops them when they are zero, and one shape of
    # output is what the compiled read path (infra/db/compiler.py) writes too.
    return value.astimezone(UTC).isoformat(timespec="microseconds")


def _fixed(value: Any) -> str:
    return format(value if isinstance(value, Decimal) else Decimal(value), "f")


_SCALARS: dict[object, ScalarDefinition] = {
    datetime: scalar(name="DateTime", serialize=_instant, parse_value=datetime.fromisoformat),
    Decimal: scalar(name="Decimal", serialize=_fixed, parse_value=Decimal),
}


def build_schema(*, field_suggestions: bool = True) -> strawberry.Schema:
    """The schema's types and resolvers. Documents are parsed, limited, validated and
    executed by the HTTP edge (``graph.http``), not by Strawberry's own pipeline, so
    the schema carries no extensions; introspection is switched off in validation."""
    return strawberry.Schema(
        query=Query,
        mutation=Mutation,
        types=[
            InvalidTokenError,
            MarketType,
            UserType,
            PositionType,
            ValidationError,
            ConflictError,
            NotFoundError,
            ForbiddenError,
            InvalidStateError,
            InvalidCredentialsError,
        ],
        config=StrawberryConfig(
            disable_field_suggestions=not field_suggestions, scalar_map=_SCALARS
        ),
    )


schema = build_schema()
