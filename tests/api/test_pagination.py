"""Connections under an object: ``Market.positions``, ``User.positions`` and ``User.markets``."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from domain.entities import Outcome
from infra.db.engine import create_engine
from infra.settings import Settings
from tests.api import roomy
from tests.api.readside import Seed, SeedMarket, SeedPosition, SeedUser, global_id, now
from tests.support import GraphQLClient, LiveServer

# Pages of 100 nested lists are over the default cost limit: this module has its own server.
server, http, gql = roomy.server, roomy.http, roomy.gql

pytestmark = pytest.mark.embedded

# A walk that has not ended after this many pages is going round in circles.
MAX_PAGES = 50

PAGE_INFO = "pageInfo { hasNextPage hasPreviousPage startCursor endCursor }"
POSITION = "id outcome shares costBasis createdAt market { id } user { id }"
PAGE = f"edges {{ cursor node {{ {POSITION} }} }} {PAGE_INFO}"

MARKET_POSITIONS = f"""
query ($id: ID!, $first: Int, $after: String) {{
  market(id: $id) {{
    positions(first: $first, after: $after) {{
      totalCount edges {{ cursor node {{ {POSITION} }} }} {PAGE_INFO}
    }}
  }}
}}
"""
USER_POSITIONS = f"""
query ($id: ID!, $first: Int, $after: String) {{
  user(id: $id) {{
    positions(first: $first, after: $after) {{
      totalCount edges {{ cursor node {{ {POSITION} }} }} {PAGE_INFO}
    }}
  }}
}}
"""
USER_MARKETS = f"""
query ($id: ID!, $first: Int, $after: String) {{
  user(id: $id) {{
    markets(first: $first, after: $after) {{
      totalCount edges {{ cursor node {{ id name createdAt creator {{ id }} }} }} {PAGE_INFO}
    }}
  }}
}}
"""


@dataclass
class Holdings:
    creator: SeedUser
    crowded: SeedMarket  # 23 positions
    small: SeedMarket  # 4 positions
    empty: SeedMarket  # none
    holder: SeedUser  # positions in 13 markets
    prolific: SeedUser  # created 12 markets
    created: list[SeedMarket]  # the prolific creator's
    others: list[SeedMarket]
    positions: list[SeedPosition]

    def of_market(self, market: SeedMarket) -> list[SeedPosition]:
        mine = [p for p in self.positions if p.market_id == market.id]
        return sorted(mine, key=lambda p: (p.created_at, p.id))

    def of_user(self, user: SeedUser) -> list[SeedPosition]:
        mine = [p for p in self.positions if p.user_id == user.id]
        return sorted(mine, key=lambda p: (p.created_at, p.id))

    def by_id(self) -> dict[str, SeedPosition]:
        return {p.gid: p for p in self.positions}


@pytest.fixture(scope="module")
async def holdings(server: LiveServer, settings: Settings) -> Holdings:
    token = uuid.uuid4().hex[:10]
    seed = Seed()
    creator = seed.user("Holdings Creator")
    traders = [seed.user(f"Holder {i}") for i in range(12)]
    base = now() - timedelta(days=2)
    crowded = seed.market(creator.id, f"crowded {token}", created_at=base)
    small = seed.market(creator.id, f"small {token}", created_at=base)
    empty = seed.market(creator.id, f"empty {token}", created_at=base)
    # Three positions share each second, so only the id orders them.
    slots = [(t, o) for t in traders for o in (Outcome.YES, Outcome.NO)][:23]
    for i, (trader, outcome) in enumerate(slots):
        seed.buy(trader.id, crowded, outcome, Decimal(1 + i % 4), base + timedelta(seconds=i // 3))
    for i, trader in enumerate(traders[:4]):
        seed.buy(trader.id, small, Outcome.NO, Decimal(2), base + timedelta(seconds=i // 2))
    holder = seed.user("Busy Holder")
    others = [seed.market(creator.id, f"other {token} {i}", created_at=base) for i in range(13)]
    for i, market in enumerate(others):
        seed.buy(holder.id, market, Outcome.YES, Decimal(1), base + timedelta(minutes=i // 4))
    prolific = seed.user("Prolific Creator")
    # Pairs share a creation time.
    created = [
        seed.market(prolific.id, f"prolific {token} {i}", created_at=base + timedelta(hours=i // 2))
        for i in range(12)
    ]
    engine = create_engine(settings)
    await seed.save(engine)
    await engine.dispose()
    return Holdings(
        creator, crowded, small, empty, holder, prolific, created, others, seed.positions
    )


def check_positions(holdings: Holdings, connection: dict[str, Any]) -> list[str]:
    stored = holdings.by_id()
    ids = []
    for edge in connection["edges"]:
        node = edge["node"]
        position = stored[node["id"]]
        assert node["outcome"] == position.outcome.value
        assert Decimal(node["shares"]) == position.shares
        assert Decimal(node["costBasis"]) == position.cost_basis
        assert datetime.fromisoformat(node["createdAt"]) == position.created_at
        assert node["market"]["id"] == global_id("Market", position.market_id)
        assert node["user"]["id"] == global_id("User", position.user_id)
        ids.append(node["id"])
    check_cursors(connection)
    return ids


def check_cursors(connection: dict[str, Any]) -> None:
    cursors = [e["cursor"] for e in connection["edges"]]
    info = connection["pageInfo"]
    assert info["startCursor"] == (cursors[0] if cursors else None)
    assert info["endCursor"] == (cursors[-1] if cursors else None)


async def walk(
    gql: GraphQLClient, query: str, parent: str, field: str, ident: str, size: int
) -> tuple[list[dict[str, Any]], int]:
    """Every page of a child connection in turn, checking pageInfo on the way."""
    pages: list[dict[str, Any]] = []
    after: str | None = None
    for _ in range(MAX_PAGES):
        data = await gql.data(query, {"id": ident, "first": size, "after": after})
        connection: dict[str, Any] = data[parent][field]
        info = connection["pageInfo"]
        assert info["hasPreviousPage"] is (after is not None)
        pages.append(connection)
        if not info["hasNextPage"]:
            break
        assert len(connection["edges"]) == size
        after = info["endCursor"]
    else:
        pytest.fail("paging never reached the end: a cursor does not advance")
    totals = {p["totalCount"] for p in pages}
    assert len(totals) == 1
    return pages, totals.pop()


@pytest.mark.parametrize("size", [1, 5, 23, 100])
async def test_market_positions_page_through_oldest_first(
    gql: GraphQLClient, holdings: Holdings, size: int
) -> None:
    expected = [p.gid for p in holdings.of_market(holdings.crowded)]
    pages, total = await walk(
        gql, MARKET_POSITIONS, "market", "positions", holdings.crowded.gid, size
    )
    seen = [gid for page in pages for gid in check_positions(holdings, page)]
    assert seen == expected
    assert total == 23
    assert len(pages) == -(-23 // size)


async def test_user_positions_page_through_oldest_first(
    gql: GraphQLClient, holdings: Holdings
) -> None:
    expected = [p.gid for p in holdings.of_user(holdings.holder)]
    pages, total = await walk(gql, USER_POSITIONS, "user", "positions", holdings.holder.gid, 4)
    seen = [gid for page in pages for gid in check_positions(holdings, page)]
    assert seen == expected
    assert total == 13


async def test_user_markets_page_through_newest_first(
    gql: GraphQLClient, holdings: Holdings
) -> None:
    newest = sorted(holdings.created, key=lambda m: (m.created_at, m.id), reverse=True)
    expected = [m.name for m in newest]
    pages, total = await walk(gql, USER_MARKETS, "user", "markets", holdings.prolific.gid, 5)
    seen = []
    for page in pages:
        check_cursors(page)
        for edge in page["edges"]:
            assert edge["node"]["creator"]["id"] == holdings.prolific.gid
            seen.append(edge["node"]["name"])
    assert seen == expected
    assert total == 12


async def test_child_pages_default_to_twenty(gql: GraphQLClient, holdings: Holdings) -> None:
    data = await gql.data(MARKET_POSITIONS, {"id": holdings.crowded.gid})
    connection = data["market"]["positions"]
    assert check_positions(holdings, connection) == [
        p.gid for p in holdings.of_market(holdings.crowded)[:20]
    ]
    assert connection["pageInfo"]["hasNextPage"] is True


async def test_each_parent_gets_its_own_page_and_count(
    gql: GraphQLClient, holdings: Holdings
) -> None:
    data = await gql.data(
        f"""
        query ($creator: ID!) {{
          markets(first: 100, filter: {{creatorId: $creator}}, orderBy: {{field: NAME}}) {{
            nodes {{
              name
              positions(first: 3) {{ totalCount {PAGE} }}
            }}
          }}
        }}
        """,
        {"creator": holdings.creator.gid},
    )
    nodes = data["markets"]["nodes"]
    markets = {
        m.name: m for m in [holdings.crowded, holdings.small, holdings.empty, *holdings.others]
    }
    assert sorted(n["name"] for n in nodes) == sorted(markets)
    for node in nodes:
        mine = holdings.of_market(markets[node["name"]])
        connection = node["positions"]
        assert check_positions(holdings, connection) == [p.gid for p in mine[:3]]
        assert connection["totalCount"] == len(mine)
        assert connection["pageInfo"]["hasNextPage"] is (len(mine) > 3)
        assert connection["pageInfo"]["hasPreviousPage"] is False


async def test_pages_of_the_same_parent_differ_by_arguments_in_one_request(
    gql: GraphQLClient, holdings: Holdings
) -> None:
    """Aliased fields ask for different pages of the same and of other parents at once."""
    crowded = holdings.of_market(holdings.crowded)
    first = await gql.data(MARKET_POSITIONS, {"id": holdings.crowded.gid, "first": 6})
    cursor = first["market"]["positions"]["edges"][3]["cursor"]
    data = await gql.data(
        f"""
        query ($crowded: ID!, $small: ID!, $cursor: String!) {{
          a: market(id: $crowded) {{ positions(first: 2, after: $cursor) {{ {PAGE} }} }}
          b: market(id: $crowded) {{ positions(first: 5) {{ {PAGE} }} }}
          c: market(id: $small) {{ positions(first: 2) {{ {PAGE} }} }}
          d: market(id: $small) {{ positions(first: 4) {{ {PAGE} }} }}
        }}
        """,
        {"crowded": holdings.crowded.gid, "small": holdings.small.gid, "cursor": cursor},
    )
    small = holdings.of_market(holdings.small)
    assert check_positions(holdings, data["a"]["positions"]) == [p.gid for p in crowded[4:6]]
    assert data["a"]["positions"]["pageInfo"]["hasPreviousPage"] is True
    assert check_positions(holdings, data["b"]["positions"]) == [p.gid for p in crowded[:5]]
    assert check_positions(holdings, data["c"]["positions"]) == [p.gid for p in small[:2]]
    assert data["c"]["positions"]["pageInfo"]["hasNextPage"] is True
    assert check_positions(holdings, data["d"]["positions"]) == [p.gid for p in small]
    assert data["d"]["positions"]["pageInfo"]["hasNextPage"] is False


async def test_a_market_without_positions_has_an_empty_page(
    gql: GraphQLClient, holdings: Holdings
) -> None:
    data = await gql.data(MARKET_POSITIONS, {"id": holdings.empty.gid, "first": 5})
    connection = data["market"]["positions"]
    assert connection["edges"] == []
    assert connection["totalCount"] == 0
    assert connection["pageInfo"] == {
        "hasNextPage": False,
        "hasPreviousPage": False,
        "startCursor": None,
        "endCursor": None,
    }


async def test_paging_past_the_end_is_empty(gql: GraphQLClient, holdings: Holdings) -> None:
    every = await gql.data(MARKET_POSITIONS, {"id": holdings.small.gid, "first": 10})
    end = every["market"]["positions"]["pageInfo"]["endCursor"]
    data = await gql.data(MARKET_POSITIONS, {"id": holdings.small.gid, "first": 10, "after": end})
    connection = data["market"]["positions"]
    assert connection["edges"] == []
    assert connection["pageInfo"]["hasNextPage"] is False
    assert connection["pageInfo"]["hasPreviousPage"] is True
    assert connection["totalCount"] == 4


def assert_bad_input(payload: dict[str, Any], argument: str) -> None:
    [error] = payload["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT", error
    assert error["extensions"]["argument"] == argument, error
    assert "Traceback" not in error["message"]


@pytest.mark.parametrize("query", [MARKET_POSITIONS, USER_POSITIONS, USER_MARKETS])
@pytest.mark.parametrize("first", [0, 101, -5])
async def test_child_page_size_must_be_one_to_a_hundred(
    gql: GraphQLClient, holdings: Holdings, query: str, first: int
) -> None:
    ident = holdings.crowded.gid if query is MARKET_POSITIONS else holdings.holder.gid
    payload = await gql(query, {"id": ident, "first": first})
    assert_bad_input(payload, "first")


async def test_child_cursors_belong_to_their_list(gql: GraphQLClient, holdings: Holdings) -> None:
    of_market = await gql.data(MARKET_POSITIONS, {"id": holdings.crowded.gid, "first": 2})
    of_user = await gql.data(USER_POSITIONS, {"id": holdings.holder.gid, "first": 2})
    made = await gql.data(USER_MARKETS, {"id": holdings.prolific.gid, "first": 2})
    listed = await gql.data(
        "{ markets(first: 1) { pageInfo { endCursor } } }"  # newest first, like User.markets
    )
    market_cursor = of_market["market"]["positions"]["pageInfo"]["endCursor"]
    user_cursor = of_user["user"]["positions"]["pageInfo"]["endCursor"]
    made_cursor = made["user"]["markets"]["pageInfo"]["endCursor"]
    list_cursor = listed["markets"]["pageInfo"]["endCursor"]
    for query, ident, cursor in [
        (MARKET_POSITIONS, holdings.crowded.gid, user_cursor),
        (MARKET_POSITIONS, holdings.crowded.gid, made_cursor),
        (USER_POSITIONS, holdings.holder.gid, market_cursor),
        (USER_MARKETS, holdings.prolific.gid, list_cursor),
        (USER_MARKETS, holdings.prolific.gid, "garbage"),
        (MARKET_POSITIONS, holdings.crowded.gid, "garbage"),
    ]:
        assert_bad_input(await gql(query, {"id": ident, "first": 2, "after": cursor}), "after")
