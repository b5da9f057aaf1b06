"""Cache policies from hints: what each operation may be kept for, and for whom; and that
everything the schema shows only to some viewers is hinted as such."""

from __future__ import annotations

import pytest
from graphql import GraphQLObjectType, GraphQLSchema
from strawberry.permission import PermissionExtension

from domain.readmodel import TYPES, Children, Private
from graph.analysis import OperationFigures
from graph.cache_policy import (
    FIELD_HINTS,
    PRIVATE_POSITION_HINTS,
    PRIVATE_POSITION_TYPE_HINTS,
    TYPE_HINTS,
    CacheHints,
    Hint,
    Policy,
    Scope,
)
from graph.documents import DocumentLimits, Documents
from graph.schema import schema as strawberry_schema

SCHEMA: GraphQLSchema = strawberry_schema._schema
PUBLIC = Scope.PUBLIC
PRIVATE = Scope.PRIVATE


def operation(query: str) -> OperationFigures:
    prepared = Documents(SCHEMA, DocumentLimits(max_tokens=100_000)).prepare(query)
    assert not prepared.errors, prepared.errors
    found = prepared.figures.operation(None)
    assert found is not None
    return found


def policy(query: str, *, positions_public: bool = True, default: int = 300) -> Policy:
    hints = CacheHints(SCHEMA, positions_public=positions_public, default_max_age=default)
    return hints.policy(operation(query))


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("{ markets { nodes { id name creator { displayName } } } }", Policy(300, PUBLIC)),
        ("{ market(id: 1) { positions { nodes { shares user { id } } } } }", Policy(300, PUBLIC)),
        ("{ viewer { id } }", Policy(300, PRIVATE)),
        ("{ user(id: 1) { email } }", Policy(300, PRIVATE)),
        ("{ user(id: 1) { ledger { totalCount } } }", Policy(300, PRIVATE)),
        ("{ markets { nodes { creator { balance } } } }", Policy(300, PRIVATE)),
        # Any object may come back: jobs and ledger entries are private types.
        ("{ node(id: 1) { id } }", Policy(300, PRIVATE)),
        ("{ nodes(ids: [1]) { id } }", Policy(300, PRIVATE)),
        ("{ job(id: 1) { state } }", Policy(300, PRIVATE)),
        ("{ rateLimit { remaining } markets { totalCount } }", Policy(0, PUBLIC)),
        ("{ market(id: 1) { priceHistory { close } } }", Policy(60, PUBLIC)),
        ("mutation { signOut { signedOut } }", Policy(0, PRIVATE)),
        # A fragment's fields count wherever it is spread; skipped ones count too.
        (
            "query { markets { nodes { ...M } } } fragment M on Market { creator { email } }",
            Policy(300, PRIVATE),
        ),
        ("query ($v: Boolean!) { viewer @include(if: $v) { id } }", Policy(300, PRIVATE)),
    ],
)
def test_policies(query: str, expected: Policy) -> None:
    assert policy(query) == expected


def test_the_default_max_age_caps_every_hint() -> None:
    assert policy("{ market(id: 1) { priceHistory { close } } }", default=30) == Policy(30, PUBLIC)


@pytest.mark.parametrize(
    "query",
    [
        "{ market(id: 1) { positions { totalCount } } }",
        "{ market(id: 1) { trades { totalCount } } }",
        "{ user(id: 1) { positions { totalCount } } }",
        "{ user(id: 1) { trades { totalCount } } }",
    ],
)
def test_private_positions_make_holdings_private(query: str) -> None:
    assert policy(query).scope is PUBLIC
    assert policy(query, positions_public=False).scope is PRIVATE


def test_policies_are_computed_once_per_operation() -> None:
    hints = CacheHints(SCHEMA)
    found = operation("{ viewer { id } }")
    calls = 0
    original = hints.field_hint

    def counting(item: object) -> Hint:
        nonlocal calls
        calls += 1
        return original(item)  # type: ignore[arg-type]

    hints.field_hint = counting  # type: ignore[method-assign]
    first = hints.policy(found)
    after_first = calls
    assert hints.policy(found) is first
    assert calls == after_first


def test_shared_fragments_are_folded_once() -> None:
    """Fragments that each spread the next twice stand for 2^n fields; each is folded once."""
    depth = 12
    fragments = [f"fragment F{i} on User {{ ...F{i + 1} ...F{i + 1} }}" for i in range(depth)]
    fragments.append(f"fragment F{depth} on User {{ email }}")
    query = "query { viewer { ...F0 } } " + " ".join(fragments)
    hints = CacheHints(SCHEMA)
    calls = 0
    original = hints.field_hint

    def counting(item: object) -> Hint:
        nonlocal calls
        calls += 1
        return original(item)  # type: ignore[arg-type]

    hints.field_hint = counting  # type: ignore[method-assign]
    figures = Documents(SCHEMA, DocumentLimits(max_selections=10**9)).prepare(query)
    found = figures.figures.operation(None)
    assert found is not None
    assert hints.policy(found).scope is PRIVATE
    assert calls == 2  # viewer, and email once


# --- the hint tables against the schema ------------------------------------------------------


def _field_names(type_name: str) -> set[str]:
    kind = SCHEMA.get_type(type_name)
    assert isinstance(kind, GraphQLObjectType), type_name
    return set(kind.fields)


def test_every_hint_names_a_field_or_type_of_the_schema() -> None:
    for type_name, field in {**FIELD_HINTS, **PRIVATE_POSITION_HINTS}:
        assert field in _field_names(type_name), (type_name, field)
    for type_name in {**TYPE_HINTS, **PRIVATE_POSITION_TYPE_HINTS}:
        assert SCHEMA.get_type(type_name) is not None, type_name


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def _private_everywhere() -> CacheHints:
    return CacheHints(SCHEMA, positions_public=False)


def _hint(hints: CacheHints, type_name: str, field: str) -> Hint:
    own = hints.fields.get((type_name, field))
    if own is not None:
        return own
    kind = SCHEMA.get_type(type_name)
    assert isinstance(kind, GraphQLObjectType)
    from graph.cost import named

    return hints.type_hint(named(kind.fields[field].type)[0].name)


def test_what_the_read_model_hides_is_private() -> None:
    """Fields and lists the read model shows only to some viewers (domain/readmodel.py)."""
    hints = _private_everywhere()
    hidden_fields = 0
    for object_type in TYPES.values():
        for name, field in object_type.fields.items():
            hidden = isinstance(field, Private) or (
                isinstance(field, Children) and field.visibility is not None
            )
            if hidden:
                hidden_fields += 1
                assert _hint(hints, object_type.name, _camel(name)).scope is PRIVATE, name
        if object_type.visibility is not None:
            assert hints.type_hint(object_type.name).scope is PRIVATE, object_type.name
    assert hidden_fields >= 6


def test_fields_behind_a_permission_are_private() -> None:
    hints = CacheHints(SCHEMA)
    query = SCHEMA.query_type
    assert query is not None
    guarded_fields = []
    for name, field in query.fields.items():
        definition = (field.extensions or {}).get("strawberry-definition")
        guarded = any(
            isinstance(extension, PermissionExtension)
            for extension in getattr(definition, "extensions", ()) or ()
        )
        if guarded:
            guarded_fields.append(name)
            assert _hint(hints, query.name, name).scope is PRIVATE, name
    assert guarded_fields == ["job"]


def test_fields_described_as_the_viewers_are_private() -> None:
    """The descriptions say what depends on the viewer; every such field is hinted."""
    hints = _private_everywhere()
    described = []
    for kind in SCHEMA.type_map.values():
        if not isinstance(kind, GraphQLObjectType) or kind.name in ("Mutation",):
            continue
        if kind.name.startswith("__") or kind.name.endswith(("Success", "Error")):
            continue
        for name, field in kind.fields.items():
            description = field.description or ""
            if "viewer" in description or "needs `" in description:
                described.append(f"{kind.name}.{name}")
                assert _hint(hints, kind.name, name).scope is PRIVATE, (kind.name, name)
    assert len(described) >= 10, described
