"""The cost formula and the document figures, on the real schema (README, "Query cost").

Expected costs are worked out by hand from the formula: scalars 0, objects 1
plus their selection, a connection 2 + n x (1 + one item's selection), other
lists 2 + n x (1 + selection), a mutation 10 plus its selection, each
``__schema`` or ``__type`` a fixed 100.
"""

from __future__ import annotations

from typing import Any

import pytest
from graphql import get_introspection_query, parse
from graphql.execution.values import get_variable_values

from graph.analysis import (
    DocumentFigures,
    OperationFigures,
    PageSizeOutOfRange,
    actual_cost,
    analyse,
    explain,
    requested_cost,
)
from graph.cost import CostRules
from graph.schema import schema

RULES = CostRules(schema._schema)


def figures(document: str) -> DocumentFigures:
    return analyse(RULES, parse(document, max_tokens=100_000))


def operation(document: str) -> OperationFigures:
    found = figures(document).operation(None)
    assert found is not None
    return found


def cost(document: str, variables: dict[str, Any] | None = None) -> int:
    return requested_cost(operation(document), variables or {})


def test_scalars_cost_nothing_and_objects_one() -> None:
    assert cost("{ __typename }") == 0
    assert cost('{ market(id: "x") { id name yesPrice } }') == 1
    assert cost('{ market(id: "x") { id creator { id displayName } } }') == 2


def test_a_connection_costs_two_plus_its_page_of_items() -> None:
    # 2 + 20 x (1 + 0): the default page size.
    assert cost("{ markets { nodes { id name } } }") == 22
    assert cost("{ markets(first: 5) { nodes { id } } }") == 7
    assert cost("{ markets(last: 3) { nodes { id } } }") == 5


def test_edges_and_nodes_cost_the_same_and_bookkeeping_is_free() -> None:
    nodes = cost("{ markets(first: 10) { nodes { id } } }")
    edges = cost(
        "{ markets(first: 10) { edges { cursor node { id } }"
        " pageInfo { hasNextPage endCursor } totalCount } }"
    )
    assert nodes == edges == 12


def coerced(found: OperationFigures, given: dict[str, Any]) -> dict[str, Any]:
    """The variables as the endpoint has them: coerced, defaults filled in."""
    values = get_variable_values(schema._schema, found.node.variable_definitions or (), given)
    assert not isinstance(values, list), values
    return values.coerced


def test_first_from_a_variable_and_from_its_default() -> None:
    found = operation("query ($n: Int = 7) { markets(first: $n) { nodes { id } } }")
    assert requested_cost(found, coerced(found, {"n": 50})) == 52
    assert requested_cost(found, coerced(found, {})) == 9
    unset = operation("query ($n: Int) { markets(first: $n) { nodes { id } } }")
    assert requested_cost(unset, coerced(unset, {})) == 22
    assert requested_cost(unset, coerced(unset, {"n": None})) == 22


def test_nested_connections_multiply() -> None:
    # 2 + 20 x (1 + creator 1 + positions (2 + 10 x (1 + user 1))) = 482: Q2 of the benchmark.
    q2 = (
        "{ markets(first: 20) { nodes { id creator { id displayName }"
        " positions(first: 10) { nodes { id shares user { id displayName } } } } } }"
    )
    assert cost(q2) == 482


def test_aliases_of_one_connection_each_pay() -> None:
    assert cost(
        "{ a: markets(first: 10) { nodes { id } } b: markets(first: 30) { nodes { id } } }"
    ) == (12 + 32)


def test_a_fragment_spread_several_times_counts_at_each_spread() -> None:
    document = """
    query { markets(first: 5) { nodes { ...M } } viewer { markets(first: 2) { nodes { ...M } } } }
    fragment M on Market { id creator { id } }
    """
    # markets: 2 + 5 x (1 + 1); viewer: 1 + (2 + 2 x (1 + 1)).
    assert cost(document) == 12 + 7


def test_inline_fragments_on_a_union_cost_their_dearest_branch() -> None:
    document = """
    mutation ($input: CreateMarketInput!) {
      createMarket(input: $input) {
        ... on CreateMarketSuccess { market { id creator { id } } }
        ... on ValidationError { field message }
      }
    }
    """
    # 10 for the mutation, plus the success branch (market 1 + creator 1) over the error (0).
    assert cost(document) == 12


def test_a_mutation_costs_ten_plus_its_selection() -> None:
    assert cost("mutation { signOut { __typename } }") == 10
    two = "mutation { a: signOut { __typename } b: signOut { __typename } }"
    assert cost(two) == 20


def test_node_lists_cost_by_the_number_of_ids() -> None:
    assert cost('{ nodes(ids: ["a", "b", "c"]) { id } }') == 2 + 3
    assert cost("query ($ids: [ID!]!) { nodes(ids: $ids) { id } }", {"ids": ["a"] * 40}) == 42


def test_introspection_has_a_fixed_cost_and_its_own_depth() -> None:
    standard = operation(get_introspection_query())
    assert requested_cost(standard, {}) == 100
    assert standard.figures.depth == 0
    assert standard.figures.introspection_depth == 15
    assert cost('{ __type(name: "Market") { name fields { name } } }') == 100


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"descriptions": False},
        {
            "specified_by_url": True,
            "directive_is_repeatable": True,
            "schema_description": True,
            "input_value_deprecation": True,
        },
    ],
)
def test_the_standard_introspection_query_fits_the_anonymous_budget(
    options: dict[str, bool],
) -> None:
    assert requested_cost(operation(get_introspection_query(**options)), {}) <= 500


def test_each_introspection_field_costs_its_fixed_amount_through_fragments_too() -> None:
    # 29 aliases of the whole schema fit the alias limit; their cost does not fit 1,000.
    aliases = " ".join(f"s{i}: __schema {{ types {{ name }} }}" for i in range(29))
    assert cost(f"{{ {aliases} }}") == 29 * 100
    # Counted per occurrence once fragments are expanded, the fragment walked once.
    spread = (
        "query { ...A ...A ...A } fragment A on Query { ...B ...B ...B }"
        ' fragment B on Query { t: __type(name: "Market") { name } }'
    )
    assert cost(spread) == 9 * 100
    assert figures(spread).fragment_visits == {"A": 1, "B": 1}


def test_page_sizes_outside_one_to_a_hundred_are_refused_with_their_path() -> None:
    with pytest.raises(PageSizeOutOfRange) as refused:
        cost("{ viewer { markets(first: 101) { nodes { id } } } }")
    assert refused.value.argument == "first"
    assert refused.value.path == "viewer.markets"
    with pytest.raises(PageSizeOutOfRange):
        cost("query ($n: Int) { markets(last: $n) { nodes { id } } }", {"n": 0})


def test_actual_cost_counts_what_came_back() -> None:
    found = operation("{ markets(first: 100) { nodes { id creator { id } } } }")
    assert requested_cost(found, {}) == 2 + 100 * 2
    data = {"markets": {"nodes": [{"id": "a", "creator": {"id": "u"}}] * 3}}
    assert actual_cost(found, data) == 2 + 3 * 2
    assert actual_cost(found, {"markets": None}) == 0
    assert actual_cost(found, None) == 0


def test_actual_cost_merges_fields_selected_twice_under_one_key() -> None:
    found = operation('{ market(id: "x") { id } market(id: "x") { creator { id } } }')
    assert actual_cost(found, {"market": {"id": "m", "creator": {"id": "u"}}}) == 2


def test_explain_gives_every_costly_field_by_path() -> None:
    rows = explain(operation("{ markets(first: 3) { nodes { id creator { id } } } }"), {})
    by_path = {row["path"]: row for row in rows}
    assert by_path["markets"] == {"path": "markets", "kind": "connection", "cost": 8, "items": 3}
    assert by_path["markets.nodes.creator"]["cost"] == 1


def fan_out(levels: int) -> str:
    """Each fragment spreads the next twice: ``levels`` fragments stand for 2^levels fields."""
    fragments = " ".join(
        f"fragment F{i} on Query {{ ...F{i + 1} ...F{i + 1} }}" for i in range(levels)
    )
    return f"query {{ ...F0 }} {fragments} fragment F{levels} on Query {{ __typename }}"


def test_fan_out_visits_each_fragment_definition_once() -> None:
    found = figures(fan_out(99))
    assert set(found.fragment_visits) == {f"F{i}" for i in range(100)}
    assert set(found.fragment_visits.values()) == {1}
    assert found.largest.selections == 2**99


def test_cycles_and_unknown_fragments_end_the_walk() -> None:
    found = figures(
        "query { ...A } fragment A on Query { ...B __typename } fragment B on Query { ...A }"
    )
    assert found.fragment_visits == {"A": 1, "B": 1}
    assert figures("query { ...Missing }").largest.selections == 0


def test_aliases_and_directives_are_counted_through_fragments() -> None:
    found = figures(
        "query { ...F ...F } fragment F on Query { a: __typename @include(if: true) b: __typename }"
    )
    assert found.largest.aliases == 4
    assert found.largest.directives == 2
