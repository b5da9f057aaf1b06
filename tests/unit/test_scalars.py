"""One grammar for Decimal input, fixed-point output, and strings only."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from graphql import GraphQLScalarType
from strawberry.exceptions import StrawberryInputCoercionError

from graph.scalars import DECIMAL_MAX_LENGTH, parse_datetime, parse_decimal, serialize_decimal
from graph.schema import schema


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("0", Decimal(0)),
        ("10", Decimal(10)),
        ("-3.5", Decimal("-3.5")),
        ("0.00000001", Decimal("0.00000001")),
        ("1000000.123456789", Decimal("1000000.123456789")),
    ],
)
def test_decimal_accepts_the_grammar(text: str, value: Decimal) -> None:
    assert parse_decimal(text) == value


@pytest.mark.parametrize(
    "text",
    [
        "1_000",
        " 100 ",
        "100 ",
        "5.",
        ".5",
        "+5",
        "007",
        "1e3",
        "1E-8",
        "NaN",
        "Infinity",
        "-",
        "",
        "1.2.3",
        "\uff11\uff12",  # full-width digits: str.isdigit says yes, the grammar says no
        "1" * (DECIMAL_MAX_LENGTH + 1),
    ],
)
def test_decimal_refuses_everything_else(text: str) -> None:
    with pytest.raises(StrawberryInputCoercionError):
        parse_decimal(text)


@pytest.mark.parametrize("value", [10, 10.5, True, None, ["1"]])
def test_decimal_input_must_be_a_string(value: object) -> None:
    with pytest.raises(StrawberryInputCoercionError, match="strings"):
        parse_decimal(value)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (Decimal(0).scaleb(-8), "0.00000000"),
        (Decimal("1E+3"), "1000"),
        (Decimal("12.50000000"), "12.50000000"),
        (Decimal("-0.5"), "-0.5"),
    ],
)
def test_decimal_output_is_fixed_point_and_parses_back(value: Decimal, text: str) -> None:
    assert serialize_decimal(value) == text
    assert parse_decimal(text) == value


def test_datetime_parses_offsets_and_refuses_non_strings() -> None:
    assert parse_datetime("2027-01-31T18:00:00Z") == datetime(2027, 1, 31, 18, tzinfo=UTC)
    with pytest.raises(StrawberryInputCoercionError):
        parse_datetime(1_800_000_000)
    with pytest.raises(StrawberryInputCoercionError):
        parse_datetime("tomorrow")


@pytest.mark.parametrize("name", ["Decimal", "DateTime"])
def test_scalars_say_they_are_strings_and_link_their_grammar(name: str) -> None:
    scalar = schema._schema.get_type(name)
    assert isinstance(scalar, GraphQLScalarType)
    assert "JSON string" in (scalar.description or "")
    assert (scalar.specified_by_url or "").startswith("https://www.rfc-editor.org/rfc/")
