"""``node``, ``nodes`` and typed lookups: the right object, null when absent, bad input refused."""

from __future__ import annotations

import base64
import uuid
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest

from domain.entities import Outcome
from infra.db.engine import create_engine
from infra.settings import Settings
from tests.api.readside import Seed, SeedMarket, SeedPosition, SeedUser, global_id, now, uuid_of
from tests.support import GraphQLClient, LiveServer, MakeAccount, MakeMarket, without_extensions

pytestmark = pytest.mark.embedded

FIELDS = """
__typename
id
... on Market { name creator { id } }
... on User { displayName }
... on Position { shares outcome market { id } user { id } }
"""
NODE = f"query ($id: ID!) {{ node(id: $id) {{ {FIELDS} }} }}"
NODES = f"query ($ids: [ID!]!) {{ nodes(ids: $ids) {{ {FIELDS} }} }}"


@dataclass
class Objects:
    user: SeedUser
    market: SeedMarket
    position: SeedPosition


@pytest.fixture(scope="module")
async def objects(server: LiveServer, settings: Settings) -> Objects:
    seed = Seed()
    user = seed.user("Node Owner")
    market = seed.market(user.id, f"Node market {uuid.uuid4().hex}?")
    position = seed.buy(user.id, market, Outcome.NO, Decimal(3), now() - timedelta(minutes=1))
    engine = create_engine(settings)
    await seed.save(engine)
    await engine.dispose()
    return Objects(user, market, position)


def expected(objects: Objects, which: str) -> dict[str, Any]:
    if which == "Market":
        m = objects.market
        return {
            "__typename": "Market",
            "id": m.gid,
            "name": m.name,
            "creator": {"id": objects.user.gid},
        }
    if which == "User":
        return {"__typename": "User", "id": objects.user.gid, "displayName": "Node Owner"}
    p = objects.position
    return {
        "__typename": "Position",
        "id": p.gid,
        "shares": p.shares,
        "outcome": p.outcome.value,
        "market": {"id": objects.market.gid},
        "user": {"id": objects.user.gid},
    }


def gid_of(objects: Objects, which: str) -> str:
    return {
        "Market": objects.market.gid,
        "User": objects.user.gid,
        "Position": objects.position.gid,
    }[which]


def normalise(node: dict[str, Any] | None) -> dict[str, Any] | None:
    if node is not None and "shares" in node:
        node = {**node, "shares": Decimal(node["shares"])}
    return node


@pytest.mark.parametrize("which", ["Market", "User", "Position"])
async def test_node_resolves_each_type(gql: GraphQLClient, objects: Objects, which: str) -> None:
    data = await gql.data(NODE, {"id": gid_of(objects, which)})
    assert normalise(data["node"]) == expected(objects, which)


async def test_ids_given_out_are_the_ids_node_takes(
    gql: GraphQLClient, make_account: MakeAccount, make_market: MakeMarket
) -> None:
    """Ids the API made (not the test's own encoding) round-trip through node."""
    account = await make_account("Round Trip")
    market = await make_market(account)
    data = await gql.data(
        "query ($a: ID!, $m: ID!) {"
        " a: node(id: $a) { id __typename } m: node(id: $m) { id __typename } }",
        {"a": account.id, "m": market["id"]},
    )
    assert data == {
        "a": {"id": account.id, "__typename": "User"},
        "m": {"id": market["id"], "__typename": "Market"},
    }
    assert global_id("User", uuid_of(account.id)) == account.id


@pytest.mark.parametrize("which", ["Market", "User", "Position"])
async def test_a_well_formed_unknown_id_is_null(gql: GraphQLClient, which: str) -> None:
    absent = global_id(which, uuid.uuid4())
    payload = await gql(NODE, {"id": absent})
    assert without_extensions(payload) == {"data": {"node": None}}


def raw_id(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


MALFORMED = [
    "",
    "not an id",
    "%%%",
    raw_id(f"Order:{uuid.uuid4()}"),
    raw_id(f"market:{uuid.uuid4()}"),
    raw_id("Market:not-a-uuid"),
    raw_id("Market:"),
    raw_id(str(uuid.uuid4())),
    base64.urlsafe_b64encode(b"\xff\xfe\xfd").decode(),
    str(uuid.uuid4()),
]


@pytest.mark.parametrize("value", MALFORMED)
async def test_a_malformed_id_is_bad_input(gql: GraphQLClient, value: str) -> None:
    payload = await gql(NODE, {"id": value})
    assert payload["data"] == {"node": None}
    [error] = payload["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT", error
    assert error["path"] == ["node"]


async def test_nodes_keeps_order_and_gives_null_for_missing(
    gql: GraphQLClient, objects: Objects
) -> None:
    order = ["Position", None, "User", "Market", None, "User", "Position"]
    ids = [
        gid_of(objects, which) if which else global_id("Market", uuid.uuid4()) for which in order
    ]
    data = await gql.data(NODES, {"ids": ids})
    assert [normalise(n) for n in data["nodes"]] == [
        expected(objects, which) if which else None for which in order
    ]


async def test_nodes_accepts_none_and_a_hundred(gql: GraphQLClient, objects: Objects) -> None:
    assert (await gql.data(NODES, {"ids": []}))["nodes"] == []
    ids = [objects.user.gid, objects.market.gid] * 50
    nodes = (await gql.data(NODES, {"ids": ids}))["nodes"]
    assert [n["id"] for n in nodes] == ids


async def test_nodes_refuses_more_than_a_hundred(gql: GraphQLClient, objects: Objects) -> None:
    payload = await gql(NODES, {"ids": [objects.user.gid] * 101})
    assert payload["data"] is None
    [error] = payload["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT", error
    assert error["extensions"]["argument"] == "ids"


async def test_nodes_refuses_a_malformed_id_among_good_ones(
    gql: GraphQLClient, objects: Objects
) -> None:
    payload = await gql(NODES, {"ids": [objects.user.gid, "junk", objects.market.gid]})
    assert payload["data"] is None
    [error] = payload["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT", error


@pytest.mark.parametrize(
    ("field", "wrong"),
    [("market", "User"), ("market", "Position"), ("user", "Market"), ("user", "Position")],
)
async def test_typed_lookups_refuse_ids_of_another_type(
    gql: GraphQLClient, objects: Objects, field: str, wrong: str
) -> None:
    payload = await gql(
        f"query ($id: ID!) {{ {field}(id: $id) {{ id }} }}", {"id": gid_of(objects, wrong)}
    )
    assert payload["data"] == {field: None}
    [error] = payload["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT", error
    assert error["extensions"]["argument"] == "id"


@pytest.mark.parametrize("field", ["market", "user"])
async def test_typed_lookups_give_null_for_unknown_ids(gql: GraphQLClient, field: str) -> None:
    absent = global_id(field.capitalize(), uuid.uuid4())
    payload = await gql(f"query ($id: ID!) {{ {field}(id: $id) {{ id }} }}", {"id": absent})
    assert without_extensions(payload) == {"data": {field: None}}


@pytest.mark.parametrize("field", ["market", "user"])
async def test_typed_lookups_find_their_object(
    gql: GraphQLClient, objects: Objects, field: str
) -> None:
    ident = gid_of(objects, field.capitalize())
    data = await gql.data(
        f"query ($id: ID!) {{ {field}(id: $id) {{ id __typename }} }}", {"id": ident}
    )
    assert data[field] == {"id": ident, "__typename": field.capitalize()}
