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
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any
from uuid import UUID

from graphql import GraphQLSchema, is_abstract_type

from domain.changes import MARKETS, Kind, Relation, entity_tag, relation_tag
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
        """Every tag of a response's ``data``."""
        tags: set[str] = set()
        root = operation.cost
        query = self._schema.query_type
        _Walk(self, tags).object([root], data, (query.name,) if query else ())
        return tags


class _Walk:
    def __init__(self, rules: TagRules, tags: set[str]) -> None:
        self._rules = rules
        self._tags = tags

    def object(
        self, sets: list[CostSet], data: Mapping[str, Any], possible: tuple[str, ...]
    ) -> tuple[Kind, UUID] | None:
        """Tag one response object; its (kind, id) when the response identifies it."""
        fields = _merged(sets)
        possible = self._narrowed(fields, data, possible)
        identity = self._identity(fields, data, possible)
        if identity is not None:
            self._tags.add(entity_tag(*identity))
        else:
            for name in possible:
                kind = _KINDS.get(name)
                if kind is not None:
                    self._tags.add(entity_tag(kind, None))
        children: dict[str, tuple[Kind, UUID] | None] = {}
        present: list[CostField] = []
        for key, items in fields.items():
            if key not in data:
                continue
            value = data[key]
            present.extend(items)
            self._lists(items, identity, possible)
            subs = [item.sub for item in items if item.sub is not None]
            if subs and value is not None:
                child_types = tuple(
                    dict.fromkeys(t for item in items for t in self._rules.possible(item.returns))
                )
                found = self._value(subs, value, child_types)
                for item in items:
                    children[item.name] = found
        for item in present:
            self._depends(item, children)
        return identity

    def _value(
        self, subs: list[CostSet], value: Any, possible: tuple[str, ...]
    ) -> tuple[Kind, UUID] | None:
        if isinstance(value, Mapping):
            return self.object(subs, value, possible)
        if isinstance(value, list):
            for element in value:
                if element is not None:
                    self._value(subs, element, possible)
        return None

    def _narrowed(
        self,
        fields: Mapping[str, list[CostField]],
        data: Mapping[str, Any],
        possible: tuple[str, ...],
    ) -> tuple[str, ...]:
        for key, items in fields.items():
            if any(item.name == "__typename" for item in items):
                typename = data.get(key)
                if isinstance(typename, str) and typename in possible:
                    return (typename,)
        return possible

    def _identity(
        self,
        fields: Mapping[str, list[CostField]],
        data: Mapping[str, Any],
        possible: tuple[str, ...],
    ) -> tuple[Kind, UUID] | None:
        """The object's kind and id, from a key whose field, for the id's own type, is ``id``."""
        for key, items in fields.items():
            value = data.get(key)
            if not isinstance(value, str) or not any(item.name == "id" for item in items):
                continue
            parsed = from_global_id(value)
            if parsed is None or parsed[0] not in possible:
                continue
            type_name, ident = parsed
            if any(
                item.name == "id" and self._rules.applies(item.parent, type_name) for item in items
            ):
                kind = _KINDS.get(type_name)
                if kind is not None:
                    return kind, ident
        return None

    def _lists(
        self,
        items: Iterable[CostField],
        identity: tuple[Kind, UUID] | None,
        possible: tuple[str, ...],
    ) -> None:
        for item in items:
            top = TOP_LEVEL_LISTS.get((item.parent, item.name))
            if top is not None:
                self._tags.add(top)
            relation = RELATIONS.get((item.parent, item.name))
            if relation is None:
                continue
            owner = _KINDS[item.parent]
            if identity is not None and identity[0] is owner:
                self._tags.add(relation_tag(owner, identity[1], relation))
            elif item.parent in possible:
                self._tags.add(relation_tag(owner, None, relation))

    def _depends(self, item: CostField, children: Mapping[str, tuple[Kind, UUID] | None]) -> None:
        dependency = DEPENDS.get((item.parent, item.name))
        if dependency is None:
            return
        reference, kind = dependency
        found = children.get(reference)
        if found is None or found[0] is not kind:
            self._tags.add(entity_tag(kind, None))


def _merged(sets: list[CostSet]) -> dict[str, list[CostField]]:
    """The fields every set puts in one response object, by response key."""
    if len(sets) == 1:
        return sets[0].flat()
    merged: dict[str, list[CostField]] = {}
    for cost in sets:
        for key, items in cost.flat().items():
            merged.setdefault(key, []).extend(items)
    return merged
