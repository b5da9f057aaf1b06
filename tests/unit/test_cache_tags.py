"""Response tags: read from the data with the operation's shape, never from its look."""

from __future__ import annotations

import uuid
from typing import Any

from graphql import GraphQLList, GraphQLNonNull, GraphQLObjectType, GraphQLSchema

from domain.changes import (
    MARKETS,
    Changes,
    Kind,
    Relation,
    coarsened,
    entity_tag,
    relation_tag,
)
from graph.cache_tags import (
    DEPENDS,
    MOST_TAGS_UNDER_A_WILDCARD,
    RELATIONS,
    TOP_LEVEL_LISTS,
    TagRules,
)
from graph.cost import is_connection, named
from graph.documents import DocumentLimits, Documents
from graph.ids import TYPES, to_global_id
from graph.schema import schema as strawberry_schema

SCHEMA: GraphQLSchema = strawberry_schema._schema
MARKET = uuid.uuid4()
USER = uuid.uuid4()
POSITION = uuid.uuid4()


def tags(query: str, data: dict[str, Any]) -> set[str]:
    prepared = Documents(SCHEMA, DocumentLimits()).prepare(query)
    assert not prepared.errors, prepared.errors
    operation = prepared.figures.operation(None)
    assert operation is not None
    return TagRules(SCHEMA).collect(operation, data)


def gid(kind: Kind, ident: uuid.UUID) -> str:
    return to_global_id(kind.value, ident)


def test_an_object_with_its_id_is_tagged_by_it() -> None:
    data = {"market": {"id": gid(Kind.MARKET, MARKET), "creator": {"id": gid(Kind.USER, USER)}}}
    assert tags("{ market(id: 1) { id creator { id } } }", data) == {
        entity_tag(Kind.MARKET, MARKET),
        entity_tag(Kind.USER, USER),
    }


def test_an_alias_of_another_field_named_id_is_no_id() -> None:
    # A market named like another market's id must not tag that market.
    other = uuid.uuid4()
    data = {"market": {"id": gid(Kind.MARKET, other)}}
    assert tags("{ market(id: 1) { id: name } }", data) == {entity_tag(Kind.MARKET, None)}


def test_the_id_under_any_alias_is_the_id() -> None:
    data = {"market": {"key": gid(Kind.MARKET, MARKET)}}
    assert tags("{ market(id: 1) { key: id } }", data) == {entity_tag(Kind.MARKET, MARKET)}


def test_an_id_of_another_type_is_no_id() -> None:
    data = {"market": {"id": gid(Kind.USER, USER)}}
    assert tags("{ market(id: 1) { id } }", data) == {entity_tag(Kind.MARKET, None)}


def test_lists_are_tagged_with_their_owner() -> None:
    query = "{ market(id: 1) { id positions { nodes { id } } trades { totalCount } } }"
    data = {
        "market": {
            "id": gid(Kind.MARKET, MARKET),
            "positions": {"nodes": [{"id": gid(Kind.POSITION, POSITION)}]},
            "trades": {"totalCount": 0},
        }
    }
    assert tags(query, data) == {
        entity_tag(Kind.MARKET, MARKET),
        relation_tag(Kind.MARKET, MARKET, Relation.POSITIONS),
        relation_tag(Kind.MARKET, MARKET, Relation.TRADES),
        entity_tag(Kind.POSITION, POSITION),
    }


def test_a_list_of_an_unidentified_owner_is_every_owners() -> None:
    data: dict[str, Any] = {"market": {"priceHistory": []}}
    assert tags("{ market(id: 1) { priceHistory { close } } }", data) == {
        entity_tag(Kind.MARKET, None),
        relation_tag(Kind.MARKET, None, Relation.TRADES),
    }


def test_the_markets_list_is_tagged() -> None:
    data = {"markets": {"totalCount": 0, "nodes": []}}
    assert tags("{ markets { totalCount nodes { id } } }", data) == {MARKETS}


def test_an_abstract_object_without_an_id_is_any_of_its_types() -> None:
    query = "{ node(id: 1) { ... on User { displayName } } }"
    found = tags(query, {"node": {"displayName": "Ann"}})
    assert found == {entity_tag(Kind(name), None) for name in TYPES}


def test_typename_narrows_an_abstract_object() -> None:
    query = "{ node(id: 1) { __typename ... on User { displayName } } }"
    found = tags(query, {"node": {"__typename": "User", "displayName": "Ann"}})
    assert found == {entity_tag(Kind.USER, None)}


def test_fragments_on_other_types_tag_what_came_back() -> None:
    query = (
        "query { nodes(ids: [1, 2]) { ...M ...U } }"
        " fragment M on Market { id name } fragment U on User { id }"
    )
    data = {"nodes": [{"id": gid(Kind.MARKET, MARKET), "name": "x"}, {"id": gid(Kind.USER, USER)}]}
    assert tags(query, data) == {entity_tag(Kind.MARKET, MARKET), entity_tag(Kind.USER, USER)}


def test_a_value_computed_from_another_entity_carries_its_tag() -> None:
    position = {"id": gid(Kind.POSITION, POSITION), "currentValue": "1"}
    alone = tags("{ node(id: 1) { ... on Position { id currentValue } } }", {"node": position})
    assert entity_tag(Kind.MARKET, None) in alone
    with_market = {**position, "market": {"id": gid(Kind.MARKET, MARKET)}}
    shown = tags(
        "{ node(id: 1) { ... on Position { id currentValue market { id } } } }",
        {"node": with_market},
    )
    assert entity_tag(Kind.MARKET, MARKET) in shown
    assert entity_tag(Kind.MARKET, None) not in shown


def test_null_and_missing_values_tag_nothing_below_them() -> None:
    assert tags("{ market(id: 1) { id creator { id } } }", {"market": None}) == set()


def test_responses_and_writes_name_things_alike() -> None:
    """A response tag is invalidated by the write that changes the same thing."""
    changes = Changes()
    changes.entity(Kind.MARKET, MARKET)
    changes.relation(Kind.MARKET, MARKET, Relation.POSITIONS)
    written = changes.tags()
    for tag in (
        entity_tag(Kind.MARKET, MARKET),
        entity_tag(Kind.MARKET, None),
        relation_tag(Kind.MARKET, MARKET, Relation.POSITIONS),
        relation_tag(Kind.MARKET, None, Relation.POSITIONS),
    ):
        assert tag in written
    assert entity_tag(Kind.USER, None) not in written
    assert {kind.value for kind in Kind} == set(TYPES)


def test_every_list_the_schema_serves_is_tagged_by_what_changes_it() -> None:
    """A list an entity owns (or a top-level list) must have a tag writes know, or a change
    of its membership would never reach the responses that show it."""
    untagged = []
    for kind in SCHEMA.type_map.values():
        if not isinstance(kind, GraphQLObjectType) or kind.name.startswith("__"):
            continue
        if kind.name == "Mutation" or kind.name.endswith(("Success", "Error")):
            continue
        for name, field in kind.fields.items():
            returned, listed = named(field.type)
            if not (is_connection(returned) or _object_list(field.type, listed)):
                continue
            if is_connection(kind):
                continue  # a connection's own nodes and edges
            covered = (kind.name, name) in RELATIONS or (kind.name, name) in TOP_LEVEL_LISTS
            # Lists of objects picked by id: each element carries its own tag.
            if not covered and (kind.name, name) != ("Query", "nodes"):
                untagged.append(f"{kind.name}.{name}")
    assert untagged == []
    assert {owner for owner, _ in DEPENDS} <= {t.value for t in Kind}


def _object_list(output: Any, listed: bool) -> bool:
    while isinstance(output, GraphQLNonNull | GraphQLList):
        output = output.of_type
    return listed and isinstance(output, GraphQLObjectType)


def test_more_than_the_limit_of_a_kind_becomes_its_wildcard() -> None:
    markets = [uuid.uuid4() for _ in range(3)]
    users = [uuid.uuid4() for _ in range(2)]
    given = {
        MARKETS,
        *(entity_tag(Kind.MARKET, market) for market in markets),
        *(relation_tag(Kind.MARKET, market, Relation.POSITIONS) for market in markets),
        *(entity_tag(Kind.USER, user) for user in users),
    }
    assert coarsened(given, 2) == {
        MARKETS,
        entity_tag(Kind.MARKET, None),
        relation_tag(Kind.MARKET, None, Relation.POSITIONS),
        *(entity_tag(Kind.USER, user) for user in users),
    }
    assert coarsened(given, 3) == given


def test_a_coarsened_response_is_still_dropped_by_every_write_that_dropped_it_before() -> None:
    markets = [uuid.uuid4() for _ in range(5)]
    tagged = {entity_tag(Kind.MARKET, market) for market in markets} | {
        relation_tag(Kind.MARKET, market, Relation.TRADES) for market in markets
    }
    kept = coarsened(tagged, 1)
    assert len(kept) == 2
    for market in markets:
        for write in ("entity", "relation"):
            changes = Changes()
            if write == "entity":
                changes.entity(Kind.MARKET, market)
            else:
                changes.relation(Kind.MARKET, market, Relation.TRADES)
            assert changes.tags() & tagged  # it dropped the precise response...
            assert changes.tags() & kept  # ...and drops the coarsened one


def test_a_response_over_the_limit_of_one_kind_carries_its_wildcard() -> None:
    query = "{ nodes(ids: [1]) { ... on Market { id } } }"
    at_limit = [uuid.uuid4() for _ in range(MOST_TAGS_UNDER_A_WILDCARD)]
    over = [*at_limit, uuid.uuid4()]

    def listed(markets: list[uuid.UUID]) -> dict[str, Any]:
        return {"nodes": [{"id": gid(Kind.MARKET, market)} for market in markets]}

    assert tags(query, listed(at_limit)) == {entity_tag(Kind.MARKET, m) for m in at_limit}
    assert tags(query, listed(over)) == {entity_tag(Kind.MARKET, None)}
