"""Column types that behave the same on PostgreSQL and SQLite."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect

from domain.money import SCALE, is_exact

_UNITS = Decimal(10) ** SCALE


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
        return int(value * _UNITS)

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
