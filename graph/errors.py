"""Errors of the API: the stable codes, the typed error results and top-level errors.

Expected failures of a mutation are data (members of its result union); what
is not the operation's business (authentication, limits, malformed requests,
internal faults) is a top-level GraphQL error with ``extensions.code``.

The codes are the domain's ``ErrorCode``, lifted into the schema as they are.
Which typed result a domain error becomes is one table, ``ERROR_RESULTS``; the
schema registers exactly the types that table names, and a test fails when a
``DomainError`` subclass is missing from it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any, Self

import strawberry
from graphql import GraphQLError

from domain import errors as domain
from domain.errors import ErrorCode as ErrorCode

strawberry.enum(
    ErrorCode,
    name="ErrorCode",
    description="Stable machine-readable error codes. Clients switch on these.",
)
for _value in ErrorCode.__strawberry_definition__.values:  # type: ignore[attr-defined]
    _value.description = ErrorCode[_value.name].description

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

    @classmethod
    def from_domain(cls, error: domain.DomainError) -> Self:
        return cls(message=error.message, code=error.code)


@strawberry.type(description="One input field that breaks a rule.")
class FieldError:
    field: str = strawberry.field(description="The input field, as named in the input.")
    message: str = strawberry.field(description="What is wrong with its value.")


@strawberry.type(
    description="Input values break rules. `fields` lists every offending field; `field` and"
    " `message` name the first (or, for `message`, all) of them."
)
class ValidationError(Error):
    field: str = strawberry.field(
        description="The first input field at fault, as named in the input."
    )
    fields: list[FieldError] = strawberry.field(
        description="Every input field at fault, each with what is wrong with it."
    )

    @classmethod
    def from_domain(cls, error: domain.DomainError) -> Self:
        assert isinstance(error, domain.InvalidInput)
        return cls(
            message=error.message,
            code=error.code,
            field=error.field,
            fields=[FieldError(field=p.field, message=p.message) for p in error.problems],
        )


@strawberry.type(description="The change would collide with existing data.")
class ConflictError(Error):
    field: str = strawberry.field(description="The input field whose value is taken.")

    @classmethod
    def from_domain(cls, error: domain.DomainError) -> Self:
        assert isinstance(error, domain.Conflict)
        return cls(message=error.message, code=error.code, field=error.field)


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


@strawberry.type(
    description="The market is not open for trading: closed, resolved, cancelled or past its"
    " end date."
)
class MarketNotActiveError(Error):
    pass


@strawberry.type(description="The balance does not cover the trade; nothing was traded.")
class InsufficientBalanceError(Error):
    required: Decimal = strawberry.field(description="What the trade would cost.")
    available: Decimal = strawberry.field(description="The balance at the time of the trade.")

    @classmethod
    def from_domain(cls, error: domain.DomainError) -> Self:
        assert isinstance(error, domain.InsufficientBalance)
        return cls(
            message=error.message,
            code=error.code,
            required=error.required,
            available=error.available,
        )


@strawberry.type(description="The position holds fewer shares than the sale asks for.")
class InsufficientSharesError(Error):
    requested: Decimal = strawberry.field(description="The shares the sale asked for.")
    held: Decimal = strawberry.field(description="The shares the position holds.")

    @classmethod
    def from_domain(cls, error: domain.DomainError) -> Self:
        assert isinstance(error, domain.InsufficientShares)
        return cls(
            message=error.message, code=error.code, requested=error.requested, held=error.held
        )


@strawberry.type(
    description="The trade's average price would cross `maxAveragePrice` (buying) or"
    " `minAveragePrice` (selling); nothing was traded."
)
class SlippageExceededError(Error):
    average_price: Decimal = strawberry.field(
        description="The average price per share the trade would have had."
    )
    limit: Decimal = strawberry.field(description="The limit the input set.")

    @classmethod
    def from_domain(cls, error: domain.DomainError) -> Self:
        assert isinstance(error, domain.SlippageExceeded)
        return cls(
            message=error.message,
            code=error.code,
            average_price=error.average_price,
            limit=error.limit,
        )


@strawberry.type(
    description="The idempotency key was used, within the last 24 hours, for a request with"
    " different input. Nothing was traded."
)
class IdempotencyKeyReusedError(Error):
    pass


# The one mapping from domain errors to the typed results of mutations. Adding a
# domain error means one line here (and its union memberships); the schema's list
# of error types is derived from this table.
ERROR_RESULTS: Mapping[type[domain.DomainError], type[Error]] = {
    domain.InvalidInput: ValidationError,
    domain.Conflict: ConflictError,
    domain.NotFound: NotFoundError,
    domain.Forbidden: ForbiddenError,
    domain.InvalidState: InvalidStateError,
    domain.InvalidCredentials: InvalidCredentialsError,
    domain.SessionInvalid: InvalidTokenError,
    domain.MarketNotActive: MarketNotActiveError,
    domain.InsufficientBalance: InsufficientBalanceError,
    domain.InsufficientShares: InsufficientSharesError,
    domain.SlippageExceeded: SlippageExceededError,
    domain.IdempotencyKeyReused: IdempotencyKeyReusedError,
}

# Domain errors that are not the mutation's business: they become top-level errors.
TOP_LEVEL_ERRORS: Mapping[type[domain.DomainError], Callable[[Any], ApiError]] = {
    domain.RateLimited: rate_limited,
}

ERROR_TYPES: tuple[type[Error], ...] = tuple(dict.fromkeys(ERROR_RESULTS.values()))


def error_result(error: domain.DomainError) -> Error:
    """The typed result for a domain error; raises the top-level error for those that are one.

    The nearest mapped class in the error's ancestry decides, so a subclass
    defined elsewhere still maps (the mapping test insists on an exact entry).
    """
    for cls in type(error).__mro__:
        if cls in TOP_LEVEL_ERRORS:
            raise TOP_LEVEL_ERRORS[cls](error) from None
        if cls in ERROR_RESULTS:
            return ERROR_RESULTS[cls].from_domain(error)
    raise TypeError(f"no error result for {type(error).__name__}")
