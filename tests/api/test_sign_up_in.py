"""signUp and signIn over real HTTP: typed errors, the ledger invariant, no half-applied writes."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import jwt
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from infra.db.models import ledger_entries, users
from infra.settings import Settings
from tests.support import GraphQLClient

pytestmark = pytest.mark.embedded

PASSWORD = "a sturdy passphrase"

SIGN_UP = """
mutation ($input: SignUpInput!) {
  signUp(input: $input) {
    __typename
    ... on SignUpSuccess { user { id displayName email balance } }
    ... on ValidationError { field }
    ... on ConflictError { field }
    ... on Error { message code }
  }
}
"""
SIGN_IN = """
mutation ($input: SignInInput!) {
  signIn(input: $input) {
    __typename
    ... on SignInSuccess { accessToken tokenType expiresAt user { id displayName } }
    ... on Error { message code }
  }
}
"""
VIEWER = "{ viewer { id displayName email balance } }"


def unique_email(tag: str = "user") -> str:
    return f"{tag}.{uuid.uuid4().hex[:12]}@example.com"


async def sign_up(
    gql: GraphQLClient, email: str, password: str = PASSWORD, display_name: str = "Trader"
) -> dict[str, Any]:
    data = await gql.data(
        SIGN_UP, {"input": {"email": email, "password": password, "displayName": display_name}}
    )
    result: dict[str, Any] = data["signUp"]
    return result


async def sign_in(gql: GraphQLClient, email: str, password: str = PASSWORD) -> dict[str, Any]:
    data = await gql.data(SIGN_IN, {"input": {"email": email, "password": password}})
    result: dict[str, Any] = data["signIn"]
    return result


async def users_with_email(db: AsyncEngine, email: str) -> list[Any]:
    """Rows whose email matches in any letter case (the uniqueness the API promises)."""
    async with db.connect() as conn:
        result = await conn.execute(
            sa.select(users.c.id, users.c.email, users.c.balance).where(
                sa.func.lower(users.c.email) == email.strip().lower()
            )
        )
        return list(result.all())


async def table_count(db: AsyncEngine, table: sa.Table) -> int:
    async with db.connect() as conn:
        return int((await conn.execute(sa.select(sa.func.count()).select_from(table))).scalar_one())


async def ledger_of(db: AsyncEngine, user_id: uuid.UUID) -> list[tuple[str, Decimal]]:
    async with db.connect() as conn:
        rows = await conn.execute(
            sa.select(ledger_entries.c.kind, ledger_entries.c.amount).where(
                ledger_entries.c.user_id == user_id
            )
        )
        return [(str(kind), amount) for kind, amount in rows.all()]


async def test_sign_up_grants_the_starting_balance_through_one_ledger_entry(
    gql: GraphQLClient, db: AsyncEngine, settings: Settings
) -> None:
    email = unique_email("grant")
    created = await sign_up(gql, email, display_name="Grace Grant")
    assert created["__typename"] == "SignUpSuccess", created
    assert created["user"]["displayName"] == "Grace Grant"

    signed = await sign_in(gql, email)
    assert signed["__typename"] == "SignInSuccess", signed
    viewer = (await gql.data(VIEWER, token=signed["accessToken"]))["viewer"]
    assert viewer["id"] == created["user"]["id"] == signed["user"]["id"]
    assert viewer["email"] == email
    assert Decimal(viewer["balance"]) == settings.starting_balance

    [row] = await users_with_email(db, email)
    assert row.balance == settings.starting_balance
    ledger = await ledger_of(db, row.id)
    assert ledger == [("SIGNUP_GRANT", settings.starting_balance)]
    assert sum(amount for _, amount in ledger) == row.balance


async def test_a_new_users_private_fields_are_hidden_from_an_anonymous_caller(
    gql: GraphQLClient,
) -> None:
    created = await sign_up(gql, unique_email("private"))
    assert created["__typename"] == "SignUpSuccess", created
    # signUp does not sign the caller in: they are still anonymous in this request.
    assert created["user"]["email"] is None
    assert created["user"]["balance"] is None


INVALID_SIGN_UPS = [
    pytest.param({"email": "not-an-email"}, "email", id="email-without-at"),
    pytest.param({"email": "@example.com"}, "email", id="email-without-local-part"),
    pytest.param({"email": "someone@"}, "email", id="email-without-domain"),
    pytest.param({"email": "someone@example"}, "email", id="email-domain-without-dot"),
    pytest.param({"email": "two@@example.com"}, "email", id="email-two-ats"),
    pytest.param({"email": "some one@example.com"}, "email", id="email-with-space"),
    pytest.param({"email": "nul\x00byte@example.com"}, "email", id="email-with-nul"),
    pytest.param({"email": ""}, "email", id="email-empty"),
    pytest.param({"email": "x" * 250 + "@example.com"}, "email", id="email-too-long"),
    pytest.param({"password": "seven77"}, "password", id="password-7-chars"),
    pytest.param({"password": "p" * 1025}, "password", id="password-1025-chars"),
    pytest.param({"displayName": ""}, "displayName", id="display-name-empty"),
    pytest.param({"displayName": "   "}, "displayName", id="display-name-blank"),
    pytest.param({"displayName": "n" * 65}, "displayName", id="display-name-65-chars"),
    pytest.param({"displayName": "nul\x00name"}, "displayName", id="display-name-with-nul"),
]


@pytest.mark.parametrize(("overrides", "field"), INVALID_SIGN_UPS)
async def test_sign_up_rejects_invalid_input_without_writing(
    gql: GraphQLClient, db: AsyncEngine, overrides: dict[str, str], field: str
) -> None:
    account = {"email": unique_email("invalid"), "password": PASSWORD, "displayName": "Ivy"}
    account.update(overrides)
    users_before = await table_count(db, users)
    ledger_before = await table_count(db, ledger_entries)

    result = (await gql.data(SIGN_UP, {"input": account}))["signUp"]

    assert result["__typename"] == "ValidationError", result
    assert result["code"] == "VALIDATION_FAILED"
    assert result["field"] == field
    assert result["message"]
    if "\x00" not in account["email"]:  # PostgreSQL cannot even compare text holding NUL
        assert await users_with_email(db, account["email"]) == []
    assert await table_count(db, users) == users_before
    assert await table_count(db, ledger_entries) == ledger_before


@pytest.mark.parametrize(
    ("password", "display_name"),
    [
        pytest.param("p" * 8, "D", id="shortest-password-and-name"),
        pytest.param("p" * 1024, "d" * 64, id="longest-password-and-name"),
    ],
)
async def test_sign_up_accepts_the_boundary_lengths(
    gql: GraphQLClient, password: str, display_name: str
) -> None:
    email = unique_email("boundary")
    created = await sign_up(gql, email, password=password, display_name=display_name)
    assert created["__typename"] == "SignUpSuccess", created
    assert created["user"]["displayName"] == display_name
    signed = await sign_in(gql, email, password=password)
    assert signed["__typename"] == "SignInSuccess", signed


async def test_sign_up_rejects_a_taken_email_in_any_letter_case(
    gql: GraphQLClient, db: AsyncEngine, settings: Settings
) -> None:
    email = f"Case.Taker.{uuid.uuid4().hex[:10]}@Example.com"
    first = await sign_up(gql, email)
    assert first["__typename"] == "SignUpSuccess", first
    users_before = await table_count(db, users)
    ledger_before = await table_count(db, ledger_entries)

    for variant in (email, email.lower(), email.upper(), f"  {email.swapcase()} "):
        again = await sign_up(gql, variant, display_name="Impostor")
        assert again["__typename"] == "ConflictError", (variant, again)
        assert again["code"] == "CONFLICT"
        assert again["field"] == "email"

    [row] = await users_with_email(db, email)
    assert await ledger_of(db, row.id) == [("SIGNUP_GRANT", settings.starting_balance)]
    assert await table_count(db, users) == users_before
    assert await table_count(db, ledger_entries) == ledger_before


async def test_concurrent_sign_ups_with_one_email_create_one_account(
    gql: GraphQLClient, db: AsyncEngine, settings: Settings
) -> None:
    email = unique_email("race")
    variants = [email, email.upper(), email, email.capitalize(), email.upper(), email]

    results = await asyncio.gather(*(sign_up(gql, variant) for variant in variants))

    outcomes = sorted(result["__typename"] for result in results)
    assert outcomes == ["ConflictError"] * (len(variants) - 1) + ["SignUpSuccess"], results
    for result in results:
        if result["__typename"] == "ConflictError":
            assert (result["code"], result["field"]) == ("CONFLICT", "email")
    [row] = await users_with_email(db, email)
    assert await ledger_of(db, row.id) == [("SIGNUP_GRANT", settings.starting_balance)]


async def test_sign_in_returns_a_bearer_token_that_identifies_the_user(
    gql: GraphQLClient, db: AsyncEngine, settings: Settings
) -> None:
    email = unique_email("signin")
    created = await sign_up(gql, email, display_name="Sam Signin")
    assert created["__typename"] == "SignUpSuccess", created

    # Emails are case-insensitive on the way in, too.
    signed = await sign_in(gql, email.upper())
    assert signed["__typename"] == "SignInSuccess", signed
    assert signed["tokenType"] == "Bearer"
    assert signed["user"] == {"id": created["user"]["id"], "displayName": "Sam Signin"}

    claims = jwt.decode(
        signed["accessToken"],
        settings.jwt_secret,
        algorithms=["HS256"],
        audience=settings.jwt_audience,
        issuer=settings.jwt_issuer,
        options={"require": ["exp", "iat", "sub", "jti"]},
    )
    [row] = await users_with_email(db, email)
    assert claims["sub"] == str(row.id)
    assert claims["exp"] > claims["iat"]
    assert datetime.fromisoformat(signed["expiresAt"]) == datetime.fromtimestamp(claims["exp"], UTC)

    viewer = (await gql.data(VIEWER, token=signed["accessToken"]))["viewer"]
    assert viewer["id"] == created["user"]["id"]
    assert viewer["email"] == email


async def test_sign_in_failures_do_not_tell_which_part_was_wrong(
    gql: GraphQLClient, db: AsyncEngine
) -> None:
    email = unique_email("secret")
    assert (await sign_up(gql, email))["__typename"] == "SignUpSuccess"
    disabled_email = unique_email("disabled")
    assert (await sign_up(gql, disabled_email))["__typename"] == "SignUpSuccess"
    async with db.begin() as conn:
        await conn.execute(
            sa.update(users).where(users.c.email == disabled_email).values(disabled=True)
        )

    failures = [
        await sign_in(gql, email, "not the passphrase"),
        await sign_in(gql, email, ""),
        await sign_in(gql, unique_email("nobody"), PASSWORD),
        await sign_in(gql, "not-an-email", PASSWORD),
        await sign_in(gql, disabled_email, PASSWORD),
    ]

    for failure in failures:
        assert failure["__typename"] == "InvalidCredentialsError", failure
        assert failure["code"] == "INVALID_CREDENTIALS"
        assert "accessToken" not in failure
    assert len({failure["message"] for failure in failures}) == 1
