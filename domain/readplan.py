"""A read plan: one query operation, expressed against the read model.

The GraphQL layer builds a plan from a validated operation (fragments
expanded, fields merged by response key, types resolved), once per document;
the database layer renders each root field of it as one SQL statement that
returns that field's JSON. A plan holds no values: arguments that vary per
request are numbered ``slot``s, filled by the GraphQL layer for each request
(``Bound``), so the same plan and SQL serve every request of a document.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from domain.readmodel import Children, ObjectType, Private, Reference, Sort, Value
from domain.reads import Key, MarketFilter, MarketOrder


@dataclass(frozen=True, slots=True)
class Typename:
    key: str
    name: str


@dataclass(frozen=True, slots=True)
class Leaf:
    key: str
    value: Value | Private


@dataclass(frozen=True, slots=True)
class One:
    """A to-one relation and what is selected of its target."""

    key: str
    reference: Reference
    selection: Selection


class PageInfoField(enum.Enum):
    HAS_NEXT_PAGE = "hasNextPage"
    HAS_PREVIOUS_PAGE = "hasPreviousPage"
    START_CURSOR = "startCursor"
    END_CURSOR = "endCursor"


@dataclass(frozen=True, slots=True)
class Cursor:
    key: str


@dataclass(frozen=True, slots=True)
class Node:
    key: str
    selection: Selection


@dataclass(frozen=True, slots=True)
class Edges:
    key: str
    outputs: tuple[Cursor | Node | Typename, ...]


@dataclass(frozen=True, slots=True)
class Nodes:
    key: str
    selection: Selection


@dataclass(frozen=True, slots=True)
class PageInfo:
    key: str
    outputs: tuple[tuple[str, PageInfoField] | Typename, ...]


@dataclass(frozen=True, slots=True)
class TotalCount:
    key: str


ConnectionOutput = Edges | Nodes | PageInfo | TotalCount | Typename


@dataclass(frozen=True, slots=True)
class Connection:
    """A page of a to-many relation (``children``) or of a root list (``children`` None)."""

    key: str
    target: ObjectType
    children: Children | None
    outputs: tuple[ConnectionOutput, ...]
    slot: int


Output = Typename | Leaf | One | Connection


@dataclass(frozen=True, slots=True)
class Selection:
    type: ObjectType
    outputs: tuple[Output, ...]


class RootKind(enum.Enum):
    BY_ID = "by-id"  # market(id:), user(id:)
    VIEWER = "viewer"
    LIST = "list"  # markets(...)
    NODE = "node"
    NODES = "nodes"


@dataclass(frozen=True, slots=True)
class Root:
    """One root field: one SQL statement.

    ``selection`` for BY_ID and VIEWER; ``connection`` for LIST; ``branches`` (the
    selection for each type an id may name) for NODE and NODES.
    """

    key: str
    kind: RootKind
    slot: int = -1
    selection: Selection | None = None
    connection: Connection | None = None
    branches: Mapping[str, Selection] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Plan:
    roots: tuple[Root, ...]
    slots: int


@dataclass(frozen=True, slots=True)
class PageArgs:
    """A page of a connection for one request, already checked and decoded."""

    sort: Sort
    size: int
    backward: bool = False
    cursor: Key | None = None
    filter: MarketFilter | None = None
    order: MarketOrder | None = None

    def shape(self) -> tuple[Any, ...]:
        """What about the page changes the SQL text (the rest are parameters)."""
        conditions: tuple[bool, ...] = ()
        if self.filter is not None:
            f = self.filter
            conditions = tuple(
                value is not None
                for value in (f.status, f.creator_id, f.ends_after, f.ends_before, f.name_contains)
            )
        return (self.sort.name, self.backward, self.cursor is not None, conditions)


@dataclass(frozen=True, slots=True)
class NodeId:
    type_name: str
    id: UUID


# What a slot holds for one request: a page, an object id (None: no object), or node ids.
SlotValue = PageArgs | UUID | NodeId | Sequence[NodeId] | None


@dataclass(frozen=True, slots=True)
class Viewer:
    """Who reads, as the visibility predicates need it."""

    user_id: UUID | None
    # Names of the visibility rules under which this viewer sees every owner's rows and fields.
    sees_all: frozenset[str]


@dataclass(frozen=True, slots=True)
class Bound:
    slots: tuple[SlotValue, ...]
    viewer: Viewer


class NotCompilable(Exception):
    """The operation reads something outside the read model; the resolver path serves it."""
