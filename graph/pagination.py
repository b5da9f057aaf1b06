"""Relay connections with keyset pagination and opaque cursors.

A cursor holds the sort it was made under, the row's sort value and its id,
so paging stays correct when many rows share a sort value, and a cursor from
one sort order is refused under another. It is signed (``domain/cursors.py``):
a cursor the server did not issue, whatever it decodes to, is refused as
BAD_USER_INPUT before anything in it is read.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from decimal import Decimal, DecimalException
from typing import Any, Generic, TypeVar
from uuid import UUID

import orjson
import strawberry

from domain.cursors import MAC_BYTES, CursorKey
from domain.money import SCALE, is_exact
from domain.reads import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, Key, Page, PageRequest
from graph.errors import ApiError, bad_input

NodeT = TypeVar("NodeT")

# The largest amount a money column holds: a signed 64-bit count of 1e-8 units.
_MONEY_LIMIT = Decimal(2**63 - 1).scaleb(-SCALE)


def _decimal(value: Any) -> Decimal:
    if not isinstance(value, str):
        raise TypeError("a decimal sort value is written as a string")
    amount = Decimal(value)
    # copy_abs, not abs(): abs() rounds to the context and overflows on 1e999999999.
    if not is_exact(amount) or amount.copy_abs() > _MONEY_LIMIT:
        raise ValueError("not an amount any row can hold")
    return amount


def _datetime(value: Any) -> datetime:
    if not isinstance(value, str):
        raise TypeError("a datetime sort value is written as a string")
    moment = datetime.fromisoformat(value)
    if moment.utcoffset() is None:
        raise ValueError("cursors carry UTC times")
    return moment.astimezone(UTC)


def _text(value: Any) -> str:
    if not isinstance(value, str) or "\x00" in value:
        raise ValueError("not a text any row can hold")
    value.encode()  # a lone surrogate cannot be sent to the database (UnicodeEncodeError)
    return value


# How each kind of sort value is read back from a cursor. A cursor comes from
# the client, so a forged one must fail here, as BAD_USER_INPUT, and never
# reach the database as a value it cannot bind (a naive or out-of-range time,
# NaN, an amount wider than the column, a NUL in text).
VALUE_KINDS: dict[str, Callable[[Any], Any]] = {
    "decimal": _decimal,
    "datetime": _datetime,
    "text": _text,
}


def encode_cursor(sort: str, key: Key, signing: CursorKey) -> str:
    # Written as the response shows times and amounts, and as the compiled read path
    # (infra/db/compiler.py) writes cursors in SQL: the two must give the same text.
    if isinstance(key[0], datetime):
        value = key[0].astimezone(UTC).isoformat(timespec="microseconds")
    elif isinstance(key[0], Decimal):
        value = format(key[0], "f")
    else:
        value = str(key[0])
    payload = orjson.dumps([sort, value, key[1].hex])
    return _base64url(payload + signing.sign(payload))


def _base64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, sort: str, kind: str, argument: str, signing: CursorKey) -> Key:
    """The sort key a cursor points at, or BAD_USER_INPUT naming ``argument``.

    Only the exact text the server wrote is read: its signature must hold (and the
    text must be the one encoding of the bytes, not another spelling of them). What
    a signed cursor holds is checked all the same, as a last line should the key
    ever leak: the exceptions caught are every way the checks can fail on any input.
    """
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
    except (binascii.Error, ValueError):
        raise _refused(argument) from None
    payload, mac = raw[:-MAC_BYTES], raw[-MAC_BYTES:]
    if not payload or not signing.verify(payload, mac) or _base64url(raw) != cursor:
        raise _refused(argument)
    try:
        made_for, value, ident = orjson.loads(payload)
        if made_for != sort:
            raise ValueError("cursor of another sort order")
        if not isinstance(ident, str):
            raise TypeError("the id is written as hex")
        return VALUE_KINDS[kind](value), UUID(hex=ident)
    except (
        orjson.JSONDecodeError,
        ValueError,
        TypeError,
        DecimalException,
        OverflowError,
    ):
        raise _refused(argument) from None


def _refused(argument: str) -> ApiError:
    return bad_input(f"'{argument}' is not a valid cursor for this list.", argument)


def page_request(
    sort: str,
    kind: str,
    first: int | None,
    after: str | None,
    last: int | None = None,
    before: str | None = None,
    *,
    signing: CursorKey,
) -> PageRequest:
    """Check the Relay arguments and decode the cursors (BAD_USER_INPUT when wrong)."""
    if first is not None and last is not None:
        raise bad_input("Pass either 'first' or 'last', not both.", "last")
    for name, size in (("first", first), ("last", last)):
        if size is not None and not 1 <= size <= MAX_PAGE_SIZE:
            raise bad_input(f"'{name}' must be between 1 and {MAX_PAGE_SIZE}.", name)
    if last is not None:
        if after is not None:
            raise bad_input("'after' goes with 'first', not with 'last'.", "after")
        return PageRequest(
            first=None,
            last=last,
            before=None if before is None else decode_cursor(before, sort, kind, "before", signing),
        )
    if before is not None:
        raise bad_input("'before' goes with 'last', not with 'first'.", "before")
    return PageRequest(
        first=first if first is not None else DEFAULT_PAGE_SIZE,
        after=None if after is None else decode_cursor(after, sort, kind, "after", signing),
    )


@strawberry.type(description="Where a page sits in the whole list.")
class PageInfo:
    has_next_page: bool = strawberry.field(description="More items follow this page.")
    has_previous_page: bool = strawberry.field(
        description="Items come before this page (when paging backward, or after a cursor)."
    )
    start_cursor: str | None = strawberry.field(description="The cursor of the first item.")
    end_cursor: str | None = strawberry.field(description="The cursor of the last item.")


@strawberry.type(description="An item of a list, with the cursor that points at it.")
class Edge(Generic[NodeT]):
    cursor: str = strawberry.field(description="Pass as `after` or `before` to page from here.")
    node: NodeT = strawberry.field(description="The item.")


@strawberry.type(description="A page of a list (Relay connection).")
class Connection(Generic[NodeT]):
    edges: list[Edge[NodeT]] = strawberry.field(description="The items with their cursors.")
    page_info: PageInfo = strawberry.field(description="Where this page sits in the list.")
    count: strawberry.Private[Callable[[], Awaitable[int]]]

    @strawberry.field(description="The items of this page, without cursors.")
    def nodes(self) -> list[NodeT]:
        return [edge.node for edge in self.edges]

    @strawberry.field(description="How many items the whole list has, across all pages.")
    async def total_count(self) -> int:
        return await self.count()


def connection(
    page: Page[Any],
    sort: str,
    to_node: Callable[[Any], NodeT],
    count: Callable[[], Awaitable[int]],
    signing: CursorKey,
) -> Connection[NodeT]:
    edges = [
        Edge(cursor=encode_cursor(sort, key, signing), node=to_node(item))
        for key, item in page.items
    ]
    return Connection(
        edges=edges,
        page_info=PageInfo(
            has_next_page=page.has_next,
            has_previous_page=page.has_previous,
            start_cursor=edges[0].cursor if edges else None,
            end_cursor=edges[-1].cursor if edges else None,
        ),
        count=count,
    )


__all__ = ["Connection", "Edge", "PageInfo", "connection", "page_request"]
