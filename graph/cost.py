"""What each field of the schema costs: the static half of query cost.

The formula (README, "Query cost"), per field occurrence:

* scalar and enum fields (and lists of them) cost 0;
* object fields cost 1 plus their selection;
* a connection costs ``2 + n * (cost of one item's selection)``, ``n`` being its
  ``first``/``last`` (or the default page size); one item is ``1`` plus the
  selection of ``nodes`` or of ``edges { node }``, and ``cursor``, ``pageInfo``
  and ``totalCount`` come with the 2;
* any other list of objects costs ``2 + n * (1 + its selection)``, ``n`` being the
  length of its list argument (``nodes(ids:)``) or the largest page size;
* a mutation field costs 10 plus its selection;
* ``__schema`` and ``__type`` cost a fixed amount whatever they select (what one of
  them can select is bounded by the introspection depth limit and graphql-core's own
  introspection rule), at each occurrence once fragments are expanded: one whole
  schema, as GraphiQL and codegen ask for it, fits the anonymous budget, and a few
  dozen aliases of it (megabytes of answer) do not fit the cost limit;
* a field may declare its own weight with ``@cost(weight: N)`` next to its
  definition, replacing the 0, 1, 2 or 10 above (for computed or costly fields).

Rules are derived from the GraphQL schema once per field and kept.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

import strawberry
from graphql import (
    GraphQLField,
    GraphQLList,
    GraphQLNamedType,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLSchema,
    is_leaf_type,
)
from strawberry.schema_directive import Location

from domain.reads import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE

MUTATION_COST = 10
# About what the answer of a whole schema (~110 KB here) is worth next to a page of a
# hundred objects; 29 aliases of it came to 3.3 MB when each cost 10.
INTROSPECTION_COST = 100
CONNECTION_COST = 2
LIST_COST = 2
OBJECT_COST = 1
SLICING_ARGUMENTS = ("first", "last")
# Fields of a connection that come with its base cost.
_CONNECTION_BOOKKEEPING = frozenset({"pageInfo", "totalCount"})


@strawberry.schema_directive(
    locations=[Location.FIELD_DEFINITION],
    description="What selecting this field costs, replacing the default of its kind (see"
    " README, 'Query cost'): for fields that compute more than they read.",
)
class Cost:
    weight: int = strawberry.field(
        description="The field's own cost, before its selection is added."
    )


class Kind(enum.Enum):
    LEAF = "leaf"
    OBJECT = "object"
    CONNECTION = "connection"
    # ``nodes``/``edges`` of a connection: as many items as the connection was asked for.
    ITEMS = "items"
    LIST = "list"
    INTROSPECTION = "introspection"


@dataclass(frozen=True, slots=True)
class FieldRule:
    kind: Kind
    # The field's own cost, once per occurrence.
    own: int
    # For lists: what each item costs before its selection (1 for an object, 0 for an edge).
    item: int = 0
    # For LIST: the argument whose length sizes it, if any.
    sized_by: str | None = None

    @property
    def is_list(self) -> bool:
        return self.kind in (Kind.ITEMS, Kind.LIST)


UNKNOWN = FieldRule(Kind.LEAF, 0)
TYPENAME = FieldRule(Kind.LEAF, 0)


def named(output: GraphQLOutputType) -> tuple[GraphQLNamedType, bool]:
    """The named type under the wrappers, and whether a list is among them."""
    listed = False
    while isinstance(output, GraphQLNonNull | GraphQLList):
        listed = listed or isinstance(output, GraphQLList)
        output = output.of_type
    return output, listed


def is_connection(kind: GraphQLNamedType) -> bool:
    return (
        isinstance(kind, GraphQLObjectType)
        and kind.name.endswith("Connection")
        and "pageInfo" in kind.fields
        and ("edges" in kind.fields or "nodes" in kind.fields)
    )


def _declared_weight(field: GraphQLField) -> int | None:
    definition = (field.extensions or {}).get("strawberry-definition")
    for directive in getattr(definition, "directives", ()) or ():
        if isinstance(directive, Cost):
            return directive.weight
    return None


def _rule(
    parent: GraphQLNamedType, name: str, field: GraphQLField, root_mutation: bool
) -> FieldRule:
    weight = _declared_weight(field)
    kind, listed = named(field.type)
    if name in ("__schema", "__type"):
        return FieldRule(Kind.INTROSPECTION, INTROSPECTION_COST if weight is None else weight)
    if root_mutation:
        return FieldRule(Kind.OBJECT, MUTATION_COST if weight is None else weight)
    if is_leaf_type(kind):
        return FieldRule(Kind.LEAF, weight or 0)
    if is_connection(parent):
        if name in _CONNECTION_BOOKKEEPING:
            return FieldRule(Kind.LEAF, weight or 0)
        if listed and name in ("nodes", "edges"):
            return FieldRule(Kind.ITEMS, weight or 0, item=OBJECT_COST if name == "nodes" else 0)
    if is_connection(kind):
        return FieldRule(Kind.CONNECTION, CONNECTION_COST if weight is None else weight)
    if listed:
        sized_by = next(
            (arg for arg, spec in field.args.items() if named(spec.type)[1]),  # type: ignore[arg-type]
            None,
        )
        return FieldRule(
            Kind.LIST, LIST_COST if weight is None else weight, item=OBJECT_COST, sized_by=sized_by
        )
    return FieldRule(Kind.OBJECT, OBJECT_COST if weight is None else weight)


class CostRules:
    """The rule of every field of one schema, derived on first use."""

    def __init__(self, schema: GraphQLSchema) -> None:
        self.schema = schema
        self._rules: dict[tuple[str, str], FieldRule] = {}
        self._mutation = schema.mutation_type.name if schema.mutation_type else None

    def field(
        self, parent: GraphQLNamedType | None, name: str
    ) -> tuple[FieldRule, GraphQLNamedType | None]:
        """The field's rule and its named type (None when the document names no such field)."""
        if name == "__typename" or parent is None:
            return (TYPENAME if name == "__typename" else UNKNOWN), None
        if name in ("__schema", "__type"):
            root = self.schema.query_type
            field = self.schema.get_field(root, name) if parent is root and root else None
        else:
            fields = getattr(parent, "fields", None)
            field = fields.get(name) if fields else None
        if field is None:
            return UNKNOWN, None
        key = (parent.name, name)
        rule = self._rules.get(key)
        if rule is None:
            rule = _rule(parent, name, field, parent.name == self._mutation)
            self._rules[key] = rule
        return rule, named(field.type)[0]


__all__ = [
    "DEFAULT_PAGE_SIZE",
    "MAX_PAGE_SIZE",
    "Cost",
    "CostRules",
    "FieldRule",
    "Kind",
]
