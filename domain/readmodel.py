"""The read model: what each object type of the API reads, declared once.

For every object type: the table it is read from, its columns and how each
value is shown, its computed fields, its relations (to-one by key; to-many as
keyset-paginated lists with their sort order and count), and the visibility
rules of ``domain/policy.py`` that hide private fields and rows. The batch
readers behind the DataLoaders and the compiler that turns a whole query into
one SQL statement (``infra/db/compiler.py``) both work from this declaration,
so the two ways of reading can only differ where a test would see it.

Names are storage names (tables, columns); field names are the Python names of
the GraphQL types' fields (``end_date`` for ``endDate``).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from uuid import UUID

from domain.policy import POSITIONS, PRIVATE_FIELDS, Actor, Visibility
from domain.reads import MarketOrder, MarketSortField


class Shown(enum.Enum):
    """How a stored value is shown in a response."""

    TEXT = "text"
    ENUM = "enum"
    BOOLEAN = "boolean"
    INT = "int"
    # Integer units of 1e-8, shown as a decimal string with 8 places.
    MONEY = "money"
    # UTC instants, shown in ISO 8601.
    DATETIME = "datetime"


@dataclass(frozen=True, slots=True)
class Column:
    column: str
    shown: Shown


@dataclass(frozen=True, slots=True)
class GlobalId:
    """The object's opaque id, made from its type name and primary key."""

    column: str = "id"


@dataclass(frozen=True, slots=True)
class Complement:
    """``1 - column``: a NO price from the stored YES price."""

    column: str


@dataclass(frozen=True, slots=True)
class RolePermissions:
    """The sorted names of the permissions the role in ``column`` grants."""

    column: str


Value = Column | GlobalId | Complement | RolePermissions


@dataclass(frozen=True, slots=True)
class Private:
    """A value shown only to those ``visibility`` allows for the row's ``owner``; null to others."""

    value: Value
    visibility: Visibility
    owner: str


@dataclass(frozen=True, slots=True)
class Reference:
    """A to-one relation: ``key`` holds the target's id (a foreign key, never null)."""

    target: str
    key: str


@dataclass(frozen=True, slots=True)
class Sort:
    """A keyset order: by ``column``, ties broken by id. ``name`` is written into cursors so a
    cursor of one order is refused under another; ``kind`` says how its value is read back."""

    name: str
    column: str
    descending: bool
    kind: str


@dataclass(frozen=True, slots=True)
class Children:
    """A to-many relation, read a page at a time: the rows of ``target`` whose ``parent_key``
    is this object's id, in ``sort`` order.

    Where ``visibility`` applies, rows the viewer may not see are left out
    (when ``hidden_list`` is False) or the whole list is null (when True).
    """

    target: str
    parent_key: str
    sort: Sort
    visibility: Visibility | None = None
    owner: str | None = None
    hidden_list: bool = False


Field = Value | Private | Reference | Children


@dataclass(frozen=True, slots=True)
class ObjectType:
    name: str
    table: str
    fields: Mapping[str, Field]
    # Rows hidden from some viewers on every path (``node`` included), by their owner column.
    visibility: Visibility | None = None
    owner: str | None = None


_MARKET_SORT_COLUMNS = {
    MarketSortField.VOLUME: ("volume", "decimal"),
    MarketSortField.CREATED_AT: ("created_at", "datetime"),
    MarketSortField.END_DATE: ("end_date", "datetime"),
    MarketSortField.NAME: ("name", "text"),
}


def market_sort(order: MarketOrder) -> Sort:
    """The keyset order of the ``markets`` list for a sort field and direction."""
    column, kind = _MARKET_SORT_COLUMNS[order.field]
    direction = "DESC" if order.descending else "ASC"
    return Sort(f"markets:{order.field.value}:{direction}", column, order.descending, kind)


MARKETS_BY_CREATOR = Sort("creator-markets:created_at:desc", "created_at", True, "datetime")
POSITIONS_BY_MARKET = Sort("positions:created_at:asc", "created_at", False, "datetime")
POSITIONS_BY_USER = Sort("user-positions:created_at:asc", "created_at", False, "datetime")
TRADES_BY_MARKET = Sort("market-trades:created_at:desc", "created_at", True, "datetime")
TRADES_BY_USER = Sort("user-trades:created_at:desc", "created_at", True, "datetime")
LEDGER_BY_USER = Sort("user-ledger:created_at:desc", "created_at", True, "datetime")

MARKET = ObjectType(
    "Market",
    "markets",
    {
        "id": GlobalId(),
        "name": Column("name", Shown.TEXT),
        "description": Column("description", Shown.TEXT),
        "status": Column("status", Shown.ENUM),
        "outcome": Column("outcome", Shown.ENUM),
        "end_date": Column("end_date", Shown.DATETIME),
        "liquidity": Column("liquidity", Shown.MONEY),
        "yes_shares": Column("q_yes", Shown.MONEY),
        "no_shares": Column("q_no", Shown.MONEY),
        "volume": Column("volume", Shown.MONEY),
        "yes_price": Column("yes_price", Shown.MONEY),
        "no_price": Complement("yes_price"),
        "created_at": Column("created_at", Shown.DATETIME),
        "updated_at": Column("updated_at", Shown.DATETIME),
        "creator": Reference("User", "creator_id"),
        "positions": Children(
            "Position",
            "market_id",
            POSITIONS_BY_MARKET,
            visibility=POSITIONS,
            owner="user_id",
        ),
        # Trades are holdings' history: as private as the positions.
        "trades": Children(
            "Trade", "market_id", TRADES_BY_MARKET, visibility=POSITIONS, owner="user_id"
        ),
    },
)

USER = ObjectType(
    "User",
    "users",
    {
        "id": GlobalId(),
        "display_name": Column("display_name", Shown.TEXT),
        "role": Column("role", Shown.ENUM),
        "created_at": Column("created_at", Shown.DATETIME),
        "disabled": Private(Column("disabled", Shown.BOOLEAN), PRIVATE_FIELDS, "id"),
        "permissions": Private(RolePermissions("role"), PRIVATE_FIELDS, "id"),
        "email": Private(Column("email", Shown.TEXT), PRIVATE_FIELDS, "id"),
        "balance": Private(Column("balance", Shown.MONEY), PRIVATE_FIELDS, "id"),
        "markets": Children("Market", "creator_id", MARKETS_BY_CREATOR),
        "positions": Children(
            "Position",
            "user_id",
            POSITIONS_BY_USER,
            visibility=POSITIONS,
            owner="user_id",
            hidden_list=True,
        ),
        "trades": Children(
            "Trade",
            "user_id",
            TRADES_BY_USER,
            visibility=POSITIONS,
            owner="user_id",
            hidden_list=True,
        ),
        # The entries the balance adds up to: as private as the balance.
        "ledger": Children(
            "LedgerEntry",
            "user_id",
            LEDGER_BY_USER,
            visibility=PRIVATE_FIELDS,
            owner="user_id",
            hidden_list=True,
        ),
    },
)

POSITION = ObjectType(
    "Position",
    "positions",
    {
        "id": GlobalId(),
        "outcome": Column("outcome", Shown.ENUM),
        "shares": Column("shares", Shown.MONEY),
        "cost_basis": Column("cost_basis", Shown.MONEY),
        "created_at": Column("created_at", Shown.DATETIME),
        "settled_at": Column("settled_at", Shown.DATETIME),
        "payout": Column("settled_amount", Shown.MONEY),
        "market": Reference("Market", "market_id"),
        "user": Reference("User", "user_id"),
    },
    visibility=POSITIONS,
    owner="user_id",
)

TRADE = ObjectType(
    "Trade",
    "trades",
    {
        "id": GlobalId(),
        "side": Column("side", Shown.ENUM),
        "outcome": Column("outcome", Shown.ENUM),
        "shares": Column("shares", Shown.MONEY),
        "amount": Column("amount", Shown.MONEY),
        "price_before": Column("price_before", Shown.MONEY),
        "price_after": Column("price_after", Shown.MONEY),
        "created_at": Column("created_at", Shown.DATETIME),
        "market": Reference("Market", "market_id"),
        "user": Reference("User", "user_id"),
    },
    visibility=POSITIONS,
    owner="user_id",
)

LEDGER_ENTRY = ObjectType(
    "LedgerEntry",
    "ledger_entries",
    {
        "id": GlobalId(),
        "amount": Column("amount", Shown.MONEY),
        "kind": Column("kind", Shown.ENUM),
        "created_at": Column("created_at", Shown.DATETIME),
        # Null for entries of no trade (grants) or no market.
        "trade": Reference("Trade", "trade_id"),
        "market": Reference("Market", "market_id"),
    },
    visibility=PRIVATE_FIELDS,
    owner="user_id",
)

TYPES: Mapping[str, ObjectType] = {t.name: t for t in (MARKET, USER, POSITION, TRADE, LEDGER_ENTRY)}


def relation(kind: ObjectType, name: str) -> Children:
    """The to-many relation ``name`` of ``kind``."""
    found = kind.fields[name]
    if not isinstance(found, Children):
        raise TypeError(f"{kind.name}.{name} is not a to-many relation")
    return found


@dataclass(frozen=True, slots=True)
class ListScope:
    """What one viewer sees of one parent's list (``Children``).

    ``hidden``: the whole list is null. ``holder``: only that user's rows. ``empty``:
    nothing at all (an anonymous viewer of a list kept to its owners).
    """

    hidden: bool = False
    holder: UUID | None = None
    empty: bool = False


EVERYTHING = ListScope()


def list_scope(
    children: Children, actor: Actor | None, parent_id: UUID, public: frozenset[str]
) -> ListScope:
    """Who sees which rows of a to-many relation: the one rule for positions, trades and
    ledgers on the resolver path, which the compiler renders as SQL for the other."""
    rule = children.visibility
    if rule is None or rule.sees_all(actor, rule.name in public):
        return EVERYTHING
    if children.hidden_list:
        # The parent owns the whole list (a user's positions): all of it, or nothing.
        return EVERYTHING if actor is not None and actor.user_id == parent_id else ListScope(True)
    if actor is None:
        return ListScope(empty=True)
    return ListScope(holder=actor.user_id)


def row_visible(
    kind: ObjectType, actor: Actor | None, owner_id: UUID | None, public: frozenset[str]
) -> bool:
    """Whether the viewer may see a row of ``kind`` owned by ``owner_id`` (``node``)."""
    rule = kind.visibility
    if rule is None or owner_id is None:
        return True
    return rule.allows(actor, owner_id, rule.name in public)
