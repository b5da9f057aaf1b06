"""Administration and moderation: roles, disabling accounts, closing and cancelling markets.

Per role, each mutation is allowed or refused with the exact code, and what
the database holds afterwards is checked on the rows: a refused or failed
mutation changes nothing, a cancellation refunds every holder exactly once
and keeps each balance equal to the sum of that user's ledger entries.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from domain.entities import LedgerKind, MarketStatus, Outcome, Role
from domain.policy import ROLE_PERMISSIONS, Permission
from infra.db.models import ledger_entries, markets, positions, users
from infra.settings import Settings
from tests.api.readside import Seed, global_id, now
from tests.support import (
    Account,
    GraphQLClient,
    MakeAccount,
    MakeMarket,
    promote,
    wait_for_job,
)

pytestmark = pytest.mark.embedded

USER_CHANGE = """
mutation ($input: %s!) {
  %s(input: $input) {
    __typename
    ... on UserChangeSuccess { user { id role disabled email } }
    ... on ValidationError { field }
    ... on Error { code }
  }
}
"""
SET_ROLE = USER_CHANGE % ("SetUserRoleInput", "setUserRole")
DISABLE = USER_CHANGE % ("UserIdInput", "disableUser")
ENABLE = USER_CHANGE % ("UserIdInput", "enableUser")
MARKET_CHANGE = """
mutation ($input: MarketIdInput!) {
  %s(input: $input) {
    __typename
    ... on MarketChangeSuccess { market { id status } %s }
    ... on ValidationError { field }
    ... on Error { code }
  }
}
"""
CLOSE = MARKET_CHANGE % ("closeMarket", "")
CANCEL = MARKET_CHANGE % ("cancelMarket", "")
CANCEL_WITH_JOB = MARKET_CHANGE % ("cancelMarket", "job { id kind state }")
SIGN_IN = """
mutation ($input: SignInInput!) {
  signIn(input: $input) {
    __typename
    ... on SignInSuccess { accessToken refreshToken }
    ... on Error { code }
  }
}
"""
REFRESH = """
mutation ($input: RefreshSessionInput!) {
  refreshSession(input: $input) { __typename ... on Error { code } }
}
"""
VIEWER = "{ viewer { id role disabled } }"

# The actor, besides anonymous: "self" is a plain user acting on their own account.
ROLES = ["anonymous", "user", "self", "moderator", "admin"]
ROLE_OF = {"user": Role.USER, "self": Role.USER, "moderator": Role.MODERATOR, "admin": Role.ADMIN}
MUTATIONS = {
    "setUserRole": (SET_ROLE, {"role": "MODERATOR"}),
    "disableUser": (DISABLE, {}),
    "enableUser": (ENABLE, {}),
}


async def sign_in(gql: GraphQLClient, email: str, password: str) -> dict[str, Any]:
    """signIn from an address of its own, so expected failures here use no shared budget."""
    client = f"192.0.2.{uuid.uuid4().int % 250 + 1}"
    response = await gql.http.post(
        "/graphql",
        json={"query": SIGN_IN, "variables": {"input": {"email": email, "password": password}}},
        headers={"X-Forwarded-For": client},
    )
    assert response.status_code == 200, response.text
    payload = response.json()
    assert "errors" not in payload, payload
    result: dict[str, Any] = payload["data"]["signIn"]
    return result


def expected_for(role: str) -> str:
    if role == "anonymous":
        return "UNAUTHENTICATED"
    return "OK" if Permission.USER_MANAGE in ROLE_PERMISSIONS[ROLE_OF[role]] else "FORBIDDEN"


def refused(payload: dict[str, Any], field: str, code: str) -> None:
    """A top-level error on ``field`` with ``code``; the mutation's result is null."""
    assert payload["data"] == {field: None}, payload
    errors = payload["errors"]
    assert [e["extensions"]["code"] for e in errors] == [code], errors
    assert errors[0]["path"] == [field], errors


@dataclass
class Staff:
    user: Account
    target: Account
    moderator: Account
    admin: Account

    def actor(self, role: str) -> Account | None:
        named = {
            "user": self.user,
            "self": self.target,
            "moderator": self.moderator,
            "admin": self.admin,
        }
        return named.get(role)


@pytest.fixture
async def staff(make_account: MakeAccount, db: AsyncEngine) -> Staff:
    made = Staff(
        user=await make_account("Admin Test User"),
        target=await make_account("Admin Test Target"),
        moderator=await make_account("Admin Test Moderator"),
        admin=await make_account("Admin Test Admin"),
    )
    await promote(db, made.moderator, "MODERATOR")
    await promote(db, made.admin, "ADMIN")
    return made


@dataclass(frozen=True)
class Stored:
    role: Role
    disabled: bool


async def row_of(db: AsyncEngine, account: Account) -> Stored:
    async with db.connect() as conn:
        stmt = sa.select(users.c.role, users.c.disabled).where(users.c.id == account.uuid)
        row = (await conn.execute(stmt)).one()
    return Stored(Role(row.role), bool(row.disabled))


async def set_disabled(db: AsyncEngine, account: Account, disabled: bool) -> None:
    async with db.begin() as conn:
        await conn.execute(
            sa.update(users).where(users.c.id == account.uuid).values(disabled=disabled)
        )


def test_only_admins_may_manage_users() -> None:
    assert [expected_for(r) for r in ROLES] == [
        "UNAUTHENTICATED",
        "FORBIDDEN",
        "FORBIDDEN",
        "FORBIDDEN",
        "OK",
    ]


@pytest.mark.parametrize("role", ROLES)
async def test_set_user_role(gql: GraphQLClient, staff: Staff, db: AsyncEngine, role: str) -> None:
    actor = staff.actor(role)
    target = staff.target
    payload = await gql(
        SET_ROLE,
        {"input": {"userId": target.id, "role": "MODERATOR"}},
        token=actor.token if actor else None,
    )
    stored = await row_of(db, target)
    expected = expected_for(role)
    if expected != "OK":
        refused(payload, "setUserRole", expected)
        assert stored.role == Role.USER
        return
    assert payload["data"]["setUserRole"] == {
        "__typename": "UserChangeSuccess",
        "user": {"id": target.id, "role": "MODERATOR", "disabled": False, "email": target.email},
    }
    assert stored.role == Role.MODERATOR
    seen = await gql.data(VIEWER, token=target.token)
    assert seen["viewer"]["role"] == "MODERATOR"


@pytest.mark.parametrize("role", ROLES)
async def test_disable_user(gql: GraphQLClient, staff: Staff, db: AsyncEngine, role: str) -> None:
    actor = staff.actor(role)
    target = staff.target
    payload = await gql(
        DISABLE, {"input": {"userId": target.id}}, token=actor.token if actor else None
    )
    stored = await row_of(db, target)
    expected = expected_for(role)
    if expected != "OK":
        refused(payload, "disableUser", expected)
        assert stored.disabled is False
        seen = await gql.data(VIEWER, token=target.token)
        assert seen["viewer"] == {"id": target.id, "role": "USER", "disabled": False}
        return
    assert payload["data"]["disableUser"] == {
        "__typename": "UserChangeSuccess",
        "user": {"id": target.id, "role": "USER", "disabled": True, "email": target.email},
    }
    assert stored.disabled is True


@pytest.mark.parametrize("role", ROLES)
async def test_enable_user(gql: GraphQLClient, staff: Staff, db: AsyncEngine, role: str) -> None:
    actor = staff.actor(role)
    target = staff.target
    await set_disabled(db, target, True)
    response = await gql.post(
        ENABLE, {"input": {"userId": target.id}}, token=actor.token if actor else None
    )
    stored = await row_of(db, target)
    expected = expected_for(role)
    payload = response.json()
    if role == "self":
        # A disabled account's own token is refused before anything runs.
        assert response.status_code == 401, response.text
        assert "data" not in payload
        assert [e["extensions"]["code"] for e in payload["errors"]] == ["UNAUTHENTICATED"]
    else:
        assert response.status_code == 200, response.text
    signed = await sign_in(gql, target.email, target.password)
    if role == "self" or expected != "OK":
        if role != "self":
            refused(payload, "enableUser", expected)
        assert stored.disabled is True
        assert signed == {
            "__typename": "InvalidCredentialsError",
            "code": "INVALID_CREDENTIALS",
        }
        return
    assert payload["data"]["enableUser"] == {
        "__typename": "UserChangeSuccess",
        "user": {"id": target.id, "role": "USER", "disabled": False, "email": target.email},
    }
    assert stored.disabled is False
    assert signed["__typename"] == "SignInSuccess"


@pytest.mark.parametrize("field", list(MUTATIONS))
async def test_an_admin_cannot_change_their_own_account(
    gql: GraphQLClient, staff: Staff, db: AsyncEngine, field: str
) -> None:
    document, extra = MUTATIONS[field]
    admin = staff.admin
    data = await gql.data(document, {"input": {"userId": admin.id, **extra}}, token=admin.token)
    assert data[field] == {"__typename": "InvalidStateError", "code": "INVALID_STATE"}
    stored = await row_of(db, admin)
    assert (stored.role, stored.disabled) == (Role.ADMIN, False)
    # Still an admin, still signed in.
    seen = await gql.data(VIEWER, token=admin.token)
    assert seen["viewer"] == {"id": admin.id, "role": "ADMIN", "disabled": False}


@pytest.mark.parametrize("field", list(MUTATIONS))
async def test_an_unknown_user_is_not_found(gql: GraphQLClient, staff: Staff, field: str) -> None:
    document, extra = MUTATIONS[field]
    nobody = global_id("User", uuid.uuid4())
    data = await gql.data(document, {"input": {"userId": nobody, **extra}}, token=staff.admin.token)
    assert data[field] == {"__typename": "NotFoundError", "code": "NOT_FOUND"}


@pytest.mark.parametrize("field", list(MUTATIONS))
@pytest.mark.parametrize("kind", ["market", "garbage"])
async def test_a_user_id_must_be_a_user_id(
    gql: GraphQLClient,
    staff: Staff,
    make_market: MakeMarket,
    db: AsyncEngine,
    field: str,
    kind: str,
) -> None:
    document, extra = MUTATIONS[field]
    # A real object of another type, so only the type tells it apart, and plain garbage.
    not_a_user = (await make_market(staff.target))["id"] if kind == "market" else "not-an-id"
    data = await gql.data(
        document, {"input": {"userId": not_a_user, **extra}}, token=staff.admin.token
    )
    assert data[field] == {
        "__typename": "ValidationError",
        "field": "userId",
        "code": "VALIDATION_FAILED",
    }
    stored = await row_of(db, staff.target)
    assert (stored.role, stored.disabled) == (Role.USER, False)


async def test_a_disabled_user_is_locked_out_until_enabled(
    gql: GraphQLClient, staff: Staff, db: AsyncEngine
) -> None:
    target = staff.target
    second = await sign_in(gql, target.email, target.password)
    assert second["__typename"] == "SignInSuccess"
    assert (await gql.data(VIEWER, token=target.token))["viewer"]["id"] == target.id

    data = await gql.data(DISABLE, {"input": {"userId": target.id}}, token=staff.admin.token)
    assert data["disableUser"]["user"]["disabled"] is True

    # Every token of every session dies at once, on any operation.
    for token in (target.token, second["accessToken"]):
        for document in (VIEWER, "{ markets(first: 1) { totalCount } }"):
            response = await gql.post(document, token=token)
            assert response.status_code == 401, response.text
            body = response.json()
            assert "data" not in body
            assert [e["extensions"]["code"] for e in body["errors"]] == ["UNAUTHENTICATED"]
    for refresh_token in (target.refresh_token, second["refreshToken"]):
        refreshed = await gql.data(REFRESH, {"input": {"refreshToken": refresh_token}})
        assert refreshed["refreshSession"] == {
            "__typename": "InvalidTokenError",
            "code": "UNAUTHENTICATED",
        }
    # The right password no longer signs in, and says no more than a wrong one would.
    assert await sign_in(gql, target.email, target.password) == {
        "__typename": "InvalidCredentialsError",
        "code": "INVALID_CREDENTIALS",
    }

    data = await gql.data(ENABLE, {"input": {"userId": target.id}}, token=staff.admin.token)
    assert data["enableUser"]["user"]["disabled"] is False
    again = await sign_in(gql, target.email, target.password)
    assert again["__typename"] == "SignInSuccess"
    seen = await gql.data(VIEWER, token=again["accessToken"])
    assert seen["viewer"] == {"id": target.id, "role": "USER", "disabled": False}
    # Enabling does not bring back the sessions that disabling ended.
    assert (await gql.post(VIEWER, token=target.token)).status_code == 401


async def test_a_disabled_admin_loses_their_rights(
    gql: GraphQLClient, staff: Staff, make_account: MakeAccount, db: AsyncEngine
) -> None:
    other_admin = await make_account("Second Admin")
    await promote(db, other_admin, "ADMIN")
    data = await gql.data(DISABLE, {"input": {"userId": staff.admin.id}}, token=other_admin.token)
    assert data["disableUser"]["user"]["disabled"] is True
    response = await gql.post(
        SET_ROLE, {"input": {"userId": staff.user.id, "role": "ADMIN"}}, token=staff.admin.token
    )
    assert response.status_code == 401
    assert (await row_of(db, staff.user)).role == Role.USER


# Moderation ---------------------------------------------------------------------------------


@dataclass
class Holdings:
    market_id: UUID
    market_gid: str
    holders: list[UUID]
    other_market: UUID


async def seed_holdings(
    db: AsyncEngine,
    settings: Settings,
    owner: Account,
    api_holder: Account,
    status: MarketStatus = MarketStatus.ACTIVE,
) -> Holdings:
    """A market with three holders (one API account with both outcomes) and a second market."""
    seed = Seed()
    seed.existing_user(api_holder.uuid, settings.starting_balance)
    ann = seed.user("Refund Ann")
    ben = seed.user("Refund Ben")
    tag = uuid.uuid4().hex[:10]
    market = seed.market(owner.uuid, f"Refund {tag}?", status=status)
    elsewhere = seed.market(owner.uuid, f"Refund elsewhere {tag}?")
    at = now() - timedelta(minutes=5)
    seed.buy(api_holder.uuid, market, Outcome.YES, Decimal(6), at)
    seed.buy(api_holder.uuid, market, Outcome.NO, Decimal(2), at + timedelta(seconds=1))
    seed.buy(ann.id, market, Outcome.YES, Decimal(3), at + timedelta(seconds=2))
    seed.buy(ben.id, market, Outcome.NO, Decimal(5), at + timedelta(seconds=3))
    seed.buy(ann.id, elsewhere, Outcome.YES, Decimal(4), at + timedelta(seconds=4))
    await seed.save(db)
    return Holdings(
        market.id, market.gid, [api_holder.uuid, ann.id, ben.id], other_market=elsewhere.id
    )


async def balances(db: AsyncEngine, ids: list[UUID]) -> dict[UUID, Decimal]:
    async with db.connect() as conn:
        rows = await conn.execute(sa.select(users.c.id, users.c.balance).where(users.c.id.in_(ids)))
        return {row.id: row.balance for row in rows}


async def cost_bases(db: AsyncEngine, market_id: UUID) -> dict[UUID, Decimal]:
    async with db.connect() as conn:
        rows = await conn.execute(
            sa.select(positions.c.user_id, positions.c.cost_basis).where(
                positions.c.market_id == market_id
            )
        )
        totals: dict[UUID, Decimal] = defaultdict(Decimal)
        for row in rows:
            totals[row.user_id] += row.cost_basis
        return dict(totals)


async def refunds(db: AsyncEngine, market_id: UUID) -> list[tuple[UUID, Decimal]]:
    """Refunded per user (one entry per refunded position), by user id."""
    async with db.connect() as conn:
        rows = await conn.execute(
            sa.select(ledger_entries.c.user_id, ledger_entries.c.amount).where(
                ledger_entries.c.market_id == market_id,
                ledger_entries.c.kind == LedgerKind.REFUND,
            )
        )
        totals: dict[UUID, Decimal] = defaultdict(Decimal)
        for row in rows:
            totals[row.user_id] += row.amount
        return sorted(totals.items())


async def assert_ledger_balances(db: AsyncEngine, ids: list[UUID]) -> None:
    """Each balance is the sum of that user's ledger entries, to the last decimal."""
    async with db.connect() as conn:
        rows = await conn.execute(
            sa.select(ledger_entries.c.user_id, ledger_entries.c.amount).where(
                ledger_entries.c.user_id.in_(ids)
            )
        )
        sums: dict[UUID, Decimal] = defaultdict(Decimal)
        for row in rows:
            sums[row.user_id] += row.amount
    stored = await balances(db, ids)
    assert stored == {ident: sums[ident] for ident in ids}


async def market_status(db: AsyncEngine, market_id: UUID) -> MarketStatus:
    async with db.connect() as conn:
        status = (
            await conn.execute(sa.select(markets.c.status).where(markets.c.id == market_id))
        ).scalar_one()
    return MarketStatus(status)


@pytest.mark.parametrize("status", [MarketStatus.ACTIVE, MarketStatus.CLOSED])
async def test_cancelling_refunds_every_holder_once(
    gql: GraphQLClient,
    staff: Staff,
    db: AsyncEngine,
    settings: Settings,
    status: MarketStatus,
) -> None:
    held = await seed_holdings(db, settings, staff.target, staff.user, status)
    everyone = [*held.holders, staff.target.uuid, staff.moderator.uuid]
    basis = await cost_bases(db, held.market_id)
    assert set(basis) == set(held.holders)
    assert all(amount > 0 for amount in basis.values())
    before = await balances(db, everyone)
    elsewhere_before = await cost_bases(db, held.other_market)
    await assert_ledger_balances(db, everyone)

    variables = {"input": {"id": held.market_gid}}
    data = await gql.data(CANCEL_WITH_JOB, variables, token=staff.moderator.token)
    result = data["cancelMarket"]
    assert result["market"] == {"id": held.market_gid, "status": "CANCELLED"}
    assert result["job"]["kind"] == "MARKET_REFUND"
    # The market is cancelled at once; the refunds are the job's.
    job = await wait_for_job(gql, result["job"]["id"], staff.moderator.token)
    assert job["state"] == "COMPLETE", job
    after = await balances(db, everyone)
    assert after == {ident: before[ident] + basis.get(ident, Decimal(0)) for ident in everyone}
    assert await refunds(db, held.market_id) == sorted(basis.items())
    assert await refunds(db, held.other_market) == []
    assert await cost_bases(db, held.other_market) == elsewhere_before
    await assert_ledger_balances(db, everyone)

    again = await gql.data(CANCEL, variables, token=staff.admin.token)
    assert again["cancelMarket"] == {"__typename": "InvalidStateError", "code": "INVALID_STATE"}
    assert await balances(db, everyone) == after
    assert await refunds(db, held.market_id) == sorted(basis.items())
    await assert_ledger_balances(db, everyone)


@pytest.mark.parametrize("status", [MarketStatus.RESOLVED, MarketStatus.CANCELLED])
async def test_only_active_or_closed_markets_can_be_cancelled(
    gql: GraphQLClient, staff: Staff, db: AsyncEngine, settings: Settings, status: MarketStatus
) -> None:
    held = await seed_holdings(db, settings, staff.target, staff.user, status)
    before = await balances(db, held.holders)
    data = await gql.data(CANCEL, {"input": {"id": held.market_gid}}, token=staff.admin.token)
    assert data["cancelMarket"] == {"__typename": "InvalidStateError", "code": "INVALID_STATE"}
    assert await market_status(db, held.market_id) is status
    assert await balances(db, held.holders) == before
    assert await refunds(db, held.market_id) == []


@pytest.mark.parametrize(
    "status", [MarketStatus.CLOSED, MarketStatus.RESOLVED, MarketStatus.CANCELLED]
)
async def test_only_an_active_market_can_be_closed(
    gql: GraphQLClient, staff: Staff, db: AsyncEngine, settings: Settings, status: MarketStatus
) -> None:
    held = await seed_holdings(db, settings, staff.target, staff.user, status)
    data = await gql.data(CLOSE, {"input": {"id": held.market_gid}}, token=staff.moderator.token)
    assert data["closeMarket"] == {"__typename": "InvalidStateError", "code": "INVALID_STATE"}
    assert await market_status(db, held.market_id) is status


async def test_closing_keeps_the_holdings(
    gql: GraphQLClient, staff: Staff, db: AsyncEngine, settings: Settings
) -> None:
    held = await seed_holdings(db, settings, staff.target, staff.user)
    basis = await cost_bases(db, held.market_id)
    before = await balances(db, held.holders)
    data = await gql.data(CLOSE, {"input": {"id": held.market_gid}}, token=staff.moderator.token)
    assert data["closeMarket"]["market"]["status"] == "CLOSED"
    assert await market_status(db, held.market_id) is MarketStatus.CLOSED
    assert await cost_bases(db, held.market_id) == basis
    assert await balances(db, held.holders) == before
    assert await refunds(db, held.market_id) == []


@pytest.mark.parametrize("field", ["closeMarket", "cancelMarket"])
async def test_moderating_an_unknown_or_malformed_market_id(
    gql: GraphQLClient, staff: Staff, field: str
) -> None:
    document = CLOSE if field == "closeMarket" else CANCEL
    token = staff.moderator.token
    nowhere = global_id("Market", uuid.uuid4())
    data = await gql.data(document, {"input": {"id": nowhere}}, token=token)
    assert data[field] == {"__typename": "NotFoundError", "code": "NOT_FOUND"}
    for wrong in (staff.user.id, "not-an-id"):
        data = await gql.data(document, {"input": {"id": wrong}}, token=token)
        assert data[field] == {
            "__typename": "ValidationError",
            "field": "id",
            "code": "VALIDATION_FAILED",
        }
