"""Sessions over HTTP: refresh rotation, reuse detection, sign-out, password change."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support import PASSWORD, GraphQLClient, MakeAccount

pytestmark = pytest.mark.embedded

REFRESH = """
mutation ($token: String!) {
  refreshSession(input: {refreshToken: $token}) {
    __typename
    ... on RefreshSessionSuccess { accessToken refreshToken user { id } }
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


async def test_reuse_of_a_spent_token_revokes_the_whole_family(
    gql: GraphQLClient, make_account: MakeAccount, backend: str
) -> None:
    account = await make_account("Reuse Victim")
    legit = await _refresh(gql, account.refresh_token)  # the holder rotates
    stolen = await _refresh(gql, account.refresh_token)  # an attacker replays the old one
    assert stolen["__typename"] == "InvalidTokenError"
    assert stolen["code"] == "UNAUTHENTICATED"
    # The family is gone: the legitimate holder's next refresh fails too ...
    after = await _refresh(gql, legit["refreshToken"])
    assert after["__typename"] == "InvalidTokenError"
    # ... and so do the session's access tokens.
    assert await _viewer_status(gql, legit["accessToken"]) == 401


async def test_reuse_in_one_family_leaves_other_sessions_alone(
    gql: GraphQLClient, make_account: MakeAccount, backend: str
) -> None:
    account = await make_account("Two Devices")
    other = await gql.data(SIGN_IN, {"input": {"email": account.email, "password": PASSWORD}})
    await _refresh(gql, account.refresh_token)
    await _refresh(gql, account.refresh_token)  # reuse kills the first family only
    still = await _refresh(gql, other["signIn"]["refreshToken"])
    assert still["__typename"] == "RefreshSessionSuccess"


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
    right = await gql(
        CHANGE_PASSWORD,
        {"input": {"currentPassword": PASSWORD, "newPassword": "a new good password"}},
        token=account.token,
    )
    assert right["errors"][0]["extensions"]["code"] == "RATE_LIMITED"
    assert right["data"] == {"changePassword": None}
