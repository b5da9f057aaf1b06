"""The tags of a response: what it shows, named as writes name what they change.

A response is walked together with the operation's cost shape
(``graph.analysis``), which knows for every response key the field it holds,
the type it was selected on and the type it returns; aliases and fragments are
resolved by that, never by the look of the data. For each object in the
response:

* its id, when the selection holds the object's ``id`` field, gives its entity
  tag (``Market:<uuid>``); without one, the object stands for any entity of
  its possible types (``Market:*``);
* a list it owns (a market's positions, a user's trades) adds that list's tag,
  ``Market:<uuid>/positions`` (or ``Market:*/positions``);
* a field computed from another entity (a position's current value, from its
  market's price) adds that entity's tag: the one the response shows for it,
  or the wildcard.

Top-level lists add their own tag (``markets``). Invalidation
(``domain.changes``) always hits the wildcards too, so whatever a response
did not identify, any change of that kind drops it.

More than ``MOST_TAGS_UNDER_A_WILDCARD`` tags of one kind (or one kind's list) become
that wildcard. Storing an entry writes each of its tags in Redis, in one script that
holds up every other command meanwhile: Q2 of ``bench/`` (20 markets with 10 positions
each, and their users) carried 439 tags, and its store took Redis 2-7 ms; now 43. Such a
response is almost always under a wide tag already (Q2 is under ``markets``, which every
market write changes), so it loses next to nothing by being dropped on any change of
the kind.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from graphql import GraphQLSchema, is_abstract_type

from domain.changes import MARKETS, Kind, Relation, coarsened, entity_tag, relation_tag
from graph.analysis import CostField, CostSet, OperationFigures
from graph.ids import from_global_id

# Lists an entity owns: (type, field) -> the relation writes name.
RELATIONS: Mapping[tuple[str, str], Relation] = {
    ("Market", "positions"): Relation.POSITIONS,
    ("Market", "trades"): Relation.TRADES,
    # Made of the market's trades.
    ("Market", "priceHistory"): Relation.TRADES,
    ("User", "markets"): Relation.MARKETS,
    ("User", "positions"): Relation.POSITIONS,
    ("User", "trades"): Relation.TRADES,
    ("User", "ledger"): Relation.LEDGER,
}
TOP_LEVEL_LISTS: Mapping[tuple[str, str], str] = {
    ("Query", "markets"): MARKETS,
}
# Fields computed from another entity: (type, field) -> (the field that references it, kind).
DEPENDS: Mapping[tuple[str, str], tuple[str, Kind]] = {
    ("Position", "currentValue"): ("market", Kind.MARKET),
    ("Position", "unrealizedPnl"): ("market", Kind.MARKET),
}
_KINDS = {kind.value: kind for kind in Kind}
# Up to 64 of a kind keep their own tags: a page of 20 or 50 stays as precise as it can be.
MOST_TAGS_UNDER_A_WILDCARD = 64


class TagRules:
    """What the walk needs of the schema: possible types and which fields apply to which."""

    def __init__(self, schema: GraphQLSchema) -> None:
        self._schema = schema
        self._possible: dict[str, tuple[str, ...]] = {}

    def possible(self, name: str) -> tuple[str, ...]:
        """The object types a value of the named type can be."""
        found = self._possible.get(name)
        if found is None:
            kind = self._schema.get_type(name)
            if kind is not None and is_abstract_type(kind):
                found = tuple(t.name for t in self._schema.get_possible_types(kind))
            else:
                found = (name,)
            self._possible[name] = found
        return found

    def applies(self, parent: str, concrete: str) -> bool:
        """Whether a field selected on ``parent`` is selected on objects of ``concrete``."""
        return parent == concrete or concrete in self.possible(parent)

    def collect(self, operation: OperationFigures, data: Mapping[str, Any]) -> set[str]:
        """Every tag of a response's ``data``, a wildcard for many of a kind."""
        tags: set[str] = set()
        root = operation.cost
        query = self._schema.query_type
        _Walk(self, tags).object((root,), data, (query.name,) if query else ())
        return coarsened(tags, MOST_TAGS_UNDER_A_WILDCARD)


@dataclass(frozen=True, slots=True)
class _Key:
    """One response key of a selection, with what tagging needs of it worked out once."""

    key: str
    items: tuple[CostField, ...]
    # The items' selections, and the object types their values can be.
    subs: tuple[CostSet, ...]
    child_types: tuple[str, ...]
    # Top-level lists; lists an object owns (its kind, the type selected on, the list).
    tops: tuple[str, ...]
    relations: tuple[tuple[Kind, str, Relation], ...]
    # Values computed from another entity: (the field that references it, its kind).
    depends: tuple[tuple[str, Kind], ...]
    # The items that are an ``id`` field, and whether one is ``__typename``.
    ids: tuple[CostField, ...]
    typename: bool


@dataclass(frozen=True, slots=True)
class _Shape:
    """A selection as one response object holds it: its keys, in document order."""

    keys: tuple[_Key, ...]
    with_ids: tuple[_Key, ...]
    with_typename: tuple[_Key, ...]


class _Walk:
    """One response walked: every object is a dict lookup per key of its selection, the
    rest (which keys hold lists, ids, children) is worked out once per selection.

    Walking each key's fields again for each object, a refresh of Q2 (462 objects) held
    its event loop for 3.6 ms, in which no other request moved: most of the p99 jump after
    each expiry (``bench/cache.py``). Now 1.1 ms.
    """

    def __init__(self, rules: TagRules, tags: set[str]) -> None:
        self._rules = rules
        self._tags = tags
        self._shapes: dict[tuple[CostSet, ...], _Shape] = {}

    def object(
        self, sets: tuple[CostSet, ...], data: Mapping[str, Any], possible: tuple[str, ...]
    ) -> tuple[Kind, UUID, str] | None:
        """Tag one response object; its (kind, id, tag) when the response identifies it."""
        shape = self._shapes.get(sets)
        if shape is None:
            shape = self._shapes[sets] = self._shape(sets)
        tags = self._tags
        for key in shape.with_typename:
            typename = data.get(key.key)
            if isinstance(typename, str) and typename in possible:
                possible = (typename,)
                break
        identity = self._identity(shape, data, possible)
        if identity is not None:
            tags.add(identity[2])
        else:
            for name in possible:
                kind = _KINDS.get(name)
                if kind is not None:
                    tags.add(entity_tag(kind, None))
        children: dict[str, tuple[Kind, UUID, str] | None] = {}
        present: list[_Key] = []
        for key in shape.keys:
            if key.key not in data:
                continue
            present.append(key)
            tags.update(key.tops)
            for owner, parent, relation in key.relations:
                if identity is not None and identity[0] is owner:
                    tags.add(relation_tag(owner, identity[1], relation))
                elif parent in possible:
                    tags.add(relation_tag(owner, None, relation))
            value = data[key.key]
            if key.subs and value is not None:
                found = self._value(key.subs, value, key.child_types)
                for item in key.items:
                    children[item.name] = found
        for key in present:
            for reference, kind in key.depends:
                found = children.get(reference)
                if found is None or found[0] is not kind:
                    tags.add(entity_tag(kind, None))
        return identity

    def _value(
        self, subs: tuple[CostSet, ...], value: Any, possible: tuple[str, ...]
    ) -> tuple[Kind, UUID, str] | None:
        if isinstance(value, Mapping):
            return self.object(subs, value, possible)
        if isinstance(value, list):
            for element in value:
                if element is not None:
                    self._value(subs, element, possible)
        return None

    def _identity(
        self, shape: _Shape, data: Mapping[str, Any], possible: tuple[str, ...]
    ) -> tuple[Kind, UUID, str] | None:
        """The object's kind, id and tag, from a key whose field, for the id's own type, is
        ``id``."""
        for key in shape.with_ids:
            value = data.get(key.key)
            if not isinstance(value, str):
                continue
            entity = _entity(value)
            # A Kind is its type's name (a StrEnum).
            if entity is None or entity[0] not in possible:
                continue
            if any(self._rules.applies(item.parent, entity[0]) for item in key.ids):
                return entity
        return None

    def _shape(self, sets: tuple[CostSet, ...]) -> _Shape:
        keys = []
        for name, items in _merged(sets).items():
            subs = tuple(item.sub for item in items if item.sub is not None)
            child_types = tuple(
                dict.fromkeys(t for item in items for t in self._rules.possible(item.returns))
            )
            tops = tuple(
                top
                for item in items
                if (top := TOP_LEVEL_LISTS.get((item.parent, item.name))) is not None
            )
            relations = tuple(
                (_KINDS[item.parent], item.parent, relation)
                for item in items
                if (relation := RELATIONS.get((item.parent, item.name))) is not None
            )
            depends = tuple(
                dependency
                for item in items
                if (dependency := DEPENDS.get((item.parent, item.name))) is not None
            )
            ids = tuple(item for item in items if item.name == "id")
            typename = any(item.name == "__typename" for item in items)
            keys.append(
                _Key(name, tuple(items), subs, child_types, tops, relations, depends, ids, typename)
            )
        return _Shape(
            tuple(keys),
            tuple(key for key in keys if key.ids),
            tuple(key for key in keys if key.typename),
        )


@functools.lru_cache(maxsize=16_384)
def _entity(global_id: str) -> tuple[Kind, UUID, str] | None:
    """The kind, UUID and entity tag behind a global id (the same ids recur in every refresh
    of a page: decoded once)."""
    parsed = from_global_id(global_id)
    if parsed is None:
        return None
    kind = _KINDS.get(parsed[0])
    return None if kind is None else (kind, parsed[1], entity_tag(kind, parsed[1]))


def _merged(sets: tuple[CostSet, ...]) -> dict[str, list[CostField]]:
    """The fields every set puts in one response object, by response key."""
    if len(sets) == 1:
        return sets[0].flat()
    merged: dict[str, list[CostField]] = {}
    for cost in sets:
        for key, items in cost.flat().items():
            merged.setdefault(key, []).extend(items)
    return merged
