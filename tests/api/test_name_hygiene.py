"""Names over the API: one spelling per name (NFC), nothing invisible, for markets and users."""

from __future__ import annotations

import unicodedata
import uuid

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from infra.db.models import markets, users
from tests.conftest import CREATE_MARKET, future
from tests.support import PASSWORD, SIGN_UP, GraphQLClient, MakeAccount


async def test_names_differing_only_in_normalisation_are_one_name(
    gql: GraphQLClient, make_account: MakeAccount, db: AsyncEngine
) -> None:
    account = await make_account("Normaliser")
    tag = uuid.uuid4().hex[:8]
    composed = f"Will Z\u00fcrich win {tag}?"
    decomposed = unicodedata.normalize("NFD", composed)
    assert decomposed != composed

    first = await gql.data(
        CREATE_MARKET, {"input": {"name": decomposed, "endDate": future()}}, token=account.token
    )
    assert first["createMarket"]["__typename"] == "CreateMarketSuccess"
    assert first["createMarket"]["market"]["name"] == composed

    second = await gql.data(
        CREATE_MARKET, {"input": {"name": composed, "endDate": future()}}, token=account.token
    )
    assert second["createMarket"]["__typename"] == "ConflictError"
    assert second["createMarket"]["field"] == "name"

    async with db.connect() as conn:
        stored = (
            await conn.execute(sa.select(markets.c.name).where(markets.c.name.contains(tag)))
        ).scalars()
        assert list(stored) == [composed]


async def test_a_market_name_with_a_direction_override_is_refused(
    gql: GraphQLClient, make_account: MakeAccount, db: AsyncEngine
) -> None:
    account = await make_account("Bidi Tester")
    tag = uuid.uuid4().hex[:8]
    data = await gql.data(
        CREATE_MARKET,
        {"input": {"name": f"Will {tag} \u202eniw?", "endDate": future()}},
        token=account.token,
    )
    result = data["createMarket"]
    assert result["__typename"] == "ValidationError"
    assert result["field"] == "name"
    assert "U+202E" in result["message"]
    async with db.connect() as conn:
        count = await conn.execute(
            sa.select(sa.func.count()).select_from(markets).where(markets.c.name.contains(tag))
        )
        assert count.scalar_one() == 0


async def test_display_names_are_stored_in_nfc_and_refuse_invisible_characters(
    gql: GraphQLClient, db: AsyncEngine
) -> None:
    email = f"nfc.{uuid.uuid4().hex[:10]}@example.com"
    signed = await gql.data(
        SIGN_UP,
        {"input": {"email": email, "password": PASSWORD, "displayName": "Jose\u0301"}},
    )
    assert signed["signUp"]["__typename"] == "SignUpSuccess"
    async with db.connect() as conn:
        name = (
            await conn.execute(sa.select(users.c.display_name).where(users.c.email == email))
        ).scalar_one()
    assert name == "Jos\u00e9"

    refused = await gql(
        SIGN_UP,
        {
            "input": {
                "email": f"zw.{uuid.uuid4().hex[:10]}@example.com",
                "password": PASSWORD,
                "displayName": "ad\u200bmin",
            }
        },
    )
    assert refused["data"]["signUp"]["__typename"] == "ValidationError"
