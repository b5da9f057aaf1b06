"""The shapes of read requests: filters, sort orders and keyset pages.

They are plain data so that the GraphQL layer can build them and the database
readers can answer them without either knowing the other.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Generic, TypeVar
from uuid import UUID

from domain.entities import MarketStatus

T = TypeVar("T")

DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100

# A keyset position: the sort value and the id of a row (the id breaks ties).
Key = tuple[Any, UUID]


class MarketSortField(enum.StrEnum):
    VOLUME = "VOLUME"
    CREATED_AT = "CREATED_AT"
    END_DATE = "END_DATE"
    NAME = "NAME"


@dataclass(frozen=True, slots=True)
class MarketFilter:
    status: MarketStatus | None = None
    creator_id: UUID | None = None
    ends_after: datetime | None = None
    ends_before: datetime | None = None
    name_contains: str | None = None


@dataclass(frozen=True, slots=True)
class MarketOrder:
    field: MarketSortField = MarketSortField.CREATED_AT
    descending: bool = True


@dataclass(frozen=True, slots=True)
class PageRequest:
    """Either forward (``first`` after a key) or backward (``last`` before a key)."""

    first: int | None = DEFAULT_PAGE_SIZE
    after: Key | None = None
    last: int | None = None
    before: Key | None = None

    @property
    def backward(self) -> bool:
        return self.last is not None

    @property
    def size(self) -> int:
        size = self.last if self.backward else self.first
        return DEFAULT_PAGE_SIZE if size is None else size


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One page of results, each with the key its cursor is made from."""

    items: list[tuple[Key, T]]
    has_next: bool
    has_previous: bool


@dataclass(frozen=True, slots=True)
class ChildPageKey:
    """The first page of one parent's children: positions of a market, say."""

    parent_id: UUID
    first: int
    after: Key | None = None
    # Only this holder's children (private positions or trades seen by someone else).
    holder: UUID | None = None


@dataclass(frozen=True, slots=True)
class HistoryKey:
    """A market's price history over ``[start, end)`` in buckets of ``seconds``."""

    market_id: UUID
    start: datetime
    end: datetime
    seconds: int


@dataclass(frozen=True, slots=True)
class PriceBucket:
    """The trades of one time bucket: YES prices (open before the first trade, close after
    the last, high and low across them), money traded and the number of trades."""

    start: datetime
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal
    trades: int
