"""createMarket, updateMarket and deleteMarket over real HTTP.

Each expected failure is a typed error result, and a failed mutation leaves the
database as it was (checked on the rows, not only on the response).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from domain.entities import Outcome
from domain.money import QUANTUM
from domain.pricing import buy_cost, yes_price
from graph.ids import from_global_id, to_global_id
from infra.db.models import ledger_entries, markets, positions, trades, users
from tests.support import Account, GraphQLClient, MakeAccount, MakeMarket

pytestmark = pytest.mark.embedded

MARKET_FIELDS = """
fragment MarketFields on Market {
  id name description endDate status liquidity yesPrice noPrice volume createdAt updatedAt
  creator { id }
}
"""
CREATE = (
    """
mutation ($input: CreateMarketInput!) {
  createMarket(input: $input) {
    __typename
    ... on CreateMarketSuccess { market { ...MarketFields } }
    ... on ValidationError { field }
    ... on ConflictError { field }
    ... on Error { message code }
  }
}
"""
    + MARKET_FIELDS
)
UPDATE = (
    """
mutation ($input: UpdateMarketInput!) {
  updateMarket(input: $input) {
    __typename
    ... on UpdateMarketSuccess { market { ...MarketFields } }
    ... on ValidationError { field }
    ... on ConflictError { field }
    ... on Error { message code }
  }
}
"""
    + MARKET_FIELDS
)
DELETE = """
mutation ($input: DeleteMarketInput!) {
  deleteMarket(input: $input) {
    __typename
    ... on DeleteMarketSuccess { deletedId }
    ... on ValidationError { field }
    ... on Error { message code }
  }
}
"""
MARKET = "query ($id: ID!) { market(id: $id) { id name description } }"

Mutate = Callable[[dict[str, Any], Account | None], Awaitable[dict[str, Any]]]


def when(days: float, offset_hours: int = 0) -> datetime:
    return (datetime.now(UTC) + timedelta(days=days)).astimezone(
        timezone(timedelta(hours=offset_hours))
    )


def unique_name(tag: str = "market") -> str:
    return f"Will {tag} {uuid.uuid4().hex[:12]} happen?"


def market_uuid(global_id: str) -> uuid.UUID:
    parsed = from_global_id(global_id)
    assert parsed is not None, global_id
    assert parsed[0] == "Market", global_id
    return parsed[1]


def user_uuid(account: Account) -> uuid.UUID:
    parsed = from_global_id(account.id)
    assert parsed is not None, account.id
    assert parsed[0] == "User", account.id
    return parsed[1]


async def market_row(db: AsyncEngine, market_id: uuid.UUID) -> sa.Row[Any] | None:
    async with db.connect() as conn:
        result = await conn.execute(sa.select(markets).where(markets.c.id == market_id))
        return result.one_or_none()


async def markets_named(db: AsyncEngine, name: str) -> int:
    async with db.connect() as conn:
        query = sa.select(sa.func.count()).select_from(markets).where(markets.c.name == name)
        return int((await conn.execute(query)).scalar_one())


async def market_count(db: AsyncEngine) -> int:
    async with db.connect() as conn:
        query = sa.select(sa.func.count()).select_from(markets)
        return int((await conn.execute(query)).scalar_one())


async def set_market(db: AsyncEngine, market_id: uuid.UUID, **values: Any) -> None:
    async with db.begin() as conn:
        await conn.execute(sa.update(markets).where(markets.c.id == market_id).values(**values))


@pytest.fixture
def create(gql: GraphQLClient) -> Mutate:
    async def run(market_input: dict[str, Any], account: Account | None) -> dict[str, Any]:
        token = None if account is None else account.token
        data = await gql.data(CREATE, {"input": market_input}, token=token)
        result: dict[str, Any] = data["createMarket"]
        return result

    return run


@pytest.fixture
def update(gql: GraphQLClient) -> Mutate:
    async def run(changes: dict[str, Any], account: Account | None) -> dict[str, Any]:
        token = None if account is None else account.token
        data = await gql.data(UPDATE, {"input": changes}, token=token)
        result: dict[str, Any] = data["updateMarket"]
        return result

    return run


@pytest.fixture
def delete(gql: GraphQLClient) -> Mutate:
    async def run(target: dict[str, Any], account: Account | None) -> dict[str, Any]:
        token = None if account is None else account.token
        data = await gql.data(DELETE, {"input": target}, token=token)
        result: dict[str, Any] = data["deleteMarket"]
        return result

    return run


def assert_error(
    result: dict[str, Any], typename: str, code: str, field: str | None = None
) -> None:
    assert result["__typename"] == typename, result
    assert result["code"] == code
    assert result["message"]
    if field is not None:
        assert result["field"] == field


async def assert_unauthenticated(
    gql: GraphQLClient, query: str, variables: dict[str, Any], field: str
) -> None:
    payload = await gql(query, variables)
    [error] = payload["errors"]
    assert error["extensions"]["code"] == "UNAUTHENTICATED"
    assert error["path"] == [field]
    # Mutation results are nullable: the refused field is null, the document's others stand.
    assert payload["data"] == {field: None}


# -- createMarket ---------------------------------------------------------------------------


async def test_create_market_returns_and_stores_the_market(
    make_account: MakeAccount, create: Mutate, db: AsyncEngine, gql: GraphQLClient
) -> None:
    owner = await make_account("Creator")
    name = unique_name("creation")
    end = when(days=40, offset_hours=2)
    result = await create(
        {
            "name": name,
            "description": "Resolves YES if it happens.",
            "endDate": end.isoformat(),
            "liquidity": "250.5",
        },
        owner,
    )

    assert result["__typename"] == "CreateMarketSuccess", result
    market = result["market"]
    assert market["name"] == name
    assert market["description"] == "Resolves YES if it happens."
    assert market["status"] == "ACTIVE"
    assert datetime.fromisoformat(market["endDate"]) == end
    assert Decimal(market["liquidity"]) == Decimal("250.5")
    assert Decimal(market["yesPrice"]) == Decimal(market["noPrice"]) == Decimal("0.5")
    assert Decimal(market["volume"]) == 0
    assert market["createdAt"] == market["updatedAt"]
    assert market["creator"] == {"id": owner.id}

    row = await market_row(db, market_uuid(market["id"]))
    assert row is not None
    assert row.name == name
    assert row.creator_id == user_uuid(owner)
    assert row.end_date == end
    assert row.liquidity == Decimal("250.5")
    assert row.q_yes == row.q_no == 0
    assert str(row.status) == "ACTIVE"

    read = (await gql.data(MARKET, {"id": market["id"]}))["market"]
    assert read == {"id": market["id"], "name": name, "description": "Resolves YES if it happens."}


async def test_create_market_defaults_the_liquidity_and_description(
    make_account: MakeAccount, create: Mutate
) -> None:
    owner = await make_account("Defaults")
    result = await create({"name": unique_name("defaults"), "endDate": when(5).isoformat()}, owner)
    assert result["__typename"] == "CreateMarketSuccess", result
    # The schema documents b = 100 when the input leaves it out.
    assert Decimal(result["market"]["liquidity"]) == 100
    assert result["market"]["description"] is None


@pytest.mark.parametrize(
    ("name", "description", "liquidity"),
    [
        pytest.param("n" * 188, "d" * 2000, "1", id="longest-name-and-description-least-b"),
        pytest.param("?", "", "1000000", id="shortest-name-empty-description-most-b"),
        pytest.param("Layout?", "line one\r\nline two\ttabbed", "12.34567891", id="layout"),
    ],
)
async def test_create_market_accepts_the_boundaries(
    make_account: MakeAccount,
    create: Mutate,
    db: AsyncEngine,
    name: str,
    description: str,
    liquidity: str,
) -> None:
    owner = await make_account("Boundary")
    # A 12-character unique prefix keeps names distinct across runs on one database.
    unique = f"{uuid.uuid4().hex[:12]}{name}"[:200]
    result = await create(
        {
            "name": unique,
            "description": description,
            "endDate": when(1).isoformat(),
            "liquidity": liquidity,
        },
        owner,
    )
    assert result["__typename"] == "CreateMarketSuccess", result
    assert result["market"]["name"] == unique
    assert result["market"]["description"] == description
    assert Decimal(result["market"]["liquidity"]) == Decimal(liquidity)
    row = await market_row(db, market_uuid(result["market"]["id"]))
    assert row is not None
    assert (row.name, row.description, row.liquidity) == (unique, description, Decimal(liquidity))


INVALID_MARKETS = [
    pytest.param({"name": ""}, "name", id="name-empty"),
    pytest.param({"name": "    "}, "name", id="name-blank"),
    pytest.param({"name": "n" * 201}, "name", id="name-201-chars"),
    pytest.param({"name": "nul\x00in the name?"}, "name", id="name-with-nul"),
    pytest.param({"name": "two\nlines?"}, "name", id="name-with-line-break"),
    pytest.param({"description": "d" * 2001}, "description", id="description-2001-chars"),
    pytest.param({"description": "bell\x07"}, "description", id="description-control-char"),
    pytest.param({"description": "nul\x00"}, "description", id="description-with-nul"),
    pytest.param({"endDate": when(-1).isoformat()}, "endDate", id="end-date-past"),
    pytest.param({"endDate": when(-1, offset_hours=14).isoformat()}, "endDate", id="past-+14"),
    pytest.param(
        {"endDate": when(30).replace(tzinfo=None).isoformat()}, "endDate", id="end-date-naive"
    ),
    pytest.param(
        {"endDate": "9999-12-31T23:00:00-05:00"}, "endDate", id="end-date-beyond-utc-range"
    ),
    pytest.param({"liquidity": "0"}, "liquidity", id="liquidity-zero"),
    pytest.param({"liquidity": "-100"}, "liquidity", id="liquidity-negative"),
    pytest.param({"liquidity": "0.99999999"}, "liquidity", id="liquidity-below-1"),
    pytest.param({"liquidity": "1000000.00000001"}, "liquidity", id="liquidity-above-max"),
    pytest.param({"liquidity": "1.000000001"}, "liquidity", id="liquidity-9-places"),
]


@pytest.mark.parametrize(("overrides", "field"), INVALID_MARKETS)
async def test_create_market_rejects_invalid_input_without_writing(
    make_account: MakeAccount,
    create: Mutate,
    db: AsyncEngine,
    overrides: dict[str, str],
    field: str,
) -> None:
    owner = await make_account("Invalid")
    market_input = {"name": unique_name("invalid"), "endDate": when(10).isoformat(), **overrides}
    before = await market_count(db)

    result = await create(market_input, owner)

    assert_error(result, "ValidationError", "VALIDATION_FAILED", field)
    assert await market_count(db) == before


@pytest.mark.parametrize(
    "liquidity",
    # Outside the one Decimal grammar (graph/scalars.py): refused before any resolver runs.
    ["lots", "NaN", "Infinity", "1e999999", "1_000", " 100 ", "5.", ".5", "+5", "00.5", 100],
)
async def test_create_market_rejects_a_malformed_decimal_as_a_request_error(
    make_account: MakeAccount, gql: GraphQLClient, db: AsyncEngine, liquidity: object
) -> None:
    owner = await make_account("Malformed")
    name = unique_name("malformed")
    payload = await gql(
        CREATE,
        {"input": {"name": name, "endDate": when(3).isoformat(), "liquidity": liquidity}},
        token=owner.token,
    )
    [error] = payload["errors"]
    assert error["extensions"]["code"] in {"GRAPHQL_VALIDATION_FAILED", "BAD_USER_INPUT"}
    assert payload.get("data") is None
    assert await markets_named(db, name) == 0


async def test_create_market_rejects_a_taken_name(
    make_account: MakeAccount, create: Mutate, db: AsyncEngine
) -> None:
    first_owner = await make_account("First")
    second_owner = await make_account("Second")
    name = unique_name("taken")
    first = await create({"name": name, "endDate": when(3).isoformat()}, first_owner)
    assert first["__typename"] == "CreateMarketSuccess", first

    for owner, candidate in (
        (first_owner, name),
        (second_owner, name),
        (second_owner, f" {name} "),
    ):
        again = await create({"name": candidate, "endDate": when(4).isoformat()}, owner)
        assert_error(again, "ConflictError", "CONFLICT", "name")
    assert await markets_named(db, name) == 1


async def test_concurrent_creates_with_one_name_make_one_market(
    make_account: MakeAccount, create: Mutate, db: AsyncEngine
) -> None:
    owners = [await make_account(f"Racer {n}") for n in range(4)]
    name = unique_name("race")

    results = await asyncio.gather(
        *(create({"name": name, "endDate": when(3).isoformat()}, owner) for owner in owners)
    )

    outcomes = sorted(result["__typename"] for result in results)
    assert outcomes == ["ConflictError"] * (len(owners) - 1) + ["CreateMarketSuccess"], results
    assert await markets_named(db, name) == 1


async def test_create_market_requires_sign_in(gql: GraphQLClient, db: AsyncEngine) -> None:
    name = unique_name("anonymous")
    await assert_unauthenticated(
        gql, CREATE, {"input": {"name": name, "endDate": when(3).isoformat()}}, "createMarket"
    )
    assert await markets_named(db, name) == 0


async def test_create_market_refuses_a_token_of_a_disabled_account(
    make_account: MakeAccount, gql: GraphQLClient, db: AsyncEngine
) -> None:
    owner = await make_account("Disabled")
    async with db.begin() as conn:
        await conn.execute(
            sa.update(users).where(users.c.id == user_uuid(owner)).values(disabled=True)
        )
    name = unique_name("disabled")
    response = await gql.post(
        CREATE, {"input": {"name": name, "endDate": when(3).isoformat()}}, token=owner.token
    )
    # A token whose account is disabled is refused before anything runs, like a forged one.
    assert response.status_code == 401
    assert response.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert await markets_named(db, name) == 0


# -- updateMarket ---------------------------------------------------------------------------


async def test_update_market_changes_only_the_given_fields(
    make_account: MakeAccount, make_market: MakeMarket, update: Mutate, db: AsyncEngine
) -> None:
    owner = await make_account("Editor")
    market = await make_market(owner, description="The first description.")
    renamed = unique_name("renamed")

    result = await update({"id": market["id"], "name": renamed}, owner)
    assert result["__typename"] == "UpdateMarketSuccess", result
    assert result["market"]["name"] == renamed
    assert result["market"]["description"] == "The first description."
    assert result["market"]["endDate"] == market["endDate"]

    cleared = await update({"id": market["id"], "description": None}, owner)
    assert cleared["__typename"] == "UpdateMarketSuccess", cleared
    assert cleared["market"]["description"] is None
    assert cleared["market"]["name"] == renamed

    new_end = when(90, offset_hours=-7)
    moved = await update({"id": market["id"], "endDate": new_end.isoformat()}, owner)
    assert moved["__typename"] == "UpdateMarketSuccess", moved
    assert datetime.fromisoformat(moved["market"]["endDate"]) == new_end
    assert moved["market"]["name"] == renamed
    assert moved["market"]["description"] is None

    row = await market_row(db, market_uuid(market["id"]))
    assert row is not None
    assert (row.name, row.description, row.end_date) == (renamed, None, new_end)


async def test_update_market_may_keep_its_own_name(
    make_account: MakeAccount, make_market: MakeMarket, update: Mutate
) -> None:
    owner = await make_account("Same Name")
    market = await make_market(owner)
    result = await update({"id": market["id"], "name": market["name"]}, owner)
    assert result["__typename"] == "UpdateMarketSuccess", result
    assert result["market"]["name"] == market["name"]


async def test_update_market_moves_updated_at_but_not_created_at(
    make_account: MakeAccount, make_market: MakeMarket, update: Mutate, db: AsyncEngine
) -> None:
    owner = await make_account("Clock")
    market = await make_market(owner)
    market_id = market_uuid(market["id"])
    # Pin both timestamps in the past so the comparison does not depend on clock resolution.
    long_ago = datetime(2020, 1, 1, tzinfo=UTC)
    await set_market(db, market_id, created_at=long_ago, updated_at=long_ago)

    untouched = await update({"id": market["id"]}, owner)
    assert untouched["__typename"] == "UpdateMarketSuccess", untouched
    assert datetime.fromisoformat(untouched["market"]["updatedAt"]) == long_ago

    result = await update({"id": market["id"], "description": "Now with details."}, owner)
    assert result["__typename"] == "UpdateMarketSuccess", result
    assert datetime.fromisoformat(result["market"]["createdAt"]) == long_ago
    assert datetime.fromisoformat(result["market"]["updatedAt"]) > long_ago
    row = await market_row(db, market_id)
    assert row is not None
    assert row.created_at == long_ago
    assert row.updated_at == datetime.fromisoformat(result["market"]["updatedAt"])


INVALID_UPDATES = [
    pytest.param({"name": None}, "name", id="name-null"),
    pytest.param({"endDate": None}, "endDate", id="end-date-null"),
    pytest.param({"name": ""}, "name", id="name-empty"),
    pytest.param({"name": "n" * 201}, "name", id="name-201-chars"),
    pytest.param({"name": "nul\x00"}, "name", id="name-with-nul"),
    pytest.param({"description": "d" * 2001}, "description", id="description-2001-chars"),
    pytest.param({"endDate": when(-1).isoformat()}, "endDate", id="end-date-past"),
    pytest.param(
        {"endDate": when(9).replace(tzinfo=None).isoformat()}, "endDate", id="end-date-naive"
    ),
    pytest.param({"id": "not-an-id"}, "id", id="id-garbage"),
]


@pytest.mark.parametrize(("changes", "field"), INVALID_UPDATES)
async def test_update_market_rejects_invalid_input_without_writing(
    make_account: MakeAccount,
    make_market: MakeMarket,
    update: Mutate,
    db: AsyncEngine,
    changes: dict[str, Any],
    field: str,
) -> None:
    owner = await make_account("Invalid Editor")
    market = await make_market(owner, description="Stays.")
    before = await market_row(db, market_uuid(market["id"]))

    result = await update({"id": market["id"], **changes}, owner)

    assert_error(result, "ValidationError", "VALIDATION_FAILED", field)
    assert await market_row(db, market_uuid(market["id"])) == before


async def test_update_market_rejects_an_id_of_another_type(
    make_account: MakeAccount, update: Mutate
) -> None:
    owner = await make_account("Wrong Type")
    result = await update({"id": owner.id, "name": unique_name("user-id")}, owner)
    assert_error(result, "ValidationError", "VALIDATION_FAILED", "id")


async def test_update_market_reports_a_missing_market(
    make_account: MakeAccount,
    make_market: MakeMarket,
    update: Mutate,
    delete: Mutate,
    db: AsyncEngine,
) -> None:
    owner = await make_account("Ghost Editor")
    gone = await make_market(owner)
    assert (await delete({"id": gone["id"]}, owner))["__typename"] == "DeleteMarketSuccess"
    never = to_global_id("Market", uuid.uuid4())

    for market_id in (gone["id"], never):
        result = await update({"id": market_id, "name": unique_name("ghost")}, owner)
        assert_error(result, "NotFoundError", "NOT_FOUND")
    assert await market_row(db, market_uuid(gone["id"])) is None


async def test_update_market_is_forbidden_to_anyone_but_the_creator(
    make_account: MakeAccount, make_market: MakeMarket, update: Mutate, db: AsyncEngine
) -> None:
    owner = await make_account("Owner")
    intruder = await make_account("Intruder")
    market = await make_market(owner, description="Mine.")
    before = await market_row(db, market_uuid(market["id"]))

    result = await update({"id": market["id"], "description": "Theirs now."}, intruder)

    assert_error(result, "ForbiddenError", "FORBIDDEN")
    assert await market_row(db, market_uuid(market["id"])) == before


async def test_update_market_rejects_a_taken_name(
    make_account: MakeAccount, make_market: MakeMarket, update: Mutate, db: AsyncEngine
) -> None:
    owner = await make_account("Collider")
    first = await make_market(owner)
    second = await make_market(owner)
    before = await market_row(db, market_uuid(second["id"]))

    result = await update({"id": second["id"], "name": first["name"]}, owner)

    assert_error(result, "ConflictError", "CONFLICT", "name")
    assert await market_row(db, market_uuid(second["id"])) == before
    assert await markets_named(db, first["name"]) == 1


@pytest.mark.parametrize("status", ["CLOSED", "RESOLVED", "CANCELLED"])
async def test_update_market_refuses_a_market_that_is_not_active(
    make_account: MakeAccount,
    make_market: MakeMarket,
    update: Mutate,
    db: AsyncEngine,
    status: str,
) -> None:
    owner = await make_account("Closer")
    market = await make_market(owner)
    market_id = market_uuid(market["id"])
    await set_market(db, market_id, status=status)
    before = await market_row(db, market_id)

    result = await update({"id": market["id"], "name": unique_name("late")}, owner)

    assert_error(result, "InvalidStateError", "INVALID_STATE")
    assert await market_row(db, market_id) == before


async def test_update_market_requires_sign_in(
    make_account: MakeAccount, make_market: MakeMarket, gql: GraphQLClient, db: AsyncEngine
) -> None:
    owner = await make_account("Absent")
    market = await make_market(owner)
    before = await market_row(db, market_uuid(market["id"]))
    await assert_unauthenticated(
        gql, UPDATE, {"input": {"id": market["id"], "name": unique_name("anon")}}, "updateMarket"
    )
    assert await market_row(db, market_uuid(market["id"])) == before


# -- deleteMarket ---------------------------------------------------------------------------


async def test_delete_market_removes_it(
    make_account: MakeAccount,
    make_market: MakeMarket,
    delete: Mutate,
    gql: GraphQLClient,
    db: AsyncEngine,
) -> None:
    owner = await make_account("Deleter")
    market = await make_market(owner)

    result = await delete({"id": market["id"]}, owner)

    assert result == {"__typename": "DeleteMarketSuccess", "deletedId": market["id"]}
    assert (await gql.data(MARKET, {"id": market["id"]}))["market"] is None
    assert await market_row(db, market_uuid(market["id"])) is None

    again = await delete({"id": market["id"]}, owner)
    assert_error(again, "NotFoundError", "NOT_FOUND")


async def test_delete_market_is_forbidden_to_anyone_but_the_creator(
    make_account: MakeAccount,
    make_market: MakeMarket,
    delete: Mutate,
    gql: GraphQLClient,
    db: AsyncEngine,
) -> None:
    owner = await make_account("Keeper")
    intruder = await make_account("Wrecker")
    market = await make_market(owner)

    result = await delete({"id": market["id"]}, intruder)

    assert_error(result, "ForbiddenError", "FORBIDDEN")
    assert await market_row(db, market_uuid(market["id"])) is not None
    assert (await gql.data(MARKET, {"id": market["id"]}))["market"]["id"] == market["id"]


@pytest.mark.parametrize("target", ["user-id", "garbage"])
async def test_delete_market_rejects_an_id_that_is_not_a_market(
    make_account: MakeAccount, delete: Mutate, target: str
) -> None:
    owner = await make_account("Confused")
    market_id = owner.id if target == "user-id" else "bm90IGEgcmVhbCBpZA"
    result = await delete({"id": market_id}, owner)
    assert_error(result, "ValidationError", "VALIDATION_FAILED", "id")


async def test_delete_market_reports_a_missing_market(
    make_account: MakeAccount, delete: Mutate
) -> None:
    owner = await make_account("Seeker")
    result = await delete({"id": to_global_id("Market", uuid.uuid4())}, owner)
    assert_error(result, "NotFoundError", "NOT_FOUND")


async def record_buy(
    db: AsyncEngine, market_id: uuid.UUID, buyer_id: uuid.UUID, shares: Decimal
) -> None:
    """A YES buy written as the trading use case will: trade, position, ledger, balances."""
    async with db.begin() as conn:
        market = (await conn.execute(sa.select(markets).where(markets.c.id == market_id))).one()
        cost = buy_cost(market.q_yes, market.q_no, market.liquidity, Outcome.YES, shares)
        before = yes_price(market.q_yes, market.q_no, market.liquidity).quantize(QUANTUM)
        after = yes_price(market.q_yes + shares, market.q_no, market.liquidity).quantize(QUANTUM)
        now = datetime.now(UTC)
        trade_id = uuid.uuid4()
        await conn.execute(
            sa.insert(trades).values(
                id=trade_id,
                user_id=buyer_id,
                market_id=market_id,
                outcome="YES",
                side="BUY",
                shares=shares,
                amount=cost,
                price_before=before,
                price_after=after,
                created_at=now,
            )
        )
        await conn.execute(
            sa.insert(positions).values(
                id=uuid.uuid4(),
                user_id=buyer_id,
                market_id=market_id,
                outcome="YES",
                shares=shares,
                cost_basis=cost,
                created_at=now,
                updated_at=now,
            )
        )
        await conn.execute(
            sa.insert(ledger_entries).values(
                id=uuid.uuid4(),
                user_id=buyer_id,
                amount=-cost,
                kind="TRADE",
                market_id=market_id,
                trade_id=trade_id,
                created_at=now,
            )
        )
        await conn.execute(
            sa.update(users).where(users.c.id == buyer_id).values(balance=users.c.balance - cost)
        )
        await conn.execute(
            sa.update(markets)
            .where(markets.c.id == market_id)
            .values(q_yes=markets.c.q_yes + shares, volume=markets.c.volume + cost)
        )


async def ledger_balance(db: AsyncEngine, user_id: uuid.UUID) -> tuple[Decimal, Decimal]:
    """The user's balance and the sum of their ledger entries (the invariant: equal)."""
    async with db.connect() as conn:
        balance = (
            await conn.execute(sa.select(users.c.balance).where(users.c.id == user_id))
        ).scalar_one()
        total = (
            await conn.execute(
                sa.select(sa.func.sum(ledger_entries.c.amount)).where(
                    ledger_entries.c.user_id == user_id
                )
            )
        ).scalar_one()
        return balance, total


async def test_delete_market_refuses_a_market_with_trades(
    make_account: MakeAccount, make_market: MakeMarket, delete: Mutate, db: AsyncEngine
) -> None:
    owner = await make_account("Popular")
    trader = await make_account("Trader")
    market = await make_market(owner)
    market_id = market_uuid(market["id"])
    await record_buy(db, market_id, user_uuid(trader), Decimal("10"))
    balance, ledger_total = await ledger_balance(db, user_uuid(trader))
    assert balance == ledger_total

    result = await delete({"id": market["id"]}, owner)

    assert_error(result, "InvalidStateError", "INVALID_STATE")
    assert await market_row(db, market_id) is not None
    assert await ledger_balance(db, user_uuid(trader)) == (balance, ledger_total)


async def test_delete_market_refuses_a_market_that_is_not_active(
    make_account: MakeAccount, make_market: MakeMarket, delete: Mutate, db: AsyncEngine
) -> None:
    owner = await make_account("Late Deleter")
    market = await make_market(owner)
    await set_market(db, market_uuid(market["id"]), status="CLOSED")

    result = await delete({"id": market["id"]}, owner)

    assert_error(result, "InvalidStateError", "INVALID_STATE")
    assert await market_row(db, market_uuid(market["id"])) is not None


async def test_delete_market_requires_sign_in(
    make_account: MakeAccount, make_market: MakeMarket, gql: GraphQLClient, db: AsyncEngine
) -> None:
    owner = await make_account("Guarded")
    market = await make_market(owner)
    await assert_unauthenticated(gql, DELETE, {"input": {"id": market["id"]}}, "deleteMarket")
    assert await market_row(db, market_uuid(market["id"])) is not None
