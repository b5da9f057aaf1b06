"""Running a prepared operation on the resolver path, and what its errors become.

Execution is graphql-core's, over the Strawberry schema's resolvers; the HTTP
edge has already parsed, analysed, validated the document and coerced the
variables, so nothing here walks the document again.

Errors raised while resolving a field (they have a path) are expected only
when they carry a code: ours (``ApiError``, permission classes) always do.
Anything else there, an exception or graphql-core complaining about what a
resolver returned, is a bug or an outage: the client gets
``INTERNAL_SERVER_ERROR`` with the request id and no exception text, and the
log gets the stack trace under the same id. An outage (the database
unreachable) is reported as such, so the edge can answer 503 instead.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

import structlog
from graphql import ExecutionResult, GraphQLError, GraphQLSchema, execute
from strawberry.execution.is_awaitable import optimized_is_awaitable
from strawberry.utils.await_maybe import await_maybe

from graph.errors import INTERNAL_MESSAGE, ErrorCode

log = structlog.get_logger("marketgraph.graphql")

OutageCheck = Callable[[BaseException], bool]


@dataclass(slots=True)
class Executed:
    data: dict[str, Any] | None
    errors: list[dict[str, Any]]
    internal_errors: int = 0
    outage: BaseException | None = None


async def run_operation(
    schema: GraphQLSchema,
    document: Any,
    operation_name: str | None,
    variables: dict[str, Any] | None,
    context: Any,
    is_outage: OutageCheck,
    *,
    hide_suggestions: bool,
) -> Executed:
    result = await await_maybe(
        execute(
            schema,
            document,
            context_value=context,
            variable_values=variables,
            operation_name=operation_name,
            # Strawberry's check has a fast path for the plain values most fields return.
            is_awaitable=cast(Any, optimized_is_awaitable),
            hide_suggestions=hide_suggestions,
        )
    )
    assert isinstance(result, ExecutionResult)
    executed = Executed(data=result.data, errors=[])
    request_id = getattr(context, "request_id", None)
    for error in result.errors or ():
        executed.errors.append(_process(error, executed, request_id, is_outage))
    return executed


def _code(error: GraphQLError) -> Any:
    return (error.extensions or {}).get("code")


def _process(
    error: GraphQLError, executed: Executed, request_id: str | None, is_outage: OutageCheck
) -> dict[str, Any]:
    original = error.original_error
    if error.path is None and (original is None or isinstance(original, GraphQLError)):
        if not _code(error):
            error.extensions = {**(error.extensions or {}), "code": ErrorCode.BAD_USER_INPUT.value}
        return dict(error.formatted)
    if error.path is not None and _code(error):
        return dict(error.formatted)
    if original is not None and _caused_by_outage(original, is_outage):
        executed.outage = executed.outage or original
    else:
        log.error(
            "graphql.internal_error",
            request_id=request_id,
            path=error.path,
            error=error.message,
            exc_info=(type(original), original, original.__traceback__) if original else None,
        )
        executed.internal_errors += 1
    return GraphQLError(
        INTERNAL_MESSAGE,
        nodes=error.nodes,
        path=error.path,
        extensions={"code": ErrorCode.INTERNAL_SERVER_ERROR.value, "requestId": request_id},
    ).formatted  # type: ignore[return-value]


def _caused_by_outage(error: BaseException, is_outage: OutageCheck) -> bool:
    seen = 0
    current: BaseException | None = error
    while current is not None and seen < 10:
        if is_outage(current):
            return True
        current = current.__cause__ or current.__context__
        seen += 1
    return False
