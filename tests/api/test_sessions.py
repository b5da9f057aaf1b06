"""Sessions over HTTP: refresh rotation, the reuse grace window, reuse detection, the
absolute lifetime, sign-out, password change.

Time is moved by moving the stored moments back (when a token was spent, when a
session began), the only clock a test can turn without waiting.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from domain.services.sessions import hash_refresh_token
from infra.db.models import refresh_tokens, sessions
from tests.support import PASSWORD, GraphQLClient, MakeAccount, expect_throttle_status

pytestmark = pytest.mark.embedded

REFRESH = """
mutation ($token: String!) {
  refreshSession(input: {refreshToken: $token}) {
    __typename
    ... on RefreshSessionSuccess { accessToken refreshToken refreshTokenExpiresAt user { id } }
    ... on Error { code message }
  }
}
"""
SIGN_IN = """
mutation ($input: SignInInput!) {
  signIn(input: $input) {
    __typename
    ... on SignInSuccess { accessToken refreshToken }
    ... on Error { code message }
  }
}
"""
CHANGE_PASSWORD = """
mutation ($input: ChangePasswordInput!) {
  changePassword(input: $input) {
    __typename
    ... on ValidationError { field }
    ... on Error { code }
  }
}
"""
VIEWER = "{ viewer { id } }"


async def _refresh(gql: GraphQLClient, token: str) -> dict[str, Any]:
    data = await gql.data(REFRESH, {"token": token})
    result: dict[str, Any] = data["refreshSession"]
    return result


async def _viewer_status(gql: GraphQLClient, token: str) -> int:
    return (await gql.post(VIEWER, token=token)).status_code


GRACE = timedelta(seconds=10)
LIFETIME = timedelta(days=90)


async def _spent_longer_ago(db: AsyncEngine, token: str, by: timedelta) -> None:
    """Move the moment ``token`` was spent back by ``by``."""
    row = refresh_tokens.c.token_hash == hash_refresh_token(token)
    async with db.begin() as conn:
        used_at = (await conn.execute(sa.select(refresh_tokens.c.used_at).where(row))).scalar()
        assert used_at is not None, "the token has not been spent"
        await conn.execute(sa.update(refresh_tokens).where(row).values(used_at=used_at - by))


async def _session_began(db: AsyncEngine, token: str, ago: timedelta) -> datetime:
    """Make the session of ``token`` begin ``ago`` before now; returns the new start."""
    began = datetime.now().astimezone() - ago
    session_id = (
        sa.select(refresh_tokens.c.session_id)
        .where(refresh_tokens.c.token_hash == hash_refresh_token(token))
        .scalar_subquery()
    )
    async with db.begin() as conn:
        await conn.execute(
            sa.update(sessions).where(sessions.c.id == session_id).values(created_at=began)
        )
    return began


async def test_refresh_rotates_the_refresh_token(
    gql: GraphQLClient, make_account: MakeAccount, backend: str
) -> None:
    account = await make_account("Rotator")
    first = await _refresh(gql, account.refresh_token)
    assert first["__typename"] == "RefreshSessionSuccess"
    assert first["user"]["id"] == account.id
    assert first["refreshToken"] != account.refresh_token
    assert (await gql.data(VIEWER, token=first["accessToken"]))["viewer"]["id"] == account.id
    second = await _refresh(gql, first["refreshToken"])
    assert second["__typename"] == "RefreshSessionSuccess"


async def test_a_token_presented_again_within_the_grace_window_gets_a_sibling(
    gql: GraphQLClient, make_account: MakeAccount, backend: str
) -> None:
    account = await make_account("Two Tabs")
    first = await _refresh(gql, account.refresh_token)
    again = await _refresh(gql, account.refresh_token)  # the other tab, a moment later
    assert again["__typename"] == "RefreshSessionSuccess", again
    assert again["refreshToken"] not in (account.refresh_token, first["refreshToken"])
    # Both tabs carry on: each refresh token and each access token works.
    for tab in (first, again):
        assert (await gql.data(VIEWER, token=tab["accessToken"]))["viewer"]["id"] == account.id
        assert (await _refresh(gql, tab["refreshToken"]))["__typename"] == "RefreshSessionSuccess"


async def test_twenty_concurrent_refreshes_of_one_token_all_succeed(
    gql: GraphQLClient, make_account: MakeAccount, backend: str
) -> None:
    account = await make_account("Many Tabs")
    results = await asyncio.gather(*(_refresh(gql, account.refresh_token) for _ in range(20)))
    assert [r["__typename"] for r in results] == ["RefreshSessionSuccess"] * 20, results
    assert len({r["refreshToken"] for r in results}) == 20
    viewers = await asyncio.gather(*(gql.data(VIEWER, token=r["accessToken"]) for r in results))
    assert [v["viewer"]["id"] for v in viewers] == [account.id] * 20
    # The session survived: the original access token and the new refresh tokens still work.
    assert await _viewer_status(gql, account.token) == 200
    later = await _refresh(gql, results[-1]["refreshToken"])
    assert later["__typename"] == "RefreshSessionSuccess"


async def test_reuse_of_a_spent_token_revokes_the_whole_family(
    gql: GraphQLClient, make_account: MakeAccount, db: AsyncEngine, backend: str
) -> None:
    account = await make_account("Reuse Victim")
    legit = await _refresh(gql, account.refresh_token)  # the holder rotates
    await _spent_longer_ago(db, account.refresh_token, GRACE + timedelta(seconds=1))
    stolen = await _refresh(gql, account.refresh_token)  # an attacker replays the old one
    assert stolen["__typename"] == "InvalidTokenError"
    assert stolen["code"] == "UNAUTHENTICATED"
    # The family is gone: the legitimate holder's next refresh fails too ...
    after = await _refresh(gql, legit["refreshToken"])
    assert after["__typename"] == "InvalidTokenError"
    # ... and so do the session's access tokens.
    assert await _viewer_status(gql, legit["accessToken"]) == 401


async def test_the_grace_window_runs_from_the_first_use(
    gql: GraphQLClient, make_account: MakeAccount, db: AsyncEngine, backend: str
) -> None:
    account = await make_account("Slow Replay")
    await _refresh(gql, account.refresh_token)
    await _spent_longer_ago(db, account.refresh_token, GRACE - timedelta(seconds=2))
    inside = await _refresh(gql, account.refresh_token)
    assert inside["__typename"] == "RefreshSessionSuccess"
    # The sibling did not restart the window: a little later the same token revokes.
    await _spent_longer_ago(db, account.refresh_token, timedelta(seconds=3))
    outside = await _refresh(gql, account.refresh_token)
    assert outside["__typename"] == "InvalidTokenError"
    assert (await _refresh(gql, inside["refreshToken"]))["__typename"] == "InvalidTokenError"


async def test_reuse_in_one_family_leaves_other_sessions_alone(
    gql: GraphQLClient, make_account: MakeAccount, db: AsyncEngine, backend: str
) -> None:
    account = await make_account("Two Devices")
    other = await gql.data(SIGN_IN, {"input": {"email": account.email, "password": PASSWORD}})
    await _refresh(gql, account.refresh_token)
    await _spent_longer_ago(db, account.refresh_token, GRACE + timedelta(seconds=1))
    killed = await _refresh(gql, account.refresh_token)  # reuse kills the first family only
    assert killed["__typename"] == "InvalidTokenError"
    still = await _refresh(gql, other["signIn"]["refreshToken"])
    assert still["__typename"] == "RefreshSessionSuccess"


async def test_rotation_never_extends_the_absolute_lifetime(
    gql: GraphQLClient, make_account: MakeAccount, db: AsyncEngine, backend: str
) -> None:
    account = await make_account("Long Session")
    began = await _session_began(db, account.refresh_token, LIFETIME - timedelta(days=1))
    token = account.refresh_token
    for _ in range(3):
        rotated = await _refresh(gql, token)
        assert rotated["__typename"] == "RefreshSessionSuccess", rotated
        # A day of lifetime is left, so the token lasts a day, not a refresh TTL of 30.
        assert datetime.fromisoformat(rotated["refreshTokenExpiresAt"]) == began + LIFETIME
        token = rotated["refreshToken"]


async def test_a_session_ends_at_its_absolute_lifetime(
    gql: GraphQLClient, make_account: MakeAccount, db: AsyncEngine, backend: str
) -> None:
    account = await make_account("Expired Session")
    rotated = await _refresh(gql, account.refresh_token)
    await _session_began(db, account.refresh_token, LIFETIME + timedelta(seconds=1))
    ended = await _refresh(gql, rotated["refreshToken"])
    assert ended["__typename"] == "InvalidTokenError"
    # Its access tokens die with it, though they have minutes of their own left.
    assert await _viewer_status(gql, rotated["accessToken"]) == 401


async def test_an_unknown_refresh_token_is_refused(gql: GraphQLClient, backend: str) -> None:
    result = await _refresh(gql, "not-a-token-we-issued")
    assert result["__typename"] == "InvalidTokenError"


async def test_sign_out_ends_this_session_only(
    gql: GraphQLClient, make_account: MakeAccount, backend: str
) -> None:
    account = await make_account("Signing Out")
    other = await gql.data(SIGN_IN, {"input": {"email": account.email, "password": PASSWORD}})
    done = await gql.data("mutation { signOut { signedOut } }", token=account.token)
    assert done["signOut"]["signedOut"] is True
    assert await _viewer_status(gql, account.token) == 401
    assert (await _refresh(gql, account.refresh_token))["__typename"] == "InvalidTokenError"
    assert await _viewer_status(gql, other["signIn"]["accessToken"]) == 200


async def test_sign_out_needs_a_session(gql: GraphQLClient, backend: str) -> None:
    payload = await gql("mutation { signOut { signedOut } }")
    assert payload["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


async def test_change_password_ends_other_sessions(
    gql: GraphQLClient, make_account: MakeAccount, backend: str
) -> None:
    account = await make_account("Changer")
    other = await gql.data(SIGN_IN, {"input": {"email": account.email, "password": PASSWORD}})
    new_password = "a much better passphrase"
    changed = await gql.data(
        CHANGE_PASSWORD,
        {"input": {"currentPassword": PASSWORD, "newPassword": new_password}},
        token=account.token,
    )
    assert changed["changePassword"]["__typename"] == "ChangePasswordSuccess"
    assert await _viewer_status(gql, account.token) == 200
    assert await _viewer_status(gql, other["signIn"]["accessToken"]) == 401
    old = await gql.data(SIGN_IN, {"input": {"email": account.email, "password": PASSWORD}})
    assert old["signIn"]["__typename"] == "InvalidCredentialsError"
    new = await gql.data(SIGN_IN, {"input": {"email": account.email, "password": new_password}})
    assert new["signIn"]["__typename"] == "SignInSuccess"


async def test_change_password_requires_the_current_password(
    gql: GraphQLClient, make_account: MakeAccount, backend: str
) -> None:
    account = await make_account("Guessing Changer")
    wrong = await gql.data(
        CHANGE_PASSWORD,
        {"input": {"currentPassword": "not the password", "newPassword": "whatever12345"}},
        token=account.token,
    )
    assert wrong["changePassword"]["__typename"] == "InvalidCredentialsError"
    short = await gql.data(
        CHANGE_PASSWORD,
        {"input": {"currentPassword": PASSWORD, "newPassword": "short"}},
        token=account.token,
    )
    assert short["changePassword"] == {
        "__typename": "ValidationError",
        "field": "newPassword",
        "code": "VALIDATION_FAILED",
    }
    assert await _viewer_status(gql, account.token) == 200


async def test_sign_in_and_refresh_show_the_user_their_own_private_fields(
    gql: GraphQLClient, make_account: MakeAccount, backend: str
) -> None:
    account = await make_account("Sees Self")
    signed = await gql.data(
        "mutation ($input: SignInInput!) { signIn(input: $input) {"
        " ... on SignInSuccess { refreshToken user { email balance } } } }",
        {"input": {"email": account.email, "password": PASSWORD}},
    )
    assert signed["signIn"]["user"]["email"] == account.email
    assert signed["signIn"]["user"]["balance"] is not None
    refreshed = await gql.data(
        "mutation ($t: String!) { refreshSession(input: {refreshToken: $t}) {"
        " ... on RefreshSessionSuccess { user { email } } } }",
        {"t": signed["signIn"]["refreshToken"]},
    )
    assert refreshed["refreshSession"]["user"]["email"] == account.email


async def test_guessing_the_current_password_is_throttled(
    gql: GraphQLClient, make_account: MakeAccount, backend: str
) -> None:
    account = await make_account("Stolen Token")
    fields = " ".join(
        f'a{i}: changePassword(input: {{currentPassword: "guess number {i}",'
        ' newPassword: "attacker chosen pw"}) { __typename }'
        for i in range(10)
    )
    payload = await gql(f"mutation {{ {fields} }}", token=account.token)
    ran = [v["__typename"] for v in payload["data"].values() if v is not None]
    limited = [e for e in payload["errors"] if e["extensions"]["code"] == "RATE_LIMITED"]
    assert ran == ["InvalidCredentialsError"] * 5
    assert len(limited) == 5
    # Even the right current password waits out the window now.
    right = expect_throttle_status(
        await gql.post(
            CHANGE_PASSWORD,
            {"input": {"currentPassword": PASSWORD, "newPassword": "a new good password"}},
            token=account.token,
        )
    )
    assert right["errors"][0]["extensions"]["code"] == "RATE_LIMITED"
    assert right["data"] == {"changePassword": None}
