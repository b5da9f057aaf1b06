"""The compiled read path (PostgreSQL): one SQL statement per root field, the resolvers' answer.

Two servers over the same database: one compiling what it can, one running the
resolvers only. Counts are read from the compiling server; answers are compared
between the two.
"""

from __future__ import annotations

import random
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
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from domain.entities import MarketStatus, Outcome
from graph.pagination import encode_cursor
from infra.db.engine import create_engine
from infra.settings import Settings
from tests.api import crowd as shared
from tests.api import roomy
from tests.api.crowd import Crowd, check_q2, counted, q2
from tests.api.operations import World, operations
from tests.api.readside import GRANT, Seed, SeedMarket, global_id, now
from tests.support import (
    Account,
    GraphQLClient,
    LiveServer,
    promote,
    sign_up_and_in,
    without_extensions,
)

server, http, gql = roomy.server, roomy.http, roomy.gql
crowd = shared.crowd


@pytest.mark.parametrize("first", [20, 100])
async def test_q2_is_one_statement_for_any_page_size(
    gql: GraphQLClient, server: LiveServer, crowd: Crowd, first: int
) -> None:
    query = q2("totalCount", "totalCount")
    data, count = await counted(gql, server, query, {"first": first, "token": crowd.token})
    check_q2(crowd, data, first)
    assert count == 1, server.sql.statements
    assert "json_build_object" in server.sql.statements[0]


@pytest.mark.parametrize("first", [5, 40])
async def test_trades_and_ledgers_are_one_statement_for_any_page_size(
    gql: GraphQLClient, server: LiveServer, crowd: Crowd, first: int
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
    data, count = await counted(gql, server, query, {"first": first, "token": crowd.token})
    nodes = data["markets"]["nodes"]
    assert len(nodes) == first
    assert all(n["trades"]["totalCount"] >= 1 for n in nodes)
    # The ledger is private: an anonymous viewer gets null for every creator's.
    assert all(n["creator"]["ledger"] is None for n in nodes)
    assert count == 1, server.sql.statements


async def test_each_root_field_is_one_statement(
    gql: GraphQLClient, server: LiveServer, crowd: Crowd
) -> None:
    market = crowd.markets[0]
    query = """
    query ($id: ID!, $token: String!) {
      a: market(id: $id) { name creator { displayName } }
      b: markets(first: 5, filter: {nameContains: $token}) { totalCount nodes { id } }
      c: node(id: $id) { id }
    }
    """
    data, count = await counted(gql, server, query, {"id": market.gid, "token": crowd.token})
    assert data["a"]["name"] == market.name
    assert data["b"]["totalCount"] == shared.MARKETS
    assert data["c"] == {"id": market.gid}
    assert count == 3, server.sql.statements


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
async def world(viewers: Viewers, settings: Settings) -> World:
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
    cursors: dict[str, tuple[str, ...]] = {}
    for order in ("VOLUME", "CREATED_AT", "END_DATE", "NAME"):
        for direction in ("ASC", "DESC"):
            sort = f"markets:{order}:{direction}"
            attribute = {
                "VOLUME": "volume",
                "CREATED_AT": "created_at",
                "END_DATE": "end_date",
                "NAME": "name",
            }[order]
            cursors[sort] = tuple(encode_cursor(sort, (getattr(m, attribute), m.id)) for m in made)
    cursors["market-positions"] = tuple(
        encode_cursor("positions:created_at:asc", (p.created_at, p.id)) for p in seed.positions
    )
    cursors["user-positions"] = tuple(
        encode_cursor("user-positions:created_at:asc", (p.created_at, p.id)) for p in seed.positions
    )
    cursors["creator-markets"] = tuple(
        encode_cursor("creator-markets:created_at:desc", (m.created_at, m.id)) for m in made
    )
    trades, ledger = seed.trade_rows, seed.ledger_rows
    for family, sort, rows in (
        ("market-trades", "market-trades:created_at:desc", trades),
        ("user-trades", "user-trades:created_at:desc", trades),
        ("user-ledger", "user-ledger:created_at:desc", ledger),
    ):
        cursors[family] = tuple(encode_cursor(sort, (r["created_at"], r["id"])) for r in rows)
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
    )


@pytest.fixture(scope="module")
def resolver_public(settings: Settings) -> Iterator[LiveServer]:
    with roomy.running(roomy.roomy(settings, compiled_reads=False)) as live:
        yield live


@pytest.fixture(scope="module")
def compiled_private(settings: Settings) -> Iterator[LiveServer]:
    with roomy.running(roomy.roomy(settings, positions_public=False)) as live:
        yield live


@pytest.fixture(scope="module")
def resolver_private(settings: Settings) -> Iterator[LiveServer]:
    with roomy.running(roomy.roomy(settings, positions_public=False, compiled_reads=False)) as live:
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


async def answers(
    pair: Pair, document: str, variables: dict[str, Any], token: str | None
) -> tuple[Any, Any, list[str]]:
    pair.compiled_server.compiled_sql.reset()
    compiled = await pair.compiled.post(document, variables, token)
    statements = list(pair.compiled_server.compiled_sql.statements)
    resolved = await pair.resolver.post(document, variables, token)
    assert compiled.status_code == resolved.status_code, (compiled.text, resolved.text)
    return comparable(compiled.json()), comparable(resolved.json()), statements


def comparable(payload: dict[str, Any]) -> dict[str, Any]:
    """A response's data and errors, its errors in a fixed order: fields resolve
    concurrently, so the order of their errors is not part of the answer."""
    answer = without_extensions(payload)
    if "errors" in answer:
        answer["errors"] = sorted(
            answer["errors"], key=lambda e: orjson.dumps(e, option=orjson.OPT_SORT_KEYS)
        )
    return answer


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    print_blob=True,
)
@given(data=st.data())
async def test_generated_operations_give_the_resolvers_answer(
    pair: Pair, world: World, viewers: Viewers, data: st.DataObject
) -> None:
    operation = data.draw(operations(world))
    for who, token in viewers.tokens.items():
        compiled, resolved, statements = await answers(
            pair, operation.document, operation.variables, token
        )
        assert compiled == resolved, (
            who,
            first_difference(compiled, resolved),
            operation.document,
            operation.variables,
        )
        if operation.valid and "errors" not in resolved:
            assert len(statements) == operation.roots, (who, operation.document, statements)


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


CONTRACT = Path(__file__).resolve().parent.parent / "contract" / "operations"


async def test_contract_queries_give_the_resolvers_answer(
    pair: Pair, world: World, viewers: Viewers
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
            compiled, resolved, statements = await answers(pair, document, variables, token)
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
                assert statements, f"{name} was not compiled"
            else:
                assert not statements, f"{name} reads outside the read model"
