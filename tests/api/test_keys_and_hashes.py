"""Signing-key rotation and password rehashing on sign-in."""

from __future__ import annotations

import dataclasses
import uuid

import httpx
import jwt
import sqlalchemy as sa
from argon2 import PasswordHasher as Argon2
from sqlalchemy.ext.asyncio import AsyncEngine

from infra.db.models import users
from infra.settings import Settings
from tests.support import PASSWORD, GraphQLClient, LiveServer, MakeAccount

SIGN_IN = (
    "mutation ($input: SignInInput!) { signIn(input: $input) {"
    " __typename ... on SignInSuccess { accessToken } } }"
)


async def test_tokens_signed_with_the_previous_key_still_verify(
    settings: Settings, gql: GraphQLClient, make_account: MakeAccount
) -> None:
    account = await make_account("Across Rotation")
    assert jwt.get_unverified_header(account.token)["kid"] == settings.jwt_keys[0][0]
    rotated = dataclasses.replace(
        settings, jwt_keys=(("next", uuid.uuid4().hex * 2), *settings.jwt_keys)
    )
    live = LiveServer(rotated)
    live.start()
    try:
        async with httpx.AsyncClient(base_url=live.url, timeout=30) as http:
            new = GraphQLClient(http)
            # The old key still verifies ...
            viewer = await new.data("{ viewer { id } }", token=account.token)
            assert viewer["viewer"]["id"] == account.id
            # ... and new tokens are signed with the new one,
            signed = await new.data(
                SIGN_IN, {"input": {"email": account.email, "password": PASSWORD}}
            )
            token = signed["signIn"]["accessToken"]
            assert jwt.get_unverified_header(token)["kid"] == "next"
    finally:
        live.stop()
    # which a server that does not know the new key refuses.
    response = await gql.post("{ viewer { id } }", token=token)
    assert response.status_code == 401


async def test_sign_in_rehashes_a_password_hashed_with_old_parameters(
    gql: GraphQLClient, make_account: MakeAccount, db: AsyncEngine
) -> None:
    account = await make_account("Old Hash")
    weak = Argon2(time_cost=1, memory_cost=8192, parallelism=1).hash(PASSWORD)
    async with db.begin() as conn:
        await conn.execute(
            sa.update(users).where(users.c.id == account.uuid).values(password_hash=weak)
        )
    signed = await gql.data(SIGN_IN, {"input": {"email": account.email, "password": PASSWORD}})
    assert signed["signIn"]["__typename"] == "SignInSuccess"
    async with db.connect() as conn:
        stored = (
            await conn.execute(sa.select(users.c.password_hash).where(users.c.id == account.uuid))
        ).scalar_one()
    assert stored != weak
    assert "m=19456,t=2,p=1" in stored
    assert Argon2().verify(stored, PASSWORD)
