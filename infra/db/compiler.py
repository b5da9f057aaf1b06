"""Rendering a read plan as SQL that builds the response JSON inside PostgreSQL.

One statement per root field, returning that field's JSON as text: objects
are ``json_build_object`` over their columns, to-one relations are scalar
subqueries by key, and a page of a to-many relation is one subquery that
scans the keyset page (``first + 1`` rows, the extra one telling whether more
follow) with its row numbers and aggregates it into edges, nodes, cursors and
page info; ``totalCount`` is a count subquery. Values are shown exactly as the
resolver path shows them: global ids, money with 8 places, ISO 8601 UTC times
with microseconds, cursors as base64url of the same JSON the resolver path
encodes followed by its MAC (``domain/cursors.py``), computed here by ``sha256()``
from the key's HMAC pads, which are bound parameters like any value.

Nothing from a request is ever written into the SQL text: values are bound
parameters, and the only names written in are the read model's (tables,
columns, type names) and the document's response keys, which the GraphQL
grammar restricts to ``[_A-Za-z][_0-9A-Za-z]*`` (checked again here). The text
depends only on the plan and the request's *shape* (which sort, whether a
cursor was given, which filters, what the viewer may see), so it is rendered
once per shape and kept.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

import orjson

from domain.cursors import MAC_BYTES, CursorKey
from domain.money import SCALE
from domain.policy import ROLE_PERMISSIONS, Visibility
from domain.readmodel import (
    TYPES,
    Column,
    Complement,
    GlobalId,
    ObjectType,
    Private,
    Reference,
    RolePermissions,
    Shown,
    Sort,
    Value,
)
from domain.readplan import (
    Bound,
    Connection,
    Cursor,
    Edges,
    Leaf,
    NodeId,
    Nodes,
    One,
    PageArgs,
    PageInfo,
    PageInfoField,
    Root,
    RootKind,
    Selection,
    SlotValue,
    TotalCount,
    Typename,
)

_NAME = re.compile(r"[_A-Za-z][_0-9A-Za-z]*")
_UNITS = 10**SCALE
# json_build_object takes at most 100 arguments: 50 keys and their values.
_MAX_PAIRS = 50
STATEMENT_CACHE_SIZE = 2_048

Getter = Callable[[Bound], Any]


def _key(name: str) -> str:
    if not _NAME.fullmatch(name):
        raise ValueError(f"not a GraphQL name: {name!r}")
    return f"'{name}'"


def _literal(text: str) -> str:
    """A constant of the read model (a type or sort name) as a SQL string literal."""
    if "'" in text or "\\" in text:
        raise ValueError(f"not a plain constant: {text!r}")
    return f"'{text}'"


def _units(amount: Decimal) -> int:
    return int(amount.scaleb(SCALE))


def _base64url(encoded: str) -> str:
    """base64url without padding, from the base64 ``encode()`` wrote. replace() rather than
    translate(): it is three times faster, and global ids are most of a page's work."""
    return f"rtrim(replace(replace({encoded}, '+', '-'), '/', '_'), '=')"


def money(expression: str) -> str:
    return f"(({expression})::numeric / {_UNITS})::numeric(38,{SCALE})::text"


def instant(expression: str) -> str:
    return f"to_char(({expression}) AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"+00:00\"')"


def global_id(type_name: str, expression: str) -> str:
    # "Type:" and a 36-character UUID: short enough for one line of base64 (encode() breaks
    # lines every 76 characters, 57 bytes). A cast, cheaper than convert_to(), is safe where
    # no backslash can occur.
    assert len(type_name) + 37 <= 57, type_name
    text = f"{_literal(type_name + ':')} || ({expression})::text"
    return _base64url(f"encode(({text})::bytea, 'base64')")


def _granted(names: frozenset[Any]) -> str:
    return _literal(orjson.dumps(sorted(p.value for p in names)).decode())


_PERMISSIONS = " ".join(
    f"WHEN {_literal(role.value)} THEN {_granted(granted)}::json"
    for role, granted in ROLE_PERMISSIONS.items()
)


@dataclass(slots=True)
class _Statement:
    """One statement being rendered: its parameters and table aliases."""

    bound: Bound
    sees_all: frozenset[str]
    # HMAC-SHA256's padded inner and outer keys, to sign cursors with (domain/cursors.py).
    pads: tuple[bytes, bytes]
    getters: list[Getter] = field(default_factory=list)
    aliases: int = 0
    _viewer_param: str | None = None
    _pad_params: tuple[str, str] | None = None

    def param(self, getter: Getter, cast: str | None = None) -> str:
        self.getters.append(getter)
        placeholder = f"${len(self.getters)}"
        return f"{placeholder}::{cast}" if cast else placeholder

    def viewer(self) -> str:
        if self._viewer_param is None:
            self._viewer_param = self.param(lambda bound: bound.viewer.user_id, "uuid")
        return self._viewer_param

    def signing(self) -> tuple[str, str]:
        """The placeholders of the cursor key's inner and outer pads."""
        if self._pad_params is None:
            inner, outer = self.pads
            self._pad_params = (
                self.param(lambda _: inner, "bytea"),
                self.param(lambda _: outer, "bytea"),
            )
        return self._pad_params

    def alias(self) -> str:
        self.aliases += 1
        return f"t{self.aliases}"


def _slot(bound: Bound, slot: int) -> Any:
    return bound.slots[slot]


class Compiler:
    """Renders root fields of plans to (SQL, parameters), keeping the SQL per shape."""

    def __init__(self, signing: CursorKey, public: frozenset[str] = frozenset()) -> None:
        # Visibility rules a deployment made public (POSITIONS_PUBLIC): seen by everyone.
        self._public = public
        self._pads = (signing.inner, signing.outer)
        # Keyed by the root's identity, and each entry holds its root: while the entry
        # stands, no other object can have that id. (Keyed by id alone, a root freed with
        # its evicted plan left its SQL to whatever new root Python put at its address.)
        self._cache: OrderedDict[tuple[Any, ...], tuple[Root, str, list[Getter]]] = OrderedDict()

    def statement(self, root: Root, bound: Bound) -> tuple[str, list[Any]]:
        shape = (
            id(root),
            bound.viewer.user_id is None,
            bound.viewer.sees_all | self._public,
            tuple(_shape(value) for value in bound.slots),
        )
        cached = self._cache.get(shape)
        if cached is None or cached[0] is not root:
            statement = _Statement(bound, bound.viewer.sees_all | self._public, self._pads)
            cached = (root, self._root(root, statement), statement.getters)
            self._cache[shape] = cached
            if len(self._cache) > STATEMENT_CACHE_SIZE:
                self._cache.popitem(last=False)
        else:
            self._cache.move_to_end(shape)
        _, sql, getters = cached
        return sql, [getter(bound) for getter in getters]

    # --- roots ---------------------------------------------------------------------------

    def _root(self, root: Root, s: _Statement) -> str:
        bound = s.bound
        if root.kind in (RootKind.BY_ID, RootKind.VIEWER):
            assert root.selection is not None
            slot = root.slot
            key = (
                s.viewer()
                if root.kind is RootKind.VIEWER
                else s.param(lambda b: _slot(b, slot), "uuid")
            )
            return f"SELECT {self._lookup(root.selection, key, s)}::text"
        if root.kind is RootKind.LIST:
            assert root.connection is not None
            return f"SELECT {self._connection(root.connection, None, s)}::text"
        if root.kind is RootKind.NODE:
            value = bound.slots[root.slot]
            assert isinstance(value, NodeId)
            return f"SELECT {self._node(root, value.type_name, root.slot, None, s)}::text"
        values = bound.slots[root.slot]
        assert isinstance(values, Sequence)
        items = [
            self._node(root, node.type_name, root.slot, index, s)
            for index, node in enumerate(values)
            if isinstance(node, NodeId)
        ]
        return f"SELECT json_build_array({', '.join(items)})::text"

    def _node(self, root: Root, type_name: str, slot: int, index: int | None, s: _Statement) -> str:
        selection = root.branches.get(type_name)
        if selection is None:
            return "NULL::json"
        if index is None:
            key = s.param(lambda b: _slot(b, slot).id, "uuid")
        else:
            key = s.param(lambda b: _slot(b, slot)[index].id, "uuid")
        return self._lookup(selection, key, s)

    def _lookup(self, selection: Selection, key: str, s: _Statement) -> str:
        """The object with id ``key`` (a placeholder), as JSON, or NULL when none is seen."""
        kind = selection.type
        alias = s.alias()
        conditions = [f"{alias}.id = {key}"]
        seen = self._visible(kind.visibility, f"{alias}.{kind.owner}", s) if kind.owner else None
        if seen is not None:
            conditions.append(seen)
        return (
            f"(SELECT {self._object(selection, alias, s)} FROM {kind.table} AS {alias}"
            f" WHERE {' AND '.join(conditions)})"
        )

    # --- objects -------------------------------------------------------------------------

    def _object(self, selection: Selection, alias: str, s: _Statement) -> str:
        pairs: list[tuple[str, str]] = []
        for output in selection.outputs:
            if isinstance(output, Typename):
                pairs.append((output.key, _literal(output.name)))
            elif isinstance(output, Leaf):
                pairs.append((output.key, self._value(output.value, selection.type, alias, s)))
            elif isinstance(output, One):
                pairs.append((output.key, self._one(output, alias, s)))
            else:
                pairs.append((output.key, self._connection(output, alias, s)))
        return _build(pairs)

    def _value(self, value: Value | Private, kind: ObjectType, alias: str, s: _Statement) -> str:
        if isinstance(value, Private):
            shown = self._value(value.value, kind, alias, s)
            seen = self._visible(value.visibility, f"{alias}.{value.owner}", s)
            return shown if seen is None else f"CASE WHEN {seen} THEN {shown} END"
        if isinstance(value, GlobalId):
            return global_id(kind.name, f"{alias}.{value.column}")
        if isinstance(value, Complement):
            return money(f"{_UNITS} - {alias}.{value.column}")
        if isinstance(value, RolePermissions):
            return f"CASE {alias}.{value.column} {_PERMISSIONS} END"
        return _shown(value, f"{alias}.{value.column}")

    def _one(self, output: One, alias: str, s: _Statement) -> str:
        reference: Reference = output.reference
        target = TYPES[reference.target]
        inner = s.alias()
        return (
            f"(SELECT {self._object(output.selection, inner, s)} FROM {target.table} AS {inner}"
            f" WHERE {inner}.id = {alias}.{reference.key})"
        )

    def _visible(self, visibility: Visibility | None, owner: str, s: _Statement) -> str | None:
        """The SQL condition under which the viewer sees what ``owner`` owns; None for always."""
        if visibility is None or visibility.name in s.sees_all:
            return None
        return f"{owner} = {s.viewer()}"

    # --- pages ---------------------------------------------------------------------------

    def _connection(self, connection: Connection, parent: str | None, s: _Statement) -> str:
        slot = connection.slot
        page = _page(s.bound, slot)
        target = connection.target
        children = connection.children
        scan, row = s.alias(), s.alias()
        sort = page.sort
        backward = page.backward
        has_cursor = page.cursor is not None
        descending = sort.descending != backward
        direction = "DESC" if descending else "ASC"
        order = f"{scan}.{sort.column} {direction}, {scan}.id {direction}"
        size = s.param(lambda b: _page(b, slot).size, "int")

        conditions: list[str] = []
        count_conditions: list[str] = []
        hidden: str | None = None
        if children is not None:
            assert parent is not None
            conditions.append(f"{scan}.{children.parent_key} = {parent}.id")
            count_conditions.append(f"{{c}}.{children.parent_key} = {parent}.id")
            seen = self._visible(children.visibility, f"{parent}.id", s)
            if children.hidden_list:
                hidden = seen
            elif children.owner is not None:
                rows = self._visible(children.visibility, f"{scan}.{children.owner}", s)
                if rows is not None:
                    conditions.append(rows)
                    count_conditions.append(rows.replace(f"{scan}.", "{c}."))
                    if s.bound.viewer.user_id is None:
                        # Nothing to see at all: an empty page, wherever the cursor pointed
                        # (as the resolvers answer it).
                        has_cursor = False
        elif page.filter is not None:
            for condition in _filter(page, slot, s):
                conditions.append(condition.format(c=scan))
                count_conditions.append(condition)
        if has_cursor:
            value_cast = _cursor_cast(sort)
            value = s.param(lambda b: _cursor_value(_page(b, slot)), value_cast)
            ident = s.param(lambda b: _cursor_id(_page(b, slot)), "uuid")
            comparison = "<" if descending else ">"
            conditions.append(f"({scan}.{sort.column}, {scan}.id) {comparison} ({value}, {ident})")
        where = f" WHERE {' AND '.join(conditions)}" if conditions else ""

        # Each row's cursor payload is written once, as a column of the scan, when a cursor
        # is selected at all.
        signed: list[str] = []

        def cursor() -> str:
            if not signed:
                signed.append(_signed(f"{row}.cursor_payload", s))
            return signed[0]

        natural = f"{row}.rn DESC" if backward else f"{row}.rn"
        reverse = f"{row}.rn" if backward else f"{row}.rn DESC"
        on_page = f"FILTER (WHERE {row}.rn <= {size})"
        more = f"count(*) > {size}"
        pairs: list[tuple[str, str]] = []
        for output in connection.outputs:
            if isinstance(output, Typename):
                pairs.append((output.key, _literal(output.name)))
            elif isinstance(output, Nodes):
                node = self._object(output.selection, row, s)
                pairs.append(
                    (output.key, f"coalesce(json_agg({node} ORDER BY {natural}) {on_page}, '[]')")
                )
            elif isinstance(output, Edges):
                edge: list[tuple[str, str]] = []
                for part in output.outputs:
                    if isinstance(part, Typename):
                        edge.append((part.key, _literal(part.name)))
                    elif isinstance(part, Cursor):
                        edge.append((part.key, cursor()))
                    else:
                        edge.append((part.key, self._object(part.selection, row, s)))
                pairs.append(
                    (
                        output.key,
                        f"coalesce(json_agg({_build(edge)} ORDER BY {natural}) {on_page}, '[]')",
                    )
                )
            elif isinstance(output, PageInfo):
                info: list[tuple[str, str]] = []
                for item in output.outputs:
                    if isinstance(item, Typename):
                        info.append((item.key, _literal(item.name)))
                        continue
                    key, which = item
                    if which is PageInfoField.HAS_NEXT_PAGE:
                        info.append(
                            (key, ("true" if has_cursor else "false") if backward else more)
                        )
                    elif which is PageInfoField.HAS_PREVIOUS_PAGE:
                        info.append(
                            (key, more if backward else ("true" if has_cursor else "false"))
                        )
                    elif which is PageInfoField.START_CURSOR:
                        first = f"(array_agg({cursor()} ORDER BY {natural}) {on_page})[1]"
                        info.append((key, first))
                    else:
                        last = f"(array_agg({cursor()} ORDER BY {reverse}) {on_page})[1]"
                        info.append((key, last))
                pairs.append((output.key, _build(info)))
            elif isinstance(output, TotalCount):
                counted = s.alias()
                count_where = " AND ".join(c.format(c=counted) for c in count_conditions)
                pairs.append(
                    (
                        output.key,
                        f"(SELECT count(*) FROM {target.table} AS {counted}"
                        + (f" WHERE {count_where})" if count_where else ")"),
                    )
                )
        payload = f", {_cursor_payload(sort, scan)} AS cursor_payload" if signed else ""
        page_sql = (
            f"(SELECT {_build(pairs)} FROM (SELECT {scan}.*, row_number() OVER (ORDER BY {order})"
            f" AS rn{payload} FROM {target.table} AS {scan}{where} ORDER BY {order}"
            f" LIMIT {size} + 1)"
            # One row even when nothing but totalCount is selected (no aggregate at all).
            f" AS {row} GROUP BY ())"
        )
        if hidden is not None:
            return f"CASE WHEN {hidden} THEN {page_sql} END"
        return page_sql


def _signed(payload: str, s: _Statement) -> str:
    """A cursor: base64url of its payload (bytes) and the payload's MAC, HMAC-SHA256 made
    from the key's padded forms and truncated, as ``CursorKey.sign`` makes it."""
    inner, outer = s.signing()
    mac = f"substring(sha256({outer} || sha256({inner} || {payload})) FROM 1 FOR {MAC_BYTES})"
    # Cursors are longer than a line of base64: encode()'s line breaks are taken out.
    return _base64url(f"replace(encode({payload} || {mac}, 'base64'), E'\\n', '')")


def _cursor_payload(sort: Sort, row: str) -> str:
    """The bytes a cursor signs: the JSON text ``graph/pagination.py`` writes for a row."""
    if sort.kind == "datetime":
        value = f"'\"' || {instant(f'{row}.{sort.column}')} || '\"'"
    elif sort.kind == "decimal":
        value = f"'\"' || {money(f'{row}.{sort.column}')} || '\"'"
    else:
        value = f"to_json({row}.{sort.column}::text)::text"
    text = (
        f"'[' || {_literal(orjson.dumps(sort.name).decode())} || ',' || {value} || ',\"'"
        f" || replace({row}.id::text, '-', '') || '\"]'"
    )
    return f"convert_to({text}, 'UTF8')"


def _build(pairs: list[tuple[str, str]]) -> str:
    if not pairs:
        return "json_build_object()"
    chunks = [pairs[i : i + _MAX_PAIRS] for i in range(0, len(pairs), _MAX_PAIRS)]
    built = [
        "json_build_object(" + ", ".join(f"{_key(k)}, {v}" for k, v in chunk) + ")"
        for chunk in chunks
    ]
    if len(built) == 1:
        return built[0]
    # Over 50 keys: the objects' texts joined into one, braces dropped between them. (Merged
    # as jsonb, they would lose the request's key order: jsonb sorts its keys.)
    members = " || ', ' || ".join(f"left(substr({b}::text, 2), -1)" for b in built)
    return f"('{{' || {members} || '}}')::json"


def _shown(column: Column, expression: str) -> str:
    if column.shown is Shown.MONEY:
        return money(expression)
    if column.shown is Shown.DATETIME:
        return instant(expression)
    return expression


def _shape(value: SlotValue) -> Any:
    if isinstance(value, PageArgs):
        return value.shape()
    if isinstance(value, NodeId):
        return value.type_name
    if isinstance(value, list | tuple):
        return tuple(node.type_name for node in value if isinstance(node, NodeId))
    return None


def _page(bound: Bound, slot: int) -> PageArgs:
    value = bound.slots[slot]
    assert isinstance(value, PageArgs)
    return value


def _cursor_cast(sort: Sort) -> str:
    return {"datetime": "timestamptz", "decimal": "bigint"}.get(sort.kind, "text")


def _cursor_id(page: PageArgs) -> Any:
    assert page.cursor is not None
    return page.cursor[1]


def _cursor_value(page: PageArgs) -> Any:
    assert page.cursor is not None
    value = page.cursor[0]
    if isinstance(value, Decimal):
        return _units(value)
    if isinstance(value, datetime):
        return value
    return value


def _filter(page: PageArgs, slot: int, s: _Statement) -> list[str]:
    """The conditions of a market filter, with ``{c}`` standing for the table alias."""
    criteria = page.filter
    assert criteria is not None
    conditions: list[str] = []

    def criterion(name: str) -> Getter:
        return lambda b: getattr(_page(b, slot).filter, name)

    if criteria.status is not None:
        status = s.param(lambda b: _page(b, slot).filter.status.value, "text")  # type: ignore[union-attr]
        conditions.append(f"{{c}}.status = {status}")
    if criteria.creator_id is not None:
        conditions.append(f"{{c}}.creator_id = {s.param(criterion('creator_id'), 'uuid')}")
    if criteria.ends_after is not None:
        conditions.append(f"{{c}}.end_date > {s.param(criterion('ends_after'), 'timestamptz')}")
    if criteria.ends_before is not None:
        conditions.append(f"{{c}}.end_date < {s.param(criterion('ends_before'), 'timestamptz')}")
    if criteria.name_contains:
        pattern = s.param(lambda b: _like(_page(b, slot).filter.name_contains), "text")  # type: ignore[union-attr,arg-type]
        conditions.append(f"{{c}}.name ILIKE {pattern} ESCAPE '\\'")
    return conditions


def _like(text: str) -> str:
    # The text is a bound parameter; only LIKE's own wildcards need escaping.
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"
