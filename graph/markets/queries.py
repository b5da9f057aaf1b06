"""Reading markets."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated

import strawberry
from strawberry.types import Info

from domain.cursors import CursorKey
from domain.entities import MarketStatus as DomainStatus
from domain.reads import MarketFilter as MarketCriteria
from domain.reads import MarketOrder as MarketSort
from domain.reads import MarketSortField, PageRequest
from graph.context import Context
from graph.enums import MarketOrderField, MarketStatus, OrderDirection
from graph.errors import bad_input
from graph.ids import expect_id
from graph.markets.types import MarketType, market_nodes
from graph.pagination import Connection, connection, page_request

NAME_CONTAINS_MAX = 200
_VALUE_KIND = {
    MarketOrderField.VOLUME: "decimal",
    MarketOrderField.CREATED_AT: "datetime",
    MarketOrderField.END_DATE: "datetime",
    MarketOrderField.NAME: "text",
}


@strawberry.input(description="Which markets to list. All conditions must hold.")
class MarketFilter:
    status: MarketStatus | None = strawberry.field(default=None, description="Only this status.")
    creator_id: strawberry.ID | None = strawberry.field(
        default=None, description="Only markets created by this user (a User id)."
    )
    ends_after: datetime | None = strawberry.field(
        default=None, description="Only markets ending after this time."
    )
    ends_before: datetime | None = strawberry.field(
        default=None, description="Only markets ending before this time."
    )
    name_contains: str | None = strawberry.field(
        default=None, description="Only markets whose name contains this text (any case)."
    )

    def to_criteria(self) -> MarketCriteria:
        if self.name_contains is not None:
            if len(self.name_contains) > NAME_CONTAINS_MAX:
                raise bad_input(
                    f"'nameContains' may be at most {NAME_CONTAINS_MAX} characters.", "filter"
                )
            if "\x00" in self.name_contains:
                # PostgreSQL cannot hold NUL in text; no name contains one.
                raise bad_input("'nameContains' must not contain NUL characters.", "filter")
        return MarketCriteria(
            status=None if self.status is None else DomainStatus[self.status.name],
            creator_id=None
            if self.creator_id is None
            else expect_id(self.creator_id, "User", "filter.creatorId"),
            ends_after=_utc(self.ends_after, "endsAfter"),
            ends_before=_utc(self.ends_before, "endsBefore"),
            name_contains=self.name_contains or None,
        )


def _utc(moment: datetime | None, name: str) -> datetime | None:
    """A filter time in UTC; a time without an offset names no single instant."""
    if moment is None:
        return None
    if moment.utcoffset() is None:
        raise bad_input(f"'{name}' must carry a time zone offset.", "filter")
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        raise bad_input(f"'{name}' is out of range.", "filter") from None


@strawberry.input(description="How to sort markets.")
class MarketOrder:
    field: MarketOrderField = strawberry.field(
        default=MarketOrderField.CREATED_AT, description="The field to sort by."
    )
    direction: OrderDirection = strawberry.field(
        default=OrderDirection.DESC, description="The direction."
    )


@strawberry.type
class MarketQueries:
    @strawberry.field(description="One market by id, or null when there is none.")
    async def market(
        self,
        info: Info[Context, None],
        id: Annotated[strawberry.ID, strawberry.argument(description="A Market id.")],
    ) -> MarketType | None:
        market = await info.context.loaders.market(expect_id(id, "Market", "id"))
        return None if market is None else MarketType.from_entity(market)

    @strawberry.field(description="Markets, filtered and sorted, one page at a time.")
    async def markets(
        self,
        info: Info[Context, None],
        first: Annotated[
            int | None, strawberry.argument(description="Page size going forward, 1 to 100.")
        ] = None,
        after: Annotated[
            str | None, strawberry.argument(description="Start after this cursor.")
        ] = None,
        last: Annotated[
            int | None, strawberry.argument(description="Page size going backward, 1 to 100.")
        ] = None,
        before: Annotated[
            str | None, strawberry.argument(description="End before this cursor.")
        ] = None,
        filter: Annotated[
            MarketFilter | None, strawberry.argument(description="Which markets to include.")
        ] = None,
        order_by: Annotated[
            MarketOrder | None,
            strawberry.argument(description="Sort order (default: newest first)."),
        ] = None,
    ) -> Connection[MarketType]:
        services = info.context.services
        listing = market_listing(
            first, after, last, before, filter, order_by, signing=services.cursor_key
        )
        readers = services.readers
        page = await readers.market_page(listing.criteria, listing.order, listing.request)
        to_node = await market_nodes(info, [market for _, market in page.items])
        return connection(
            page,
            listing.sort,
            to_node,
            lambda: readers.market_count(listing.criteria),
            services.cursor_key,
        )


@dataclass(frozen=True, slots=True)
class MarketListing:
    """The ``markets`` arguments, checked: the page, the criteria and the order."""

    request: PageRequest
    criteria: MarketCriteria
    order: MarketSort
    # The cursor sort name, e.g. ``markets:VOLUME:DESC``.
    sort: str


def market_listing(
    first: int | None,
    after: str | None,
    last: int | None,
    before: str | None,
    filter: MarketFilter | None,
    order_by: MarketOrder | None,
    *,
    signing: CursorKey,
) -> MarketListing:
    """Check and decode the arguments of ``markets`` (BAD_USER_INPUT when wrong).

    The resolver and the compiled path both read them through here, so both
    refuse the same arguments with the same errors.
    """
    order = order_by or MarketOrder()
    sort = f"markets:{order.field.name}:{order.direction.name}"
    request = page_request(
        sort, _VALUE_KIND[order.field], first, after, last, before, signing=signing
    )
    criteria = filter.to_criteria() if filter else MarketCriteria()
    return MarketListing(
        request=request,
        criteria=criteria,
        order=MarketSort(
            field=MarketSortField[order.field.name],
            descending=order.direction is OrderDirection.DESC,
        ),
        sort=sort,
    )
