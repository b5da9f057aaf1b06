"""Errors of the API: the stable codes, the typed error results and top-level errors.

Expected failures of a mutation are data (members of its result union); what
is not the operation's business (authentication, limits, malformed requests,
internal faults) is a top-level GraphQL error with ``extensions.code``.
"""

from __future__ import annotations

from enum import Enum
from typing import Any

import strawberry
from graphql import GraphQLError

from domain import errors as domain


@strawberry.enum(description="Stable machine-readable error codes. Clients switch on these.")
class ErrorCode(Enum):
    VALIDATION_FAILED = strawberry.enum_value(
        "VALIDATION_FAILED", description="An input value breaks a rule; see `field`."
    )
    CONFLICT = strawberry.enum_value(
        "CONFLICT", description="The change collides with existing data (a taken name)."
    )
    NOT_FOUND = strawberry.enum_value("NOT_FOUND", description="No object has that id.")
    FORBIDDEN = strawberry.enum_value(
        "FORBIDDEN", description="The viewer may not do this to this object."
    )
    INVALID_STATE = strawberry.enum_value(
        "INVALID_STATE", description="The object's state does not allow the operation."
    )
    INVALID_CREDENTIALS = strawberry.enum_value(
        "INVALID_CREDENTIALS", description="The email or password is incorrect."
    )
    UNAUTHENTICATED = strawberry.enum_value(
        "UNAUTHENTICATED", description="Sign-in is required, or the credentials are not valid."
    )
    RATE_LIMITED = strawberry.enum_value(
        "RATE_LIMITED",
        description="Too many attempts; `extensions.retryAfter` says how many seconds to wait.",
    )
    BAD_USER_INPUT = strawberry.enum_value(
        "BAD_USER_INPUT",
        description="An argument is out of range or malformed (a bad cursor or id).",
    )
    QUERY_TOO_COMPLEX = strawberry.enum_value(
        "QUERY_TOO_COMPLEX",
        description="The document or operation is over a limit (cost, depth, aliases, directives,"
        " selections); `extensions` names the limit and gives its maximum and the measured value.",
    )
    SERVICE_UNAVAILABLE = strawberry.enum_value(
        "SERVICE_UNAVAILABLE",
        description="Something the operation needs is unreachable; retry after `retryAfter`"
        " seconds.",
    )
    BAD_REQUEST = strawberry.enum_value("BAD_REQUEST", description="The HTTP request is malformed.")
    GRAPHQL_PARSE_FAILED = strawberry.enum_value(
        "GRAPHQL_PARSE_FAILED", description="The document is not valid GraphQL syntax."
    )
    GRAPHQL_VALIDATION_FAILED = strawberry.enum_value(
        "GRAPHQL_VALIDATION_FAILED", description="The document does not fit the schema."
    )
    INTERNAL_SERVER_ERROR = strawberry.enum_value(
        "INTERNAL_SERVER_ERROR",
        description="Something failed on our side; quote `requestId` when reporting it.",
    )


INTERNAL_MESSAGE = "Internal server error. Quote the request id when reporting it."


class ApiError(GraphQLError):
    """A top-level error whose message is safe to show and whose code is stable."""

    def __init__(self, code: ErrorCode, message: str, **extensions: Any) -> None:
        super().__init__(message, extensions={"code": code.value, **extensions})


def unauthenticated(message: str = "Sign in to do this.") -> ApiError:
    return ApiError(ErrorCode.UNAUTHENTICATED, message)


def rate_limited(error: domain.RateLimited) -> ApiError:
    return ApiError(ErrorCode.RATE_LIMITED, error.message, retryAfter=error.retry_after)


def bad_input(message: str, argument: str) -> ApiError:
    return ApiError(ErrorCode.BAD_USER_INPUT, message, argument=argument)


@strawberry.interface(description="Every expected failure of a mutation implements this.")
class Error:
    message: str = strawberry.field(description="What went wrong, for people.")
    code: ErrorCode = strawberry.field(description="What went wrong, for programs.")


@strawberry.type(description="An input value breaks a rule.")
class ValidationError(Error):
    field: str = strawberry.field(description="The input field at fault, as named in the input.")


@strawberry.type(description="The change would collide with existing data.")
class ConflictError(Error):
    field: str = strawberry.field(description="The input field whose value is taken.")


@strawberry.type(description="No object has the given id.")
class NotFoundError(Error):
    pass


@strawberry.type(description="The viewer may not do this to this object.")
class ForbiddenError(Error):
    pass


@strawberry.type(description="The object's state does not allow the operation.")
class InvalidStateError(Error):
    pass


@strawberry.type(description="Sign-in failed: the email or password is incorrect.")
class InvalidCredentialsError(Error):
    pass


@strawberry.type(
    description="The refresh token is unknown, spent or expired, or its session ended."
)
class InvalidTokenError(Error):
    pass


def error_result(error: domain.DomainError) -> Error:
    """The typed result for a domain error."""
    code = ErrorCode(error.code)
    if isinstance(error, domain.InvalidInput):
        return ValidationError(message=error.message, code=code, field=error.field)
    if isinstance(error, domain.Conflict):
        return ConflictError(message=error.message, code=code, field=error.field)
    if isinstance(error, domain.NotFound):
        return NotFoundError(message=error.message, code=code)
    if isinstance(error, domain.Forbidden):
        return ForbiddenError(message=error.message, code=code)
    if isinstance(error, domain.InvalidState):
        return InvalidStateError(message=error.message, code=code)
    if isinstance(error, domain.SessionInvalid):
        return InvalidTokenError(message=error.message, code=code)
    if isinstance(error, domain.InvalidCredentials):
        return InvalidCredentialsError(message=error.message, code=code)
    raise TypeError(f"no error result for {type(error).__name__}")
