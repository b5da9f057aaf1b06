"""Domain errors: expected failures of a use case, and the one list of error codes.

``ErrorCode`` is the stable machine-readable name clients switch on; the
GraphQL layer lifts it into the schema as it is (each member's description
becomes the enum value's description), so a new code is one line here. Each
``DomainError`` subclass names its code; ``graph/errors.py`` maps each class
to its typed error result through one table.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal


class ErrorCode(enum.StrEnum):
    """Every error code of the API, with what it means to a client."""

    description: str

    def __new__(cls, value: str, description: str) -> ErrorCode:
        member = str.__new__(cls, value)
        member._value_ = value
        member.description = description
        return member

    VALIDATION_FAILED = (
        "VALIDATION_FAILED",
        "Input values break rules; `fields` lists every one of them.",
    )
    CONFLICT = ("CONFLICT", "The change collides with existing data (a taken name).")
    NOT_FOUND = ("NOT_FOUND", "No object has that id.")
    FORBIDDEN = ("FORBIDDEN", "The viewer may not do this to this object.")
    INVALID_STATE = ("INVALID_STATE", "The object's state does not allow the operation.")
    INVALID_CREDENTIALS = ("INVALID_CREDENTIALS", "The email or password is incorrect.")
    MARKET_NOT_ACTIVE = (
        "MARKET_NOT_ACTIVE",
        "The market is not open for trading (closed, resolved, cancelled, or past its end date).",
    )
    INSUFFICIENT_BALANCE = ("INSUFFICIENT_BALANCE", "The balance does not cover the cost.")
    INSUFFICIENT_SHARES = ("INSUFFICIENT_SHARES", "The position holds fewer shares than that.")
    SLIPPAGE_EXCEEDED = (
        "SLIPPAGE_EXCEEDED",
        "The average price would cross the limit the input set; nothing was traded.",
    )
    IDEMPOTENCY_KEY_REUSED = (
        "IDEMPOTENCY_KEY_REUSED",
        "The idempotency key was already used, within 24 hours, for a different input.",
    )
    UNAUTHENTICATED = (
        "UNAUTHENTICATED",
        "Sign-in is required, or the credentials are not valid.",
    )
    RATE_LIMITED = (
        "RATE_LIMITED",
        "Too many attempts, or the operation's cost is more than the budget holds now;"
        " `extensions.retryAfter` says how many seconds to wait.",
    )
    QUERY_TOO_COMPLEX = (
        "QUERY_TOO_COMPLEX",
        "The document or operation is over a limit (cost, budget, depth, aliases, directives,"
        " selections); `extensions` names the limit and gives its maximum and the measured"
        " value.",
    )
    SERVICE_UNAVAILABLE = (
        "SERVICE_UNAVAILABLE",
        "Something the operation needs is unreachable; retry after `retryAfter` seconds.",
    )
    BAD_USER_INPUT = (
        "BAD_USER_INPUT",
        "An argument is out of range or malformed (a bad cursor or id).",
    )
    BAD_REQUEST = ("BAD_REQUEST", "The HTTP request is malformed.")
    PERSISTED_QUERY_NOT_FOUND = (
        "PERSISTED_QUERY_NOT_FOUND",
        "No document is known under that hash or id: send the full text with its hash"
        " (Apollo's persisted-query link does so by itself).",
    )
    PERSISTED_QUERY_NOT_SUPPORTED = (
        "PERSISTED_QUERY_NOT_SUPPORTED",
        "This server does not keep automatic persisted queries (APQ=false): send the full text.",
    )
    PERSISTED_QUERY_HASH_MISMATCH = (
        "PERSISTED_QUERY_HASH_MISMATCH",
        "The persisted query's sha256Hash is not the SHA-256 of the text sent with it.",
    )
    DOCUMENT_NOT_TRUSTED = (
        "DOCUMENT_NOT_TRUSTED",
        "The server runs only registered documents (TRUSTED_DOCUMENTS=required) and this one"
        " is not registered.",
    )
    GRAPHQL_PARSE_FAILED = ("GRAPHQL_PARSE_FAILED", "The document is not valid GraphQL syntax.")
    GRAPHQL_VALIDATION_FAILED = (
        "GRAPHQL_VALIDATION_FAILED",
        "The document does not fit the schema.",
    )
    INTERNAL_SERVER_ERROR = (
        "INTERNAL_SERVER_ERROR",
        "Something failed on our side; quote `requestId` when reporting it.",
    )


class DomainError(Exception):
    """An expected failure of a use case; its message is safe to show to the client."""

    code = ErrorCode.BAD_REQUEST

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True, slots=True)
class FieldProblem:
    """One input field that breaks a rule, named as in the input (``endDate``)."""

    field: str
    message: str


class InvalidInput(DomainError):
    """Input values break rules: ``problems`` lists every offending field.

    ``field`` and the message are the first problem's, for callers that show one.
    """

    code = ErrorCode.VALIDATION_FAILED

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.problems: tuple[FieldProblem, ...] = (FieldProblem(field, message),)

    @classmethod
    def of(cls, problems: Sequence[FieldProblem]) -> InvalidInput:
        """One error for several problems (at least one)."""
        first, *_ = problems
        error = cls(first.field, first.message)
        error.problems = tuple(problems)
        if len(problems) > 1:
            error.message = " ".join(problem.message for problem in problems)
            error.args = (error.message,)
        return error


class Conflict(DomainError):
    """The change would collide with existing data (a taken name or email)."""

    code = ErrorCode.CONFLICT

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class NotFound(DomainError):
    """The object does not exist, or the actor may not know that it exists."""

    code = ErrorCode.NOT_FOUND


class Forbidden(DomainError):
    """The actor is known but may not do this to this object."""

    code = ErrorCode.FORBIDDEN


class InvalidState(DomainError):
    """The object is in a state that does not allow the operation."""

    code = ErrorCode.INVALID_STATE


class InvalidCredentials(DomainError):
    """Sign-in failed; the same error whether the email or the password was wrong."""

    code = ErrorCode.INVALID_CREDENTIALS

    def __init__(self) -> None:
        super().__init__("The email or password is incorrect.")


class RateLimited(DomainError):
    """Too many attempts; ``retry_after`` seconds until the next one may succeed."""

    code = ErrorCode.RATE_LIMITED

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"Too many attempts; retry in {retry_after} seconds.")
        self.retry_after = retry_after


class SessionInvalid(DomainError):
    """The refresh token is unknown, spent, expired or its session has ended."""

    code = ErrorCode.UNAUTHENTICATED

    def __init__(self) -> None:
        super().__init__("The session has ended; sign in again.")


class MarketNotActive(DomainError):
    """A trade in a market that is closed, resolved, cancelled or past its end date."""

    code = ErrorCode.MARKET_NOT_ACTIVE


class InsufficientBalance(DomainError):
    """The trade costs ``required``; the balance holds only ``available``."""

    code = ErrorCode.INSUFFICIENT_BALANCE

    def __init__(self, required: Decimal, available: Decimal) -> None:
        super().__init__(f"This costs {required}; the balance is {available}.")
        self.required = required
        self.available = available


class InsufficientShares(DomainError):
    """A sale of more shares than the position holds (``held``)."""

    code = ErrorCode.INSUFFICIENT_SHARES

    def __init__(self, requested: Decimal, held: Decimal) -> None:
        super().__init__(f"The position holds {held} shares, fewer than {requested}.")
        self.requested = requested
        self.held = held


class SlippageExceeded(DomainError):
    """The trade's average price would cross the limit the client set."""

    code = ErrorCode.SLIPPAGE_EXCEEDED

    def __init__(self, average_price: Decimal, limit: Decimal) -> None:
        super().__init__(
            f"The average price would be {average_price}, beyond the limit of {limit}."
        )
        self.average_price = average_price
        self.limit = limit


class IdempotencyKeyReused(DomainError):
    """The key was already used for a request with different input."""

    code = ErrorCode.IDEMPOTENCY_KEY_REUSED

    def __init__(self) -> None:
        super().__init__(
            "This idempotency key was already used for a different request; use a new key."
        )


class TransientConflict(Exception):
    """The database aborted the transaction to settle a conflict (a deadlock, a
    serialization failure); running the whole use case again may well succeed.
    Not a client error: ``retrying`` handles it, and only an exhausted retry
    surfaces (as an internal error)."""
