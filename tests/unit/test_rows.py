"""Rows become entities by position, so the selected columns must follow the fields."""

from __future__ import annotations

import dataclasses

import pytest
import sqlalchemy as sa

from domain.entities import Job, LedgerEntry, Market, Position, Trade, User
from infra.db.rows import (
    JOB_COLUMNS,
    LEDGER_COLUMNS,
    MARKET_COLUMNS,
    POSITION_COLUMNS,
    TRADE_COLUMNS,
    USER_COLUMNS,
)


@pytest.mark.parametrize(
    ("entity", "columns"),
    [
        (User, USER_COLUMNS),
        (Market, MARKET_COLUMNS),
        (Position, POSITION_COLUMNS),
        (Trade, TRADE_COLUMNS),
        (LedgerEntry, LEDGER_COLUMNS),
        (Job, JOB_COLUMNS),
    ],
)
def test_columns_follow_the_entity_fields(
    entity: type[object], columns: tuple[sa.Column[object], ...]
) -> None:
    fields = [field.name for field in dataclasses.fields(entity)]  # type: ignore[arg-type]
    assert [column.name for column in columns] == fields
