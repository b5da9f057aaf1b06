"""Rows to domain entities: the one place that knows both shapes."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from domain.entities import Job, LedgerEntry, Market, Position, Trade, User
from infra.db.models import jobs, ledger_entries, markets, positions, trades, users

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
    positions.c.settled_at,
    positions.c.settled_amount,
)
TRADE_COLUMNS = (
    trades.c.id,
    trades.c.user_id,
    trades.c.market_id,
    trades.c.outcome,
    trades.c.side,
    trades.c.shares,
    trades.c.amount,
    trades.c.price_before,
    trades.c.price_after,
    trades.c.created_at,
)
LEDGER_COLUMNS = (
    ledger_entries.c.id,
    ledger_entries.c.user_id,
    ledger_entries.c.amount,
    ledger_entries.c.kind,
    ledger_entries.c.market_id,
    ledger_entries.c.trade_id,
    ledger_entries.c.created_at,
)
JOB_COLUMNS = (
    jobs.c.id,
    jobs.c.kind,
    jobs.c.state,
    jobs.c.market_id,
    jobs.c.attempts,
    jobs.c.error,
    jobs.c.enqueued_at,
    jobs.c.started_at,
    jobs.c.finished_at,
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


def to_trade(row: AnyRow) -> Trade:
    return Trade(*row)


def to_ledger_entry(row: AnyRow) -> LedgerEntry:
    return LedgerEntry(*row)


def to_job(row: AnyRow) -> Job:
    return Job(*row)


@dataclass(frozen=True, slots=True)
class EntityRows:
    """How one type of the read model is read: its columns, in the entity's field order."""

    columns: tuple[sa.Column[Any], ...]
    to_entity: Callable[[AnyRow], Any]


# By the read model's type names (domain/readmodel.py); a unit test holds the tables to it.
ENTITY_ROWS: Mapping[str, EntityRows] = {
    "User": EntityRows(USER_COLUMNS, to_user),
    "Market": EntityRows(MARKET_COLUMNS, to_market),
    "Position": EntityRows(POSITION_COLUMNS, to_position),
    "Trade": EntityRows(TRADE_COLUMNS, to_trade),
    "LedgerEntry": EntityRows(LEDGER_COLUMNS, to_ledger_entry),
}
