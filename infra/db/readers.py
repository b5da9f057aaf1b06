"""Batch readers behind the DataLoaders: keys in, results in key order.

Each call opens its own short autocommit connection, because sibling fields
resolve concurrently and one shared connection would be used by two tasks at
once. Every call is exactly one SQL statement, selecting only the columns the
GraphQL types need.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from domain.entities import Job, LedgerEntry, Market, Position, Trade, User
from domain.reads import (
    ChildPageKey,
    HistoryKey,
    Key,
    MarketFilter,
    MarketOrder,
    MarketSortField,
    Page,
    PageRequest,
    PriceBucket,
)
from infra.db.models import ledger_entries, markets, positions, trades
from infra.db.price_history import price_history
from infra.db.rows import (
    JOB_COLUMNS,
    LEDGER_COLUMNS,
    MARKET_COLUMNS,
    POSITION_COLUMNS,
    TRADE_COLUMNS,
    USER_COLUMNS,
    AnyRow,
    to_job,
    to_ledger_entry,
    to_market,
    to_position,
    to_trade,
    to_user,
)

T = TypeVar("T")

_MARKET_SORT = {
    MarketSortField.VOLUME: markets.c.volume,
    MarketSortField.CREATED_AT: markets.c.created_at,
    MarketSortField.END_DATE: markets.c.end_date,
    MarketSortField.NAME: markets.c.name,
}


__all__ = ["ChildPageKey", "Readers"]


@dataclass(frozen=True, slots=True)
class _Children:
    """How to page through the children of many parents in one statement."""

    table: sa.Table
    parent: sa.Column[Any]
    columns: tuple[sa.Column[Any], ...]
    order: sa.Column[Any]
    descending: bool
    to_entity: Callable[[AnyRow], Any]
    holder: sa.Column[Any] | None = None


_POSITIONS_BY_MARKET = _Children(
    positions,
    positions.c.market_id,
    POSITION_COLUMNS,
    positions.c.created_at,
    False,
    to_position,
    positions.c.user_id,
)
_POSITIONS_BY_USER = _Children(
    positions, positions.c.user_id, POSITION_COLUMNS, positions.c.created_at, False, to_position
)
_MARKETS_BY_CREATOR = _Children(
    markets, markets.c.creator_id, MARKET_COLUMNS, markets.c.created_at, True, to_market
)
_TRADES_BY_MARKET = _Children(
    trades, trades.c.market_id, TRADE_COLUMNS, trades.c.created_at, True, to_trade, trades.c.user_id
)
_TRADES_BY_USER = _Children(
    trades, trades.c.user_id, TRADE_COLUMNS, trades.c.created_at, True, to_trade
)
_LEDGER_BY_USER = _Children(
    ledger_entries,
    ledger_entries.c.user_id,
    LEDGER_COLUMNS,
    ledger_entries.c.created_at,
    True,
    to_ledger_entry,
)


def _after(
    order: sa.ColumnElement[Any], id_col: sa.ColumnElement[Any], key: Key, descending: bool
) -> sa.ColumnElement[bool]:
    """Rows strictly after ``key`` in (order, id) order: a row-value comparison the index serves."""
    value = sa.bindparam(None, key[0], type_=order.type)
    ident = sa.bindparam(None, key[1], type_=sa.Uuid())
    left, right = sa.tuple_(order, id_col), sa.tuple_(value, ident)
    return left < right if descending else left > right


def _sorted(
    order: sa.ColumnElement[Any], id_col: sa.ColumnElement[Any], descending: bool
) -> tuple[sa.ColumnElement[Any], ...]:
    if descending:
        return order.desc(), id_col.desc()
    return order.asc(), id_col.asc()


class Readers:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def _rows(self, stmt: sa.Select[Any]) -> Sequence[AnyRow]:
        async with self._engine.connect() as conn:
            rows: Sequence[AnyRow] = (await conn.execute(stmt)).all()
            return rows

    async def _by_ids(
        self,
        ids: Sequence[UUID],
        columns: tuple[sa.Column[Any], ...],
        to_entity: Callable[[AnyRow], T],
    ) -> list[T | None]:
        id_col = columns[0]
        rows = await self._rows(sa.select(*columns).where(id_col.in_(set(ids))))
        found = {row[0]: to_entity(row) for row in rows}
        return [found.get(i) for i in ids]

    async def users_by_ids(self, ids: Sequence[UUID]) -> list[User | None]:
        return await self._by_ids(ids, USER_COLUMNS, to_user)

    async def markets_by_ids(self, ids: Sequence[UUID]) -> list[Market | None]:
        return await self._by_ids(ids, MARKET_COLUMNS, to_market)

    async def positions_by_ids(self, ids: Sequence[UUID]) -> list[Position | None]:
        return await self._by_ids(ids, POSITION_COLUMNS, to_position)

    async def trades_by_ids(self, ids: Sequence[UUID]) -> list[Trade | None]:
        return await self._by_ids(ids, TRADE_COLUMNS, to_trade)

    async def ledger_entries_by_ids(self, ids: Sequence[UUID]) -> list[LedgerEntry | None]:
        return await self._by_ids(ids, LEDGER_COLUMNS, to_ledger_entry)

    async def jobs_by_ids(self, ids: Sequence[UUID]) -> list[Job | None]:
        return await self._by_ids(ids, JOB_COLUMNS, to_job)

    async def market_page(
        self, where: MarketFilter, order: MarketOrder, page: PageRequest
    ) -> Page[Market]:
        """One keyset page of markets; ties in the sort field are broken by id."""
        sort = _MARKET_SORT[order.field]
        # Walking backward is walking forward in the reversed order, then flipping the page.
        descending = order.descending != page.backward
        start = page.before if page.backward else page.after
        stmt = sa.select(*MARKET_COLUMNS).where(*_market_conditions(where))
        if start is not None:
            stmt = stmt.where(_after(sort, markets.c.id, start, descending))
        stmt = stmt.order_by(*_sorted(sort, markets.c.id, descending)).limit(page.size + 1)
        rows = await self._rows(stmt)
        more = len(rows) > page.size
        items = [
            ((getattr(m, order.field.lower()), m.id), m) for m in map(to_market, rows[: page.size])
        ]
        if page.backward:
            items.reverse()
            return Page(items, has_next=start is not None, has_previous=more)
        return Page(items, has_next=more, has_previous=start is not None)

    async def market_count(self, where: MarketFilter) -> int:
        stmt = sa.select(sa.func.count()).select_from(markets).where(*_market_conditions(where))
        async with self._engine.connect() as conn:
            return int((await conn.execute(stmt)).scalar_one())

    async def positions_by_market(self, keys: Sequence[ChildPageKey]) -> list[Page[Position]]:
        return await self._child_pages(_POSITIONS_BY_MARKET, keys)

    async def positions_by_user(self, keys: Sequence[ChildPageKey]) -> list[Page[Position]]:
        return await self._child_pages(_POSITIONS_BY_USER, keys)

    async def markets_by_creator(self, keys: Sequence[ChildPageKey]) -> list[Page[Market]]:
        return await self._child_pages(_MARKETS_BY_CREATOR, keys)

    async def trades_by_market(self, keys: Sequence[ChildPageKey]) -> list[Page[Trade]]:
        return await self._child_pages(_TRADES_BY_MARKET, keys)

    async def trades_by_user(self, keys: Sequence[ChildPageKey]) -> list[Page[Trade]]:
        return await self._child_pages(_TRADES_BY_USER, keys)

    async def ledger_by_user(self, keys: Sequence[ChildPageKey]) -> list[Page[LedgerEntry]]:
        return await self._child_pages(_LEDGER_BY_USER, keys)

    async def trade_count_by_market(self, ids: Sequence[UUID]) -> list[int]:
        return await self._counts(trades.c.market_id, ids)

    async def trade_count_by_user(self, ids: Sequence[UUID]) -> list[int]:
        return await self._counts(trades.c.user_id, ids)

    async def ledger_count_by_user(self, ids: Sequence[UUID]) -> list[int]:
        return await self._counts(ledger_entries.c.user_id, ids)

    async def trade_count_by_market_holder(self, keys: Sequence[tuple[UUID, UUID]]) -> list[int]:
        """Trades per (market, trader): what a market shows when positions are private."""
        return await self._counts_by_holder(trades.c.market_id, trades.c.user_id, keys)

    async def price_history(self, keys: Sequence[HistoryKey]) -> list[list[PriceBucket]]:
        """Buckets of trades per market: one statement per distinct range and interval."""
        groups: dict[tuple[Any, Any, int], list[UUID]] = defaultdict(list)
        for key in keys:
            groups[(key.start, key.end, key.seconds)].append(key.market_id)
        found: dict[HistoryKey, list[PriceBucket]] = {}
        for (start, end, seconds), market_ids in groups.items():
            buckets = await price_history(self._rows, market_ids, start, end, seconds)
            for market_id in market_ids:
                found[HistoryKey(market_id, start, end, seconds)] = buckets.get(market_id, [])
        return [found[key] for key in keys]

    async def position_count_by_market(self, ids: Sequence[UUID]) -> list[int]:
        return await self._counts(positions.c.market_id, ids)

    async def position_count_by_user(self, ids: Sequence[UUID]) -> list[int]:
        return await self._counts(positions.c.user_id, ids)

    async def market_count_by_creator(self, ids: Sequence[UUID]) -> list[int]:
        return await self._counts(markets.c.creator_id, ids)

    async def position_count_by_market_holder(self, keys: Sequence[tuple[UUID, UUID]]) -> list[int]:
        """Positions per (market, holder): what a market shows when positions are private."""
        return await self._counts_by_holder(positions.c.market_id, positions.c.user_id, keys)

    async def _counts_by_holder(
        self,
        parent: sa.Column[Any],
        holder_column: sa.Column[Any],
        keys: Sequence[tuple[UUID, UUID]],
    ) -> list[int]:
        by_holder: dict[UUID, list[UUID]] = defaultdict(list)
        for parent_id, holder in keys:
            by_holder[holder].append(parent_id)
        counts: dict[tuple[UUID, UUID], int] = {}
        for holder, parent_ids in by_holder.items():
            found = await self._counts(parent, parent_ids, holder_column == holder)
            counts.update(((p, holder), n) for p, n in zip(parent_ids, found, strict=True))
        return [counts[key] for key in keys]

    async def _counts(
        self,
        parent: sa.Column[Any],
        ids: Sequence[UUID],
        *conditions: sa.ColumnElement[bool],
    ) -> list[int]:
        stmt = (
            sa.select(parent, sa.func.count())
            .where(parent.in_(set(ids)), *conditions)
            .group_by(parent)
        )
        counts: dict[UUID, int] = {row[0]: row[1] for row in await self._rows(stmt)}
        return [int(counts.get(i, 0)) for i in ids]

    async def _child_pages(self, spec: _Children, keys: Sequence[ChildPageKey]) -> list[Page[Any]]:
        """Pages of children for many parents: one statement per distinct (first, after).

        ``row_number()`` over each parent's children, cut at ``first + 1`` (the
        extra row tells whether there is a next page). Parents asking for their
        first page, the common case, all share one statement.
        """
        groups: dict[tuple[int, Key | None, UUID | None], list[UUID]] = defaultdict(list)
        for key in keys:
            groups[(key.first, key.after, key.holder)].append(key.parent_id)
        pages: dict[ChildPageKey, Page[Any]] = {}
        id_col = spec.columns[0]
        for (first, after, holder), parent_ids in groups.items():
            rank = sa.func.row_number().over(
                partition_by=spec.parent, order_by=_sorted(spec.order, id_col, spec.descending)
            )
            inner = sa.select(*spec.columns, rank.label("rank")).where(
                spec.parent.in_(set(parent_ids))
            )
            if after is not None:
                inner = inner.where(_after(spec.order, id_col, after, spec.descending))
            if holder is not None:
                assert spec.holder is not None, "this kind of child is not filtered by holder"
                inner = inner.where(spec.holder == holder)
            ranked = inner.subquery()
            stmt = (
                sa.select(*(ranked.c[c.name] for c in spec.columns))
                .where(ranked.c.rank <= first + 1)
                .order_by(ranked.c[spec.parent.name], ranked.c.rank)
            )
            found: dict[UUID, list[Any]] = defaultdict(list)
            for row in await self._rows(stmt):
                found[row._mapping[spec.parent.name]].append(spec.to_entity(row))
            for parent_id in parent_ids:
                children = found.get(parent_id, [])
                items = [((getattr(c, spec.order.name), c.id), c) for c in children[:first]]
                pages[ChildPageKey(parent_id, first, after, holder)] = Page(
                    items, has_next=len(children) > first, has_previous=after is not None
                )
        return [pages[key] for key in keys]


def _market_conditions(where: MarketFilter) -> list[sa.ColumnElement[bool]]:
    conditions: list[sa.ColumnElement[bool]] = []
    if where.status is not None:
        conditions.append(markets.c.status == where.status)
    if where.creator_id is not None:
        conditions.append(markets.c.creator_id == where.creator_id)
    if where.ends_after is not None:
        conditions.append(markets.c.end_date > where.ends_after)
    if where.ends_before is not None:
        conditions.append(markets.c.end_date < where.ends_before)
    if where.name_contains:
        # The text is a bound parameter; only LIKE's own wildcards need escaping.
        pattern = where.name_contains.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        conditions.append(markets.c.name.ilike(f"%{pattern}%", escape="\\"))
    return conditions
