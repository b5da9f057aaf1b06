"""Coercing an operation's variables: graphql-core's rules, with a short way for plain ones.

Most requests send a few plain variables (an ``ID!``, an ``Int``, a ``String``)
that already have the right JSON type. Those are taken as they are, which is
what graphql-core's coercion does with them; anything else (defaults, input
objects, lists, custom scalars, a missing non-null, a value of the wrong type)
goes through graphql-core, errors included. The variables' signatures are
worked out once per operation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from graphql import (
    GraphQLError,
    GraphQLNonNull,
    GraphQLScalarType,
    GraphQLSchema,
    OperationDefinitionNode,
)
from graphql.execution.get_variable_signature import get_variable_signature
from graphql.execution.values import VariableValues, VariableValueSource, get_variable_values
from graphql.pyutils import Undefined

_INT_RANGE = range(-(2**31), 2**31)
_PLAIN_SCALARS = frozenset({"ID", "String", "Int", "Boolean"})


@dataclass(frozen=True, slots=True)
class _Plain:
    name: str
    signature: Any
    kind: str
    non_null: bool


def _accepts(kind: str, value: Any) -> bool:
    if kind in ("ID", "String"):
        return isinstance(value, str)
    if kind == "Int":
        return isinstance(value, int) and not isinstance(value, bool) and value in _INT_RANGE
    if kind == "Boolean":
        return isinstance(value, bool)
    return False


class Variables:
    """Coerces the variables of operations of one schema."""

    def __init__(self, schema: GraphQLSchema, *, hide_suggestions: bool) -> None:
        self._schema = schema
        self._hide = hide_suggestions
        self._plain: dict[int, tuple[OperationDefinitionNode, tuple[_Plain, ...] | None]] = {}

    def coerce(
        self, operation: OperationDefinitionNode, given: dict[str, Any]
    ) -> VariableValues | list[GraphQLError]:
        """The coerced variables, or the errors that refuse them."""
        plain = self._signatures(operation)
        if plain is not None:
            sources: dict[str, VariableValueSource] = {}
            coerced: dict[str, Any] = {}
            for variable in plain:
                value = given.get(variable.name, Undefined)
                if value is Undefined or value is None:
                    if variable.non_null:
                        break  # an error: graphql-core words it
                    sources[variable.name] = VariableValueSource(
                        variable.signature, Undefined if value is Undefined else None
                    )
                    if value is None:
                        coerced[variable.name] = None
                    continue
                if not _accepts(variable.kind, value):
                    break
                sources[variable.name] = VariableValueSource(variable.signature, value)
                coerced[variable.name] = value
            else:
                return VariableValues(sources, coerced)
        return get_variable_values(
            self._schema,
            operation.variable_definitions or (),
            given,
            max_errors=10,
            hide_suggestions=self._hide,
        )

    def _signatures(self, operation: OperationDefinitionNode) -> tuple[_Plain, ...] | None:
        """The operation's variables when all are plain scalars without defaults, else None."""
        found = self._plain.get(id(operation))
        if found is not None and found[0] is operation:
            return found[1]
        plain: list[_Plain] = []
        simple = True
        for definition in operation.variable_definitions or ():
            signature = get_variable_signature(self._schema, definition)
            if isinstance(signature, GraphQLError) or definition.default_value is not None:
                simple = False
                break
            kind: Any = signature.type
            non_null = isinstance(kind, GraphQLNonNull)
            named = kind.of_type if non_null else kind
            if not isinstance(named, GraphQLScalarType) or named.name not in _PLAIN_SCALARS:
                simple = False
                break
            plain.append(_Plain(signature.name, signature, named.name, non_null))
        result = tuple(plain) if simple else None
        if len(self._plain) > 4_096:
            self._plain.clear()
        self._plain[id(operation)] = (operation, result)
        return result
