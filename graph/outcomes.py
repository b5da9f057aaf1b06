"""Running a use case from a mutation: what it returns becomes the result union."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from domain.errors import DomainError
from graph.errors import error_result

T = TypeVar("T")


async def outcome(work: Callable[[], Awaitable[T]], success: Callable[[T], object]) -> Any:
    """The success type, or the typed error of an expected failure.

    ``work`` is a callable so that input parsing inside it (ids, say) fails into
    the result union too. Throttling is not the mutation's business: it is a
    top-level RATE_LIMITED error (``error_result`` raises it). The value is one
    member of the mutation's declared result union, which Strawberry checks when
    it resolves the type.
    """
    try:
        value = await work()
    except DomainError as error:
        return error_result(error)
    return success(value)
