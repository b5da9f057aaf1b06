"""Price history: trades grouped into time buckets, in one statement for many markets.

Buckets are aligned to the Unix epoch (an hour bucket starts on the hour, a day
bucket at 00:00 UTC). Prices are YES prices: a trade's stored prices are of the
outcome it traded, so a NO trade's are turned around (1 - p). Only buckets that
hold trades are returned; between them the price did not move.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from domain.entities import Outcome
from domain.money import SCALE
from domain.reads import PriceBucket
from infra.db.models import trades
from infra.db.types import Money


class epoch_seconds(FunctionElement[int]):
    """Whole seconds since the Unix epoch of a UTC timestamp column."""

    type = sa.BigInteger()
    inherit_cache = True


@compiles(epoch_seconds, "postgresql")
def _epoch_postgresql(element: epoch_seconds, compiler: SQLCompiler, **kw: Any) -> str:
    return f"CAST(FLOOR(EXTRACT(EPOCH FROM {compiler.process(element.clauses, **kw)})) AS BIGINT)"


@compiles(epoch_seconds, "sqlite")
def _epoch_sqlite(element: epoch_seconds, compiler: SQLCompiler, **kw: Any) -> str:
    # SQLite keeps UTCDateTime as 'YYYY-MM-DD HH:MM:SS.ffffff' (UTC); strftime reads it.
    return f"CAST(strftime('%s', {compiler.process(element.clauses, **kw)}) AS INTEGER)"


def _yes(column: sa.ColumnElement[Decimal]) -> sa.ColumnElement[Decimal]:
    flipped = sa.literal(Decimal(1), Money()) - column
    return sa.case((trades.c.outcome == Outcome.YES, column), else_=flipped)


async def price_history(
    rows: Callable[[sa.Select[Any]], Awaitable[Sequence[Any]]],
    market_ids: Sequence[UUID],
    start: datetime,
    end: datetime,
    seconds: int,
) -> dict[UUID, list[PriceBucket]]:
    """Buckets per market over ``[start, end)``, oldest first."""
    # Floor division: SQLAlchemy renders `/` as true division (as numeric), which would put
    # every second in a bucket of its own.
    width = sa.literal(seconds, sa.BigInteger())
    bucket = (epoch_seconds(trades.c.created_at) // width * width).label("bucket")
    first = sa.func.row_number().over(
        partition_by=(trades.c.market_id, bucket),
        order_by=(trades.c.created_at.asc(), trades.c.id.asc()),
    )
    last = sa.func.row_number().over(
        partition_by=(trades.c.market_id, bucket),
        order_by=(trades.c.created_at.desc(), trades.c.id.desc()),
    )
    ranked = (
        sa.select(
            trades.c.market_id,
            bucket,
            sa.type_coerce(_yes(trades.c.price_before), sa.BigInteger()).label("before"),
            sa.type_coerce(_yes(trades.c.price_after), sa.BigInteger()).label("after"),
            sa.type_coerce(trades.c.amount, sa.BigInteger()).label("amount"),
            first.label("first"),
            last.label("last"),
        )
        .where(
            trades.c.market_id.in_(set(market_ids)),
            trades.c.created_at >= start,
            trades.c.created_at < end,
        )
        .subquery()
    )
    # Aggregated as integer units (the columns' storage), turned into money below.
    stmt = (
        sa.select(
            ranked.c.market_id,
            ranked.c.bucket,
            sa.func.max(sa.case((ranked.c.first == 1, ranked.c.before))),
            sa.func.max(sa.case((ranked.c.last == 1, ranked.c.after))),
            sa.func.max(ranked.c.after),
            sa.func.min(ranked.c.after),
            sa.func.sum(ranked.c.amount),
            sa.func.count(),
        )
        .group_by(ranked.c.market_id, ranked.c.bucket)
        .order_by(ranked.c.market_id, ranked.c.bucket)
    )
    found: dict[UUID, list[PriceBucket]] = defaultdict(list)
    for market_id, epoch, opened, closed, high, low, volume, count in await rows(stmt):
        found[market_id].append(
            PriceBucket(
                start=datetime.fromtimestamp(int(epoch), UTC),
                open=_money(opened),
                high=_money(max(high, opened)),
                low=_money(min(low, opened)),
                close=_money(closed),
                volume=_money(volume),
                trades=int(count),
            )
        )
    return dict(found)


def _money(units: Any) -> Decimal:
    return Decimal(int(units)).scaleb(-SCALE)
