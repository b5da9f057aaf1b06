"""Collecting input problems, so that a use case reports every bad field at once."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TypeVar

from domain.errors import FieldProblem, InvalidInput

T = TypeVar("T")


class Problems:
    """Runs input rules, keeping what each one refuses instead of stopping at the first.

    A rule is a callable that returns the clean value or raises ``InvalidInput``;
    ``check`` gives the value, or None when the rule refused it. ``raise_any``
    ends the validation with one ``InvalidInput`` listing every problem found.
    """

    def __init__(self, found: Iterable[FieldProblem] = ()) -> None:
        self._found = list(found)

    def check(self, rule: Callable[[], T]) -> T | None:
        try:
            return rule()
        except InvalidInput as error:
            self._found.extend(error.problems)
            return None

    def add(self, field: str, message: str) -> None:
        self._found.append(FieldProblem(field, message))

    @property
    def found(self) -> tuple[FieldProblem, ...]:
        return tuple(self._found)

    def raise_any(self) -> None:
        if self._found:
            raise InvalidInput.of(self._found)
