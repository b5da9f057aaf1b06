"""Domain errors: expected failures of a use case.

The GraphQL layer maps each class to a typed error result (DESIGN.md §5); the
``code`` is the stable machine-readable name clients switch on.
"""

from __future__ import annotations


class DomainError(Exception):
    """An expected failure of a use case; its message is safe to show to the client."""

    code = "BAD_REQUEST"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidInput(DomainError):
    """An input value breaks a rule; ``field`` names the offending input field."""

    code = "VALIDATION_FAILED"

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class Conflict(DomainError):
    """The change would collide with existing data (a taken name or email)."""

    code = "CONFLICT"

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class NotFound(DomainError):
    """The object does not exist, or the actor may not know that it exists."""

    code = "NOT_FOUND"


class Forbidden(DomainError):
    """The actor is known but may not do this to this object."""

    code = "FORBIDDEN"


class InvalidState(DomainError):
    """The object is in a state that does not allow the operation."""

    code = "INVALID_STATE"


class InvalidCredentials(DomainError):
    """Sign-in failed; the same error whether the email or the password was wrong."""

    code = "INVALID_CREDENTIALS"

    def __init__(self) -> None:
        super().__init__("The email or password is incorrect.")


class RateLimited(DomainError):
    """Too many attempts; ``retry_after`` seconds until the next one may succeed."""

    code = "RATE_LIMITED"

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"Too many attempts; retry in {retry_after} seconds.")
        self.retry_after = retry_after


class SessionInvalid(DomainError):
    """The refresh token is unknown, spent, expired or its session has ended."""

    code = "UNAUTHENTICATED"

    def __init__(self) -> None:
        super().__init__("The session has ended; sign in again.")


class TransientConflict(Exception):
    """The database aborted the transaction to settle a conflict (a deadlock, a
    serialization failure); running the whole use case again may well succeed.
    Not a client error: ``retrying`` handles it, and only an exhausted retry
    surfaces (as an internal error)."""
