"""Forged cursors over real HTTP: whatever a cursor decodes to, the answer is a valid page
or BAD_USER_INPUT naming the argument, never an internal error.

Generated cases are bounded per connection (CI time); every sort key of
``markets`` (both directions, forward and backward) and of each child
connection gets its own run.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, timedelta, timezone
from typing import Any

import httpx
import orjson
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from tests.support import PASSWORD, LiveServer

pytestmark = pytest.mark.embedded


@dataclass(frozen=True)
class Target:
    """A connection field, the sort its cursors are made for, and how to ask for it."""

    name: str
    sort: str
    argument: str
    document: str


_FIELDS = ("VOLUME", "CREATED_AT", "END_DATE", "NAME")
_MARKETS = [
    Target(
        f"markets {field} {direction} {argument}",
        f"markets:{field}:{direction}",
        argument,
        f"query ($c: String!) {{ markets(orderBy: {{field: {field}, direction: {direction}}},"
        f" {'after' if argument == 'after' else 'last: 5, before'}: $c) {{"
        " totalCount edges { cursor node { id } } } }",
    )
    for field in _FIELDS
    for direction in ("ASC", "DESC")
    for argument in ("after", "before")
]
_CHILDREN = [
    Target(
        "user.markets",
        "creator-markets:created_at:desc",
        "after",
        "query ($c: String!, $u: ID!, $m: ID!) { user(id: $u) { markets(after: $c) {"
        " totalCount edges { cursor } } } market(id: $m) { id } }",
    ),
    Target(
        "user.positions",
        "user-positions:created_at:asc",
        "after",
        "query ($c: String!, $u: ID!, $m: ID!) { user(id: $u) { positions(after: $c) {"
        " totalCount edges { cursor } } } market(id: $m) { id } }",
    ),
    Target(
        "market.positions",
        "positions:created_at:asc",
        "after",
        "query ($c: String!, $u: ID!, $m: ID!) { market(id: $m) { positions(after: $c) {"
        " totalCount edges { cursor } } } user(id: $u) { id } }",
    ),
]
TARGETS = _MARKETS + _CHILDREN
SORTS = sorted({target.sort for target in TARGETS})


def encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)  # what orjson writes
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=5), children, max_size=4)
    ),
    max_leaves=8,
)
offsets = st.sampled_from([UTC, timezone(timedelta(hours=14)), timezone(timedelta(hours=-12))])
sort_values = st.one_of(
    st.integers(min_value=-(10**10), max_value=10**10).map(lambda e: f"1e{e}"),
    st.integers(min_value=-(10**40), max_value=10**40).map(str),
    st.decimals(allow_nan=True, allow_infinity=True).map(str),
    st.datetimes(timezones=offsets).map(lambda moment: moment.isoformat()),
    st.datetimes().map(lambda moment: moment.isoformat()),  # naive
    st.text(max_size=30),
    st.sampled_from(["9999-12-31T23:59:59-12:00", "0001-01-01T00:00:00+14:00", "\x00"]),
    json_values,
)
idents = st.one_of(
    st.uuids().map(lambda ident: ident.hex),
    st.uuids().map(str),
    st.text(max_size=40),
    json_values,
)


@st.composite
def cursors(draw: st.DrawFn, target: Target) -> str:
    """Cursors of every shape: well-formed triples with bad parts, any JSON, any bytes,
    and strings that are not base64 at all."""
    sort = draw(st.one_of(st.just(target.sort), st.sampled_from(SORTS), st.text(max_size=30)))
    triple = [sort, draw(sort_values), draw(idents)]
    shape = draw(st.integers(min_value=0, max_value=9))
    if shape < 6:
        return encode(orjson.dumps(triple))
    if shape == 6:
        return encode(orjson.dumps(draw(json_values)))
    if shape == 7:
        return encode(draw(st.binary(max_size=120)))
    if shape == 8:
        # JSON orjson does not write (lone surrogates, numbers beyond 64 bits or a
        # double), spelled by hand.
        value = draw(
            st.sampled_from(['"\\ud800"', "1e999999", "-1e999999", "1" * 400])
            | st.integers().map(str)
        )
        return encode(f'["{target.sort}", {value}, "{uuid.uuid4().hex}"]'.encode())
    return draw(st.text(max_size=60))


@dataclass
class World:
    client: httpx.Client
    user_id: str
    market_id: str


@pytest.fixture(scope="module")
def world(server: LiveServer) -> Iterator[World]:
    """A user with a market, whose child connections the forged cursors are sent to."""
    with httpx.Client(base_url=server.url, timeout=30) as client:

        def call(query: str, variables: dict[str, Any], token: str | None = None) -> Any:
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            response = client.post(
                "/graphql", json={"query": query, "variables": variables}, headers=headers
            )
            payload = response.json()
            assert "errors" not in payload, payload
            return payload["data"]

        email = f"cursor.{uuid.uuid4().hex[:10]}@example.com"
        user = call(
            "mutation ($i: SignUpInput!) { signUp(input: $i) {"
            " ... on SignUpSuccess { user { id } } } }",
            {"i": {"email": email, "password": PASSWORD, "displayName": "Cursor"}},
        )["signUp"]["user"]["id"]
        token = call(
            "mutation ($i: SignInInput!) { signIn(input: $i) {"
            " ... on SignInSuccess { accessToken } } }",
            {"i": {"email": email, "password": PASSWORD}},
        )["signIn"]["accessToken"]
        market = call(
            "mutation ($i: CreateMarketInput!) { createMarket(input: $i) {"
            " ... on CreateMarketSuccess { market { id } } } }",
            {"i": {"name": f"Cursor market {uuid.uuid4().hex}", "endDate": "2099-01-01T00:00:00Z"}},
            token,
        )["createMarket"]["market"]["id"]
        yield World(client, user, market)


def ask(world: World, target: Target, cursor: str) -> dict[str, Any]:
    variables: dict[str, Any] = {"c": cursor}
    if target in _CHILDREN:
        variables |= {"u": world.user_id, "m": world.market_id}
    response = world.client.post(
        "/graphql", json={"query": target.document, "variables": variables}
    )
    assert response.status_code == 200, response.text
    payload: dict[str, Any] = response.json()
    return payload


def assert_refused_or_served(payload: dict[str, Any], target: Target) -> None:
    errors = payload.get("errors", [])
    codes = [error["extensions"]["code"] for error in errors]
    assert "INTERNAL_SERVER_ERROR" not in codes, payload
    event("refused" if errors else "a page")
    if errors:
        assert codes == ["BAD_USER_INPUT"], payload
        assert errors[0]["extensions"]["argument"] == target.argument
        assert f"'{target.argument}'" in errors[0]["message"]
    else:
        assert payload["data"] is not None


IDS = [target.name for target in TARGETS]


@pytest.mark.parametrize("target", TARGETS, ids=IDS)
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_a_forged_cursor_is_bad_user_input_never_an_internal_error(
    world: World, target: Target, data: st.DataObject
) -> None:
    cursor = data.draw(cursors(target), label="cursor")
    assert_refused_or_served(ask(world, target, cursor), target)


VOLUME = [target for target in _MARKETS if target.sort.startswith("markets:VOLUME:")]


@pytest.mark.parametrize("target", VOLUME, ids=[target.name for target in VOLUME])
@pytest.mark.parametrize("value", ["1e999999999", "-1e-999999999", "NaN", "-Infinity", "1e11"])
def test_amounts_no_row_can_hold_are_refused(world: World, target: Target, value: str) -> None:
    payload = ask(world, target, encode(orjson.dumps([target.sort, value, uuid.uuid4().hex])))
    assert payload["errors"][0]["extensions"] == {
        "code": "BAD_USER_INPUT",
        "argument": target.argument,
    }


@pytest.mark.parametrize("target", VOLUME, ids=[target.name for target in VOLUME])
def test_a_zero_with_a_huge_exponent_is_just_zero(world: World, target: Target) -> None:
    payload = ask(
        world, target, encode(orjson.dumps([target.sort, "0E+999999999", uuid.uuid4().hex]))
    )
    assert "errors" not in payload, payload
    assert payload["data"]["markets"]["totalCount"] >= 1


def test_the_cursor_of_the_issue_is_refused(world: World) -> None:
    target = next(t for t in _MARKETS if t.sort == "markets:VOLUME:DESC" and t.argument == "after")
    forged = encode(orjson.dumps(["markets:VOLUME:DESC", "1e999999999", str(uuid.uuid4())]))
    payload = ask(world, target, forged)
    assert payload["data"] is None
    assert payload["errors"][0]["extensions"] == {"code": "BAD_USER_INPUT", "argument": "after"}


def test_cursors_the_server_issued_still_page(world: World) -> None:
    target = _CHILDREN[0]
    page = world.client.post(
        "/graphql",
        json={
            "query": "query ($u: ID!) { user(id: $u) { markets(first: 1) { edges { cursor } } } }",
            "variables": {"u": world.user_id},
        },
    ).json()
    cursor = page["data"]["user"]["markets"]["edges"][0]["cursor"]
    after = ask(world, target, cursor)
    assert "errors" not in after, after
    assert after["data"]["user"]["markets"]["edges"] == []
    assert after["data"]["user"]["markets"]["totalCount"] == 1
    # The same cursor under another list's sort is refused.
    elsewhere = ask(world, _CHILDREN[2], cursor)
    assert elsewhere["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
