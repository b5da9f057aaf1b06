"""Rows to domain entities: the one place that knows both shapes."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from domain.entities import Market, Position, User
from infra.db.models import markets, positions, users

USER_COLUMNS = (
    users.c.id,
    users.c.email,
    users.c.display_name,
    users.c.role,
    users.c.balance,
    users.c.disabled,
    users.c.token_version,
    users.c.created_at,
)
MARKET_COLUMNS = tuple(markets.c)
POSITION_COLUMNS = (
    positions.c.id,
    positions.c.user_id,
    positions.c.market_id,
    positions.c.outcome,
    positions.c.shares,
    positions.c.cost_basis,
    positions.c.created_at,
)


AnyRow = sa.Row[*tuple[Any, ...]]


# Positional: the *_COLUMNS tuples list the entity's fields in order (a unit test holds
# them to it), and building from the tuple skips a mapping per row on the hot read path.


def to_user(row: AnyRow) -> User:
    return User(*row)


def to_market(row: AnyRow) -> Market:
    return Market(*row)


def to_position(row: AnyRow) -> Position:
    return Position(*row)
