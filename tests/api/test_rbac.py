"""Every guarded mutation, once per role: allowed, or refused with the exact code.

The roles are anonymous, a plain user who does not own the market, the plain
user who created it (the owner), a moderator and an admin (neither of them the
owner). What each may do is derived from ``ROLE_PERMISSIONS`` (pinned to the
issue by tests/unit/test_policy.py), and every refusal is checked to have
left the market as it was.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from domain.entities import Role
from domain.policy import ROLE_PERMISSIONS, Permission
from tests.support import Account, GraphQLClient, MakeAccount, MakeMarket, promote

pytestmark = pytest.mark.embedded

ROLES = ["anonymous", "user", "owner", "moderator", "admin"]
ROLE_OF = {
    "user": Role.USER,
    "owner": Role.USER,
    "moderator": Role.MODERATOR,
    "admin": Role.ADMIN,
}
OK = "OK"

CREATE = """
mutation ($input: CreateMarketInput!) {
  createMarket(input: $input) {
    __typename
    ... on CreateMarketSuccess { market { id name creator { id } } }
    ... on Error { code }
  }
}
"""
UPDATE = """
mutation ($input: UpdateMarketInput!) {
  updateMarket(input: $input) {
    __typename
    ... on UpdateMarketSuccess { market { id name } }
    ... on Error { code }
  }
}
"""
DELETE = """
mutation ($input: DeleteMarketInput!) {
  deleteMarket(input: $input) {
    __typename
    ... on DeleteMarketSuccess { deletedId }
    ... on Error { code }
  }
}
"""
CLOSE = """
mutation ($input: MarketIdInput!) {
  closeMarket(input: $input) {
    __typename
    ... on MarketChangeSuccess { market { id status } }
    ... on Error { code }
  }
}
"""
CANCEL = """
mutation ($input: MarketIdInput!) {
  cancelMarket(input: $input) {
    __typename
    ... on MarketChangeSuccess { market { id status } }
    ... on Error { code }
  }
}
"""
SET_ROLE = """
mutation ($input: SetUserRoleInput!) {
  setUserRole(input: $input) {
    __typename
    ... on UserChangeSuccess { user { id role } }
    ... on Error { code }
  }
}
"""
SIGN_OUT = "mutation { signOut { signedOut } }"
SIGN_OUT_EVERYWHERE = "mutation { signOutEverywhere { signedOut } }"
CHANGE_PASSWORD = """
mutation ($input: ChangePasswordInput!) {
  changePassword(input: $input) {
    __typename
    ... on Error { code }
  }
}
"""
REFRESH = """
mutation ($input: RefreshSessionInput!) {
  refreshSession(input: $input) { __typename ... on Error { code } }
}
"""
SIGN_IN = """
mutation ($input: SignInInput!) {
  signIn(input: $input) { __typename ... on SignInSuccess { accessToken } ... on Error { code } }
}
"""
MARKET = "query ($id: ID!) { market(id: $id) { id name status } }"
VIEWER = "{ viewer { id role permissions } }"
PRIVATE_OF = "query ($id: ID!) { user(id: $id) { id email balance } }"


@dataclass
class Cast:
    """One account per role; ``owner`` created ``market``."""

    accounts: dict[str, Account]
    market: dict[str, Any]

    def token(self, role: str) -> str | None:
        return None if role == "anonymous" else self.accounts[role].token


@pytest.fixture
async def cast(make_account: MakeAccount, make_market: MakeMarket, db: AsyncEngine) -> Cast:
    accounts = {role: await make_account(f"Rbac {role}") for role in ROLE_OF}
    for role in ("moderator", "admin"):
        await promote(db, accounts[role], ROLE_OF[role].value)
    market = await make_market(accounts["owner"])
    return Cast(accounts, market)


def future() -> str:
    return (datetime.now(UTC) + timedelta(days=30)).isoformat()


def granted(role: str, permission: Permission) -> bool:
    return role != "anonymous" and permission in ROLE_PERMISSIONS[ROLE_OF[role]]


def guarded(role: str, permission: Permission) -> str:
    """A mutation behind a permission class: refused at the top level."""
    if role == "anonymous":
        return "UNAUTHENTICATED"
    return OK if granted(role, permission) else "FORBIDDEN"


def owned(role: str, own: Permission, any_: Permission) -> str:
    """An ownership rule: anonymous is refused at the top level, the rest get a result."""
    if role == "anonymous":
        return "UNAUTHENTICATED"
    if granted(role, any_) or (role == "owner" and granted(role, own)):
        return OK
    return "FORBIDDEN"


def refused(payload: dict[str, Any], field: str, code: str) -> None:
    """A top-level error on ``field`` with ``code``; the mutation's result is null."""
    assert payload["data"] == {field: None}, payload
    errors = payload["errors"]
    assert [e["extensions"]["code"] for e in errors] == [code], errors
    assert errors[0]["path"] == [field], errors


async def status_of(gql: GraphQLClient, market_id: str) -> dict[str, Any] | None:
    data = await gql.data(MARKET, {"id": market_id})
    market: dict[str, Any] | None = data["market"]
    return market


def test_the_expectations_follow_the_issue() -> None:
    """The derived expectations, spelled out once, so a wrong derivation cannot hide."""
    assert [guarded(r, Permission.MARKET_CLOSE) for r in ROLES] == [
        "UNAUTHENTICATED",
        "FORBIDDEN",
        "FORBIDDEN",
        OK,
        OK,
    ]
    update = [owned(r, Permission.MARKET_UPDATE_OWN, Permission.MARKET_UPDATE_ANY) for r in ROLES]
    assert update == ["UNAUTHENTICATED", "FORBIDDEN", OK, "FORBIDDEN", OK]
    assert [guarded(r, Permission.USER_MANAGE) for r in ROLES] == [
        "UNAUTHENTICATED",
        "FORBIDDEN",
        "FORBIDDEN",
        "FORBIDDEN",
        OK,
    ]


@pytest.mark.parametrize("role", ROLES)
async def test_create_market(gql: GraphQLClient, cast: Cast, role: str) -> None:
    name = f"Rbac create {uuid.uuid4().hex[:10]}?"
    variables = {"input": {"name": name, "endDate": future()}}
    payload = await gql(CREATE, variables, token=cast.token(role))
    listed = await gql.data(
        "query ($n: String!) { markets(filter: {nameContains: $n}) { totalCount } }", {"n": name}
    )
    expected = guarded(role, Permission.MARKET_CREATE)
    if expected != OK:
        refused(payload, "createMarket", expected)
        assert listed["markets"]["totalCount"] == 0
        return
    result = payload["data"]["createMarket"]
    assert result["__typename"] == "CreateMarketSuccess", result
    assert result["market"]["name"] == name
    assert result["market"]["creator"]["id"] == cast.accounts[role].id
    assert listed["markets"]["totalCount"] == 1


@pytest.mark.parametrize("role", ROLES)
async def test_update_market(gql: GraphQLClient, cast: Cast, role: str) -> None:
    market = cast.market
    name = f"Rbac renamed {uuid.uuid4().hex[:10]}?"
    payload = await gql(
        UPDATE, {"input": {"id": market["id"], "name": name}}, token=cast.token(role)
    )
    after = await status_of(gql, market["id"])
    assert after is not None
    expected = owned(role, Permission.MARKET_UPDATE_OWN, Permission.MARKET_UPDATE_ANY)
    if expected == "UNAUTHENTICATED":
        refused(payload, "updateMarket", expected)
    elif expected == "FORBIDDEN":
        result = payload["data"]["updateMarket"]
        assert result == {"__typename": "ForbiddenError", "code": "FORBIDDEN"}
    else:
        result = payload["data"]["updateMarket"]
        assert result == {
            "__typename": "UpdateMarketSuccess",
            "market": {"id": market["id"], "name": name},
        }
        assert after["name"] == name
        return
    assert after["name"] == market["name"]


@pytest.mark.parametrize("role", ROLES)
async def test_delete_market(gql: GraphQLClient, cast: Cast, role: str) -> None:
    market = cast.market
    payload = await gql(DELETE, {"input": {"id": market["id"]}}, token=cast.token(role))
    after = await status_of(gql, market["id"])
    expected = owned(role, Permission.MARKET_DELETE_OWN, Permission.MARKET_DELETE_ANY)
    if expected == "UNAUTHENTICATED":
        refused(payload, "deleteMarket", expected)
    elif expected == "FORBIDDEN":
        result = payload["data"]["deleteMarket"]
        assert result == {"__typename": "ForbiddenError", "code": "FORBIDDEN"}
    else:
        result = payload["data"]["deleteMarket"]
        assert result == {"__typename": "DeleteMarketSuccess", "deletedId": market["id"]}
        assert after is None
        return
    assert after is not None
    assert after["name"] == market["name"]


@pytest.mark.parametrize(
    ("field", "document", "permission", "status"),
    [
        ("closeMarket", CLOSE, Permission.MARKET_CLOSE, "CLOSED"),
        ("cancelMarket", CANCEL, Permission.MARKET_CANCEL, "CANCELLED"),
    ],
)
@pytest.mark.parametrize("role", ROLES)
async def test_moderation(
    gql: GraphQLClient,
    cast: Cast,
    role: str,
    field: str,
    document: str,
    permission: Permission,
    status: str,
) -> None:
    market = cast.market
    payload = await gql(document, {"input": {"id": market["id"]}}, token=cast.token(role))
    after = await status_of(gql, market["id"])
    assert after is not None
    expected = guarded(role, permission)
    if expected != OK:
        refused(payload, field, expected)
        assert after["status"] == "ACTIVE"
        return
    result = payload["data"][field]
    assert result == {
        "__typename": "MarketChangeSuccess",
        "market": {"id": market["id"], "status": status},
    }
    assert after["status"] == status


@pytest.mark.parametrize(
    ("field", "document", "variables"),
    [
        ("signOut", SIGN_OUT, None),
        ("signOutEverywhere", SIGN_OUT_EVERYWHERE, None),
        (
            "changePassword",
            CHANGE_PASSWORD,
            {"input": {"currentPassword": "whatever1", "newPassword": "whatever2"}},
        ),
    ],
)
async def test_session_mutations_need_a_signed_in_user(
    gql: GraphQLClient, field: str, document: str, variables: dict[str, Any] | None
) -> None:
    refused(await gql(document, variables), field, "UNAUTHENTICATED")


@pytest.mark.parametrize("role", ["user", "moderator", "admin"])
@pytest.mark.parametrize("field", ["signOut", "signOutEverywhere"])
async def test_every_role_may_sign_out(
    gql: GraphQLClient, cast: Cast, role: str, field: str
) -> None:
    account = cast.accounts[role]
    document = SIGN_OUT if field == "signOut" else SIGN_OUT_EVERYWHERE
    data = await gql.data(document, token=account.token)
    assert data[field] == {"signedOut": True}
    # The session has ended, so its refresh token is refused too.
    refreshed = await gql.data(REFRESH, {"input": {"refreshToken": account.refresh_token}})
    assert refreshed["refreshSession"] == {
        "__typename": "InvalidTokenError",
        "code": "UNAUTHENTICATED",
    }


@pytest.mark.parametrize("role", ["user", "moderator", "admin"])
async def test_every_role_may_change_their_password(
    gql: GraphQLClient, cast: Cast, role: str
) -> None:
    account = cast.accounts[role]
    new = f"new password {uuid.uuid4().hex[:8]}"
    data = await gql.data(
        CHANGE_PASSWORD,
        {"input": {"currentPassword": account.password, "newPassword": new}},
        token=account.token,
    )
    assert data["changePassword"] == {"__typename": "ChangePasswordSuccess"}
    signed = await gql.data(SIGN_IN, {"input": {"email": account.email, "password": new}})
    assert signed["signIn"]["__typename"] == "SignInSuccess"


async def test_a_promotion_takes_effect_on_the_next_request(
    gql: GraphQLClient, cast: Cast, db: AsyncEngine
) -> None:
    user = cast.accounts["user"]
    variables = {"input": {"id": cast.market["id"]}}
    refused(await gql(CLOSE, variables, token=user.token), "closeMarket", "FORBIDDEN")
    before = await gql.data(VIEWER, token=user.token)
    assert before["viewer"]["role"] == "USER"
    assert "market:close" not in before["viewer"]["permissions"]

    await promote(db, user, "MODERATOR")
    # The same token, unchanged: the role is read from the database on every request.
    after = await gql.data(VIEWER, token=user.token)
    assert after["viewer"]["role"] == "MODERATOR"
    assert sorted(after["viewer"]["permissions"]) == sorted(
        p.value for p in ROLE_PERMISSIONS[Role.MODERATOR]
    )
    closed = await gql.data(CLOSE, variables, token=user.token)
    assert closed["closeMarket"]["market"]["status"] == "CLOSED"


async def test_demoting_an_admin_removes_their_rights_at_once(
    gql: GraphQLClient, cast: Cast, db: AsyncEngine
) -> None:
    admin = cast.accounts["admin"]
    other = cast.accounts["user"]
    seen = await gql.data(PRIVATE_OF, {"id": other.id}, token=admin.token)
    assert seen["user"]["email"] == other.email
    promoted = await gql.data(
        SET_ROLE, {"input": {"userId": other.id, "role": "MODERATOR"}}, token=admin.token
    )
    assert promoted["setUserRole"]["user"] == {"id": other.id, "role": "MODERATOR"}

    await promote(db, admin, "USER")
    payload = await gql(
        SET_ROLE, {"input": {"userId": other.id, "role": "USER"}}, token=admin.token
    )
    refused(payload, "setUserRole", "FORBIDDEN")
    still = await gql.data(PRIVATE_OF, {"id": other.id}, token=other.token)
    assert still["user"]["email"] == other.email
    roles = await gql.data(VIEWER, token=other.token)
    assert roles["viewer"]["role"] == "MODERATOR"
    hidden = await gql.data(PRIVATE_OF, {"id": other.id}, token=admin.token)
    assert hidden["user"] == {"id": other.id, "email": None, "balance": None}
    renamed = await gql.data(
        UPDATE, {"input": {"id": cast.market["id"], "name": "Not yours?"}}, token=admin.token
    )
    assert renamed["updateMarket"] == {"__typename": "ForbiddenError", "code": "FORBIDDEN"}


async def test_demoting_a_moderator_removes_moderation_at_once(
    gql: GraphQLClient, cast: Cast, db: AsyncEngine
) -> None:
    moderator = cast.accounts["moderator"]
    await promote(db, moderator, "USER")
    variables = {"input": {"id": cast.market["id"]}}
    refused(await gql(CLOSE, variables, token=moderator.token), "closeMarket", "FORBIDDEN")
    refused(await gql(CANCEL, variables, token=moderator.token), "cancelMarket", "FORBIDDEN")
    after = await status_of(gql, cast.market["id"])
    assert after is not None
    assert after["status"] == "ACTIVE"


async def test_a_role_set_through_the_api_takes_effect_on_the_next_request(
    gql: GraphQLClient, cast: Cast
) -> None:
    admin = cast.accounts["admin"]
    user = cast.accounts["user"]
    variables = {"input": {"id": cast.market["id"]}}
    refused(await gql(CANCEL, variables, token=user.token), "cancelMarket", "FORBIDDEN")
    data = await gql.data(
        SET_ROLE, {"input": {"userId": user.id, "role": "MODERATOR"}}, token=admin.token
    )
    assert data["setUserRole"]["__typename"] == "UserChangeSuccess"
    cancelled = await gql.data(CANCEL, variables, token=user.token)
    assert cancelled["cancelMarket"]["market"]["status"] == "CANCELLED"
