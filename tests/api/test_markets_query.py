"""The ``markets`` connection: keyset paging in every order, ties, filters and bad arguments."""

from __future__ import annotations

import base64
import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import orjson
import pytest

from domain.entities import MarketStatus, Outcome
from infra.db.engine import create_engine
from infra.settings import Settings
from tests.api.readside import Seed, SeedMarket, SeedUser, global_id, now
from tests.support import GraphQLClient, LiveServer

pytestmark = pytest.mark.embedded

# A walk that has not ended after this many pages is going round in circles.
MAX_PAGES = 50

PAGE = 7
TIES = 25

MARKETS = """
query Markets($first: Int, $after: String, $last: Int, $before: String,
              $filter: MarketFilter, $orderBy: MarketOrder) {
  markets(first: $first, after: $after, last: $last, before: $before,
          filter: $filter, orderBy: $orderBy) {
    totalCount
    edges { cursor node { id name status volume createdAt endDate } }
    nodes { id }
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
  }
}
"""

SORT_KEYS: dict[str, Callable[[SeedMarket], Any]] = {
    "VOLUME": lambda m: m.volume,
    "CREATED_AT": lambda m: m.created_at,
    "END_DATE": lambda m: m.end_date,
    "NAME": lambda m: m.name,
}
ORDERS = [(f, d) for f in SORT_KEYS for d in ("ASC", "DESC")]


@dataclass
class Listing:
    """Markets of one fresh creator, with many ties in every sort field but the name."""

    creator: SeedUser
    markets: list[SeedMarket]
    by_name: dict[str, SeedMarket]

    @property
    def filter(self) -> dict[str, Any]:
        return {"creatorId": self.creator.gid}

    def expected(self, field: str, direction: str) -> list[str]:
        key = SORT_KEYS[field]
        ordered = sorted(self.markets, key=lambda m: (key(m), m.id))
        if direction == "DESC":
            ordered.reverse()
        return [m.name for m in ordered]


@pytest.fixture(scope="module")
async def listing(server: LiveServer, settings: Settings) -> Listing:
    rng = random.Random(20240611)
    token = uuid.uuid4().hex[:10]
    seed = Seed()
    creator = seed.user("Listing Creator")
    traders = [seed.user(f"Listing Trader {i}") for i in range(6)]
    base = now() - timedelta(days=3)
    tie_end = base + timedelta(days=40)
    # Names sort in neither creation nor id order: zero-padded numbers, shuffled.
    numbers = rng.sample(range(100, 1000), TIES + 15)
    made: list[SeedMarket] = []
    for n in numbers[:TIES]:
        # Same volume (no trades), same creation time, same end date: only the id breaks ties.
        made.append(seed.market(creator.id, f"lst {token} {n}", created_at=base, end_date=tie_end))
    statuses = [MarketStatus.ACTIVE, MarketStatus.CLOSED, MarketStatus.CANCELLED]
    for i, n in enumerate(numbers[TIES:]):
        market = seed.market(
            creator.id,
            f"lst {token} {n}",
            status=statuses[i % 3],
            # Pairs share a creation time and an end date, so smaller ties occur too.
            created_at=base + timedelta(hours=1 + i // 2),
            end_date=tie_end + timedelta(days=(i // 2) - 3),
        )
        made.append(market)
        # Pairs buy the same amount on a fresh market: equal volumes.
        seed.buy(
            traders[i % 6].id, market, Outcome.YES, Decimal(1 + i // 2), base + timedelta(hours=i)
        )
    engine = create_engine(settings)
    await seed.save(engine)
    await engine.dispose()
    return Listing(creator, made, {m.name: m for m in made})


async def page(gql: GraphQLClient, **variables: Any) -> dict[str, Any]:
    data = await gql.data(MARKETS, variables)
    connection: dict[str, Any] = data["markets"]
    return connection


def check_edges(listing: Listing, connection: dict[str, Any]) -> list[str]:
    """The names on a page, after checking each node's fields against what was stored."""
    names = []
    for edge in connection["edges"]:
        node = edge["node"]
        stored = listing.by_name[node["name"]]
        assert node["id"] == stored.gid
        assert Decimal(node["volume"]) == stored.volume
        assert datetime.fromisoformat(node["createdAt"]) == stored.created_at
        assert datetime.fromisoformat(node["endDate"]) == stored.end_date
        assert node["status"] == stored.status.value
        names.append(node["name"])
    assert [n["id"] for n in connection["nodes"]] == [e["node"]["id"] for e in connection["edges"]]
    info = connection["pageInfo"]
    cursors = [e["cursor"] for e in connection["edges"]]
    assert info["startCursor"] == (cursors[0] if cursors else None)
    assert info["endCursor"] == (cursors[-1] if cursors else None)
    assert connection["totalCount"] == len(listing.markets)
    return names


@pytest.mark.parametrize(("field", "direction"), ORDERS)
async def test_forward_paging_walks_every_market_once_in_order(
    gql: GraphQLClient, listing: Listing, field: str, direction: str
) -> None:
    expected = listing.expected(field, direction)
    order = {"field": field, "direction": direction}
    seen: list[str] = []
    after: str | None = None
    for _ in range(MAX_PAGES):
        connection = await page(gql, first=PAGE, after=after, filter=listing.filter, orderBy=order)
        names = check_edges(listing, connection)
        remaining = len(expected) - len(seen)
        assert len(names) == min(PAGE, remaining)
        info = connection["pageInfo"]
        assert info["hasPreviousPage"] is (after is not None)
        assert info["hasNextPage"] is (remaining > PAGE)
        seen += names
        if not info["hasNextPage"]:
            break
        after = info["endCursor"]
    else:
        pytest.fail("paging never reached the end: a cursor does not advance")
    assert seen == expected


@pytest.mark.parametrize(("field", "direction"), ORDERS)
async def test_backward_paging_walks_every_market_once_in_order(
    gql: GraphQLClient, listing: Listing, field: str, direction: str
) -> None:
    expected = listing.expected(field, direction)
    order = {"field": field, "direction": direction}
    seen: list[str] = []
    before: str | None = None
    for _ in range(MAX_PAGES):
        connection = await page(gql, last=PAGE, before=before, filter=listing.filter, orderBy=order)
        names = check_edges(listing, connection)
        remaining = len(expected) - len(seen)
        assert len(names) == min(PAGE, remaining)
        info = connection["pageInfo"]
        assert info["hasNextPage"] is (before is not None)
        assert info["hasPreviousPage"] is (remaining > PAGE)
        seen = names + seen
        if not info["hasPreviousPage"]:
            break
        before = info["startCursor"]
    else:
        pytest.fail("paging never reached the end: a cursor does not advance")
    assert seen == expected


@pytest.mark.parametrize("field", ["VOLUME", "CREATED_AT", "END_DATE"])
async def test_a_page_back_from_the_middle_is_the_page_before(
    gql: GraphQLClient, listing: Listing, field: str
) -> None:
    """Inside the block of tied markets, a cursor points back exactly as it points forward."""
    expected = listing.expected(field, "DESC")
    order = {"field": field, "direction": "DESC"}
    first = await page(gql, first=10, filter=listing.filter, orderBy=order)
    second = await page(
        gql, first=9, after=first["pageInfo"]["endCursor"], filter=listing.filter, orderBy=order
    )
    assert check_edges(listing, second) == expected[10:19]
    back = await page(
        gql, last=4, before=second["pageInfo"]["startCursor"], filter=listing.filter, orderBy=order
    )
    assert check_edges(listing, back) == expected[6:10]
    assert back["pageInfo"]["hasPreviousPage"] is True
    assert back["pageInfo"]["hasNextPage"] is True
    # An edge's own cursor works like the end cursor of a page ending there.
    middle = second["edges"][3]["cursor"]
    onward = await page(gql, first=5, after=middle, filter=listing.filter, orderBy=order)
    assert check_edges(listing, onward) == expected[14:19]


async def test_default_page_is_twenty_newest_first(gql: GraphQLClient, listing: Listing) -> None:
    connection = await page(gql, filter=listing.filter)
    assert check_edges(listing, connection) == listing.expected("CREATED_AT", "DESC")[:20]
    assert connection["pageInfo"]["hasNextPage"] is True
    assert connection["pageInfo"]["hasPreviousPage"] is False


async def test_a_page_can_hold_a_hundred(gql: GraphQLClient, listing: Listing) -> None:
    order = {"field": "NAME", "direction": "ASC"}
    connection = await page(gql, first=100, filter=listing.filter, orderBy=order)
    assert check_edges(listing, connection) == listing.expected("NAME", "ASC")
    assert connection["pageInfo"]["hasNextPage"] is False
    last = await page(gql, last=100, filter=listing.filter, orderBy=order)
    assert check_edges(listing, last) == listing.expected("NAME", "ASC")
    assert last["pageInfo"]["hasPreviousPage"] is False


async def test_an_empty_list_has_no_cursors(gql: GraphQLClient) -> None:
    connection = await page(gql, first=5, filter={"nameContains": uuid.uuid4().hex})
    assert connection["edges"] == []
    assert connection["totalCount"] == 0
    assert connection["pageInfo"] == {
        "hasNextPage": False,
        "hasPreviousPage": False,
        "startCursor": None,
        "endCursor": None,
    }


# Filters ----------------------------------------------------------------------------------


async def names(gql: GraphQLClient, where: dict[str, Any]) -> tuple[list[str], int]:
    connection = await page(
        gql, first=100, filter=where, orderBy={"field": "NAME", "direction": "ASC"}
    )
    return [e["node"]["name"] for e in connection["edges"]], connection["totalCount"]


@pytest.mark.parametrize("status", ["ACTIVE", "CLOSED", "CANCELLED", "RESOLVED"])
async def test_filter_by_status(gql: GraphQLClient, listing: Listing, status: str) -> None:
    expected = sorted(m.name for m in listing.markets if m.status.value == status)
    found, total = await names(gql, {**listing.filter, "status": status})
    assert found == expected
    assert total == len(expected)


async def test_filter_by_end_date_is_strict_on_both_sides(
    gql: GraphQLClient, listing: Listing
) -> None:
    ends = sorted({m.end_date for m in listing.markets})
    low, high = ends[1], ends[-2]
    expected = sorted(m.name for m in listing.markets if low < m.end_date < high)
    assert expected, "the bounds must leave something between them"
    found, total = await names(
        gql, {**listing.filter, "endsAfter": low.isoformat(), "endsBefore": high.isoformat()}
    )
    assert (found, total) == (expected, len(expected))
    after_only, _ = await names(gql, {**listing.filter, "endsAfter": low.isoformat()})
    assert after_only == sorted(m.name for m in listing.markets if m.end_date > low)
    # Another offset names the same instant.
    shifted = high.astimezone(datetime.fromisoformat("2000-01-01T00:00:00+05:30").tzinfo)
    before_only, _ = await names(gql, {**listing.filter, "endsBefore": shifted.isoformat()})
    assert before_only == sorted(m.name for m in listing.markets if m.end_date < high)


async def test_filters_combine(gql: GraphQLClient, listing: Listing) -> None:
    middle = sorted(m.end_date for m in listing.markets)[len(listing.markets) // 2]
    expected = sorted(
        m.name for m in listing.markets if m.status is MarketStatus.ACTIVE and m.end_date > middle
    )
    found, total = await names(
        gql, {**listing.filter, "status": "ACTIVE", "endsAfter": middle.isoformat()}
    )
    assert (found, total) == (expected, len(expected))


async def test_filter_by_creator(gql: GraphQLClient, listing: Listing) -> None:
    found, total = await names(gql, listing.filter)
    assert found == sorted(listing.by_name)
    assert total == len(listing.markets)


@pytest.fixture(scope="module")
async def odd_names(server: LiveServer, settings: Settings) -> dict[str, Any]:
    """Names with LIKE's wildcards and escape character in them, under one fresh creator."""
    seed = Seed()
    creator = seed.user("Odd Names")
    made = [
        "Will 50% of voters turn out?",
        "Will 50X of voters turn out?",
        "Will 500 voters turn out?",
        "Is snake_case nicer?",
        "Is snakeXcase nicer?",
        "Does a back\\slash survive?",
        "Does a backXslash survive?",
        "ZEBRA crossing by the school?",
    ]
    token = uuid.uuid4().hex[:8]
    for name in made:
        seed.market(creator.id, f"{name} [{token}]")
    engine = create_engine(settings)
    await seed.save(engine)
    await engine.dispose()
    return {"creatorId": creator.gid, "token": token}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("50%", ["Will 50% of voters turn out?"]),
        ("%", ["Will 50% of voters turn out?"]),
        ("snake_case", ["Is snake_case nicer?"]),
        ("_", ["Is snake_case nicer?"]),
        ("back\\slash", ["Does a back\\slash survive?"]),
        ("zebra CROSSING", ["ZEBRA crossing by the school?"]),
        (
            "VOTERS",
            [
                "Will 50% of voters turn out?",
                "Will 50X of voters turn out?",
                "Will 500 voters turn out?",
            ],
        ),
    ],
)
async def test_name_contains_is_literal_and_ignores_case(
    gql: GraphQLClient, odd_names: dict[str, Any], text: str, expected: list[str]
) -> None:
    found, total = await names(gql, {"creatorId": odd_names["creatorId"], "nameContains": text})
    token = odd_names["token"]
    assert found == sorted(f"{name} [{token}]" for name in expected)
    assert total == len(expected)


async def test_empty_name_contains_filters_nothing(
    gql: GraphQLClient, odd_names: dict[str, Any]
) -> None:
    _, total = await names(gql, {"creatorId": odd_names["creatorId"], "nameContains": ""})
    assert total == 8


# Bad arguments ----------------------------------------------------------------------------


def assert_bad_input(payload: dict[str, Any], argument: str | None = None) -> None:
    assert payload.get("data") is None, payload
    [error] = payload["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT", error
    if argument is not None:
        assert error["extensions"]["argument"] == argument, error
    assert error["message"]
    assert "Traceback" not in error["message"]


def cursor(*parts: Any) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(list(parts))).decode().rstrip("=")


@pytest.mark.parametrize(
    "arguments",
    [
        {"first": 0},
        {"first": 101},
        {"first": -1},
        {"last": 0},
        {"last": 101},
        {"first": 5, "last": 5},
    ],
    ids=["first=0", "first=101", "first=-1", "last=0", "last=101", "first+last"],
)
async def test_page_size_must_be_one_to_a_hundred(
    gql: GraphQLClient, arguments: dict[str, Any]
) -> None:
    payload = await gql(MARKETS, {**arguments, "filter": {"nameContains": uuid.uuid4().hex}})
    assert_bad_input(payload, "last" if "last" in arguments else "first")


@pytest.mark.parametrize(
    "arguments", [{"first": 1}, {"first": 100}, {"last": 1}, {"last": 100}], ids=str
)
async def test_page_size_bounds_are_inclusive(
    gql: GraphQLClient, listing: Listing, arguments: dict[str, Any]
) -> None:
    connection = await page(gql, **arguments, filter=listing.filter)
    size = next(iter(arguments.values()))
    assert len(connection["edges"]) == min(size, len(listing.markets))


async def test_cursor_direction_arguments_must_pair(gql: GraphQLClient, listing: Listing) -> None:
    connection = await page(gql, first=2, filter=listing.filter)
    end = connection["pageInfo"]["endCursor"]
    assert_bad_input(await gql(MARKETS, {"last": 2, "after": end}), "after")
    assert_bad_input(await gql(MARKETS, {"first": 2, "before": end}), "before")


def crafted_cursors() -> list[tuple[str, str]]:
    hexid = uuid.uuid4().hex
    sort = "markets:CREATED_AT:DESC"
    return [
        ("garbage", "not a cursor"),
        ("empty", ""),
        ("bad-base64", "@@@@"),
        ("not-json", base64.urlsafe_b64encode(b"\xff\xfe{").decode()),
        ("json-object", base64.urlsafe_b64encode(b'{"a":1,"b":2,"c":3}').decode()),
        ("too-short", cursor(sort, "2030-01-01T00:00:00+00:00")),
        ("too-long", cursor(sort, "2030-01-01T00:00:00+00:00", hexid, 1)),
        ("bad-uuid", cursor(sort, "2030-01-01T00:00:00+00:00", "zz")),
        ("uuid-not-string", cursor(sort, "2030-01-01T00:00:00+00:00", 12345)),
        ("bad-date", cursor(sort, "yesterday", hexid)),
        ("naive-date", cursor(sort, "2030-01-01T00:00:00", hexid)),
        ("date-past-utc", cursor(sort, "9999-12-31T23:00:00-05:00", hexid)),
        ("date-not-string", cursor(sort, 20300101, hexid)),
        ("null-value", cursor(sort, None, hexid)),
    ]


@pytest.mark.parametrize(("kind", "value"), crafted_cursors(), ids=lambda v: str(v)[:12])
async def test_malformed_cursors_are_bad_input(gql: GraphQLClient, kind: str, value: str) -> None:
    for arguments in ({"first": 3, "after": value}, {"last": 3, "before": value}):
        payload = await gql(MARKETS, {**arguments, "filter": {"nameContains": kind}})
        assert_bad_input(payload, "after" if "after" in arguments else "before")


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("VOLUME", "NaN"),
        ("VOLUME", "Infinity"),
        ("VOLUME", "1e40"),
        ("VOLUME", "0.000000001"),
        ("VOLUME", "ten"),
        ("NAME", "a\u0000b"),
        ("NAME", 5),
    ],
)
async def test_crafted_sort_values_are_bad_input(
    gql: GraphQLClient, field: str, value: Any
) -> None:
    forged = cursor(f"markets:{field}:DESC", value, uuid.uuid4().hex)
    payload = await gql(
        MARKETS,
        {"first": 3, "after": forged, "orderBy": {"field": field, "direction": "DESC"}},
    )
    assert_bad_input(payload, "after")


@pytest.mark.parametrize(
    ("made_under", "used_under"),
    [
        (("CREATED_AT", "DESC"), ("VOLUME", "DESC")),
        (("VOLUME", "DESC"), ("VOLUME", "ASC")),
        (("NAME", "ASC"), ("END_DATE", "ASC")),
        (("END_DATE", "ASC"), ("CREATED_AT", "ASC")),
    ],
)
async def test_a_cursor_of_another_sort_order_is_refused(
    gql: GraphQLClient,
    listing: Listing,
    made_under: tuple[str, str],
    used_under: tuple[str, str],
) -> None:
    made = {"field": made_under[0], "direction": made_under[1]}
    used = {"field": used_under[0], "direction": used_under[1]}
    connection = await page(gql, first=3, filter=listing.filter, orderBy=made)
    end = connection["pageInfo"]["endCursor"]
    assert_bad_input(
        await gql(MARKETS, {"first": 3, "after": end, "filter": listing.filter, "orderBy": used}),
        "after",
    )
    assert_bad_input(
        await gql(MARKETS, {"last": 3, "before": end, "filter": listing.filter, "orderBy": used}),
        "before",
    )


async def test_a_position_cursor_is_refused_by_markets(
    gql: GraphQLClient, listing: Listing
) -> None:
    traded = next(m for m in listing.markets if m.volume > 0)
    data = await gql.data(
        "query ($id: ID!) { market(id: $id) { positions(first: 1) { pageInfo { endCursor } } } }",
        {"id": traded.gid},
    )
    end = data["market"]["positions"]["pageInfo"]["endCursor"]
    assert end is not None
    assert_bad_input(await gql(MARKETS, {"first": 3, "after": end}), "after")


@pytest.mark.parametrize(
    "where",
    [
        {"creatorId": "not an id"},
        {"creatorId": global_id("Market", uuid.uuid4())},
        {"nameContains": "x" * 201},
        {"nameContains": "nul \u0000 inside"},
        {"endsAfter": "2030-01-01T00:00:00"},
        {"endsBefore": "2030-01-01T00:00:00"},
        {"endsAfter": "9999-12-31T23:00:00-05:00"},
    ],
    ids=[
        "creator-garbage",
        "creator-market-id",
        "name-too-long",
        "name-nul",
        "naive-after",
        "naive-before",
        "after-past-utc",
    ],
)
async def test_bad_filters_are_bad_input(gql: GraphQLClient, where: dict[str, Any]) -> None:
    assert_bad_input(await gql(MARKETS, {"first": 3, "filter": where}))


async def test_an_unknown_creator_has_no_markets(gql: GraphQLClient) -> None:
    found, total = await names(gql, {"creatorId": global_id("User", uuid.uuid4())})
    assert (found, total) == ([], 0)
