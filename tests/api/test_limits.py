"""Hostile documents over real HTTP: each refused with a clear 4xx or coded error before
anything executes (no SQL statement runs), while the server keeps answering.

The figures come from the defaults (README, "Limits"): 2,000 tokens, depth 12
(introspection 15), 30 aliases, 50 directives, 10,000 selections, 20
operations, cost 1,000, pages of 1 to 100, 1 MB bodies.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson
import pytest
from graphql import get_introspection_query

from tests.support import LiveServer
from tests.unit.test_cost import fan_out

pytestmark = pytest.mark.embedded

STRICT = {"Accept": "application/graphql-response+json"}


async def post(
    http: httpx.AsyncClient, query: str, variables: dict[str, Any] | None = None, **extra: Any
) -> httpx.Response:
    body: dict[str, Any] = {"query": query, **extra}
    if variables is not None:
        body["variables"] = variables
    return await http.post("/graphql", json=body, headers=STRICT)


async def refused(
    http: httpx.AsyncClient, server: LiveServer, response: httpx.Response, status: int, code: str
) -> dict[str, Any]:
    """The response refuses the request with ``code``; nothing ran; the server still answers."""
    assert response.status_code == status, response.text
    payload: dict[str, Any] = response.json()
    assert "data" not in payload
    error: dict[str, Any] = payload["errors"][0]
    assert error["extensions"]["code"] == code, error
    assert server.sql.count == 0, server.sql.statements
    health = await http.get("/health")
    assert health.status_code == 200
    return error


@pytest.fixture(autouse=True)
def quiet(server: LiveServer) -> None:
    server.sql.reset()


def chain(times: int) -> str:
    """Markets, each with its creator's markets, ``times`` levels down (3 depth per level)."""
    inner = "id"
    for _ in range(times):
        inner = f"id creator {{ markets(first: 1) {{ nodes {{ {inner} }} }} }}"
    return f"{{ markets(first: 1) {{ nodes {{ {inner} }} }} }}"


def introspection_chain(depth: int) -> str:
    inner = "name"
    for _ in range(depth - 5):  # __schema types fields type ... name
        inner = f"ofType {{ {inner} }}"
    return f"{{ __schema {{ types {{ fields {{ type {{ {inner} }} }} }} }} }}"


# --- what is admitted ----------------------------------------------------------------------


async def test_the_standard_introspection_query_is_admitted(
    http: httpx.AsyncClient, backend: str
) -> None:
    response = await post(http, get_introspection_query())
    assert response.status_code == 200, response.text
    payload = response.json()
    assert "errors" not in payload
    assert payload["data"]["__schema"]["queryType"]["name"] == "Query"
    assert payload["extensions"]["cost"]["requestedQueryCost"] == 100


async def test_aliases_of_the_whole_schema_are_refused_for_their_cost(
    http: httpx.AsyncClient, server: LiveServer, backend: str
) -> None:
    # 29 aliases of __schema, within the alias limit: 3.3 MB of answer when they ran.
    standard = get_introspection_query(descriptions=True, specified_by_url=True)
    operation, fragments = standard.split("\nfragment", 1)
    selection = operation[operation.index("__schema") + len("__schema") : operation.rindex("}")]
    aliases = " ".join(f"s{i}: __schema {selection}" for i in range(29))
    document = f"query {{ {aliases} }}\nfragment{fragments}"
    assert len(document) < 12_000
    error = await refused(http, server, await post(http, document), 400, "QUERY_TOO_COMPLEX")
    assert error["extensions"]["limit"] == "cost"
    assert error["extensions"]["measured"] == 29 * 100


async def test_an_ordinary_depth_runs(http: httpx.AsyncClient, backend: str) -> None:
    response = await post(http, chain(2))  # depth 9
    assert response.status_code == 200, response.text
    assert "errors" not in response.json()


async def test_a_document_under_the_token_cap_runs(http: httpx.AsyncClient, backend: str) -> None:
    response = await post(http, "{ " + " ".join(["__typename"] * 100) + " }")
    assert response.status_code == 200
    assert response.json()["data"] == {"__typename": "Query"}


async def test_thirty_aliases_run(http: httpx.AsyncClient, backend: str) -> None:
    fields = " ".join(f"a{i}: __typename" for i in range(30))
    response = await post(http, f"{{ {fields} }}")
    assert response.status_code == 200
    assert len(response.json()["data"]) == 30


async def test_every_response_carries_its_cost(http: httpx.AsyncClient, backend: str) -> None:
    response = await post(http, "{ markets(first: 3) { nodes { id creator { id } } } }")
    cost = response.json()["extensions"]["cost"]
    assert cost["requestedQueryCost"] == 2 + 3 * 2
    returned = len(response.json()["data"]["markets"]["nodes"])
    assert cost["actualQueryCost"] == 2 + returned * 2


async def test_cost_explain_breaks_the_cost_down_and_runs_nothing(
    http: httpx.AsyncClient, server: LiveServer, backend: str
) -> None:
    response = await post(
        http,
        "{ markets(first: 3) { nodes { id creator { id } } } }",
        extensions={"costExplain": True},
    )
    assert response.status_code == 200
    payload = response.json()
    assert "data" not in payload
    assert payload["extensions"]["cost"]["requestedQueryCost"] == 8
    rows = {row["path"]: row for row in payload["extensions"]["costExplain"]}
    assert rows["markets"]["cost"] == 8
    assert rows["markets"]["items"] == 3
    assert rows["markets.nodes.creator"]["cost"] == 1
    assert server.sql.count == 0


# --- what is refused -----------------------------------------------------------------------


async def test_a_document_over_the_token_cap_is_refused_before_validation(
    http: httpx.AsyncClient, server: LiveServer, backend: str
) -> None:
    # Every `a:__typename` is three tokens; braces add two.
    fields = " ".join(f"a{i}:__typename" for i in range(2_000 // 3 + 1))
    error = await refused(
        http, server, await post(http, f"{{ {fields} }}"), 400, "QUERY_TOO_COMPLEX"
    )
    # Parsing stops at the first token past the cap: the rest is never read, so the
    # measured value is that token's number.
    assert error["extensions"] == {
        "code": "QUERY_TOO_COMPLEX",
        "limit": "tokens",
        "maximum": 2_000,
        "measured": 2_001,
    }
    assert "2,000" in error["message"]


async def test_a_document_padded_with_comments_is_refused_at_the_token_cap(
    http: httpx.AsyncClient, server: LiveServer, backend: str
) -> None:
    document = "{ __typename\n" + "#\n" * 5_000 + "}"
    error = await refused(http, server, await post(http, document), 400, "QUERY_TOO_COMPLEX")
    assert error["extensions"]["limit"] == "tokens"
    assert error["extensions"]["measured"] == 2_001


async def test_the_thirty_first_alias_is_refused(
    http: httpx.AsyncClient, server: LiveServer, backend: str
) -> None:
    fields = " ".join(f"a{i}: __typename" for i in range(31))
    error = await refused(
        http, server, await post(http, f"{{ {fields} }}"), 400, "QUERY_TOO_COMPLEX"
    )
    assert error["extensions"] == {
        "code": "QUERY_TOO_COMPLEX",
        "limit": "aliases",
        "maximum": 30,
        "measured": 31,
    }


async def test_aliases_hidden_in_fragments_are_counted(
    http: httpx.AsyncClient, server: LiveServer, backend: str
) -> None:
    fields = " ".join(f"a{i}: __typename" for i in range(8))
    document = f"query {{ ...F ...F ...F ...F }} fragment F on Query {{ {fields} }}"
    error = await refused(http, server, await post(http, document), 400, "QUERY_TOO_COMPLEX")
    assert error["extensions"]["measured"] == 32


async def test_a_thousand_aliases_are_refused(
    http: httpx.AsyncClient, server: LiveServer, backend: str
) -> None:
    fields = " ".join(f"a{i}: __typename" for i in range(1_000))
    response = await post(http, f"{{ {fields} }}")
    error = await refused(http, server, response, 400, "QUERY_TOO_COMPLEX")
    assert error["extensions"]["limit"] == "tokens"  # 3,002 tokens: refused before counting


async def test_depth_beyond_the_cap_is_refused(
    http: httpx.AsyncClient, server: LiveServer, backend: str
) -> None:
    error = await refused(http, server, await post(http, chain(4)), 400, "QUERY_TOO_COMPLEX")
    assert error["extensions"]["limit"] == "depth"
    assert error["extensions"]["measured"] == 15


async def test_depth_fifty_is_refused(
    http: httpx.AsyncClient, server: LiveServer, backend: str
) -> None:
    error = await refused(http, server, await post(http, chain(16)), 400, "QUERY_TOO_COMPLEX")
    assert error["extensions"]["measured"] == 51


async def test_depth_fifty_through_introspection_is_refused(
    http: httpx.AsyncClient, server: LiveServer, backend: str
) -> None:
    response = await post(http, introspection_chain(50))
    error = await refused(http, server, response, 400, "QUERY_TOO_COMPLEX")
    assert error["extensions"]["limit"] == "introspectionDepth"
    assert error["extensions"]["measured"] == 50


async def test_fifty_one_directives_are_refused(
    http: httpx.AsyncClient, server: LiveServer, backend: str
) -> None:
    document = "{ __typename " + "@include(if: true) " * 51 + "}"
    error = await refused(http, server, await post(http, document), 400, "QUERY_TOO_COMPLEX")
    assert error["extensions"]["limit"] == "directives"


async def test_five_thousand_directives_are_refused(
    http: httpx.AsyncClient, server: LiveServer, backend: str
) -> None:
    document = "{ __typename " + "@a " * 5_000 + "}"
    error = await refused(http, server, await post(http, document), 400, "QUERY_TOO_COMPLEX")
    assert error["extensions"]["limit"] == "tokens"


async def test_too_many_operations_are_refused(
    http: httpx.AsyncClient, server: LiveServer, backend: str
) -> None:
    document = " ".join(f"query Q{i} {{ __typename }}" for i in range(21))
    response = await post(http, document, operationName="Q0")
    error = await refused(http, server, response, 400, "QUERY_TOO_COMPLEX")
    assert error["extensions"]["limit"] == "operations"


async def test_fragment_fan_out_is_refused_and_the_server_keeps_answering(
    http: httpx.AsyncClient, server: LiveServer, backend: str
) -> None:
    # 22 levels is the 909-byte document that froze the server for 32 s.
    document = fan_out(22)
    assert len(document) < 1_000
    bursts = await asyncio.gather(
        *(post(http, document) for _ in range(20)),
        http.get("/health"),
        post(http, "{ __typename }"),
    )
    for response in bursts[:20]:
        assert response.status_code == 400
        error = response.json()["errors"][0]
        assert error["extensions"]["code"] == "QUERY_TOO_COMPLEX"
        assert error["extensions"]["limit"] == "selections"
    assert bursts[20].status_code == 200
    assert bursts[21].json()["data"] == {"__typename": "Query"}
    await refused(http, server, await post(http, fan_out(99)), 400, "QUERY_TOO_COMPLEX")


async def test_an_unused_fan_out_fragment_is_refused_too(
    http: httpx.AsyncClient, server: LiveServer, backend: str
) -> None:
    # Validation walks every definition, spread or not: the limits cover them all.
    document = fan_out(30).replace("query { ...F0 }", "query { __typename }")
    await refused(http, server, await post(http, document), 400, "QUERY_TOO_COMPLEX")


async def test_a_million_items_are_refused_before_any_sql(
    http: httpx.AsyncClient, server: LiveServer, backend: str
) -> None:
    response = await post(http, "{ markets(first: 1000000) { nodes { id } } }")
    error = await refused(http, server, response, 400, "BAD_USER_INPUT")
    assert error["extensions"]["argument"] == "first"
    assert error["extensions"]["path"] == "markets"


async def test_the_nested_three_alias_query_is_refused_for_its_cost(
    http: httpx.AsyncClient, server: LiveServer, backend: str
) -> None:
    branch = (
        "markets { nodes { positions { nodes { market { positions { nodes {"
        " market { positions { nodes { user { id displayName } } } } } } } } } } }"
    )
    document = "{ " + " ".join(f"a{i}: {branch}" for i in range(3)) + " }"
    assert len(document) < 800
    error = await refused(http, server, await post(http, document), 400, "QUERY_TOO_COMPLEX")
    assert error["extensions"]["limit"] == "cost"
    assert error["extensions"]["measured"] > 1_000


async def test_an_over_long_operation_name_is_refused_without_echoing_it(
    http: httpx.AsyncClient, server: LiveServer, backend: str
) -> None:
    name = "Q" * 200_000
    response = await post(http, f"query {name} {{ __typename }}", operationName=name)
    error = await refused(http, server, response, 400, "BAD_REQUEST")
    assert len(error["message"]) < 200
    assert error["extensions"] == {
        "code": "BAD_REQUEST",
        "limit": "operationNameChars",
        "maximum": 100,
        "measured": 200_000,
    }


async def test_a_body_over_the_size_cap_says_its_size(
    http: httpx.AsyncClient, server: LiveServer, backend: str
) -> None:
    body = orjson.dumps({"query": "{ __typename }" + " " * 2_000_000})
    response = await http.post(
        "/graphql", content=body, headers={**STRICT, "content-type": "application/json"}
    )
    error = await refused(http, server, response, 413, "BAD_REQUEST")
    assert error["extensions"] == {
        "code": "BAD_REQUEST",
        "limit": "bodyBytes",
        "maximum": 1_000_000,
        "measured": len(body),
    }


async def test_a_streamed_body_over_the_size_cap_says_how_much_was_read(
    http: httpx.AsyncClient, server: LiveServer, backend: str
) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"query": "{ __typename }", "pad": "'
        for _ in range(40):
            yield b"x" * 65_536
        yield b'"}'

    # No Content-Length: the server stops reading at the first chunk past the cap.
    response = await http.post(
        "/graphql", content=chunks(), headers={**STRICT, "content-type": "application/json"}
    )
    error = await refused(http, server, response, 413, "BAD_REQUEST")
    assert error["extensions"]["limit"] == "bodyBytes"
    assert 1_000_000 < error["extensions"]["measured"] < 40 * 65_536


@pytest.mark.parametrize(
    ("body", "status"),
    [
        pytest.param(
            lambda: orjson.dumps({"query": "{ __typename }" + " " * 2_000_000}),
            413,
            id="2MB-document",
        ),
        pytest.param(
            lambda: orjson.dumps({"query": "{ __typename }", "variables": {"v": "x" * 3_000_000}}),
            413,
            id="3MB-variables",
        ),
        pytest.param(
            lambda: (
                b'{"query": "{ __typename }", "variables": {"v": '
                + b"[" * 100_000
                + b"]" * 100_000
                + b"}}"
            ),
            400,
            id="deep-json",
        ),
        pytest.param(lambda: b'{"query": "{ __typename \xff\xfe }"}', 400, id="invalid-utf8"),
        pytest.param(
            lambda: orjson.dumps([{"query": "{ __typename }"}] * 1_000), 400, id="batch-of-1000"
        ),
    ],
)
async def test_malformed_bodies_get_a_clear_4xx(
    http: httpx.AsyncClient, server: LiveServer, backend: str, body: Any, status: int
) -> None:
    response = await http.post(
        "/graphql", content=body(), headers={**STRICT, "content-type": "application/json"}
    )
    await refused(http, server, response, status, "BAD_REQUEST")


async def test_legacy_json_clients_get_200_for_a_refused_document(
    http: httpx.AsyncClient, server: LiveServer, backend: str
) -> None:
    response = await http.post("/graphql", json={"query": chain(4)})
    assert response.status_code == 200
    assert response.json()["errors"][0]["extensions"]["code"] == "QUERY_TOO_COMPLEX"
    assert server.sql.count == 0


async def test_an_unknown_operation_name_is_echoed_no_longer_than_its_prefix(
    http: httpx.AsyncClient, server: LiveServer, backend: str
) -> None:
    # Within OPERATION_NAME_MAX_CHARS (100), so admitted, but not in the document.
    name = "Q" * 39 + "SECRET" + "x" * 55
    assert len(name) == 100
    response = await post(http, "query Known { __typename }", operationName=name)
    error = await refused(http, server, response, 400, "BAD_REQUEST")
    assert "SECRET" not in error["message"]
    assert "Q" * 39 in error["message"]


# --- costExplain and the cost of refusals ---------------------------------------------------

NESTED = (
    "markets { nodes { positions { nodes { market { positions { nodes {"
    " market { positions { nodes { user { id displayName } } } } } } } } } } }"
)


async def test_cost_explain_breaks_down_an_operation_over_the_cost_limit(
    http: httpx.AsyncClient, server: LiveServer, backend: str
) -> None:
    # The refusal tells the client to send costExplain: it must then explain.
    document = "{ " + " ".join(f"a{i}: {NESTED}" for i in range(3)) + " }"
    over = await refused(http, server, await post(http, document), 400, "QUERY_TOO_COMPLEX")
    assert "costExplain" in over["message"]
    response = await post(http, document, extensions={"costExplain": True})
    assert response.status_code == 200, response.text
    payload = response.json()
    assert "data" not in payload
    assert "errors" not in payload
    cost = payload["extensions"]["cost"]
    assert cost["requestedQueryCost"] == over["extensions"]["measured"]
    assert cost["maximumQueryCost"] == 1_000
    assert cost["actualQueryCost"] == 0
    rows = {row["path"]: row for row in payload["extensions"]["costExplain"]}
    assert sum(rows[f"a{i}"]["cost"] for i in range(3)) == cost["requestedQueryCost"]
    assert rows["a0.nodes.positions"]["items"] == 20
    assert server.sql.count == 0


async def test_cost_explain_keeps_the_document_limits(
    http: httpx.AsyncClient, server: LiveServer, backend: str
) -> None:
    # Explaining executes nothing, but the document is still measured first.
    for document, limit in ((chain(4), "depth"), (fan_out(22), "selections")):
        response = await post(http, document, extensions={"costExplain": True})
        error = await refused(http, server, response, 400, "QUERY_TOO_COMPLEX")
        assert error["extensions"]["limit"] == limit


def assert_cost_known(response: httpx.Response, requested: int) -> None:
    """The answer says what it cost (nothing ran: 0 actual) and the caller's budget."""
    cost = response.json()["extensions"]["cost"]
    assert cost["requestedQueryCost"] == requested
    assert cost["actualQueryCost"] == 0
    status = cost["throttleStatus"]
    assert status["maximumAvailable"] == int(response.headers["RateLimit-Limit"])
    assert status["currentlyAvailable"] == int(response.headers["RateLimit-Remaining"])
    assert status["restoreRate"] > 0
    assert "RateLimit-Reset" in response.headers


async def test_refusals_carry_their_cost_and_the_budget(
    http: httpx.AsyncClient, server: LiveServer, backend: str
) -> None:
    over_cost = "{ " + " ".join(f"a{i}: {NESTED}" for i in range(3)) + " }"
    cases: list[tuple[httpx.Response, int, str]] = [
        (await post(http, "{ markets(first: 1) { "), 400, "GRAPHQL_PARSE_FAILED"),
        (await post(http, "{ noSuchField }"), 422, "GRAPHQL_VALIDATION_FAILED"),
        (
            await post(http, "query ($n: Int!) { markets(first: $n) { totalCount } }", {}),
            400,
            "BAD_USER_INPUT",
        ),
        (await post(http, chain(4)), 400, "QUERY_TOO_COMPLEX"),
        (await post(http, "{ markets(first: 0) { totalCount } }"), 400, "BAD_USER_INPUT"),
        (await post(http, "{ a }", operationName="Missing"), 400, "BAD_REQUEST"),
    ]
    for response, status, code in cases:
        error = await refused(http, server, response, status, code)
        assert_cost_known(response, 0)
        assert error["extensions"]["code"] == code
    over = await post(http, over_cost)
    error = await refused(http, server, over, 400, "QUERY_TOO_COMPLEX")
    assert_cost_known(over, error["extensions"]["measured"])


async def test_a_request_refused_before_its_body_is_read_carries_the_budget(
    http: httpx.AsyncClient, server: LiveServer, backend: str
) -> None:
    body = orjson.dumps({"query": "{ __typename }" + " " * 2_000_000})
    response = await http.post(
        "/graphql", content=body, headers={**STRICT, "content-type": "application/json"}
    )
    await refused(http, server, response, 413, "BAD_REQUEST")
    assert_cost_known(response, 0)


async def test_cost_explain_answers_carry_the_budget(
    http: httpx.AsyncClient, server: LiveServer, backend: str
) -> None:
    response = await post(
        http, "{ markets(first: 3) { nodes { id } } }", extensions={"costExplain": True}
    )
    assert response.status_code == 200
    assert_cost_known(response, 5)
