"""The schema. ``schema`` is the development build that ``schema.graphql`` is exported from."""

from __future__ import annotations

from collections.abc import Callable

import strawberry
from graphql import GraphQLError
from graphql.validation import NoSchemaIntrospectionCustomRule
from strawberry.extensions import AddValidationRules, SchemaExtension
from strawberry.extensions.max_aliases import create_validator as max_aliases_rule
from strawberry.extensions.query_depth_limiter import create_validator as max_depth_rule
from strawberry.schema.config import StrawberryConfig
from strawberry.types import ExecutionContext

from graph.admin.mutations import AdminMutations
from graph.documents import MAX_ALIASES, MAX_DEPTH
from graph.errors import ERROR_TYPES
from graph.extensions import DocumentCache, ErrorCodes
from graph.jobs.types import JobQueries, JobType
from graph.markets.mutations import MarketMutations
from graph.markets.queries import MarketQueries
from graph.markets.types import MarketType
from graph.node_queries import NodeQueries
from graph.positions.types import PositionType
from graph.scalars import SCALARS
from graph.sessions.mutations import SessionMutations
from graph.trading.mutations import TradingMutations
from graph.trading.types import LedgerEntryType, TradeType
from graph.users.mutations import UserMutations
from graph.users.queries import UserQueries
from graph.users.types import UserType

# Built once: validation results are cached per rule set, so the rule classes must not
# be made anew for every request.
LIMIT_RULES = (max_aliases_rule(MAX_ALIASES), max_depth_rule(MAX_DEPTH, should_ignore=None))


@strawberry.type(
    description="Reading the market: markets, users, positions, trades, jobs and the viewer."
)
class Query(MarketQueries, UserQueries, NodeQueries, JobQueries):
    pass


@strawberry.type(
    description="Changing things. Each mutation takes one `input` and returns a result union"
    " of its success type and its expected errors. A mutation's result is null only when a"
    " top-level error says why (UNAUTHENTICATED, FORBIDDEN, RATE_LIMITED), so one refused"
    " mutation does not blank the others of the same document."
)
class Mutation(UserMutations, SessionMutations, MarketMutations, TradingMutations, AdminMutations):
    pass


class MarketgraphSchema(strawberry.Schema):
    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        """Errors are logged by the ``ErrorCodes`` extension, with the request id."""


def build_schema(
    *, introspection: bool = True, field_suggestions: bool = True
) -> strawberry.Schema:
    extensions: list[Callable[[], SchemaExtension] | type[SchemaExtension]] = [
        DocumentCache,
        ErrorCodes,
    ]
    rules = [*LIMIT_RULES, *([] if introspection else [NoSchemaIntrospectionCustomRule])]
    extensions.append(lambda: AddValidationRules(rules))
    return MarketgraphSchema(
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
        extensions=extensions,
        config=StrawberryConfig(
            disable_field_suggestions=not field_suggestions, scalar_map=SCALARS
        ),
    )


schema = build_schema()
