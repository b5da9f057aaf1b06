"""Schema extensions: error masking with codes."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import structlog
from graphql import GraphQLError
from strawberry.extensions import SchemaExtension

from graph.errors import ErrorCode

log = structlog.get_logger("marketgraph.graphql")


def _is_expected(error: GraphQLError) -> bool:
    original = error.original_error
    return original is None or isinstance(original, GraphQLError)


class ErrorCodes(SchemaExtension):
    """Give every error a code, and mask the unexpected ones.

    An exception that is not one of our ``GraphQLError``s is a bug or an
    outage: the client gets ``INTERNAL_SERVER_ERROR`` with the request id and
    no exception text; the log gets the stack trace under the same id.
    Errors without a code come from graphql-core's validation.
    """

    def on_operation(self) -> Iterator[None]:
        yield
        result = self.execution_context.result
        if result is None or not result.errors:
            return
        result.errors = [self._process(error) for error in result.errors]

    def _process(self, error: GraphQLError) -> GraphQLError:
        context: Any = self.execution_context.context
        request_id = getattr(context, "request_id", None)
        if not _is_expected(error):
            original = error.original_error
            assert original is not None
            log.error(
                "graphql.internal_error",
                request_id=request_id,
                path=error.path,
                exc_info=(type(original), original, original.__traceback__),
            )
            if context is not None:
                context.internal_errors += 1
            return GraphQLError(
                "Internal server error. Quote the request id when reporting it.",
                nodes=error.nodes,
                path=error.path,
                extensions={
                    "code": ErrorCode.INTERNAL_SERVER_ERROR.value,
                    "requestId": request_id,
                },
            )
        if not (error.extensions or {}).get("code"):
            error.extensions = {
                **(error.extensions or {}),
                "code": ErrorCode.GRAPHQL_VALIDATION_FAILED.value,
            }
        return error
