"""What client code generators and caches need beyond the SDL."""

from __future__ import annotations

from graphql import GraphQLInterfaceType, GraphQLUnionType, build_schema


def possible_types(sdl: str) -> dict[str, list[str]]:
    """Apollo Client's ``possibleTypes``: each union and interface, with its object types.

    Without it Apollo's cache cannot match ``... on Error`` against a ``ValidationError``
    and silently drops those fields from every error result.
    """
    schema = build_schema(sdl)
    result: dict[str, list[str]] = {}
    for name, kind in sorted(schema.type_map.items()):
        if name.startswith("__") or not isinstance(kind, GraphQLInterfaceType | GraphQLUnionType):
            continue
        result[name] = sorted(member.name for member in schema.get_possible_types(kind))
    return result
