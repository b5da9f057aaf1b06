"""Cursors over real HTTP: any cursor the server did not issue, whatever it decodes to, is
BAD_USER_INPUT naming the argument; the cursors it issued page correctly.

Every sort key of every connection (``markets`` by each field, both directions,
forward and backward; each list under a market or a user) gets its own runs, on both
read paths: on PostgreSQL a compiling server and a resolver-only one (the cursors of
the first are written by SQL, of the second by Python, and must be the same text), on
the embedded SQLite default the resolvers. Generated cases are bounded per connection
(CI time).
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, timedelta, timezone
from typing import Any

import httpx
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from domain.cursors import MAC_BYTES, CursorKey
from infra.settings import Settings
from tests.api.answered import recorded
from tests.api.trading import BUY
from tests.support import PASSWORD, LiveServer

pytestmark = pytest.mark.embedded

PAGE_INFO = "pageInfo { startCursor endCursor hasNextPage hasPreviousPage }"
SELECTION = f"totalCount edges {{ cursor node {{ id }} }} {PAGE_INFO}"


@dataclass(frozen=True)
class Target:
    """A connection, the sort its cursors are made for, and how to ask for a page of it."""

    name: str
    sort: str
    # "after" (forward, ``first``) or "before" (backward, ``last``).
    argument: str
    # Whose list it is: "markets" (the root list, the world user's markets), "user" or
    # "market" (the world's user or first market).
    parent: str
    document: str

    def connection(self, data: dict[str, Any]) -> dict[str, Any]:
        found: dict[str, Any] = (
            data["markets"] if self.parent == "markets" else data[self.parent]["list"]
        )
        return found


_FIELDS = ("VOLUME", "CREATED_AT", "END_DATE", "NAME")
_MARKETS = [
    Target(
        f"markets {field} {direction} {argument}",
        f"markets:{field}:{direction}",
        argument,
        "markets",
        "query ($c: String, $n: Int, $u: ID!) { markets(filter: {creatorId: $u},"
        f" orderBy: {{field: {field}, direction: {direction}}},"
        f" {'first: $n, after' if argument == 'after' else 'last: $n, before'}: $c)"
        f" {{ {SELECTION} }} }}",
    )
    for field in _FIELDS
    for direction in ("ASC", "DESC")
    for argument in ("after", "before")
]
_LISTS = (
    ("user", "markets", "creator-markets:created_at:desc"),
    ("user", "positions", "user-positions:created_at:asc"),
    ("user", "trades", "user-trades:created_at:desc"),
    ("user", "ledger", "user-ledger:created_at:desc"),
    ("market", "positions", "positions:created_at:asc"),
    ("market", "trades", "market-trades:created_at:desc"),
)
_CHILDREN = [
    Target(
        f"{parent}.{field}",
        sort,
        "after",
        parent,
        f"query ($c: String, $n: Int, $p: ID!) {{ {parent}(id: $p) {{"
        f" list: {field}(first: $n, after: $c) {{ {SELECTION} }} }} }}",
    )
    for parent, field, sort in _LISTS
]
TARGETS = _MARKETS + _CHILDREN
SORTS = sorted({target.sort for target in TARGETS})
IDS = [target.name for target in TARGETS]


def encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode(cursor: str) -> bytes:
    return base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))


# --- the world: a user with markets, positions, trades and a ledger ----------------------------


@dataclass
class World:
    # The servers to ask: on PostgreSQL a compiling one and a resolver-only one.
    servers: list[tuple[LiveServer, httpx.Client]]
    compiled: LiveServer | None
    user_id: str
    market_id: str
    token: str
    signing: CursorKey
    # Cursors each target's list gave, per server (the same on every server).
    genuine: dict[str, tuple[str, ...]] = dataclasses.field(default_factory=dict)

    def ask(
        self, client: httpx.Client, target: Target, cursor: str | None, size: int = 5
    ) -> dict[str, Any]:
        variables: dict[str, Any] = {"c": cursor, "n": size}
        if target.parent == "markets":
            variables["u"] = self.user_id
        else:
            variables["p"] = self.user_id if target.parent == "user" else self.market_id
        response = client.post(
            "/graphql",
            json={"query": target.document, "variables": variables},
            headers={"Authorization": f"Bearer {self.token}"},
        )
        assert response.status_code == 200, response.text
        payload: dict[str, Any] = response.json()
        return payload


def _call(
    client: httpx.Client, query: str, variables: dict[str, Any], token: str | None = None
) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = client.post(
        "/graphql", json={"query": query, "variables": variables}, headers=headers
    )
    payload = response.json()
    assert "errors" not in payload, payload
    return payload["data"]


@pytest.fixture(scope="module")
def world(server: LiveServer, settings: Settings, backend: str) -> Iterator[World]:
    resolver = None
    if backend == "postgres":
        resolver = LiveServer(dataclasses.replace(settings, compiled_reads=False))
        resolver.start()
    try:
        with (
            httpx.Client(base_url=server.url, timeout=30) as client,
            httpx.Client(base_url=(resolver or server).url, timeout=30) as other,
        ):
            servers = [(server, client)] + ([(resolver, other)] if resolver else [])
            yield _made(settings, servers, server if server.compiles else None)
    finally:
        if resolver is not None:
            resolver.stop()


def _made(
    settings: Settings, servers: list[tuple[LiveServer, httpx.Client]], compiled: LiveServer | None
) -> World:
    client = servers[0][1]
    email = f"cursor.{uuid.uuid4().hex[:10]}@example.com"
    user = _call(
        client,
        "mutation ($i: SignUpInput!) { signUp(input: $i) {"
        " ... on SignUpSuccess { user { id } } } }",
        {"i": {"email": email, "password": PASSWORD, "displayName": "Cursor"}},
    )["signUp"]["user"]["id"]
    token = _call(
        client,
        "mutation ($i: SignInInput!) { signIn(input: $i) {"
        " ... on SignInSuccess { accessToken } } }",
        {"i": {"email": email, "password": PASSWORD}},
    )["signIn"]["accessToken"]
    markets = [
        _call(
            client,
            "mutation ($i: CreateMarketInput!) { createMarket(input: $i) {"
            " ... on CreateMarketSuccess { market { id } } } }",
            {
                "i": {
                    "name": f"Cursor market {i} {uuid.uuid4().hex}",
                    "endDate": f"209{i}-01-01T00:00:00Z",
                }
            },
            token,
        )["createMarket"]["market"]["id"]
        for i in range(3)
    ]
    # Two positions (and trades) in the first market, one in the second; a ledger entry each.
    for market, outcome, amount in (
        (markets[0], "YES", "3"),
        (markets[0], "NO", "2"),
        (markets[1], "YES", "5"),
    ):
        bought = _call(
            client,
            BUY,
            {"input": {"marketId": market, "outcome": outcome, "amount": amount}},
            token,
        )
        assert bought["buyShares"]["__typename"] == "BuySharesSuccess", bought
    signing = CursorKey.derive(secret for _, secret in settings.jwt_keys)
    return World(servers, compiled, user, markets[0], token, signing)


# --- genuine cursors -------------------------------------------------------------------------


def _walk(world: World, client: httpx.Client, target: Target) -> tuple[list[str], list[str]]:
    """The whole list one item at a time, following the server's own cursors: the ids in
    list order and the cursors met."""
    ids: list[str] = []
    cursors: list[str] = []
    cursor: str | None = None
    forward = target.argument == "after"
    while True:
        payload = world.ask(client, target, cursor, size=1)
        assert "errors" not in payload, payload
        page = target.connection(payload["data"])
        assert len(page["edges"]) == 1, page
        edge = page["edges"][0]
        ids = [*ids, edge["node"]["id"]] if forward else [edge["node"]["id"], *ids]
        cursors.append(edge["cursor"])
        info = page["pageInfo"]
        assert info["startCursor"] == info["endCursor"] == edge["cursor"]
        if not (info["hasNextPage"] if forward else info["hasPreviousPage"]):
            return ids, cursors
        cursor = edge["cursor"]
        assert len(ids) < 20, "the list does not end"


@pytest.mark.parametrize("target", TARGETS, ids=IDS)
def test_the_servers_cursors_page_through_the_whole_list(
    world: World, target: Target, caplog: pytest.LogCaptureFixture
) -> None:
    answers = []
    for server, client in world.servers:
        with recorded(caplog) as paths:
            whole = target.connection(world.ask(client, target, None, size=100)["data"])
            expected = [edge["node"]["id"] for edge in whole["edges"]]
            assert len(expected) >= 2, whole
            ids, cursors = _walk(world, client, target)
        assert ids == expected
        assert sorted(cursors) == sorted(edge["cursor"] for edge in whole["edges"])
        # Each page was answered by the compiling server's compiled path (its cursors were
        # written in SQL), and by the other's resolvers.
        path = "compiled" if server is world.compiled else "resolver"
        assert paths == [path] * (len(ids) + 1)
        answers.append((expected, cursors))
    # Written by SQL on one server and by Python on the other: the same text.
    assert all(answer == answers[0] for answer in answers)
    world.genuine[target.name] = tuple(answers[0][1])


@pytest.mark.parametrize("target", TARGETS, ids=IDS)
def test_a_cursor_is_its_payload_and_the_payloads_truncated_hmac(
    world: World, target: Target
) -> None:
    cursors = _genuine(world, target)
    key = world.signing.keys[0]
    for cursor in cursors:
        raw = decode(cursor)
        payload, mac = raw[:-MAC_BYTES], raw[-MAC_BYTES:]
        made_for, _value, _ident = orjson.loads(payload)
        assert made_for == target.sort
        assert mac == hmac.new(key, payload, hashlib.sha256).digest()[:MAC_BYTES]


def _genuine(world: World, target: Target) -> tuple[str, ...]:
    found = world.genuine.get(target.name)
    if found is None:
        _, client = world.servers[0]
        _, cursors = _walk(world, client, target)
        found = world.genuine[target.name] = tuple(cursors)
    return found


# --- forged cursors --------------------------------------------------------------------------

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
# Values a row could hold, written as the server writes them.
valid_values = st.one_of(
    st.decimals(min_value=0, max_value=10**6, places=8).map(lambda amount: format(amount, "f")),
    st.datetimes(timezones=st.just(UTC)).map(
        lambda moment: moment.isoformat(timespec="microseconds")
    ),
    st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=30),
)
sort_values = st.one_of(
    valid_values,
    st.integers(min_value=-(10**10), max_value=10**10).map(lambda e: f"1e{e}"),
    st.integers(min_value=-(10**40), max_value=10**40).map(str),
    st.decimals(allow_nan=True, allow_infinity=True).map(str),
    st.datetimes(timezones=offsets).map(lambda moment: moment.isoformat()),
    st.datetimes().map(lambda moment: moment.isoformat()),  # naive
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
def payloads(draw: st.DrawFn, target: Target) -> bytes:
    """What a cursor may say: well-formed triples with good or bad parts, any JSON, any
    bytes, JSON orjson does not write."""
    sort = draw(st.one_of(st.just(target.sort), st.sampled_from(SORTS), st.text(max_size=30)))
    shape = draw(st.integers(min_value=0, max_value=9))
    if shape < 3:
        # Well-formed, with values a row could hold: what a forger would write.
        return orjson.dumps([target.sort, draw(valid_values), draw(st.uuids()).hex])
    if shape < 7:
        return orjson.dumps([sort, draw(sort_values), draw(idents)])
    if shape == 7:
        return orjson.dumps(draw(json_values))
    if shape == 8:
        value = draw(
            st.sampled_from(['"\\ud800"', "1e999999", "-1e999999", "1" * 400])
            | st.integers().map(str)
        )
        return f'["{target.sort}", {value}, "{uuid.uuid4().hex}"]'.encode()
    return draw(st.binary(max_size=120))


OTHER_KEY = CursorKey.derive(["another deployment's secret, 32 characters or more"])


@st.composite
def forged(draw: st.DrawFn, target: Target, genuine: tuple[str, ...]) -> str:
    """A cursor the server did not issue."""
    how = draw(st.sampled_from(["unsigned", "other key", "random mac", "byte", "swap", "text"]))
    if how == "unsigned":  # as cursors were before they were signed
        return encode(draw(payloads(target)))
    if how == "other key":
        payload = draw(payloads(target))
        return encode(payload + OTHER_KEY.sign(payload))
    if how == "random mac":
        payload = draw(payloads(target))
        return encode(payload + draw(st.binary(min_size=MAC_BYTES, max_size=MAC_BYTES)))
    cursor = draw(st.sampled_from(genuine))
    raw = decode(cursor)
    if how == "byte":  # one byte of a genuine cursor changed, in its payload or its MAC
        index = draw(st.integers(min_value=0, max_value=len(raw) - 1))
        flip = draw(st.integers(min_value=1, max_value=255))
        return encode(raw[:index] + bytes([raw[index] ^ flip]) + raw[index + 1 :])
    if how == "swap":  # a genuine payload with another genuine cursor's MAC
        other = decode(draw(st.sampled_from([c for c in genuine if c != cursor])))
        return encode(raw[:-MAC_BYTES] + other[-MAC_BYTES:])
    # Any other text: an edit of a genuine cursor's text, or anything at all.
    edited = draw(
        st.one_of(
            st.integers(min_value=0, max_value=len(cursor)).flatmap(
                lambda at: st.text(min_size=1, max_size=3).map(
                    lambda extra: cursor[:at] + extra + cursor[at:]
                )
            ),
            st.just(cursor + "="),
            st.just(cursor[:-1]),
            st.text(max_size=80),
        )
    )
    return edited if edited != cursor else cursor + "A"


def assert_refused(payload: dict[str, Any], target: Target) -> None:
    errors = payload.get("errors")
    assert errors, payload
    assert [error["extensions"] for error in errors] == [
        {"code": "BAD_USER_INPUT", "argument": target.argument}
    ], payload
    assert f"'{target.argument}'" in errors[0]["message"]
    # No page: null where the error stopped (the list, or the object above a non-null one).
    data = payload["data"]
    assert data is None or data[target.parent] is None or data[target.parent]["list"] is None


@pytest.mark.parametrize("target", TARGETS, ids=IDS)
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_a_cursor_the_server_did_not_issue_is_bad_user_input(
    world: World, target: Target, data: st.DataObject
) -> None:
    cursor = data.draw(forged(target, _genuine(world, target)), label="cursor")
    for _server, client in world.servers:
        assert_refused(world.ask(client, target, cursor), target)


# --- signed, yet wrong: the checks behind the signature ------------------------------------


@pytest.mark.parametrize("target", TARGETS, ids=IDS)
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_a_signed_payload_no_row_can_hold_is_refused_never_an_internal_error(
    world: World, target: Target, data: st.DataObject
) -> None:
    """Should the key ever leak (or the server sign something odd), what a cursor holds is
    still checked: a page or BAD_USER_INPUT, never an internal error."""
    payload = data.draw(payloads(target), label="payload")
    cursor = encode(payload + world.signing.sign(payload))
    for _server, client in world.servers:
        answer = world.ask(client, target, cursor)
        if answer.get("errors"):
            assert_refused(answer, target)
        else:
            assert target.connection(answer["data"]) is not None


def _signed(world: World) -> Callable[[list[Any]], str]:
    def sign(triple: list[Any]) -> str:
        payload = orjson.dumps(triple)
        return encode(payload + world.signing.sign(payload))

    return sign


VOLUME = [target for target in _MARKETS if target.sort.startswith("markets:VOLUME:")]


@pytest.mark.parametrize("target", VOLUME, ids=[target.name for target in VOLUME])
@pytest.mark.parametrize("value", ["1e999999999", "-1e-999999999", "NaN", "-Infinity", "1e11"])
def test_amounts_no_row_can_hold_are_refused_even_signed(
    world: World, target: Target, value: str
) -> None:
    cursor = _signed(world)([target.sort, value, uuid.uuid4().hex])
    for _server, client in world.servers:
        assert_refused(world.ask(client, target, cursor), target)


@pytest.mark.parametrize("target", VOLUME, ids=[target.name for target in VOLUME])
def test_a_signed_zero_with_a_huge_exponent_is_just_zero(world: World, target: Target) -> None:
    cursor = _signed(world)([target.sort, "0E+999999999", uuid.uuid4().hex])
    for _server, client in world.servers:
        answer = world.ask(client, target, cursor)
        assert "errors" not in answer, answer
        assert target.connection(answer["data"])["totalCount"] == 3


def test_the_cursor_of_the_issue_is_refused(world: World) -> None:
    target = next(t for t in _MARKETS if t.sort == "markets:VOLUME:DESC" and t.argument == "after")
    triple = ["markets:VOLUME:DESC", "1e999999999", str(uuid.uuid4())]
    for cursor in (encode(orjson.dumps(triple)), _signed(world)(triple)):
        for _server, client in world.servers:
            assert_refused(world.ask(client, target, cursor), target)


def test_a_well_formed_unsigned_cursor_of_a_real_row_is_refused(world: World) -> None:
    """What the server used to accept: the exact payload of a genuine cursor, unsigned."""
    for target in TARGETS:
        genuine = _genuine(world, target)[0]
        unsigned = encode(decode(genuine)[:-MAC_BYTES])
        for _server, client in world.servers:
            assert_refused(world.ask(client, target, unsigned), target)


def test_a_cursor_of_another_list_is_refused(world: World) -> None:
    user_markets = next(t for t in _CHILDREN if t.sort == "creator-markets:created_at:desc")
    market_positions = next(t for t in _CHILDREN if t.sort == "positions:created_at:asc")
    cursor = _genuine(world, user_markets)[0]
    for _server, client in world.servers:
        answer = world.ask(client, user_markets, cursor)
        assert "errors" not in answer, answer
        # Signed, but made for another sort order.
        assert_refused(world.ask(client, market_positions, cursor), market_positions)
