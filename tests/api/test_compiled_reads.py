"""The compiled read path (PostgreSQL): one SQL statement per root field, the resolvers' answer.

Two servers over the same database: one compiling what it can, one running the
resolvers only. Counts are read from the compiling server; answers are compared
between the two; which path answered is read from each operation's log line.

The generated operations come from a seed chosen per run (``DIFF_SEED`` to choose
it) and a bounded number of examples (``DIFF_EXAMPLES``); a failure says the seed
that reproduces it.
"""

from __future__ import annotations

import os
import random
import secrets
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from hypothesis import HealthCheck, given, note, seed, settings
from hypothesis import strategies as st

from domain.entities import MarketStatus, Outcome
from infra.db.engine import create_engine
from infra.settings import Settings
from tests.api import answered, roomy
from tests.api import crowd as shared
from tests.api.answered import Paths, compiled_data
from tests.api.crowd import Crowd, check_q2, q2
from tests.api.operations import ORDER_FIELDS, World, operations
from tests.api.readside import GRANT, Seed, SeedMarket, SeedUser, global_id, now
from tests.support import (
    Account,
    GraphQLClient,
    LiveServer,
    promote,
    sign_up_and_in,
    without_extensions,
)

http, gql = roomy.http, roomy.gql
crowd = shared.crowd
paths = answered.paths

# Each run draws its own examples; DIFF_SEED=<seed> draws a failed run's again.
SEED = int(os.environ.get("DIFF_SEED") or secrets.randbelow(2**32))
EXAMPLES = int(os.environ.get("DIFF_EXAMPLES", "80"))
RERUN = f"rerun with DIFF_SEED={SEED}"


def differential(settings: Settings, **changes: object) -> Settings:
    """The servers compared here: no response cache (an answer from it would say "cache",
    not which executor made it, and the two servers would share their stored answers),
    and room for as many aliases as a generated operation writes (a seed drew 42 against
    the default 30): the comparison is of answers, the alias limit has its own tests."""
    return roomy.roomy(settings, response_cache=False, query_max_aliases=1_000, **changes)


@pytest.fixture(scope="module")
def server(settings: Settings) -> Iterator[LiveServer]:
    with roomy.running(differential(settings)) as live:
        yield live


@pytest.mark.parametrize("first", [20, 100])
@pytest.mark.parametrize("who", ["anonymous", "USER", "ADMIN"])
async def test_q2_is_one_statement_for_any_page_size(
    gql: GraphQLClient,
    server: LiveServer,
    paths: Paths,
    crowd: Crowd,
    viewers: Viewers,
    who: str,
    first: int,
) -> None:
    """Signed in, the viewer's id and permissions are parameters of the same statement: no
    statement more per page, per market or per holder (the viewer's own lookup aside)."""
    token = viewers.tokens[who]
    query = q2("totalCount", "totalCount", private="id email")
    server.sql.reset()
    variables = {"first": first, "token": crowd.token}
    data = await compiled_data(gql, server, paths, query, variables, token, roots=1)
    check_q2(crowd, data, first)
    assert "json_build_object" in server.compiled_sql.statements[0]
    # Anonymous: the statement alone; signed in, also the lookup of the viewer's account.
    assert server.sql.count == (1 if token is None else 2), server.sql.statements
    # Emails are the admin's to see (none of these users is the viewer).
    emails = {u.gid: u.email for u in crowd.users.values()}
    for market in data["markets"]["nodes"]:
        holders = [p["user"] for p in market["positions"]["nodes"]]
        for user in (market["creator"], *holders):
            expected = emails[user["id"]] if who == "ADMIN" else None
            assert user["email"] == expected, (who, user)


@pytest.mark.parametrize("first", [5, 40])
async def test_trades_and_ledgers_are_one_statement_for_any_page_size(
    gql: GraphQLClient, server: LiveServer, paths: Paths, crowd: Crowd, first: int
) -> None:
    query = """
    query ($first: Int!, $token: String!) {
      markets(first: $first, filter: {nameContains: $token}) {
        nodes {
          trades(first: 3) { totalCount nodes { id shares user { displayName } } }
          creator { ledger(first: 3) { totalCount nodes { amount kind trade { id } } } }
        }
      }
    }
    """
    server.sql.reset()
    variables = {"first": first, "token": crowd.token}
    data = await compiled_data(gql, server, paths, query, variables, roots=1)
    nodes = data["markets"]["nodes"]
    assert len(nodes) == first
    assert all(n["trades"]["totalCount"] >= 1 for n in nodes)
    # The ledger is private: an anonymous viewer gets null for every creator's.
    assert all(n["creator"]["ledger"] is None for n in nodes)
    assert server.sql.count == 1, server.sql.statements


async def test_each_root_field_is_one_statement(
    gql: GraphQLClient, server: LiveServer, paths: Paths, crowd: Crowd
) -> None:
    market = crowd.markets[0]
    query = """
    query ($id: ID!, $token: String!) {
      a: market(id: $id) { name creator { displayName } }
      b: markets(first: 5, filter: {nameContains: $token}) { totalCount nodes { id } }
      c: node(id: $id) { id }
    }
    """
    server.sql.reset()
    variables = {"id": market.gid, "token": crowd.token}
    data = await compiled_data(gql, server, paths, query, variables, roots=3)
    assert data["a"]["name"] == market.name
    assert data["b"]["totalCount"] == shared.MARKETS
    assert data["c"] == {"id": market.gid}
    assert server.sql.count == 3, server.sql.statements


# --- the compiled path gives the resolver path's answer -------------------------------------


@dataclass(frozen=True)
class Pair:
    """A server compiling what it can and one running the resolvers, over the same data."""

    compiled: GraphQLClient
    compiled_server: LiveServer
    resolver: GraphQLClient


ODD_NAMES = ('O\'Brien "Quote" \\ back', "Zoë 日本 ünïcödé", "plain", "tab\tand/slash", "%_like_")


@dataclass(frozen=True)
class Viewers:
    """Anonymous, a holder (USER), a moderator and an admin, each with a working token."""

    tokens: dict[str, str | None]
    holder: Account


@pytest.fixture(scope="module")
async def viewers(gql: GraphQLClient, settings: Settings) -> Viewers:
    tokens: dict[str, str | None] = {"anonymous": None}
    engine = create_engine(settings)
    holder: Account | None = None
    for role in ("USER", "MODERATOR", "ADMIN"):
        account = await sign_up_and_in(gql, f"Diff {role.lower()}")
        if role == "USER":
            holder = account
        else:
            await promote(engine, account, role)
        tokens[role] = account.token
    await engine.dispose()
    assert holder is not None
    return Viewers(tokens, holder)


@pytest.fixture(scope="module")
async def world(viewers: Viewers, settings: Settings, resolver_public: LiveServer) -> World:
    """Markets, users and positions with awkward names, times and amounts, seeded once."""
    rng = random.Random(2026)
    token = f"diff{uuid.uuid4().hex[:8]}"
    seed = Seed()
    base = now() - timedelta(days=3)
    people = [
        seed.user(f"{ODD_NAMES[i % len(ODD_NAMES)]} {i}", base + timedelta(seconds=i))
        for i in range(7)
    ]
    holder = viewers.holder
    seed.existing_user(holder.uuid, GRANT)
    holders = [p.id for p in people] + [holder.uuid]
    made: list[SeedMarket] = []
    statuses = (
        MarketStatus.ACTIVE,
        MarketStatus.ACTIVE,
        MarketStatus.CLOSED,
        MarketStatus.RESOLVED,
        MarketStatus.CANCELLED,
    )
    for i in range(14):
        created = base + timedelta(minutes=i, microseconds=(0 if i % 3 else 123_456 * (i % 7)))
        market = seed.market(
            people[i % len(people)].id,
            f"{token} {ODD_NAMES[i % len(ODD_NAMES)]} #{i}",
            status=statuses[i % len(statuses)],
            end_date=base + timedelta(days=10 + i % 4, microseconds=i * 1_000),
            created_at=created,
        )
        # Ties on the sort fields: several markets share an end date and a created time.
        made.append(market)
        for j, who in enumerate(rng.sample(holders, rng.randint(0, 5))):
            outcome = Outcome.YES if rng.random() < 0.5 else Outcome.NO
            seed.buy(
                who,
                market,
                outcome,
                Decimal(rng.randint(1, 6)),
                created + timedelta(seconds=j, microseconds=j * 7),
            )
    engine = create_engine(settings)
    await seed.save(engine)
    await engine.dispose()
    cursors = await server_cursors(resolver_public, token, people, holder, viewers)
    trades, ledger = seed.trade_rows, seed.ledger_rows
    others = (
        *(global_id("Trade", r["id"]) for r in trades),
        *(global_id("LedgerEntry", r["id"]) for r in ledger),
    )
    return World(
        markets=(*tuple(m.gid for m in made), global_id("Market", uuid.UUID(int=0))),
        users=(*tuple(p.gid for p in people), holder.id),
        positions=tuple(p.gid for p in seed.positions),
        others=others,
        outside=(global_id("Job", uuid.uuid4()),),
        token=token,
        cursors=cursors,
        times=tuple((base + timedelta(days=d)).isoformat() for d in (9, 11, 12, 30)),
        names=tuple(m.name for m in made),
    )


ORDERED = " ".join(
    f"""{field}_{direction}: markets(first: 100, filter: {{nameContains: $token}},
                                   orderBy: {{field: {field}, direction: {direction}}}) {{
          edges {{ cursor }}
        }}"""
    for field in ORDER_FIELDS
    for direction in ("ASC", "DESC")
)
CURSORS = (
    "query ($token: String!, $users: [ID!]!) {"
    + ORDERED
    + """
  children: markets(first: 100, filter: {nameContains: $token}) {
    nodes {
      positions(first: 100) { edges { cursor } }
      trades(first: 100) { edges { cursor } }
    }
  }
  users: nodes(ids: $users) {
    ... on User {
      markets(first: 100) { edges { cursor } }
      positions(first: 100) { edges { cursor } }
      trades(first: 100) { edges { cursor } }
      ledger(first: 100) { edges { cursor } }
    }
  }
}
"""
)


async def server_cursors(
    live: LiveServer, token: str, people: list[SeedUser], holder: Account, viewers: Viewers
) -> dict[str, tuple[str, ...]]:
    """Every cursor of the seeded lists, as the resolvers give them out (to an admin, who sees
    every ledger): clients only ever send cursors a server made."""
    ids = [*(p.gid for p in people), holder.id]
    async with httpx.AsyncClient(base_url=live.url, timeout=30) as client:
        data = await GraphQLClient(client).data(
            CURSORS, {"token": token, "users": ids}, token=viewers.tokens["ADMIN"]
        )

    def edges(connections: list[dict[str, Any]]) -> tuple[str, ...]:
        found = tuple(edge["cursor"] for c in connections for edge in c["edges"])
        assert found, "a list of the seed has no rows"
        return found

    cursors = {
        f"markets:{field}:{direction}": edges([data[f"{field}_{direction}"]])
        for field in ORDER_FIELDS
        for direction in ("ASC", "DESC")
    }
    children, users = data["children"]["nodes"], data["users"]
    for family, connections in (
        ("market-positions", [m["positions"] for m in children]),
        ("market-trades", [m["trades"] for m in children]),
        ("creator-markets", [u["markets"] for u in users]),
        ("user-positions", [u["positions"] for u in users]),
        ("user-trades", [u["trades"] for u in users]),
        ("user-ledger", [u["ledger"] for u in users]),
    ):
        cursors[family] = edges(connections)
    return cursors


@pytest.fixture(scope="module")
def resolver_public(settings: Settings) -> Iterator[LiveServer]:
    with roomy.running(differential(settings, compiled_reads=False)) as live:
        yield live


@pytest.fixture(scope="module")
def compiled_private(settings: Settings) -> Iterator[LiveServer]:
    with roomy.running(differential(settings, positions_public=False)) as live:
        yield live


@pytest.fixture(scope="module")
def resolver_private(settings: Settings) -> Iterator[LiveServer]:
    private = differential(settings, positions_public=False, compiled_reads=False)
    with roomy.running(private) as live:
        yield live


@pytest.fixture(scope="module", params=["public", "private"])
async def pair(
    request: pytest.FixtureRequest,
    server: LiveServer,
    resolver_public: LiveServer,
    compiled_private: LiveServer,
    resolver_private: LiveServer,
) -> AsyncIterator[Pair]:
    compiled, resolver = (
        (server, resolver_public)
        if request.param == "public"
        else (compiled_private, resolver_private)
    )
    async with (
        httpx.AsyncClient(base_url=compiled.url, timeout=30) as left,
        httpx.AsyncClient(base_url=resolver.url, timeout=30) as right,
    ):
        yield Pair(GraphQLClient(left), compiled, GraphQLClient(right))


@dataclass(frozen=True)
class Answers:
    compiled: Any
    resolved: Any
    # What the compiling server did: the compiled statements it sent and the path that
    # answered (its log line's "path"; None when nothing ran, the request refused whole).
    statements: list[str]
    path: str | None


async def answers(
    pair: Pair, paths: Paths, document: str, variables: dict[str, Any], token: str | None
) -> Answers:
    pair.compiled_server.compiled_sql.reset()
    compiled = await pair.compiled.post(document, variables, token)
    statements = list(pair.compiled_server.compiled_sql.statements)
    resolved = await pair.resolver.post(document, variables, token)
    assert compiled.status_code == resolved.status_code, (compiled.text, resolved.text)
    assert paths.of(resolved) in ("resolver", None)
    return Answers(
        comparable(compiled.json()), comparable(resolved.json()), statements, paths.of(compiled)
    )


def comparable(payload: dict[str, Any]) -> dict[str, Any]:
    """A response's data and errors, its errors in a fixed order: fields resolve
    concurrently, so the order of their errors is not part of the answer."""
    answer = without_extensions(payload)
    if "errors" in answer:
        answer["errors"] = sorted(
            answer["errors"], key=lambda e: orjson.dumps(e, option=orjson.OPT_SORT_KEYS)
        )
    return answer


@seed(SEED)
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    # The seed alone says which examples run: none replayed from a local example database.
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(data=st.data())
async def test_generated_operations_give_the_resolvers_answer(
    pair: Pair, paths: Paths, world: World, viewers: Viewers, data: st.DataObject
) -> None:
    note(RERUN)
    operation = data.draw(operations(world))
    for who, token in viewers.tokens.items():
        found = await answers(pair, paths, operation.document, operation.variables, token)
        context = (RERUN, who, operation.document, operation.variables)
        assert found.compiled == found.resolved, (
            first_difference(found.compiled, found.resolved),
            *context,
        )
        if operation.path == "compiled":
            assert "errors" not in found.resolved, (found.resolved["errors"], *context)
            assert found.path == "compiled", context
            assert len(found.statements) == operation.roots, (found.statements, *context)
        elif operation.valid:
            # Valid, but a variable decides a directive: the resolvers run it.
            assert found.path == "resolver", context
        else:
            # Refused arguments: the resolvers give the errors (or nothing ran at all).
            assert found.path in ("resolver", None), (found.path, *context)


def first_difference(left: Any, right: Any, path: str = "") -> str:
    """Where two answers first differ, for the failure message."""
    if isinstance(left, dict) and isinstance(right, dict):
        for key in sorted(set(left) | set(right)):
            if left.get(key, "<absent>") != right.get(key, "<absent>"):
                return first_difference(
                    left.get(key, "<absent>"), right.get(key, "<absent>"), f"{path}.{key}"
                )
    elif isinstance(left, list) and isinstance(right, list) and len(left) == len(right):
        for index, (a, b) in enumerate(zip(left, right, strict=True)):
            if a != b:
                return first_difference(a, b, f"{path}[{index}]")
    return f"{path}: compiled {left!r} != resolver {right!r}"


NAME_CONTAINS = """
query ($text: String!) {
  markets(first: 100, filter: {nameContains: $text}, orderBy: {field: NAME, direction: ASC}) {
    totalCount nodes { id name }
  }
}
"""


@pytest.mark.parametrize("text", ["%", "_", "\\", "'", '"', "%_like_", "zoë 日本", "o'brien \"q"])
async def test_name_contains_is_text_not_a_pattern(
    pair: Pair, paths: Paths, world: World, text: str
) -> None:
    """LIKE's wildcards and escape, quotes and other scripts are matched as the text they are,
    in any case, by both paths (both could be wrong alike: the names are checked too)."""
    variables = {"text": text}
    found = await answers(pair, paths, NAME_CONTAINS, variables, None)
    assert found.compiled == found.resolved, first_difference(found.compiled, found.resolved)
    assert found.path == "compiled"
    markets = found.compiled["data"]["markets"]
    assert markets["totalCount"] == len(markets["nodes"]) <= 100
    assert all(text.lower() in m["name"].lower() for m in markets["nodes"]), markets
    named = zip(world.markets[: len(world.names)], world.names, strict=True)
    seeded = {gid for gid, name in named if text.lower() in name.lower()}
    assert seeded, "no seeded name holds the text: the test would prove nothing"
    assert seeded <= {m["id"] for m in markets["nodes"]}


CONTRACT = Path(__file__).resolve().parent.parent / "contract" / "operations"


async def test_contract_queries_give_the_resolvers_answer(
    pair: Pair, paths: Paths, world: World, viewers: Viewers
) -> None:
    # Those reading only the read model compile; the others must give the same answer
    # through the resolvers.
    compilable: dict[str, dict[str, Any]] = {
        "TopMarkets": {"first": 5},
        "MarketDetail": {"id": world.markets[0]},
        "NodeById": {"id": world.positions[0]},
        "SearchMarkets": {"text": world.token, "first": 3},
        "Viewer": {},
        "Ledger": {},
    }
    # Jobs, price histories and the caller's budget are outside the read model.
    resolved_only: dict[str, dict[str, Any]] = {
        "JobStatus": {"id": world.markets[0]},
        "MarketActivity": {"id": world.markets[0]},
        "RateLimit": {},
    }
    queries = {
        path.stem: path.read_text()
        for path in sorted(CONTRACT.glob("*.graphql"))
        if path.read_text().lstrip().startswith("query")
    }
    assert set(queries) == set(compilable) | set(resolved_only)
    for name, document in queries.items():
        for token in viewers.tokens.values():
            variables = compilable.get(name, resolved_only.get(name, {}))
            found = await answers(pair, paths, document, variables, token)
            compiled, resolved = found.compiled, found.resolved
            if name == "RateLimit":
                # Each server's own budget, refilling while the test runs: the same fields,
                # not the same instant.
                compiled, resolved = (
                    {
                        "limit": a["data"]["rateLimit"]["limit"],
                        "keys": sorted(a["data"]["rateLimit"]),
                    }
                    for a in (compiled, resolved)
                )
            assert compiled == resolved, (name, first_difference(compiled, resolved))
            if name in compilable:
                assert "errors" not in resolved, resolved
                assert found.path == "compiled", name
                assert len(found.statements) == 1, (name, found.statements)
            else:
                assert found.path == "resolver", f"{name} reads outside the read model"
                assert not found.statements, name
