"""Schema extensions: error masking with codes."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import structlog
from graphql import GraphQLError
from strawberry.extensions import SchemaExtension

from graph.documents import parse_document, validate_document
from graph.errors import INTERNAL_MESSAGE, ErrorCode

log = structlog.get_logger("marketgraph.graphql")


def _code(error: GraphQLError) -> Any:
    return (error.extensions or {}).get("code")


class ErrorCodes(SchemaExtension):
    """Give every error a code, and mask the unexpected ones.

    An error raised while resolving a field (it has a path) is expected only
    when it carries a code: ours (``ApiError``, permission classes) always do.
    Anything else there, an exception or graphql-core complaining about what a
    resolver returned, is a bug or an outage: the client gets
    ``INTERNAL_SERVER_ERROR`` with the request id and no exception text; the
    log gets the stack trace under the same id.

    Errors without a path are about the request itself: the document failed
    validation (``GRAPHQL_VALIDATION_FAILED``) or the variables do not fit
    their types (``BAD_USER_INPUT``).
    """

    def __init__(self, *, execution_context: Any = None) -> None:
        super().__init__(execution_context=execution_context)
        self._validation_errors: list[GraphQLError] = []

    def on_validate(self) -> Iterator[None]:
        yield
        self._validation_errors = list(self.execution_context.pre_execution_errors or [])

    def on_operation(self) -> Iterator[None]:
        yield
        result = self.execution_context.result
        if result is None or not result.errors:
            return
        result.errors = [self._process(error) for error in result.errors]

    def _process(self, error: GraphQLError) -> GraphQLError:
        original = error.original_error
        if error.path is None and (original is None or isinstance(original, GraphQLError)):
            if not _code(error):
                validation = any(error is seen for seen in self._validation_errors)
                code = (
                    ErrorCode.GRAPHQL_VALIDATION_FAILED if validation else ErrorCode.BAD_USER_INPUT
                )
                error.extensions = {**(error.extensions or {}), "code": code.value}
            return error
        if error.path is not None and _code(error):
            return error
        return self._mask(error)

    def _mask(self, error: GraphQLError) -> GraphQLError:
        context: Any = self.execution_context.context
        request_id = getattr(context, "request_id", None)
        original = error.original_error
        log.error(
            "graphql.internal_error",
            request_id=request_id,
            path=error.path,
            error=error.message,
            exc_info=(type(original), original, original.__traceback__) if original else None,
        )
        if context is not None:
            context.internal_errors += 1
        return GraphQLError(
            INTERNAL_MESSAGE,
            nodes=error.nodes,
            path=error.path,
            extensions={
                "code": ErrorCode.INTERNAL_SERVER_ERROR.value,
                "requestId": request_id,
            },
        )


class DocumentCache(SchemaExtension):
    """Parse and validate through ``graph.documents``: token-capped, small documents cached."""

    def on_parse(self) -> Iterator[None]:
        context = self.execution_context
        assert context.query is not None
        context.graphql_document = parse_document(context.query)
        yield

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        assert context.query is not None
        assert context.graphql_document is not None
        context.pre_execution_errors = validate_document(
            context.schema._schema,
            context.query,
            context.graphql_document,
            context.validation_rules,
        )
        yield
