"""Batch readers behind the DataLoaders: keys in, results in key order.

Objects by id, pages of a to-many relation and its counts are read for any type
and relation of the read model (``domain/readmodel.py``): the table, the parent
key, the sort and the holder column all come from its declaration, so adding a
relation there is all it takes to read it here.

Each call opens its own short autocommit connection, because sibling fields
resolve concurrently and one shared connection would be used by two tasks at
once. Every call is exactly one SQL statement per distinct page request.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from domain.entities import Job, Market
from domain.ports import CountKey
from domain.readmodel import Children, ObjectType
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
from infra.db.models import markets
from infra.db.price_history import price_history
from infra.db.rows import (
    ENTITY_ROWS,
    JOB_COLUMNS,
    MARKET_COLUMNS,
    AnyRow,
    to_job,
    to_market,
)

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

    parent: sa.Column[Any]
    columns: tuple[sa.Column[Any], ...]
    order: sa.Column[Any]
    descending: bool
    to_entity: Callable[[AnyRow], Any]
    holder: sa.Column[Any] | None


@cache
def _children(children: Children) -> _Children:
    """The read model's relation, in tables and columns."""
    rows = ENTITY_ROWS[children.target]
    table = rows.columns[0].table
    holder = None
    if children.owner is not None and not children.hidden_list:
        holder = table.c[children.owner]
    return _Children(
        parent=table.c[children.parent_key],
        columns=rows.columns,
        order=table.c[children.sort.column],
        descending=children.sort.descending,
        to_entity=rows.to_entity,
        holder=holder,
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
    """``domain.ports.BatchReads`` on the database."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def _rows(self, stmt: sa.Select[Any]) -> Sequence[AnyRow]:
        async with self._engine.connect() as conn:
            rows: Sequence[AnyRow] = (await conn.execute(stmt)).all()
            return rows

    async def objects(self, kind: ObjectType, ids: Sequence[UUID]) -> list[Any | None]:
        rows = ENTITY_ROWS[kind.name]
        return await self._by_ids(ids, rows.columns, rows.to_entity)

    async def _by_ids(
        self,
        ids: Sequence[UUID],
        columns: tuple[sa.Column[Any], ...],
        to_entity: Callable[[AnyRow], Any],
    ) -> list[Any | None]:
        id_col = columns[0]
        rows = await self._rows(sa.select(*columns).where(id_col.in_(set(ids))))
        found = {row[0]: to_entity(row) for row in rows}
        return [found.get(i) for i in ids]

    async def jobs_by_ids(self, ids: Sequence[UUID]) -> list[Job | None]:
        return await self._by_ids(ids, JOB_COLUMNS, to_job)

    async def pages(self, children: Children, keys: Sequence[ChildPageKey]) -> list[Page[Any]]:
        return await self._child_pages(_children(children), keys)

    async def counts(self, children: Children, keys: Sequence[CountKey]) -> list[int]:
        """How many children each parent has (of one holder's, where the key names one)."""
        spec = _children(children)
        by_holder: dict[UUID | None, list[UUID]] = defaultdict(list)
        for parent_id, holder in keys:
            by_holder[holder].append(parent_id)
        counts: dict[CountKey, int] = {}
        for holder, parent_ids in by_holder.items():
            conditions = []
            if holder is not None:
                assert spec.holder is not None, "this kind of child is not filtered by holder"
                conditions.append(spec.holder == holder)
            found = await self._counts(spec.parent, parent_ids, *conditions)
            counts.update(((p, holder), n) for p, n in zip(parent_ids, found, strict=True))
        return [counts[key] for key in keys]

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
