"""Column types that behave the same on PostgreSQL and SQLite."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect

from domain.money import SCALE, is_exact

_UNITS = Decimal(10) ** SCALE
# The range of a 64-bit integer column, in units of 1e-8: about ±92 billion.
_MIN_UNITS = -(2**63)
_MAX_UNITS = 2**63 - 1


class Money(sa.types.TypeDecorator[Decimal]):
    """An exact amount with 8 decimal places, stored as integer units of 1e-8.

    SQLite has no exact decimal type; integer units keep money exact on both
    databases and keep ordering (by volume, say) a plain integer comparison.
    """

    impl = sa.BigInteger
    cache_ok = True

    def process_bind_param(self, value: Decimal | None, dialect: Dialect) -> int | None:
        if value is None:
            return None
        if not is_exact(value):
            raise ValueError(f"amount {value} has more than {SCALE} decimal places")
        # scaleb moves the exponent without rounding, where value * 10**8 would
        # round to the ambient context's 28 digits.
        units = int(value.scaleb(SCALE))
        if not _MIN_UNITS <= units <= _MAX_UNITS:
            raise ValueError(f"amount {value} is outside the storable range")
        return units

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        if value is None:
            return None
        return Decimal(int(value)).scaleb(-SCALE)


class UTCDateTime(sa.types.TypeDecorator[datetime]):
    """A point in time, always timezone-aware UTC when read back.

    SQLite keeps no offset, so values are converted to UTC before they are
    stored and tagged as UTC when read.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored; attach a time zone")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)
