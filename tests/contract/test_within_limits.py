"""Every contract operation and every README example runs under the default limits.

Measured as the server measures them (``graph.documents`` and
``graph.analysis``): the document limits (tokens, depth, aliases, directives,
selections, operations) and the requested cost with the operation's own
variable defaults, within ``QUERY_MAX_COST`` and with page sizes in range. A
limit lowered below what the documented operations need, or an example grown
past one, fails here rather than in a client.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from graphql import is_input_type, type_from_ast, value_from_ast

from domain.limits import RoleBudgets
from graph.analysis import OperationFigures, RequestedCosts
from graph.documents import DocumentLimits, Documents
from graph.schema import schema

ROOT = Path(__file__).resolve().parents[2]
OPERATIONS = sorted((ROOT / "tests" / "contract" / "operations").glob("*.graphql"))
README_BLOCK = re.compile(r"```graphql\n(.*?)```", re.S)
LIMITS = DocumentLimits()
DOCUMENTS = Documents(schema._schema, LIMITS)


def documents() -> list[Any]:
    readme = README_BLOCK.findall((ROOT / "README.md").read_text())
    return [
        *(pytest.param(path.read_text(), id=path.stem) for path in OPERATIONS),
        *(pytest.param(block, id=f"README-{i}") for i, block in enumerate(readme)),
    ]


def defaults(operation: OperationFigures) -> dict[str, Any]:
    """The variables an operation has when the client sends none: their defaults."""
    found: dict[str, Any] = {}
    for definition in operation.node.variable_definitions or ():
        if definition.default_value is not None:
            kind = type_from_ast(schema._schema, definition.type)
            assert is_input_type(kind)
            found[definition.variable.name.value] = value_from_ast(definition.default_value, kind)
    return found


def test_every_document_is_measured() -> None:
    assert len(documents()) >= len(OPERATIONS) + 10


@pytest.mark.parametrize("text", documents())
def test_the_document_runs_under_the_default_limits(text: str) -> None:
    prepared = DOCUMENTS.prepare(text)  # refuses (DocumentRefused) over any document limit
    assert prepared.errors == ()
    (operation,) = prepared.figures.operations
    figures = operation.figures
    assert figures.depth <= LIMITS.max_depth
    assert figures.aliases <= LIMITS.max_aliases
    # Raises PageSizeOutOfRange for a page size outside 1..100.
    cost = RequestedCosts().requested(operation, defaults(operation))
    assert 0 <= cost <= LIMITS.max_cost
    # And within the smallest budget, so that anyone may run it in one go.
    assert cost <= RoleBudgets().anonymous.capacity


def test_a_document_over_a_limit_fails_this_check() -> None:
    markets = (f"a{i}: markets(first: 100) {{ nodes {{ id }} }}" for i in range(11))
    over = "{ " + " ".join(markets) + " }"
    (operation,) = DOCUMENTS.prepare(over).figures.operations
    assert RequestedCosts().requested(operation, {}) > LIMITS.max_cost
