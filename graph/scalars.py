"""The custom scalars: ``Decimal`` with one strict grammar, and ``DateTime``.

Both travel as JSON strings, and both say so in their description so that code
generators type them as strings rather than ``unknown``.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from strawberry.exceptions import StrawberryInputCoercionError
from strawberry.types.scalar import ScalarDefinition, scalar

DECIMAL_MAX_LENGTH = 64
# JSON's number grammar without the exponent: an optional minus, no leading zeros,
# an optional fraction with at least one digit. Nothing else: no '+', no spaces,
# no '_' separators, no '5.' or '.5', no exponent, NaN or Infinity.
DECIMAL_GRAMMAR = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?")

DECIMAL_DESCRIPTION = (
    "An exact decimal number, always written as a JSON string: an optional `-`, the"
    " integer digits without leading zeros, and optionally `.` followed by at least one"
    " digit (the JSON number grammar of RFC 8259 §6 without an exponent), at most"
    f' {DECIMAL_MAX_LENGTH} characters. Examples: `"10"`, `"0.25"`, `"-3.5"`. Refused:'
    ' numbers (`10`), `"+1"`, `" 1 "`, `"1_000"`, `"5."`, `".5"`, `"1e3"`,'
    ' `"NaN"`. Money and share amounts have at most 8 decimal places; outputs are'
    " written the same way, in fixed-point notation."
)
DATETIME_DESCRIPTION = (
    "A point in time, always written as a JSON string in RFC 3339 / ISO 8601 form with a"
    ' time zone offset, for example `"2027-01-31T18:00:00Z"` or'
    ' `"2027-01-31T19:00:00+01:00"`. Outputs are in UTC (`+00:00`).'
)


def _coercion_error(kind: str, value: object, why: str) -> StrawberryInputCoercionError:
    shown = repr(value) if len(repr(value)) <= 80 else repr(value)[:77] + "..."
    return StrawberryInputCoercionError(f"Value cannot represent a {kind}: {shown}. {why}")


def parse_decimal(value: object) -> Decimal:
    """A ``Decimal`` input: a string in the documented grammar, nothing else."""
    if not isinstance(value, str):
        raise _coercion_error("Decimal", value, 'Write decimals as strings, e.g. "10.5".')
    if len(value) > DECIMAL_MAX_LENGTH or not DECIMAL_GRAMMAR.fullmatch(value):
        raise _coercion_error(
            "Decimal", value, "Expected digits with an optional '-' and '.', e.g. \"10.5\"."
        )
    return Decimal(value)


def serialize_decimal(value: Any) -> str:
    """Fixed-point text, never an exponent: ``0E-8`` is written ``0.00000000``."""
    amount = value if isinstance(value, Decimal) else Decimal(value)
    return format(amount, "f")


def parse_datetime(value: object) -> datetime:
    if not isinstance(value, str):
        raise _coercion_error("DateTime", value, "Write times as ISO 8601 strings.")
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        raise _coercion_error(
            "DateTime", value, 'Expected an ISO 8601 time such as "2027-01-31T18:00:00Z".'
        ) from None


def _isoformat(value: datetime) -> str:
    # Always in UTC and with microseconds: isoformat() drops them when they are zero, and
    # one shape of output is what the compiled read path (infra/db/compiler.py) writes too.
    return value.astimezone(UTC).isoformat(timespec="microseconds")


DecimalScalar: ScalarDefinition = scalar(
    name="Decimal",
    description=DECIMAL_DESCRIPTION,
    specified_by_url="https://www.rfc-editor.org/rfc/rfc8259#section-6",
    serialize=serialize_decimal,
    parse_value=parse_decimal,
)
DateTimeScalar: ScalarDefinition = scalar(
    name="DateTime",
    description=DATETIME_DESCRIPTION,
    specified_by_url="https://www.rfc-editor.org/rfc/rfc3339#section-5.6",
    serialize=_isoformat,
    parse_value=parse_datetime,
)

SCALARS: dict[object, ScalarDefinition] = {Decimal: DecimalScalar, datetime: DateTimeScalar}
