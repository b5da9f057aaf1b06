"""Every contract operation that pages through a connection selects what cache helpers merge.

Apollo's ``relayStylePagination``, urql Graphcache's ``relayPagination`` and Relay's
``@connection`` merge pages through ``edges { cursor node }`` and continue from
``pageInfo``; a page read through ``nodes`` is replaced, not appended, by the next. The
README shows these operations (tests/contract/test_contract.py pins them), so its examples
follow the rule too.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from graphql import FieldNode, SelectionSetNode, parse

ROOT = Path(__file__).resolve().parents[2]
OPERATIONS = sorted((ROOT / "tests" / "contract" / "operations").glob("*.graphql"))
PAGING = {"after", "before"}


def fields(selection: SelectionSetNode | None) -> dict[str, FieldNode]:
    if selection is None:
        return {}
    return {s.name.value: s for s in selection.selections if isinstance(s, FieldNode)}


def paged_fields(selection: SelectionSetNode | None) -> list[FieldNode]:
    """Every field, at any depth, given a cursor to continue from."""
    found = []
    for field in fields(selection).values():
        if PAGING & {argument.name.value for argument in field.arguments or ()}:
            found.append(field)
        found.extend(paged_fields(field.selection_set))
    return found


def problems(field: FieldNode) -> list[str]:
    selected = fields(field.selection_set)
    wrong = []
    if "nodes" in selected:
        wrong.append("selects nodes")
    edges = fields(selected["edges"].selection_set) if "edges" in selected else {}
    if not {"cursor", "node"} <= set(edges):
        wrong.append("lacks edges { cursor node }")
    page_info = fields(selected["pageInfo"].selection_set) if "pageInfo" in selected else {}
    if not (
        {"hasNextPage", "endCursor"} <= set(page_info)
        or {"hasPreviousPage", "startCursor"} <= set(page_info)
    ):
        wrong.append("lacks pageInfo with the cursor to go on from")
    return wrong


@pytest.mark.parametrize("path", OPERATIONS, ids=lambda p: p.stem)
def test_paged_connections_select_edges_and_page_info(path: Path) -> None:
    document = parse(path.read_text())
    for definition in document.definitions:
        for field in paged_fields(getattr(definition, "selection_set", None)):
            assert problems(field) == [], (path.stem, field.name.value)


def test_the_rule_finds_a_page_read_through_nodes() -> None:
    [operation] = parse(
        "query ($after: String) { market(id: 1) {"
        " trades(first: 5, after: $after) { nodes { id } } } }"
    ).definitions
    [trades] = paged_fields(getattr(operation, "selection_set", None))
    assert problems(trades) == [
        "selects nodes",
        "lacks edges { cursor node }",
        "lacks pageInfo with the cursor to go on from",
    ]
