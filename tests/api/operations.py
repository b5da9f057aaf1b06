"""Hypothesis strategies for query operations over the read model.

They write documents as a client would: root fields with literal or variable
arguments, random selections of scalars and relations a few levels deep,
aliases, named and inline fragments (with literal ``@include``/``@skip``),
connections with ``edges``, ``nodes``, ``pageInfo`` and ``totalCount``, page
sizes, cursors of every list (mostly valid ones, from the seeded rows, and now
and then a forged one), filters and sort orders. Each example is an
``Operation``: the document text, its variables, how many root fields it has,
and whether every argument is one the server accepts (then it must compile).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hypothesis import strategies as st

MARKET_SCALARS = (
    "id",
    "name",
    "description",
    "status",
    "outcome",
    "endDate",
    "liquidity",
    "yesShares",
    "noShares",
    "volume",
    "yesPrice",
    "noPrice",
    "createdAt",
    "updatedAt",
    "__typename",
)
USER_SCALARS = (
    "id",
    "displayName",
    "role",
    "createdAt",
    "disabled",
    "permissions",
    "email",
    "balance",
    "__typename",
)
POSITION_SCALARS = (
    "id",
    "outcome",
    "shares",
    "costBasis",
    "createdAt",
    "settledAt",
    "payout",
    "__typename",
)
TRADE_SCALARS = (
    "id",
    "side",
    "outcome",
    "shares",
    "amount",
    "priceBefore",
    "priceAfter",
    "createdAt",
    "__typename",
)
LEDGER_SCALARS = ("id", "amount", "kind", "createdAt", "__typename")
SCALARS = {
    "Market": MARKET_SCALARS,
    "User": USER_SCALARS,
    "Position": POSITION_SCALARS,
    "Trade": TRADE_SCALARS,
    "LedgerEntry": LEDGER_SCALARS,
}
# Relation fields: (target type, is a connection, cursor family).
RELATIONS: dict[str, dict[str, tuple[str, bool, str]]] = {
    "Market": {
        "creator": ("User", False, ""),
        "positions": ("Position", True, "market-positions"),
        "trades": ("Trade", True, "market-trades"),
    },
    "User": {
        "markets": ("Market", True, "creator-markets"),
        "positions": ("Position", True, "user-positions"),
        "trades": ("Trade", True, "user-trades"),
        "ledger": ("LedgerEntry", True, "user-ledger"),
    },
    "Position": {"market": ("Market", False, ""), "user": ("User", False, "")},
    "Trade": {"market": ("Market", False, ""), "user": ("User", False, "")},
    "LedgerEntry": {"trade": ("Trade", False, ""), "market": ("Market", False, "")},
}
NODE_TYPES = ("Market", "User", "Position", "Trade", "LedgerEntry")
PAGE_INFO = ("hasNextPage", "hasPreviousPage", "startCursor", "endCursor", "__typename")
ORDER_FIELDS = ("VOLUME", "CREATED_AT", "END_DATE", "NAME")
STATUSES = ("ACTIVE", "CLOSED", "RESOLVED", "CANCELLED")
MAX_DEPTH = 3


@dataclass(frozen=True)
class World:
    """What the generator may refer to: the seeded rows, by global id, and valid cursors."""

    markets: tuple[str, ...]
    users: tuple[str, ...]
    positions: tuple[str, ...]
    # Trades and ledger entries, and (``outside``) ids of types outside the read model (jobs),
    # which the resolvers serve.
    others: tuple[str, ...]
    outside: tuple[str, ...]
    token: str
    # Cursor family -> valid cursors; root lists by "markets:FIELD:DIRECTION".
    cursors: dict[str, tuple[str, ...]]
    times: tuple[str, ...]


@dataclass(frozen=True)
class Operation:
    document: str
    variables: dict[str, Any]
    roots: int
    # Every argument is one the server accepts and every id is of the read model:
    # the operation must compile.
    valid: bool


@dataclass
class _Writer:
    draw: Any
    world: World
    fragments: list[str] = field(default_factory=list)
    definitions: list[str] = field(default_factory=list)
    variables: dict[str, Any] = field(default_factory=dict)
    valid: bool = True
    names: int = 0

    def name(self, prefix: str) -> str:
        self.names += 1
        return f"{prefix}{self.names}"

    def maybe(self, probability: float) -> bool:
        return bool(self.draw(st.floats(0, 1)) < probability)

    def pick(self, options: Any) -> Any:
        return self.draw(st.sampled_from(tuple(options)))

    def argument(self, graphql_type: str, value: Any, literal: str) -> str:
        """A literal, or (sometimes) a variable of ``graphql_type`` holding ``value``."""
        if self.maybe(0.35):
            name = self.name("v")
            self.definitions.append(f"${name}: {graphql_type}")
            self.variables[name] = value
            return f"${name}"
        return literal

    # --- selections ------------------------------------------------------------------------

    def selection(self, kind: str, depth: int) -> str:
        scalars = self.draw(
            st.lists(st.sampled_from(SCALARS[kind]), min_size=1, max_size=6, unique=True)
        )
        parts = [self.aliased(name) for name in scalars]
        if depth < MAX_DEPTH:
            relations = RELATIONS[kind]
            chosen = self.draw(st.lists(st.sampled_from(tuple(relations)), max_size=2, unique=True))
            for relation in chosen:
                target, is_connection, family = relations[relation]
                if is_connection:
                    parts.append(self.connection(relation, target, family, depth + 1))
                else:
                    parts.append(
                        f"{self.alias()}{relation} {{ {self.selection(target, depth + 1)} }}"
                    )
        return self.wrapped(kind, parts)

    def alias(self) -> str:
        return f"{self.name('a')}: " if self.maybe(0.15) else ""

    def aliased(self, name: str) -> str:
        directive = ""
        if self.maybe(0.08):
            directive = self.pick(
                (
                    " @include(if: true)",
                    " @skip(if: false)",
                    " @include(if: false)",
                    " @skip(if: true)",
                )
            )
        return f"{self.alias()}{name}{directive}"

    def wrapped(self, kind: str, parts: list[str]) -> str:
        """Some of the fields moved into a named or inline fragment."""
        if len(parts) < 2 or not self.maybe(0.3):
            return " ".join(parts)
        cut = self.draw(st.integers(1, len(parts) - 1))
        inside, outside = parts[:cut], parts[cut:]
        if self.maybe(0.5):
            name = self.name("F")
            self.fragments.append(f"fragment {name} on {kind} {{ {' '.join(inside)} }}")
            spread = f"...{name}"
        else:
            condition = f"on {kind} " if self.maybe(0.6) else ""
            spread = f"... {condition}{{ {' '.join(inside)} }}"
        return " ".join([*outside, spread])

    def connection(self, relation: str, target: str, family: str, depth: int) -> str:
        arguments: list[str] = []
        if self.maybe(0.7):
            first = self.draw(st.integers(1, 4))
            arguments.append(f"first: {self.argument('Int', first, str(first))}")
        if self.maybe(0.3):
            arguments.append(f"after: {self.cursor(family)}")
        args = f"({', '.join(arguments)})" if arguments else ""
        return f"{self.alias()}{relation}{args} {{ {self.connection_body(target, depth)} }}"

    def connection_body(self, target: str, depth: int) -> str:
        parts: list[str] = []
        for part in self.draw(
            st.lists(
                st.sampled_from(("edges", "nodes", "pageInfo", "totalCount", "__typename")),
                min_size=1,
                max_size=4,
                unique=True,
            )
        ):
            if part == "edges":
                edge = self.draw(
                    st.lists(
                        st.sampled_from(("cursor", "node", "__typename")),
                        min_size=1,
                        max_size=3,
                        unique=True,
                    )
                )
                inner = [
                    f"node {{ {self.selection(target, depth)} }}" if e == "node" else e
                    for e in edge
                ]
                parts.append(f"{self.alias()}edges {{ {' '.join(inner)} }}")
            elif part == "nodes":
                parts.append(f"{self.alias()}nodes {{ {self.selection(target, depth)} }}")
            elif part == "pageInfo":
                info = self.draw(
                    st.lists(st.sampled_from(PAGE_INFO), min_size=1, max_size=4, unique=True)
                )
                parts.append(f"pageInfo {{ {' '.join(info)} }}")
            else:
                parts.append(f"{self.alias()}{part}")
        return " ".join(parts)

    def cursor(self, family: str) -> str:
        known = self.world.cursors.get(family, ())
        if known and not self.maybe(0.08):
            value = self.pick(known)
        else:
            self.valid = False
            value = self.pick(("bm90LWEtY3Vyc29y", "WyJtYXJrZXRzOk5BTUU6QVNDIiwiIiwiIl0", ""))
        return self.argument("String", value, f'"{value}"')

    # --- roots -----------------------------------------------------------------------------

    def root(self) -> str:
        kind = self.pick(("market", "user", "markets", "viewer", "node", "nodes", "markets"))
        alias = f"{self.name('r')}: "
        if kind == "viewer":
            return f"{alias}viewer {{ {self.selection('User', 1)} }}"
        if kind in ("market", "user"):
            pool = self.world.markets if kind == "market" else self.world.users
            ident = self.identity(pool)
            target = "Market" if kind == "market" else "User"
            return f"{alias}{kind}(id: {ident}) {{ {self.selection(target, 1)} }}"
        pool = (
            self.world.markets
            + self.world.users
            + self.world.positions
            + self.world.others
            + self.world.outside
        )
        if kind == "node":
            ident = self.identity(pool)
            return f"{alias}node(id: {ident}) {{ {self.node_selection()} }}"
        if kind == "nodes":
            ids = self.draw(st.lists(st.sampled_from(pool), max_size=4))
            if any(i in self.world.outside for i in ids):
                self.valid = False
            listed = "[" + ", ".join(f'"{i}"' for i in ids) + "]"
            argument = self.argument("[ID!]!", ids, listed)
            return f"{alias}nodes(ids: {argument}) {{ {self.node_selection()} }}"
        return f"{alias}markets{self.market_arguments()} {{ {self.connection_body('Market', 1)} }}"

    def identity(self, pool: tuple[str, ...]) -> str:
        if self.maybe(0.1):
            value = self.pick(
                (
                    "VXNlcjpub3QtYS11dWlk",
                    "TWFya2V0OjAwMDAwMDAwLTAwMDAtMDAwMC0wMDAwLTAwMDAwMDAwMDAwMA",
                )
            )
            if value.startswith("VXNlcjpub3Q"):
                self.valid = False
        else:
            value = self.pick(pool)
            if value in self.world.outside:
                self.valid = False
        return self.argument("ID!", value, f'"{value}"')

    def node_selection(self) -> str:
        parts = [self.pick(("id", "__typename", "id __typename"))]
        for kind in self.draw(st.lists(st.sampled_from(NODE_TYPES), max_size=3, unique=True)):
            parts.append(f"... on {kind} {{ {self.selection(kind, 2)} }}")
        return " ".join(parts)

    def market_arguments(self) -> str:
        arguments: list[str] = []
        order_field = self.pick(ORDER_FIELDS)
        direction = self.pick(("ASC", "DESC"))
        if self.maybe(0.6):
            arguments.append(f"orderBy: {{field: {order_field}, direction: {direction}}}")
        else:
            order_field, direction = "CREATED_AT", "DESC"
        family = f"markets:{order_field}:{direction}"
        backward = self.maybe(0.25)
        size = self.draw(st.integers(1, 12))
        if backward:
            arguments.append(f"last: {self.argument('Int', size, str(size))}")
            if self.maybe(0.5):
                arguments.append(f"before: {self.cursor(family)}")
        else:
            if self.maybe(0.8):
                arguments.append(f"first: {self.argument('Int', size, str(size))}")
            if self.maybe(0.4):
                arguments.append(f"after: {self.cursor(family)}")
        conditions = [f'nameContains: "{self.world.token}"'] if self.maybe(0.8) else []
        if self.maybe(0.3):
            conditions.append(f"status: {self.pick(STATUSES)}")
        if self.maybe(0.2):
            conditions.append(f'creatorId: "{self.pick(self.world.users)}"')
        if self.maybe(0.2):
            conditions.append(f'endsAfter: "{self.pick(self.world.times)}"')
        if self.maybe(0.2):
            conditions.append(f'endsBefore: "{self.pick(self.world.times)}"')
        if conditions:
            arguments.append(f"filter: {{{', '.join(conditions)}}}")
        return f"({', '.join(arguments)})" if arguments else ""


@st.composite
def operations(draw: Any, world: World) -> Operation:
    writer = _Writer(draw, world)
    count = draw(st.integers(1, 3))
    roots = [writer.root() for _ in range(count)]
    header = f"({', '.join(writer.definitions)})" if writer.definitions else ""
    document = " ".join([f"query Generated{header} {{ {' '.join(roots)} }}", *writer.fragments])
    return Operation(document, dict(writer.variables), count, writer.valid)
