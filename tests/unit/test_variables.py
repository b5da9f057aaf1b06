"""Variable coercion's short way gives graphql-core's answer, values and errors alike."""

from __future__ import annotations

from typing import Any

from graphql import parse
from graphql.execution.values import get_variable_values
from hypothesis import given, settings
from hypothesis import strategies as st

from graph.schema import schema
from graph.variables import Variables

DEFINITIONS = (
    "$a: ID!",
    "$b: ID",
    "$c: Int",
    "$d: Int!",
    "$e: String",
    "$f: Boolean",
    "$g: Int = 3",
)
VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**40), max_value=2**40),
    st.floats(allow_nan=False),
    st.text(max_size=5),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=2), st.integers(), max_size=1),
)
VARIABLES = Variables(schema._schema, hide_suggestions=False)


def document(definitions: list[str]) -> Any:
    used = " ".join(f"{d.split(':')[0][1:]}: __typename" for d in definitions)
    header = f"({', '.join(definitions)})" if definitions else ""
    return parse(f"query Q{header} {{ {used or '__typename'} }}").definitions[0]


@settings(max_examples=300, deadline=None)
@given(
    definitions=st.lists(st.sampled_from(DEFINITIONS), max_size=4, unique=True),
    values=st.dictionaries(st.sampled_from("abcdefgh"), VALUES, max_size=6),
)
def test_the_short_way_agrees_with_graphql_core(
    definitions: list[str], values: dict[str, Any]
) -> None:
    operation = document(definitions)
    ours = VARIABLES.coerce(operation, values)
    theirs = get_variable_values(
        schema._schema, operation.variable_definitions or (), values, max_errors=10
    )
    if isinstance(theirs, list):
        assert isinstance(ours, list)
        assert [e.message for e in ours] == [e.message for e in theirs]
        return
    assert not isinstance(ours, list), [e.message for e in ours]
    assert ours.coerced == theirs.coerced
    assert {k: (s.signature.name, s.value) for k, s in ours.sources.items()} == {
        k: (s.signature.name, s.value) for k, s in theirs.sources.items()
    }


def test_plain_variables_take_the_short_way() -> None:
    operation = document(["$a: ID!", "$c: Int"])
    # A value graphql-core would refuse is refused here too, in its words.
    refused = VARIABLES.coerce(operation, {"c": 1})
    assert isinstance(refused, list)
    assert "'$a'" in refused[0].message
    accepted = VARIABLES.coerce(operation, {"a": "x", "c": 7})
    assert not isinstance(accepted, list)
    assert accepted.coerced == {"a": "x", "c": 7}
