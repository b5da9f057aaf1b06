"""Hypothesis strategies for query operations over the read model.

They write documents as a client would: root fields with literal or variable
arguments (variables now and then left to their declared defaults), random
selections of scalars and relations a few levels deep (trades and ledgers
included), aliases, named and inline fragments, ``@include``/``@skip`` with a
literal condition or one decided by a variable, connections with ``edges``,
``nodes``, ``pageInfo`` and ``totalCount``, page sizes forward and backward
(``first``/``after``, ``last``/``before``), cursors of every list (the
server's own, now and then one of another sort order or a forged one), filters
and sort orders as literals, as variables of their input types, or as literals
holding variables, and ``nameContains`` texts with LIKE's wildcards,
backslashes, quotes and non-ASCII letters.

Each example is an ``Operation``: the document text, its variables, how many
root fields it has, whether every argument is one the server accepts, and
whether a variable decides a directive. From the last two follows the path the
server must take (``Operation.path``).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from graphql import GraphQLObjectType
from hypothesis import strategies as st

from graph.schema import schema

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
MAX_PAGE_SIZE = 100


# Texts ``nameContains`` may look for besides the run's token and pieces of the seeded names:
# LIKE's wildcards and its escape, quotes, letters whose case folds differently, other scripts.
AWKWARD = "%_\\'\"ab ÄäëËöÖßİı日本\t/"
# Refused by the server (BAD_USER_INPUT): NUL, and more than its 200 characters.
REFUSED_TEXTS = ("a\x00b", "x" * 201)
# Ids: one that is no global id at all, and a Market id of no row.
NOT_AN_ID = "VXNlcjpub3QtYS11dWlk"
NO_MARKET = "TWFya2V0OjAwMDAwMDAwLTAwMDAtMDAwMC0wMDAwLTAwMDAwMDAwMDAwMA"
FORGED_CURSORS = ("bm90LWEtY3Vyc29y", "WyJtYXJrZXRzOk5BTUU6QVNDIiwiIiwiIl0", "")
ORDER_TYPES = {"field": "MarketOrderField!", "direction": "OrderDirection!"}
FILTER_TYPES = {
    "nameContains": "String",
    "status": "MarketStatus",
    "creatorId": "ID",
    "endsAfter": "DateTime",
    "endsBefore": "DateTime",
}


def _conflicting() -> frozenset[str]:
    """Fields that two node types both have with different types (``outcome``, ``market``,
    ...): two branches of one ``node`` selection may not both ask for one under the same
    response key (the document would not validate), so there they are always aliased."""
    graphql = schema._schema
    found: set[str] = set()
    for a in NODE_TYPES:
        for b in NODE_TYPES:
            first, second = graphql.get_type(a), graphql.get_type(b)
            assert isinstance(first, GraphQLObjectType)
            assert isinstance(second, GraphQLObjectType)
            for name in set(first.fields) & set(second.fields):
                if str(first.fields[name].type) != str(second.fields[name].type):
                    found.add(name)
    return frozenset(found)


CONFLICTING = _conflicting()


@dataclass(frozen=True)
class World:
    """What the generator may refer to: the seeded rows, by global id, and the cursors the
    server gave out for them."""

    markets: tuple[str, ...]
    users: tuple[str, ...]
    positions: tuple[str, ...]
    # Trades and ledger entries, and (``outside``) ids of types outside the read model (jobs),
    # which the resolvers serve.
    others: tuple[str, ...]
    outside: tuple[str, ...]
    token: str
    # Cursor family -> cursors the server returned; root lists by "markets:FIELD:DIRECTION".
    cursors: dict[str, tuple[str, ...]]
    times: tuple[str, ...]
    # The seeded markets' names: ``nameContains`` looks for pieces of them.
    names: tuple[str, ...]


@dataclass(frozen=True)
class Operation:
    document: str
    variables: dict[str, Any]
    # Root fields in the response (those a literal @skip/@include leaves out do not count).
    roots: int
    # Every argument the server reads is one it accepts, and every id is of the read model.
    valid: bool
    # A variable decides some @skip/@include.
    dynamic: bool

    @property
    def path(self) -> str:
        """The executor that must answer: the compiled path for a valid operation whose
        directives are literal, the resolvers otherwise (they give the errors)."""
        return "compiled" if self.valid and not self.dynamic else "resolver"


def constant(value: Any) -> str:
    """``value`` (text, number, boolean, null or a list of them) as a GraphQL literal."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, list):
        return "[" + ", ".join(constant(v) for v in value) + "]"
    # A JSON string is a GraphQL string; non-ASCII letters are written as themselves.
    return json.dumps(value, ensure_ascii=False)


@dataclass(frozen=True)
class _Part:
    """A field or fragment written into a selection, and what it holds."""

    text: str
    refused: bool  # an argument the server refuses
    dynamic: bool  # a directive decided by a variable


@dataclass
class _Writer:
    draw: Any
    world: World
    # Whether this operation may have directives decided by variables (then it is not
    # compiled), so most operations still exercise the compiled path.
    dynamic_allowed: bool
    fragments: list[str] = field(default_factory=list)
    definitions: list[str] = field(default_factory=list)
    variables: dict[str, Any] = field(default_factory=dict)
    valid: bool = True
    # A page size out of range where the operation's cost reads it (all of it is refused).
    oversized: bool = False
    # The page sizes of the list being written: argument -> (as written, value).
    sizes: dict[str, tuple[str, int | None]] = field(default_factory=dict)
    dynamic: bool = False
    skipped_roots: int = 0
    names: int = 0

    def name(self, prefix: str) -> str:
        self.names += 1
        return f"{prefix}{self.names}"

    def maybe(self, probability: float) -> bool:
        return bool(self.draw(st.integers(0, 99)) < probability * 100)

    def pick(self, options: Any) -> Any:
        return self.draw(st.sampled_from(tuple(options)))

    def refuse(self) -> None:
        """What was just written is an argument the server refuses."""
        self.valid = False

    def argument(
        self, graphql_type: str, value: Any, literal: str | None = None, chance: float = 0.35
    ) -> str:
        """A literal, or (with ``chance``) a variable of ``graphql_type`` holding ``value``:
        sent in the request, or now and then the variable's declared default, left out."""
        written = constant(value) if literal is None else literal
        if not self.maybe(chance):
            return written
        name = self.name("v")
        if self.maybe(0.2):
            self.definitions.append(f"${name}: {graphql_type} = {written}")
        else:
            self.definitions.append(f"${name}: {graphql_type}")
            self.variables[name] = value
        return f"${name}"

    # --- directives --------------------------------------------------------------------------

    def directive(self) -> tuple[str, bool | None]:
        """Now and then an @include or @skip; and whether the part it is on is in the response
        (None when a variable decides: the resolvers then serve the whole operation)."""
        if not self.maybe(0.08):
            return "", True
        name = self.pick(("include", "skip"))
        condition = bool(self.draw(st.booleans()))
        included = condition is (name == "include")
        if self.dynamic_allowed and self.maybe(0.5):
            self.dynamic = True
            variable = self.name("d")
            if self.maybe(0.3):
                self.definitions.append(f"${variable}: Boolean = {constant(condition)}")
            else:
                self.definitions.append(f"${variable}: Boolean!")
                self.variables[variable] = condition
            return f" @{name}(if: ${variable})", None
        return f" @{name}(if: {constant(condition)})", included

    def field(self, head: str | Callable[[], str], body: Callable[[], str] | None = None) -> str:
        """A field (``head``: alias, name, arguments; ``body``: its selections), maybe under a
        directive. A field a literal leaves out of the response is never read: its arguments
        cannot make the operation one the server refuses, nor its directives one the
        compiled path leaves to the resolvers."""
        state = self.valid, self.dynamic
        start = head if isinstance(head, str) else head()
        inner = f" {{ {body()} }}" if body is not None else ""
        directive, included = self.directive()
        if included is False:
            self.valid, self.dynamic = state
        return f"{start}{directive}{inner}"

    # --- selections ------------------------------------------------------------------------

    def selection(self, kind: str, depth: int, *, branch: bool = False) -> str:
        """Fields of ``kind``; ``branch``: a type condition's fields in a ``node`` selection,
        where fields other node types have with other types are aliased."""
        parts: list[_Part] = []
        state = self.valid, self.dynamic

        def add(write: Callable[[], str]) -> None:
            valid, dynamic = self.valid, self.dynamic
            self.valid, self.dynamic = True, False
            text = write()
            parts.append(_Part(text, refused=not self.valid, dynamic=self.dynamic))
            self.valid, self.dynamic = valid and self.valid, dynamic or self.dynamic

        def alias(name: str) -> str:
            return self.alias(force=branch and name in CONFLICTING)

        for name in self.draw(
            st.lists(st.sampled_from(SCALARS[kind]), min_size=1, max_size=6, unique=True)
        ):
            add(partial(self.field, f"{alias(name)}{name}"))
        if depth < MAX_DEPTH:
            relations = RELATIONS[kind]
            chosen = self.draw(st.lists(st.sampled_from(tuple(relations)), max_size=2, unique=True))
            for relation in chosen:
                target, is_connection, family = relations[relation]
                if is_connection:
                    add(
                        partial(
                            self.connection, alias(relation), relation, target, family, depth + 1
                        )
                    )
                else:
                    body = partial(self.selection, target, depth + 1)
                    add(partial(self.field, f"{alias(relation)}{relation}", body))
        return self.wrapped(kind, parts, state)

    def alias(self, *, force: bool = False) -> str:
        return f"{self.name('a')}: " if force or self.maybe(0.15) else ""

    def wrapped(self, kind: str, parts: list[_Part], state: tuple[bool, bool]) -> str:
        """Some of the fields moved into a named or inline fragment, maybe under a directive
        (``state``: ``valid`` and ``dynamic`` before these fields were written)."""
        texts = [part.text for part in parts]
        if len(parts) < 2 or not self.maybe(0.3):
            return " ".join(texts)
        cut = self.draw(st.integers(1, len(parts) - 1))
        directive, included = self.directive()
        if included is False:
            # The fragment's fields are left out: only the others are read.
            kept = parts[cut:]
            self.valid = state[0] and not any(part.refused for part in kept)
            self.dynamic = state[1] or any(part.dynamic for part in kept)
        inside, outside = texts[:cut], texts[cut:]
        if self.maybe(0.5):
            name = self.name("F")
            self.fragments.append(f"fragment {name} on {kind} {{ {' '.join(inside)} }}")
            spread = f"...{name}{directive}"
        else:
            condition = f"on {kind} " if self.maybe(0.6) else ""
            spread = f"... {condition}{directive.strip()} {{ {' '.join(inside)} }}"
        return " ".join([*outside, spread])

    def connection(self, alias: str, relation: str, target: str, family: str, depth: int) -> str:
        def head() -> str:
            arguments: list[str] = []
            if self.maybe(0.7):
                arguments.append(self.page_size("first", 1, 4, nullable=True))
            if self.maybe(0.3):
                arguments.append(f"after: {self.cursor(family)}")
            self.measured()
            args = f"({', '.join(arguments)})" if arguments else ""
            return f"{alias}{relation}{args}"

        return self.field(head, lambda: self.connection_body(target, depth))

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
                parts.append(self.field(f"{self.alias()}edges", self.edge(target, depth)))
            elif part == "nodes":
                parts.append(
                    self.field(f"{self.alias()}nodes", partial(self.selection, target, depth))
                )
            elif part == "pageInfo":
                parts.append(self.field(f"{self.alias()}pageInfo", self.page_info))
            else:
                parts.append(self.field(f"{self.alias()}{part}"))
        return " ".join(parts)

    def edge(self, target: str, depth: int) -> Callable[[], str]:
        def body() -> str:
            chosen = self.draw(
                st.lists(
                    st.sampled_from(("cursor", "node", "__typename")),
                    min_size=1,
                    max_size=3,
                    unique=True,
                )
            )
            return " ".join(
                self.field("node", partial(self.selection, target, depth))
                if e == "node"
                else self.field(f"{self.alias()}{e}")
                for e in chosen
            )

        return body

    def page_info(self) -> str:
        info = self.draw(st.lists(st.sampled_from(PAGE_INFO), min_size=1, max_size=4, unique=True))
        return " ".join(self.field(f"{self.alias()}{name}") for name in info)

    # --- arguments ---------------------------------------------------------------------------

    def page_size(self, name: str, low: int, high: int, *, nullable: bool = False) -> str:
        """``first: n`` or ``last: n``; now and then a size out of range, or null (the default).
        The sizes are checked by ``measured``, once the list's arguments are all written."""
        size: int | None
        if self.maybe(0.04):
            size = self.pick((0, -1, 101))
        else:
            size = None if nullable and self.maybe(0.05) else self.draw(st.integers(low, high))
        written = self.argument("Int", size)
        self.sizes[name] = (written, size)
        return f"{name}: {written}"

    def measured(self) -> None:
        """Check a list's page sizes as the server does. The operation's cost reads one size per
        list, the first of ``first``, ``last`` written other than as ``null``: out of range,
        the whole operation is refused before anything runs, even where a directive leaves
        the list out. Any other size is read only with the list."""
        sizes, self.sizes = self.sizes, {}
        written = [name for name in ("first", "last") if sizes.get(name, ("null",))[0] != "null"]
        measured = written[0] if written else None
        for name, (_, size) in sizes.items():
            if size is not None and not 1 <= size <= MAX_PAGE_SIZE:
                if name == measured:
                    self.oversized = True
                else:
                    self.refuse()

    def cursor(self, family: str) -> str:
        """A cursor the server gave out for this list; now and then one it gave out for another
        list or sort order, or a forged one (both refused)."""
        known = self.world.cursors.get(family, ())
        roll = self.draw(st.integers(0, 99))
        if known and roll >= 12:
            value = self.pick(known)
        elif roll >= 6:
            others = sorted(f for f, c in self.world.cursors.items() if f != family and c)
            value = self.pick(self.world.cursors[self.pick(others)])
            self.refuse()
        else:
            value = self.pick(FORGED_CURSORS)
            self.refuse()
        return self.argument("String", value)

    def identity(self, pool: tuple[str, ...], accepts: str | None) -> str:
        """An id of ``pool``, now and then a malformed one or one of no row; ``accepts``: the
        type the argument takes (None: any, as ``node`` does)."""
        if self.maybe(0.06):
            value = self.pick((NOT_AN_ID, NO_MARKET))
            if value == NOT_AN_ID or accepts not in (None, "Market"):
                self.refuse()
        else:
            value = self.pick(pool)
            if value in self.world.outside:
                self.refuse()
        return self.argument("ID!", value)

    def name_contains(self) -> str:
        """Mostly the run's token (its markets only); else a piece of a seeded name in some
        case, or awkward text; now and then a text the server refuses."""
        roll = self.draw(st.integers(0, 99))
        if roll < 50:
            text: str = self.world.token
        elif roll < 75:
            name: str = self.pick(self.world.names)
            start = self.draw(st.integers(0, len(name)))
            text = name[start : self.draw(st.integers(start, len(name)))]
        elif roll < 97:
            text = self.draw(st.text(alphabet=AWKWARD, max_size=5))
        else:
            text = self.pick(REFUSED_TEXTS)
            self.refuse()
        change = self.pick(("same", "same", "upper", "lower", "swapcase"))
        return text if change == "same" else str(getattr(text, change)())

    # --- roots -----------------------------------------------------------------------------

    def root(self) -> str:
        kind = self.pick(("market", "user", "markets", "viewer", "node", "nodes", "markets"))
        alias = f"{self.name('r')}: "
        state = self.valid, self.dynamic
        if kind == "viewer":
            text = f"{alias}viewer", f"{{ {self.selection('User', 1)} }}"
        elif kind in ("market", "user"):
            pool = self.world.markets if kind == "market" else self.world.users
            target = "Market" if kind == "market" else "User"
            ident = self.identity(pool, target)
            text = f"{alias}{kind}(id: {ident})", f"{{ {self.selection(target, 1)} }}"
        elif kind in ("node", "nodes"):
            pool = (
                self.world.markets
                + self.world.users
                + self.world.positions
                + self.world.others
                + self.world.outside
            )
            if kind == "node":
                head = f"{alias}node(id: {self.identity(pool, None)})"
            else:
                ids = self.draw(st.lists(st.sampled_from((*pool, NOT_AN_ID)), max_size=4))
                if any(i in self.world.outside or i == NOT_AN_ID for i in ids):
                    self.refuse()
                head = f"{alias}nodes(ids: {self.argument('[ID!]!', ids)})"
            text = head, f"{{ {self.node_selection()} }}"
        else:
            text = (
                f"{alias}markets{self.market_arguments()}",
                (f"{{ {self.connection_body('Market', 1)} }}"),
            )
        directive, included = self.directive()
        if included is False:
            self.valid, self.dynamic = state
            self.skipped_roots += 1
        return f"{text[0]}{directive} {text[1]}"

    def node_selection(self) -> str:
        parts = [self.pick(("id", "__typename", "id __typename"))]
        for kind in self.draw(st.lists(st.sampled_from(NODE_TYPES), max_size=3, unique=True)):
            parts.append(f"... on {kind} {{ {self.selection(kind, 2, branch=True)} }}")
        return " ".join(parts)

    def market_arguments(self) -> str:
        arguments: list[str] = []
        family = "markets:CREATED_AT:DESC"
        if self.maybe(0.6):
            written, family = self.order()
            arguments.append(f"orderBy: {written}")
        arguments.extend(self.paging(family))
        conditions = self.market_filter()
        if conditions is not None:
            arguments.append(f"filter: {conditions}")
        return f"({', '.join(arguments)})" if arguments else ""

    def order(self) -> tuple[str, str]:
        """An ``orderBy`` (fields left out take their defaults) and the cursor family it makes."""
        given: dict[str, str] = {}
        if self.maybe(0.85):
            given["field"] = self.pick(ORDER_FIELDS)
        if self.maybe(0.85):
            given["direction"] = self.pick(("ASC", "DESC"))
        family = f"markets:{given.get('field', 'CREATED_AT')}:{given.get('direction', 'DESC')}"
        return self.input_object("MarketOrder", given, ORDER_TYPES, enums=set(given)), family

    def market_filter(self) -> str | None:
        given: dict[str, Any] = {}
        if self.maybe(0.85):
            given["nameContains"] = self.name_contains()
        if self.maybe(0.3):
            given["status"] = self.pick(STATUSES)
        if self.maybe(0.2):
            if self.maybe(0.1):
                given["creatorId"] = self.pick(self.world.markets)
                self.refuse()
            else:
                given["creatorId"] = self.pick(self.world.users)
        for bound in ("endsAfter", "endsBefore"):
            if self.maybe(0.2):
                if self.maybe(0.1):
                    # No offset: the time names no single instant.
                    given[bound] = self.pick(self.world.times)[:19]
                    self.refuse()
                else:
                    given[bound] = self.pick(self.world.times)
        if not given and self.maybe(0.7):
            return None
        enums = {"status"} & set(given)
        return self.input_object("MarketFilter", given, FILTER_TYPES, enums=enums)

    def input_object(
        self, type_name: str, given: dict[str, Any], types: dict[str, str], enums: set[str]
    ) -> str:
        """An input object: a variable of ``type_name`` holding ``given``, or a literal whose
        fields are literals or variables of their own."""

        def literal(key: str) -> str:
            return str(given[key]) if key in enums else constant(given[key])

        written = "{" + ", ".join(f"{key}: {literal(key)}" for key in given) + "}"
        if self.maybe(0.3):
            return self.argument(type_name, given, written, chance=1.0)
        fields = (f"{key}: {self.argument(types[key], given[key], literal(key))}" for key in given)
        return "{" + ", ".join(fields) + "}"

    def paging(self, family: str) -> list[str]:
        """``first``/``after`` or ``last``/``before``; now and then a mix the server refuses."""
        arguments: list[str] = []
        if self.maybe(0.25):
            arguments.append(self.page_size("last", 1, 12))
            if self.maybe(0.5):
                arguments.append(f"before: {self.cursor(family)}")
            if self.maybe(0.03):
                arguments.append(f"after: {self.cursor(family)}")
                self.refuse()
            if self.maybe(0.03):
                arguments.append(self.page_size("first", 1, 12))
                self.refuse()
        else:
            if self.maybe(0.8):
                arguments.append(self.page_size("first", 1, 12, nullable=True))
            if self.maybe(0.4):
                arguments.append(f"after: {self.cursor(family)}")
            if self.maybe(0.03):
                arguments.append(f"before: {self.cursor(family)}")
                self.refuse()
        self.measured()
        return arguments


@st.composite
def operations(draw: Any, world: World) -> Operation:
    writer = _Writer(draw, world, dynamic_allowed=bool(draw(st.integers(0, 99)) < 20))
    count = draw(st.integers(1, 3))
    roots = [writer.root() for _ in range(count)]
    header = f"({', '.join(writer.definitions)})" if writer.definitions else ""
    document = " ".join([f"query Generated{header} {{ {' '.join(roots)} }}", *writer.fragments])
    return Operation(
        document,
        dict(writer.variables),
        count - writer.skipped_roots,
        writer.valid and not writer.oversized,
        writer.dynamic,
    )
