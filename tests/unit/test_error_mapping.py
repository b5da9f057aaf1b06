"""Errors, one edit each: every domain error has a typed result, every code is described."""

from __future__ import annotations

import importlib
import pkgutil
from decimal import Decimal

import pytest

import domain
from domain import errors as domain_errors
from domain.errors import DomainError, ErrorCode, FieldProblem, InvalidInput
from graph.errors import (
    ERROR_RESULTS,
    ERROR_TYPES,
    TOP_LEVEL_ERRORS,
    ApiError,
    InsufficientBalanceError,
    ValidationError,
    error_result,
)
from graph.schema import schema


def all_domain_errors(within: tuple[str, ...] = ("domain",)) -> set[type[DomainError]]:
    """Every DomainError subclass defined in the packages or modules ``within`` (domain/
    by default, imported first, so none hides).

    Classes defined elsewhere (by tests, say) are left out: they live until the garbage
    collector breaks their reference cycles, so counting them would make one test's
    result depend on which tests ran before it.
    """
    for module in pkgutil.walk_packages(domain.__path__, "domain."):
        importlib.import_module(module.name)
    found: set[type[DomainError]] = set()
    frontier = [DomainError]
    while frontier:
        for sub in frontier.pop().__subclasses__():
            if sub not in found:
                found.add(sub)
                frontier.append(sub)
    return {cls for cls in found if _defined_in(cls, within)}


def _defined_in(cls: type, within: tuple[str, ...]) -> bool:
    return any(cls.__module__ == name or cls.__module__.startswith(name + ".") for name in within)


def unmapped(errors: set[type[DomainError]]) -> set[str]:
    """The names of the errors that neither table maps."""
    return {cls.__name__ for cls in errors if cls not in {**ERROR_RESULTS, **TOP_LEVEL_ERRORS}}


def test_every_domain_error_has_exactly_one_mapping() -> None:
    errors = all_domain_errors()
    assert domain_errors.InsufficientBalance in errors  # the walk reaches the module
    assert unmapped(errors) == set(), "add these to graph.errors.ERROR_RESULTS or TOP_LEVEL_ERRORS"
    assert set(ERROR_RESULTS).isdisjoint(TOP_LEVEL_ERRORS)


def test_the_check_notices_a_new_unmapped_error() -> None:
    class Unmapped(DomainError):
        pass

    # The walk finds a new subclass where it looks, and the check names it.
    assert Unmapped in all_domain_errors(within=(__name__,))
    assert unmapped({Unmapped}) == {"Unmapped"}
    # Defined outside domain/, it is not what the mapping check looks at.
    assert Unmapped not in all_domain_errors()


def test_the_schema_registers_exactly_the_mapped_error_types() -> None:
    graphql_schema = schema._schema
    error_interface = graphql_schema.get_type("Error")
    implementing = {
        t.name
        for t in graphql_schema.get_possible_types(error_interface)  # type: ignore[arg-type]
    }
    names = {t.__strawberry_definition__.name for t in ERROR_TYPES}  # type: ignore[attr-defined]
    assert implementing == names
    assert {"ValidationError", "InsufficientBalanceError", "SlippageExceededError"} <= names


def test_every_error_code_is_in_the_schema_with_its_description() -> None:
    enum = schema._schema.get_type("ErrorCode")
    values = enum.values  # type: ignore[union-attr]
    assert set(values) == {code.name for code in ErrorCode}
    for code in ErrorCode:
        assert values[code.name].description == code.description
        assert code.description.strip()


def test_every_domain_error_carries_a_code_of_the_enum() -> None:
    for cls in all_domain_errors():
        assert isinstance(cls.code, ErrorCode), cls


def test_a_domain_error_becomes_its_typed_result() -> None:
    result = error_result(domain_errors.InsufficientBalance(Decimal(5), Decimal(2)))
    assert isinstance(result, InsufficientBalanceError)
    assert (result.code, result.required, result.available) == (
        ErrorCode.INSUFFICIENT_BALANCE,
        Decimal(5),
        Decimal(2),
    )


def test_several_problems_become_one_validation_error_listing_all() -> None:
    problems = [FieldProblem("name", "Bad name."), FieldProblem("endDate", "Bad date.")]
    result = error_result(InvalidInput.of(problems))
    assert isinstance(result, ValidationError)
    assert result.field == "name"
    assert [(f.field, f.message) for f in result.fields] == [
        ("name", "Bad name."),
        ("endDate", "Bad date."),
    ]
    assert result.message == "Bad name. Bad date."


def test_a_subclass_defined_elsewhere_maps_through_its_parent() -> None:
    class Special(domain_errors.NotFound):
        pass

    assert type(error_result(Special("gone"))).__name__ == "NotFoundError"


def test_rate_limiting_is_a_top_level_error() -> None:
    with pytest.raises(ApiError) as raised:
        error_result(domain_errors.RateLimited(7))
    assert raised.value.extensions == {"code": "RATE_LIMITED", "retryAfter": 7}
