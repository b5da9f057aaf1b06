"""Who sees what: private user fields and (when configured private) positions, on every path.

A user's ``email``, ``balance``, ``disabled`` and ``permissions`` are for that
user and for holders of ``user:read:private``; everyone else gets null, on every
path that reaches the user. Each path is also checked to have reached the user,
so a null is never vacuous. With ``POSITIONS_PUBLIC=false`` positions and trades
are as private, on a second live server started with that setting over the same
database; ledgers are that private always. Whether a viewer may see is derived
from ``ROLE_PERMISSIONS``, which tests/unit/test_policy.py pins to the issue.

On PostgreSQL these reads are answered by the compiled path, and each test
checks that it was (the operation's log line, tests/api/answered.py), so what
is asserted holds for the compiled SQL, not only for the resolvers.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from domain.entities import MarketStatus, Outcome, Role
from domain.policy import ROLE_PERMISSIONS, Permission
from infra.db.engine import create_engine
from infra.db.models import ledger_entries
from infra.settings import Settings
from tests.api import answered, roomy
from tests.api.answered import Paths, compiled_data
from tests.api.readside import Seed, SeedMarket, global_id, now, uuid_of
from tests.support import (
    PASSWORD,
    Account,
    GraphQLClient,
    LiveServer,
    MakeAccount,
    MakeMarket,
    promote,
)

http, gql = roomy.http, roomy.gql
paths = answered.paths


@pytest.fixture(scope="module")
def server(settings: Settings) -> Iterator[LiveServer]:
    """Pages of 100 nested lists are over the default cost limit: this module has its own
    server; and no response cache, whose answers would not say which executor ran."""
    with roomy.running(roomy.roomy(settings, response_cache=False)) as live:
        yield live


pytestmark = pytest.mark.embedded

VIEWERS = ["anonymous", "alice", "bob", "moderator", "admin"]
PRIVATE_FIELDS = ("email", "balance", "disabled", "permissions")

EVERY_PATH = """
fragment P on User { id email balance disabled permissions }
query ($alice: ID!, $bob: ID!, $market: ID!, $position: ID!) {
  viewer { ...P }
  user(id: $alice) { ...P }
  node(id: $alice) { ... on User { ...P } }
  nodes(ids: [$alice, $bob]) { ... on User { ...P } }
  market(id: $market) {
    creator { ...P }
    positions { nodes { user { ...P } } }
  }
  positionNode: node(id: $position) { ... on Position { user { ...P } } }
  positionNodes: nodes(ids: [$position]) { ... on Position { user { ...P } } }
  markets(filter: {creatorId: $alice}) {
    nodes { creator { ...P } }
    edges { node { creator { ...P } } }
  }
  userMarkets: user(id: $alice) {
    markets { nodes { creator { ...P } } edges { node { creator { ...P } } } }
  }
  userPositions: user(id: $alice) { positions { nodes { user { ...P } } } }
}
"""

Users = list[dict[str, Any]]

# Each path to a User, and how to find the users it returned.
PATHS: dict[str, Callable[[dict[str, Any]], Users]] = {
    "user": lambda d: [d["user"]],
    "node": lambda d: [d["node"]],
    "nodes": lambda d: list(d["nodes"]),
    "market.creator": lambda d: [d["market"]["creator"]],
    "market.positions.user": lambda d: [p["user"] for p in d["market"]["positions"]["nodes"]],
    "node(position).user": lambda d: [d["positionNode"]["user"]],
    "nodes(position).user": lambda d: [n["user"] for n in d["positionNodes"]],
    "markets.nodes.creator": lambda d: [n["creator"] for n in d["markets"]["nodes"]],
    "markets.edges.creator": lambda d: [e["node"]["creator"] for e in d["markets"]["edges"]],
    "user.markets.creator": lambda d: (
        [n["creator"] for n in d["userMarkets"]["markets"]["nodes"]]
        + [e["node"]["creator"] for e in d["userMarkets"]["markets"]["edges"]]
    ),
    "user.positions.user": lambda d: [p["user"] for p in d["userPositions"]["positions"]["nodes"]],
}
# Paths that must reach Bob too, besides Alice.
WITH_BOB = {"nodes", "market.positions.user"}


@dataclass
class Person:
    account: Account
    role: Role
    balance: Decimal

    def private(self) -> dict[str, Any]:
        return {
            "email": self.account.email,
            "balance": self.balance,
            "disabled": False,
            "permissions": sorted(p.value for p in ROLE_PERMISSIONS[self.role]),
        }


@dataclass
class Scene:
    people: dict[str, Person]  # by viewer name
    market: dict[str, Any]
    positions: list[tuple[str, str]]  # (position global id, holder name), oldest first
    private: dict[str, dict[str, Any]]  # user global id -> their private fields
    ids: dict[str, str]  # holder name -> user global id
    trades: list[tuple[str, str]]  # (trade global id, holder name), oldest first
    ledgers: dict[str, list[str]]  # holder name -> their ledger entries' ids, newest first
    entries: dict[str, str]  # trade global id -> the ledger entry it made

    def token(self, viewer: str) -> str | None:
        return None if viewer == "anonymous" else self.people[viewer].account.token

    def role(self, viewer: str) -> Role | None:
        return None if viewer == "anonymous" else self.people[viewer].role

    def position_of(self, holder: str) -> str:
        return next(gid for gid, name in self.positions if name == holder)


def reads_private(role: Role | None) -> bool:
    return role is not None and Permission.USER_READ_PRIVATE in ROLE_PERMISSIONS[role]


def may_see(scene: Scene, viewer: str, subject_id: str) -> bool:
    if viewer == "anonymous":
        return False
    return scene.people[viewer].account.id == subject_id or reads_private(scene.role(viewer))


def private_part(user: dict[str, Any]) -> dict[str, Any]:
    part = {field: user[field] for field in PRIVATE_FIELDS}
    if part["balance"] is not None:
        part["balance"] = Decimal(part["balance"])
    return part


@pytest.fixture
async def scene(
    make_account: MakeAccount,
    make_market: MakeMarket,
    db: AsyncEngine,
    settings: Settings,
) -> Scene:
    accounts = {name: await make_account(f"Vis {name}") for name in VIEWERS[1:]}
    roles = {"alice": Role.USER, "bob": Role.USER, "moderator": Role.MODERATOR, "admin": Role.ADMIN}
    for name in ("moderator", "admin"):
        await promote(db, accounts[name], roles[name].value)
    market = await make_market(accounts["alice"])
    seed = Seed()
    for account in accounts.values():
        seed.existing_user(account.uuid, settings.starting_balance)
    carol = seed.user("Vis carol")
    # The market row exists already (made through the API); only the holdings are new.
    stored = SeedMarket(
        id=uuid_of(market["id"]),
        name=market["name"],
        creator_id=accounts["alice"].uuid,
        status=MarketStatus.ACTIVE,
        end_date=now(),
        created_at=now(),
    )
    at = now() - timedelta(minutes=1)
    holdings = [
        ("alice", accounts["alice"].uuid, Outcome.YES, Decimal(4)),
        ("bob", accounts["bob"].uuid, Outcome.NO, Decimal(7)),
        ("bob", accounts["bob"].uuid, Outcome.YES, Decimal(2)),
        ("moderator", accounts["moderator"].uuid, Outcome.NO, Decimal(3)),
        ("carol", carol.id, Outcome.YES, Decimal(5)),
    ]
    made: list[tuple[str, str]] = []
    for i, (name, ident, outcome, shares) in enumerate(holdings):
        position = seed.buy(ident, stored, outcome, shares, at + timedelta(seconds=i))
        made.append((position.gid, name))
    await seed.save(db)
    people = {
        name: Person(accounts[name], roles[name], seed.balance(accounts[name].uuid))
        for name in accounts
    }
    assert people["alice"].balance < settings.starting_balance
    private = {p.account.id: p.private() for p in people.values()}
    # Carol was seeded, not signed up: no viewer is her, so only admins see her fields.
    private[carol.gid] = {
        "email": carol.email,
        "balance": seed.balance(carol.id),
        "disabled": False,
        "permissions": sorted(p.value for p in ROLE_PERMISSIONS[Role.USER]),
    }
    ids = {name: p.account.id for name, p in people.items()} | {"carol": carol.gid}
    trades = [
        (global_id("Trade", row["id"]), holdings[i][0]) for i, row in enumerate(seed.trade_rows)
    ]
    entries = {
        global_id("Trade", row["trade_id"]): global_id("LedgerEntry", row["id"])
        for row in seed.ledger_rows
        if row["trade_id"] is not None
    }
    owners = {uuid_of(gid): name for name, gid in ids.items()}
    ledgers: dict[str, list[str]] = {name: [] for name in ids}
    async with db.connect() as conn:
        rows = await conn.execute(
            sa.select(ledger_entries.c.id, ledger_entries.c.user_id)
            .where(ledger_entries.c.user_id.in_(owners))
            .order_by(ledger_entries.c.created_at.desc(), ledger_entries.c.id.desc())
        )
        for entry_id, owner in rows:
            ledgers[owners[owner]].append(global_id("LedgerEntry", entry_id))
    # Each signed-up viewer's grant and trades, Carol's grant and trade.
    assert len(ledgers["alice"]) == 2, ledgers
    assert len(ledgers["bob"]) == 3, ledgers
    return Scene(people, market, made, private, ids, trades, ledgers, entries)


def test_only_admins_read_others_private_fields() -> None:
    """Spelled out once: moderators are no exception."""
    assert [reads_private(r) for r in (None, Role.USER, Role.MODERATOR, Role.ADMIN)] == [
        False,
        False,
        False,
        True,
    ]


@pytest.mark.parametrize("viewer", VIEWERS)
async def test_private_fields_on_every_path(
    gql: GraphQLClient, server: LiveServer, paths: Paths, scene: Scene, viewer: str
) -> None:
    alice = scene.people["alice"].account
    variables = {
        "alice": alice.id,
        "bob": scene.people["bob"].account.id,
        "market": scene.market["id"],
        "position": scene.position_of("alice"),
    }
    data = await compiled_data(
        gql, server, paths, EVERY_PATH, variables, scene.token(viewer), roots=10
    )
    for path, users_of in PATHS.items():
        found = users_of(data)
        ids = [user["id"] for user in found]
        assert alice.id in ids, (path, found)
        if path in WITH_BOB:
            assert scene.people["bob"].account.id in ids, (path, found)
        for user in found:
            if may_see(scene, viewer, user["id"]):
                assert private_part(user) == scene.private[user["id"]], (path, user)
            else:
                assert private_part(user) == dict.fromkeys(PRIVATE_FIELDS), (path, user)
    if viewer == "anonymous":
        assert data["viewer"] is None
    else:
        me = scene.people[viewer]
        assert data["viewer"]["id"] == me.account.id
        assert private_part(data["viewer"]) == me.private()


MUTATION_RESULTS = {
    "updateMarket": """
fragment P on User { id email balance disabled permissions }
mutation ($id: ID!) {
  result: updateMarket(input: {id: $id, description: "Checked by the visibility tests."}) {
    __typename
    ... on UpdateMarketSuccess {
      market { creator { ...P } positions { nodes { user { ...P } } } }
    }
  }
}
""",
    "closeMarket": """
fragment P on User { id email balance disabled permissions }
mutation ($id: ID!) {
  result: closeMarket(input: {id: $id}) {
    __typename
    ... on MarketChangeSuccess {
      market { creator { ...P } positions { nodes { user { ...P } } } }
    }
  }
}
""",
}


@pytest.mark.parametrize(
    ("viewer", "mutation"),
    [
        ("alice", "updateMarket"),
        ("admin", "updateMarket"),
        ("moderator", "closeMarket"),
        ("admin", "closeMarket"),
    ],
)
async def test_private_fields_in_mutation_results(
    gql: GraphQLClient, scene: Scene, viewer: str, mutation: str
) -> None:
    """A mutation's result is one more path to users: the same rule holds there."""
    data = await gql.data(
        MUTATION_RESULTS[mutation], {"id": scene.market["id"]}, token=scene.token(viewer)
    )
    market = data["result"]["market"]
    found = [market["creator"], *(p["user"] for p in market["positions"]["nodes"])]
    assert [u["id"] for u in found] == [
        scene.ids["alice"],
        *(scene.ids[holder] for _, holder in scene.positions),
    ]
    for user in found:
        if may_see(scene, viewer, user["id"]):
            assert private_part(user) == scene.private[user["id"]], user
        else:
            assert private_part(user) == dict.fromkeys(PRIVATE_FIELDS), user


async def test_an_admin_sees_a_disabled_flag_others_do_not(
    gql: GraphQLClient, scene: Scene, db: AsyncEngine
) -> None:
    bob = scene.people["bob"].account
    query = "query ($id: ID!) { user(id: $id) { id disabled } }"
    admin = scene.token("admin")
    data = await gql.data(
        "mutation ($id: ID!) { disableUser(input: {userId: $id}) { __typename } }",
        {"id": bob.id},
        token=admin,
    )
    assert data["disableUser"] == {"__typename": "UserChangeSuccess"}
    for viewer in ("anonymous", "alice", "moderator", "admin"):
        seen = await gql.data(query, {"id": bob.id}, token=scene.token(viewer))
        expected = True if reads_private(scene.role(viewer)) else None
        assert seen["user"] == {"id": bob.id, "disabled": expected}, viewer


# Positions configured private ---------------------------------------------------------------


@pytest.fixture(scope="module")
def hidden_server(settings: Settings) -> Iterator[LiveServer]:
    """The same database served with POSITIONS_PUBLIC=false."""
    with roomy.running(roomy.roomy(settings, positions_public=False, response_cache=False)) as live:
        yield live


@pytest.fixture(scope="module")
async def hidden(hidden_server: LiveServer) -> AsyncIterator[GraphQLClient]:
    async with httpx.AsyncClient(base_url=hidden_server.url, timeout=30) as client:
        yield GraphQLClient(client)


MARKET_POSITIONS = """
query ($market: ID!) {
  market(id: $market) { positions { totalCount nodes { id user { id } } } }
}
"""
USER_POSITIONS = """
query ($user: ID!) { user(id: $user) { id positions { totalCount nodes { id } } } }
"""
POSITION_NODES = """
query ($ids: [ID!]!, $one: ID!) {
  node(id: $one) { id ... on Position { user { id } } }
  nodes(ids: $ids) { id }
}
"""


def visible_positions(scene: Scene, viewer: str) -> list[str]:
    """What a viewer may see of the market's positions when positions are private."""
    if viewer == "anonymous":
        return []
    if reads_private(scene.role(viewer)):
        return [gid for gid, _ in scene.positions]
    return [gid for gid, holder in scene.positions if holder == viewer]


async def test_positions_are_public_by_default(
    gql: GraphQLClient, server: LiveServer, paths: Paths, scene: Scene
) -> None:
    """The contrast for the tests below: without the setting, anyone sees every holding."""
    market = {"market": scene.market["id"]}
    data = await compiled_data(gql, server, paths, MARKET_POSITIONS, market, roots=1)
    positions = data["market"]["positions"]
    assert [n["id"] for n in positions["nodes"]] == [gid for gid, _ in scene.positions]
    assert positions["totalCount"] == len(scene.positions)
    alice = scene.people["alice"].account.id
    data = await compiled_data(
        gql, server, paths, USER_POSITIONS, {"user": alice}, scene.token("bob"), roots=1
    )
    assert data["user"]["positions"]["nodes"] == [{"id": scene.position_of("alice")}]


@pytest.mark.parametrize("viewer", VIEWERS)
async def test_private_market_positions(
    hidden: GraphQLClient, hidden_server: LiveServer, paths: Paths, scene: Scene, viewer: str
) -> None:
    market = {"market": scene.market["id"]}
    token = scene.token(viewer)
    data = await compiled_data(
        hidden, hidden_server, paths, MARKET_POSITIONS, market, token, roots=1
    )
    positions = data["market"]["positions"]
    expected = visible_positions(scene, viewer)
    assert [n["id"] for n in positions["nodes"]] == expected
    assert positions["totalCount"] == len(expected)
    holders = {gid: holder for gid, holder in scene.positions}
    for node in positions["nodes"]:
        assert node["user"]["id"] == scene.ids[holders[node["id"]]]


@pytest.mark.parametrize("viewer", VIEWERS)
@pytest.mark.parametrize("holder", ["alice", "bob"])
async def test_private_user_positions(
    hidden: GraphQLClient,
    hidden_server: LiveServer,
    paths: Paths,
    scene: Scene,
    viewer: str,
    holder: str,
) -> None:
    subject = scene.people[holder].account
    user = {"user": subject.id}
    token = scene.token(viewer)
    data = await compiled_data(hidden, hidden_server, paths, USER_POSITIONS, user, token, roots=1)
    assert data["user"]["id"] == subject.id
    if may_see(scene, viewer, subject.id):
        mine = [gid for gid, name in scene.positions if name == holder]
        assert data["user"]["positions"] == {
            "totalCount": len(mine),
            "nodes": [{"id": gid} for gid in mine],
        }
    else:
        assert data["user"]["positions"] is None


@pytest.mark.parametrize("viewer", VIEWERS)
async def test_private_positions_by_node(
    hidden: GraphQLClient, hidden_server: LiveServer, paths: Paths, scene: Scene, viewer: str
) -> None:
    ids = [gid for gid, _ in scene.positions]
    visible = set(visible_positions(scene, viewer))
    alices = scene.position_of("alice")
    variables = {"ids": ids, "one": alices}
    token = scene.token(viewer)
    data = await compiled_data(
        hidden, hidden_server, paths, POSITION_NODES, variables, token, roots=2
    )
    assert data["nodes"] == [{"id": gid} if gid in visible else None for gid in ids]
    if alices in visible:
        assert data["node"] == {"id": alices, "user": {"id": scene.people["alice"].account.id}}
    else:
        assert data["node"] is None


async def test_private_positions_still_show_the_users_public_fields(
    hidden: GraphQLClient, scene: Scene
) -> None:
    """Hiding positions hides holdings, not the market or its creator."""
    data = await hidden.data(
        "query ($m: ID!) { market(id: $m) { id creator { id email } } }",
        {"m": scene.market["id"]},
        token=scene.token("bob"),
    )
    assert data["market"] == {
        "id": scene.market["id"],
        "creator": {"id": scene.people["alice"].account.id, "email": None},
    }


# Trades and ledgers -------------------------------------------------------------------------

TRADES_AND_LEDGERS = """
fragment P on User { id email balance disabled permissions }
fragment T on Trade { id shares market { id } user { ...P } }
query (
  $market: ID!, $alice: ID!, $bob: ID!, $trade: ID!, $trades: [ID!]!, $entry: ID!,
  $entries: [ID!]!
) {
  market(id: $market) {
    trades(first: 50) { totalCount nodes { ...T } edges { node { id } } }
  }
  alice: user(id: $alice) {
    id
    trades(first: 50) { totalCount nodes { ...T } }
    ledger(first: 50) { totalCount nodes { id trade { ...T } market { id } } }
  }
  bob: user(id: $bob) {
    id
    trades(first: 50) { totalCount nodes { id } }
    ledger(first: 50) { totalCount edges { node { id } } }
  }
  viewer {
    trades(first: 50) { totalCount nodes { id } }
    ledger(first: 50) { totalCount nodes { id } }
  }
  tradeNode: node(id: $trade) { id ... on Trade { ...T } }
  tradeNodes: nodes(ids: $trades) { id ... on Trade { user { ...P } } }
  entryNode: node(id: $entry) { id ... on LedgerEntry { trade { ...T } } }
  entryNodes: nodes(ids: $entries) { id }
}
"""


def visible_trades(scene: Scene, viewer: str, public: bool) -> list[str]:
    """The market's trades a viewer sees, oldest first: all where positions are public; else
    only the viewer's own (all of them for holders of ``user:read:private``)."""
    if public or reads_private(scene.role(viewer)):
        return [gid for gid, _ in scene.trades]
    return [gid for gid, holder in scene.trades if holder == viewer]


@pytest.mark.parametrize("viewer", VIEWERS)
@pytest.mark.parametrize("positions", ["public", "private"])
async def test_trades_and_ledgers_on_every_path(
    gql: GraphQLClient,
    server: LiveServer,
    hidden: GraphQLClient,
    hidden_server: LiveServer,
    paths: Paths,
    scene: Scene,
    viewer: str,
    positions: str,
) -> None:
    """Trades are as private as positions (``market.trades`` keeps the viewer's own;
    ``user.trades`` and a trade by ``node`` are null to others), ledgers as private as a
    balance whatever the setting; the users reached through them keep their private
    fields; ``totalCount`` counts only what is shown."""
    public = positions == "public"
    client, live = (gql, server) if public else (hidden, hidden_server)
    alices_trade = next(gid for gid, holder in scene.trades if holder == "alice")
    entries = [gid for ledger in scene.ledgers.values() for gid in ledger]
    variables = {
        "market": scene.market["id"],
        "alice": scene.ids["alice"],
        "bob": scene.ids["bob"],
        "trade": alices_trade,
        "trades": [gid for gid, _ in scene.trades],
        "entry": scene.entries[alices_trade],
        "entries": entries,
    }
    data = await compiled_data(
        client, live, paths, TRADES_AND_LEDGERS, variables, scene.token(viewer), roots=8
    )
    holders = dict(scene.trades)
    owners = {gid: name for name, ledger in scene.ledgers.items() for gid in ledger}

    def sees_holdings(holder: str) -> bool:
        return public or may_see(scene, viewer, scene.ids[holder])

    def check_trade(trade: dict[str, Any]) -> None:
        """A trade shown in full: its market, and its trader with the right private fields."""
        holder = holders[trade["id"]]
        assert trade["market"] == {"id": scene.market["id"]}
        user = trade["user"]
        assert user["id"] == scene.ids[holder], trade
        if may_see(scene, viewer, user["id"]):
            assert private_part(user) == scene.private[user["id"]], trade
        else:
            assert private_part(user) == dict.fromkeys(PRIVATE_FIELDS), trade

    # market.trades: newest first, rows the viewer may not see left out (and not counted).
    shown = list(reversed(visible_trades(scene, viewer, public)))
    trades = data["market"]["trades"]
    assert [t["id"] for t in trades["nodes"]] == shown
    assert [e["node"]["id"] for e in trades["edges"]] == shown
    assert trades["totalCount"] == len(shown)
    for trade in trades["nodes"]:
        check_trade(trade)

    # user.trades and user.ledger: the whole list, or null.
    for name in ("alice", "bob"):
        user = data[name]
        assert user["id"] == scene.ids[name]
        own = [gid for gid, holder in reversed(scene.trades) if holder == name]
        if sees_holdings(name):
            assert [t["id"] for t in user["trades"]["nodes"]] == own, (name, user)
            assert user["trades"]["totalCount"] == len(own)
        else:
            assert user["trades"] is None, (name, user)
        ledger = scene.ledgers[name]
        if may_see(scene, viewer, scene.ids[name]):
            listed = user["ledger"]["nodes"] if name == "alice" else user["ledger"]["edges"]
            ids = [e["id"] if name == "alice" else e["node"]["id"] for e in listed]
            assert ids == ledger, (name, user)
            assert user["ledger"]["totalCount"] == len(ledger)
        else:
            assert user["ledger"] is None, (name, user)
    for trade in data["alice"]["trades"]["nodes"] if data["alice"]["trades"] else ():
        check_trade(trade)
    for entry in data["alice"]["ledger"]["nodes"] if data["alice"]["ledger"] else ():
        if entry["trade"] is None:  # the sign-up grant
            assert entry["market"] is None
        else:
            check_trade(entry["trade"])
            assert entry["market"] == {"id": scene.market["id"]}

    # viewer: one's own, always.
    if viewer == "anonymous":
        assert data["viewer"] is None
    else:
        mine = [gid for gid, holder in reversed(scene.trades) if holder == viewer]
        assert data["viewer"]["trades"] == {
            "totalCount": len(mine),
            "nodes": [{"id": gid} for gid in mine],
        }
        assert [e["id"] for e in data["viewer"]["ledger"]["nodes"]] == scene.ledgers[viewer]

    # node and nodes: a hidden trade or entry is null, as if there were none.
    if sees_holdings("alice"):
        assert data["tradeNode"]["id"] == alices_trade
        check_trade(data["tradeNode"])
    else:
        assert data["tradeNode"] is None
    assert len(data["tradeNodes"]) == len(scene.trades)
    for (gid, holder), node in zip(scene.trades, data["tradeNodes"], strict=True):
        if sees_holdings(holder):
            assert node["id"] == gid
            check_trade({**node, "market": {"id": scene.market["id"]}})
        else:
            assert node is None, (gid, holder)
    if may_see(scene, viewer, scene.ids["alice"]):
        assert data["entryNode"]["id"] == scene.entries[alices_trade]
        check_trade(data["entryNode"]["trade"])
    else:
        assert data["entryNode"] is None
    assert data["entryNodes"] == [
        {"id": gid} if may_see(scene, viewer, scene.ids[owners[gid]]) else None for gid in entries
    ]


# Statement counts with permissions in play --------------------------------------------------

CROWD_MARKETS = 105
Q2 = """
query Q2($first: Int!, $token: String!) {
  markets(first: $first, filter: {status: ACTIVE, nameContains: $token},
          orderBy: {field: VOLUME, direction: DESC}) {
    nodes {
      id
      creator { id displayName email balance }
      positions(first: 10) { nodes { id user { id displayName email } } }
    }
  }
}
"""
SIGN_UP = """
mutation ($input: SignUpInput!) { signUp(input: $input) { __typename } }
"""
SIGN_IN = """
mutation ($input: SignInInput!) {
  signIn(input: $input) { ... on SignInSuccess { accessToken user { id } } }
}
"""


@dataclass
class Crowd:
    token: str
    user: Account
    admin: Account
    emails: dict[str, str]  # user global id -> email
    positions: dict[str, list[tuple[str, str]]]  # market gid -> [(position gid, user gid)]


async def open_account(gql: GraphQLClient, name: str) -> Account:
    email = f"{name.lower()}.{uuid.uuid4().hex[:10]}@example.com"
    credentials = {"email": email, "password": PASSWORD}
    made = await gql.data(SIGN_UP, {"input": {**credentials, "displayName": name}})
    assert made["signUp"]["__typename"] == "SignUpSuccess"
    signed = (await gql.data(SIGN_IN, {"input": credentials}))["signIn"]
    return Account(signed["user"]["id"], email, signed["accessToken"], password=PASSWORD)


@pytest.fixture(scope="module")
async def crowd(gql: GraphQLClient, settings: Settings) -> Crowd:
    """Over a hundred active markets with holders; the plain viewer holds in every third."""
    user = await open_account(gql, "CrowdViewer")
    admin = await open_account(gql, "CrowdAdmin")
    rng = random.Random(7)
    token = f"viscrowd{uuid.uuid4().hex[:10]}"
    seed = Seed()
    seed.existing_user(user.uuid, settings.starting_balance)
    people = [seed.user(f"Vis crowd {i}") for i in range(8)]
    base = now() - timedelta(days=1)
    positions: dict[str, list[tuple[str, str]]] = {}
    for i in range(CROWD_MARKETS):
        market = seed.market(people[i % 5].id, f"{token} market {i}", created_at=base)
        holders = [p.id for p in rng.sample(people, 3)]
        if i % 3 == 0:
            holders.insert(1, user.uuid)
        made = positions[market.gid] = []
        for j, holder in enumerate(holders):
            outcome = Outcome.YES if rng.random() < 0.5 else Outcome.NO
            at = base + timedelta(seconds=i * 10 + j)
            position = seed.buy(holder, market, outcome, Decimal(rng.randint(1, 3)), at)
            made.append((position.gid, global_id("User", holder)))
    engine = create_engine(settings)
    await seed.save(engine)
    await promote(engine, admin, "ADMIN")
    await engine.dispose()
    emails = {p.gid: p.email for p in people}
    emails[user.id] = user.email
    return Crowd(token, user, admin, emails, positions)


def check_q2(crowd: Crowd, data: dict[str, Any], first: int, who: str, public: bool) -> None:
    nodes = data["markets"]["nodes"]
    assert len(nodes) == first
    viewer = crowd.admin if who == "admin" else crowd.user
    sees_all = who == "admin"

    def email(user: dict[str, Any]) -> str | None:
        return crowd.emails[user["id"]] if sees_all or user["id"] == viewer.id else None

    for node in nodes:
        assert node["creator"]["email"] == email(node["creator"])
        assert (node["creator"]["balance"] is not None) is sees_all
        held = crowd.positions[node["id"]]
        if not public and not sees_all:
            held = [(gid, holder) for gid, holder in held if holder == viewer.id]
        got = [(p["id"], p["user"]["id"]) for p in node["positions"]["nodes"]]
        assert got == held
        for position in node["positions"]["nodes"]:
            assert position["user"]["email"] == email(position["user"])


async def counted(
    client: GraphQLClient,
    server: LiveServer,
    paths: Paths,
    first: int,
    crowd: Crowd,
    token: str,
) -> tuple[dict[str, Any], int]:
    """Q2's data (on PostgreSQL answered by the compiled path in one statement) and the
    statements the request sent in all (the viewer's own lookup included)."""
    server.sql.reset()
    variables = {"first": first, "token": crowd.token}
    data = await compiled_data(client, server, paths, Q2, variables, token, roots=1)
    return data, server.sql.count


@pytest.mark.parametrize("who", ["user", "admin"])
async def test_q2_with_private_fields_costs_the_same_for_any_page_size(
    gql: GraphQLClient, server: LiveServer, paths: Paths, crowd: Crowd, who: str
) -> None:
    token = (crowd.admin if who == "admin" else crowd.user).token
    small, small_count = await counted(gql, server, paths, 20, crowd, token)
    check_q2(crowd, small, 20, who, public=True)
    large, large_count = await counted(gql, server, paths, 100, crowd, token)
    check_q2(crowd, large, 100, who, public=True)
    assert large_count == small_count, server.sql.statements


@pytest.mark.parametrize("who", ["user", "admin"])
async def test_q2_with_private_positions_costs_the_same_for_any_page_size(
    hidden: GraphQLClient, hidden_server: LiveServer, paths: Paths, crowd: Crowd, who: str
) -> None:
    token = (crowd.admin if who == "admin" else crowd.user).token
    small, small_count = await counted(hidden, hidden_server, paths, 20, crowd, token)
    check_q2(crowd, small, 20, who, public=False)
    large, large_count = await counted(hidden, hidden_server, paths, 100, crowd, token)
    check_q2(crowd, large, 100, who, public=False)
    assert large_count == small_count, hidden_server.sql.statements
    # The plain viewer holds in some of these markets, so the filtered path is not empty.
    if who == "user":
        assert any(n["positions"]["nodes"] for n in large["markets"]["nodes"])
