"""Access-token attacks (RFC 8725): each is refused with UNAUTHENTICATED."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy.ext.asyncio import AsyncEngine

from graph.ids import from_global_id
from infra.settings import Settings
from tests.support import Account, GraphQLClient, MakeAccount, promote

VIEWER = "{ viewer { id } }"


def _key(settings: Settings) -> tuple[str, str]:
    return settings.jwt_keys[0]


def _claims(settings: Settings, account: Account, **overrides: Any) -> dict[str, Any]:
    """Claims as the server makes them, from the account's own valid token."""
    claims: dict[str, Any] = jwt.decode(account.token, options={"verify_signature": False})
    claims.update(overrides)
    return claims


def _sign(settings: Settings, claims: dict[str, Any], alg: str = "HS256", **headers: Any) -> str:
    kid, secret = _key(settings)
    return jwt.encode(claims, secret, algorithm=alg, headers={"kid": kid, **headers})


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


async def _refused(gql: GraphQLClient, token: str) -> None:
    response = await gql.post(VIEWER, token=token)
    assert response.status_code == 401, response.text
    assert response.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert "data" not in response.json() or response.json()["data"] is None


async def test_the_genuine_token_is_accepted(gql: GraphQLClient, make_account: MakeAccount) -> None:
    account = await make_account("Genuine")
    data = await gql.data(VIEWER, token=account.token)
    assert data["viewer"]["id"] == account.id


async def test_alg_none_is_refused(
    gql: GraphQLClient, make_account: MakeAccount, settings: Settings
) -> None:
    account = await make_account("Alg None")
    header = {"alg": "none", "typ": "JWT", "kid": _key(settings)[0]}
    segments = [_b64(json.dumps(part).encode()) for part in (header, _claims(settings, account))]
    await _refused(gql, ".".join(segments) + ".")


async def test_rs256_and_key_confusion_are_refused(
    gql: GraphQLClient, make_account: MakeAccount, settings: Settings
) -> None:
    account = await make_account("Key Confusion")
    kid = _key(settings)[0]
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    claims = _claims(settings, account)
    await _refused(gql, jwt.encode(claims, private, algorithm="RS256", headers={"kid": kid}))
    # The classic confusion: HS256 keyed with an RSA public key. Signed by hand, since
    # PyJWT itself refuses to use a PEM key as an HMAC secret.
    public_pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    signing_input = ".".join(
        _b64(json.dumps(part).encode()) for part in ({"alg": "HS256", "kid": kid}, claims)
    )
    signature = hmac.new(public_pem, signing_input.encode(), hashlib.sha256).digest()
    await _refused(gql, f"{signing_input}.{_b64(signature)}")
    # Another HMAC algorithm with the right key: the algorithm is pinned.
    await _refused(gql, _sign(settings, claims, alg="HS512"))


@pytest.mark.parametrize(
    ("name", "overrides"),
    [
        ("expired", {"exp": int(time.time()) - 3600, "iat": int(time.time()) - 7200}),
        ("not yet valid", {"nbf": int(time.time()) + 3600}),
        ("wrong audience", {"aud": "someone-else"}),
        ("wrong issuer", {"iss": "https://evil.example"}),
        ("refresh typ", {"typ": "refresh"}),
        ("unknown user", {"sub": str(uuid.uuid4())}),
    ],
)
async def test_bad_claims_are_refused(
    gql: GraphQLClient,
    make_account: MakeAccount,
    settings: Settings,
    name: str,
    overrides: dict[str, Any],
) -> None:
    account = await make_account(f"Claims {name}")
    await _refused(gql, _sign(settings, _claims(settings, account, **overrides)))


@pytest.mark.parametrize("claim", ["exp", "iat", "sub", "iss", "aud", "jti", "typ", "sid"])
async def test_a_missing_required_claim_is_refused(
    gql: GraphQLClient, make_account: MakeAccount, settings: Settings, claim: str
) -> None:
    account = await make_account(f"Missing {claim}")
    claims = _claims(settings, account)
    del claims[claim]
    await _refused(gql, _sign(settings, claims))


async def test_a_tampered_payload_is_refused(gql: GraphQLClient, make_account: MakeAccount) -> None:
    victim = await make_account("Victim")
    attacker = await make_account("Attacker")
    header, payload, signature = attacker.token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    parsed = from_global_id(victim.id)
    assert parsed is not None
    claims["sub"] = str(parsed[1])
    forged = _b64(json.dumps(claims).encode())
    await _refused(gql, f"{header}.{forged}.{signature}")


async def test_an_unknown_kid_is_refused(
    gql: GraphQLClient, make_account: MakeAccount, settings: Settings
) -> None:
    account = await make_account("Unknown Kid")
    claims = _claims(settings, account)
    token = jwt.encode(claims, _key(settings)[1], algorithm="HS256", headers={"kid": "rotated-out"})
    await _refused(gql, token)


async def test_a_refresh_token_is_not_an_access_token(
    gql: GraphQLClient, make_account: MakeAccount
) -> None:
    account = await make_account("Refresh As Access")
    assert account.refresh_token
    await _refused(gql, account.refresh_token)


async def test_the_token_of_a_disabled_user_is_refused(
    gql: GraphQLClient, make_account: MakeAccount, db: AsyncEngine
) -> None:
    admin = await make_account("Disabling Admin")
    await promote(db, admin, "ADMIN")
    target = await make_account("Soon Disabled")
    assert (await gql.data(VIEWER, token=target.token))["viewer"]["id"] == target.id
    result = await gql.data(
        "mutation ($id: ID!) { disableUser(input: {userId: $id}) { __typename } }",
        {"id": target.id},
        token=admin.token,
    )
    assert result["disableUser"]["__typename"] == "UserChangeSuccess"
    await _refused(gql, target.token)


async def test_a_token_issued_before_sign_out_everywhere_is_refused(
    gql: GraphQLClient, make_account: MakeAccount
) -> None:
    account = await make_account("Everywhere")
    second = await gql.data(
        "mutation ($i: SignInInput!) {"
        " signIn(input: $i) { ... on SignInSuccess { accessToken } } }",
        {"i": {"email": account.email, "password": account.password}},
    )
    other_token = second["signIn"]["accessToken"]
    done = await gql.data("mutation { signOutEverywhere { signedOut } }", token=other_token)
    assert done["signOutEverywhere"]["signedOut"] is True
    await _refused(gql, account.token)
    await _refused(gql, other_token)
