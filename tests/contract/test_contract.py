"""The committed contract: schema.graphql is what the server serves, and the
operations frontends rely on (and the README shows) validate against it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from graphql import GraphQLSchema, build_schema, parse, validate

from graph.schema import schema as served_schema

ROOT = Path(__file__).resolve().parents[2]
OPERATIONS = sorted((ROOT / "tests" / "contract" / "operations").glob("*.graphql"))
README_BLOCK = re.compile(r"```graphql\n(.*?)```", re.S)


@pytest.fixture(scope="module")
def contract() -> GraphQLSchema:
    return build_schema((ROOT / "schema.graphql").read_text())


def test_committed_schema_is_the_served_schema() -> None:
    committed = (ROOT / "schema.graphql").read_text().strip()
    assert committed == served_schema.as_str().strip(), (
        "schema.graphql is stale: run `marketgraph export-schema > schema.graphql`"
    )


def test_there_are_contract_operations() -> None:
    names = {path.stem for path in OPERATIONS}
    assert {"TopMarkets", "MarketDetail", "Viewer", "SignIn", "CreateMarket"} <= names


@pytest.mark.parametrize("path", OPERATIONS, ids=lambda p: p.stem)
def test_operation_validates_against_the_contract(contract: GraphQLSchema, path: Path) -> None:
    document = parse(path.read_text())
    assert validate(contract, document) == []


def test_validation_catches_a_broken_operation(contract: GraphQLSchema) -> None:
    errors = validate(contract, parse("query { markets { nodes { noSuchField } } }"))
    assert errors
    assert "noSuchField" in errors[0].message


def test_readme_examples_come_from_the_contract_operations(contract: GraphQLSchema) -> None:
    blocks = README_BLOCK.findall((ROOT / "README.md").read_text())
    assert blocks, "README.md shows no ```graphql examples"
    known = {path.read_text().strip() for path in OPERATIONS}
    for block in blocks:
        assert block.strip() in known, (
            f"README example is not in tests/contract/operations:\n{block}"
        )
        assert validate(contract, parse(block)) == []
