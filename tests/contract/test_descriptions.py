"""Every type, field, argument and enum value of the schema says what it is."""

from __future__ import annotations

from graphql import (
    GraphQLEnumType,
    GraphQLInputObjectType,
    GraphQLInterfaceType,
    GraphQLNamedType,
    GraphQLObjectType,
    build_schema,
)

from graph.schema import schema


def undescribed(types: dict[str, GraphQLNamedType]) -> list[str]:
    missing = []
    for name, kind in types.items():
        if name.startswith("__"):
            continue
        if not kind.description:
            missing.append(name)
        if isinstance(kind, GraphQLObjectType | GraphQLInterfaceType):
            for field_name, field in kind.fields.items():
                if not field.description:
                    missing.append(f"{name}.{field_name}")
                missing += [
                    f"{name}.{field_name}({arg})"
                    for arg, value in field.args.items()
                    if not value.description
                ]
        elif isinstance(kind, GraphQLInputObjectType):
            missing += [f"{name}.{f}" for f, value in kind.fields.items() if not value.description]
        elif isinstance(kind, GraphQLEnumType):
            missing += [f"{name}.{v}" for v, value in kind.values.items() if not value.description]
    return missing


def test_everything_in_the_schema_is_described() -> None:
    assert undescribed(schema._schema.type_map) == []


def test_the_check_finds_what_is_not_described() -> None:
    bare = build_schema('"""Q."""\ntype Query { a(x: Int): Int }\nenum E { ONE }')
    assert undescribed(bare.type_map) == ["Query.a", "Query.a(x)", "E", "E.ONE"]
