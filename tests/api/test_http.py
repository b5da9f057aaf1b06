"""The GraphQL-over-HTTP contract of /graphql, request ids and the operation log, over real HTTP."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import jwt
import orjson
import pytest
import sqlalchemy as sa
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.support import GraphQLClient, LiveServer, MakeAccount, MakeMarket, without_extensions

JSON = "application/json"
GRAPHQL_RESPONSE = "application/graphql-response+json"
MARKET_NAME = "query ($id: ID!) { market(id: $id) { name } }"
SIGN_UP_INLINE = (
    'mutation { signUp(input: {email: "%s", password: "correct horse battery",'
    ' displayName: "Via GET"}) { __typename } }'
)


def media_type(response: httpx.Response) -> str:
    return response.headers["content-type"].split(";")[0].strip()


def only_error(response: httpx.Response) -> dict[str, Any]:
    """The single error of a response that must carry no data."""
    payload = response.json()
    assert "data" not in payload, payload
    assert len(payload["errors"]) == 1, payload
    error: dict[str, Any] = payload["errors"][0]
    assert error["message"], error
    return error


def code_of(response: httpx.Response) -> str:
    return str(only_error(response)["extensions"]["code"])


def log_lines(caplog: pytest.LogCaptureFixture, logger: str, event: str) -> list[dict[str, Any]]:
    """The structured lines ``logger`` wrote for ``event``, decoded."""
    lines = []
    for record in caplog.records:
        if record.name != logger:
            continue
        line: dict[str, Any] = orjson.loads(record.getMessage())
        if line.get("event") == event:
            lines.append(line)
    return lines


async def post_raw(
    http: httpx.AsyncClient, body: bytes, accept: str = JSON, content_type: str = JSON
) -> httpx.Response:
    return await http.post(
        "/graphql", content=body, headers={"content-type": content_type, "accept": accept}
    )


# --- transport: POST, GET, methods -------------------------------------------------------------


async def test_post_json_runs_a_query(
    http: httpx.AsyncClient, make_account: MakeAccount, make_market: MakeMarket
) -> None:
    owner = await make_account("Poster")
    market = await make_market(owner)
    response = await http.post(
        "/graphql", json={"query": MARKET_NAME, "variables": {"id": market["id"]}}
    )
    assert response.status_code == 200
    assert media_type(response) == JSON
    assert without_extensions(response.json()) == {"data": {"market": {"name": market["name"]}}}


async def test_get_runs_a_query_with_variables_and_operation_name(
    http: httpx.AsyncClient, make_account: MakeAccount, make_market: MakeMarket
) -> None:
    owner = await make_account("Getter")
    market = await make_market(owner)
    response = await http.get(
        "/graphql",
        params={
            "query": "query Other { __typename } "
            "query ByGet($id: ID!) { market(id: $id) { name } }",
            "variables": orjson.dumps({"id": market["id"]}).decode(),
            "operationName": "ByGet",
        },
    )
    assert response.status_code == 200
    assert without_extensions(response.json()) == {"data": {"market": {"name": market["name"]}}}


async def test_mutation_over_get_is_405_and_writes_nothing(
    http: httpx.AsyncClient, db: AsyncEngine
) -> None:
    email = f"get.{uuid.uuid4().hex[:10]}@example.com"
    response = await http.get("/graphql", params={"query": SIGN_UP_INLINE % email})
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"
    assert code_of(response) == "BAD_REQUEST"
    async with db.connect() as conn:
        users = await conn.scalar(
            sa.text("SELECT count(*) FROM users WHERE email = :email"), {"email": email}
        )
    assert users == 0


async def test_the_same_mutation_over_post_does_write(
    http: httpx.AsyncClient, db: AsyncEngine
) -> None:
    """The control for the GET case: the document itself is a working mutation."""
    email = f"post.{uuid.uuid4().hex[:10]}@example.com"
    response = await http.post("/graphql", json={"query": SIGN_UP_INLINE % email})
    assert response.status_code == 200
    assert without_extensions(response.json()) == {
        "data": {"signUp": {"__typename": "SignUpSuccess"}}
    }
    async with db.connect() as conn:
        users = await conn.scalar(
            sa.text("SELECT count(*) FROM users WHERE email = :email"), {"email": email}
        )
    assert users == 1


@pytest.mark.parametrize("method", ["PUT", "DELETE", "PATCH"])
async def test_other_methods_are_405(http: httpx.AsyncClient, method: str) -> None:
    response = await http.request(
        method, "/graphql", content=b'{"query": "{ __typename }"}', headers={"content-type": JSON}
    )
    assert response.status_code == 405
    allowed = {item.strip() for item in response.headers["allow"].split(",")}
    assert allowed == {"GET", "POST"}
    assert code_of(response) == "BAD_REQUEST"


async def test_get_without_a_query_is_400(http: httpx.AsyncClient) -> None:
    response = await http.get("/graphql", headers={"accept": JSON})
    assert response.status_code == 400
    assert code_of(response) == "BAD_REQUEST"


async def test_get_with_variables_that_are_not_json_is_400(http: httpx.AsyncClient) -> None:
    response = await http.get("/graphql", params={"query": "{ __typename }", "variables": "{"})
    assert response.status_code == 400
    error = only_error(response)
    assert error["extensions"]["code"] == "BAD_REQUEST"
    assert "variables" in error["message"]


# --- application/graphql-response+json and its status codes -----------------------------------


async def test_graphql_response_success_is_200_with_its_media_type(
    http: httpx.AsyncClient, make_account: MakeAccount, make_market: MakeMarket
) -> None:
    owner = await make_account("Modern")
    market = await make_market(owner)
    response = await http.post(
        "/graphql",
        json={"query": MARKET_NAME, "variables": {"id": market["id"]}},
        headers={"accept": f"{GRAPHQL_RESPONSE}, {JSON};q=0.9"},
    )
    assert response.status_code == 200
    assert media_type(response) == GRAPHQL_RESPONSE
    assert without_extensions(response.json()) == {"data": {"market": {"name": market["name"]}}}


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        pytest.param({"query": "{ markets(first: 1) {"}, 400, "GRAPHQL_PARSE_FAILED", id="parse"),
        pytest.param({"query": "{ noSuchField }"}, 422, "GRAPHQL_VALIDATION_FAILED", id="unknown"),
        pytest.param(
            {"query": "query ($id: ID!) { market(id: $id) { name } }"},
            400,
            "BAD_USER_INPUT",
            id="missing-variable",
        ),
        pytest.param(
            {
                "query": "query ($n: Int) { markets(first: $n) { totalCount } }",
                "variables": {"n": "twenty"},
            },
            400,
            "BAD_USER_INPUT",
            id="variable-type",
        ),
    ],
)
async def test_graphql_response_request_errors(
    http: httpx.AsyncClient, body: dict[str, Any], status: int, code: str
) -> None:
    response = await http.post("/graphql", json=body, headers={"accept": GRAPHQL_RESPONSE})
    assert response.status_code == status
    assert media_type(response) == GRAPHQL_RESPONSE
    assert code_of(response) == code


async def test_graphql_response_field_error_is_200_with_data(http: httpx.AsyncClient) -> None:
    """Execution started, so a field error is a 200 with the data that could be had."""
    response = await http.post(
        "/graphql",
        json={"query": '{ __typename market(id: "not-an-id") { name } }'},
        headers={"accept": GRAPHQL_RESPONSE},
    )
    assert response.status_code == 200
    payload = response.json()
    assert payload["data"] == {"__typename": "Query", "market": None}
    assert [e["extensions"]["code"] for e in payload["errors"]] == ["BAD_USER_INPUT"]
    assert payload["errors"][0]["path"] == ["market"]


# --- legacy application/json ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "code"),
    [
        ("{ markets(first: 1) {", "GRAPHQL_PARSE_FAILED"),
        ("{ noSuchField }", "GRAPHQL_VALIDATION_FAILED"),
        ("{ markets(first: 1) { totalCount noSuchField } }", "GRAPHQL_VALIDATION_FAILED"),
    ],
)
async def test_json_answers_200_for_a_well_formed_request(
    http: httpx.AsyncClient, query: str, code: str
) -> None:
    response = await http.post("/graphql", json={"query": query}, headers={"accept": JSON})
    assert response.status_code == 200
    assert media_type(response) == JSON
    error = only_error(response)
    assert error["extensions"]["code"] == code
    assert error["locations"], error


async def test_missing_accept_means_json(http: httpx.AsyncClient) -> None:
    response = await post_raw(http, b'{"query": "{ __typename }"}', accept="")
    assert response.status_code == 200
    assert media_type(response) == JSON
    assert without_extensions(response.json()) == {"data": {"__typename": "Query"}}


@pytest.mark.parametrize("accept", ["text/html", "image/png", f"{JSON};q=0", "text/*"])
async def test_406_when_no_json_media_type_is_acceptable(
    http: httpx.AsyncClient, accept: str
) -> None:
    response = await post_raw(http, b'{"query": "{ __typename }"}', accept=accept)
    assert response.status_code == 406
    assert code_of(response) == "BAD_REQUEST"


# --- malformed requests: a 4xx with a clear message and a code, never a 500 -------------------

DEEP = b"[" * 100_000 + b"]" * 100_000


@pytest.mark.parametrize(
    ("body", "says"),
    [
        pytest.param(b'{"query": ', "not valid JSON", id="truncated"),
        pytest.param(b"", "not valid JSON", id="empty"),
        pytest.param(b'{"query": "{ __typename \xff }"}', "UTF-8", id="invalid-utf8"),
        pytest.param(b'{"query": "\xc3\x28"}', "UTF-8", id="invalid-utf8-sequence"),
        pytest.param(DEEP, "nested too deeply", id="deep-arrays"),
        pytest.param(b'{"a":' * 50_000 + b"1" + b"}" * 50_000, "nested too deeply", id="deep-obj"),
        pytest.param(b"[1, 2]", "JSON object", id="array-body"),
        pytest.param(b'"{ __typename }"', "JSON object", id="string-body"),
        pytest.param(b"null", "JSON object", id="null-body"),
        pytest.param(b'{"query": 42}', "'query'", id="query-number"),
        pytest.param(b'{"query": ["{ __typename }"]}', "'query'", id="query-list"),
        pytest.param(b'{"query": "   "}', "'query'", id="query-blank"),
        pytest.param(b'{"variables": {}}', "'query'", id="query-missing"),
        pytest.param(b'{"query": "{ __typename }", "variables": [1]}', "'variables'", id="vars"),
        pytest.param(b'{"query": "{ __typename }", "variables": "{}"}', "'variables'", id="vstr"),
        pytest.param(
            b'{"query": "{ __typename }", "operationName": 7}', "'operationName'", id="opname"
        ),
        pytest.param(
            b'{"query": "{ __typename }", "extensions": "x"}', "'extensions'", id="extensions"
        ),
    ],
)
@pytest.mark.parametrize("accept", [JSON, GRAPHQL_RESPONSE])
async def test_malformed_request_is_400_bad_request(
    http: httpx.AsyncClient, body: bytes, says: str, accept: str
) -> None:
    response = await post_raw(http, body, accept=accept)
    assert response.status_code == 400
    assert media_type(response) == accept
    error = only_error(response)
    assert error["extensions"]["code"] == "BAD_REQUEST"
    assert says in error["message"]


@pytest.mark.parametrize("accept", [JSON, GRAPHQL_RESPONSE])
async def test_deeply_nested_document_is_a_parse_error(
    http: httpx.AsyncClient, accept: str
) -> None:
    depth = 10_000
    query = "{" + "market(id: 1) {" * depth + "name" + "}" * (depth + 1)
    response = await http.post("/graphql", json={"query": query}, headers={"accept": accept})
    assert response.status_code == (400 if accept == GRAPHQL_RESPONSE else 200)
    error = only_error(response)
    assert error["extensions"]["code"] == "GRAPHQL_PARSE_FAILED"
    assert "nested too deeply" in error["message"]


@pytest.mark.parametrize(
    ("body", "says"),
    [
        pytest.param(
            {"query": "query A { __typename }", "operationName": "B"}, "'B'", id="unknown-name"
        ),
        pytest.param(
            {"query": "{ __typename }", "operationName": "Named"}, "'Named'", id="anonymous-op"
        ),
        pytest.param(
            {"query": "query A { __typename } query B { __typename }"},
            "operationName",
            id="several-unnamed",
        ),
    ],
)
@pytest.mark.parametrize("accept", [JSON, GRAPHQL_RESPONSE])
async def test_operation_that_cannot_be_chosen_is_400(
    http: httpx.AsyncClient, body: dict[str, Any], says: str, accept: str
) -> None:
    response = await http.post("/graphql", json=body, headers={"accept": accept})
    assert response.status_code == 400
    error = only_error(response)
    assert error["extensions"]["code"] == "BAD_REQUEST"
    assert says in error["message"]


async def test_operation_name_chooses_among_several(
    gql: GraphQLClient, make_account: MakeAccount
) -> None:
    viewer = await make_account("Chooser")
    query = "query A { __typename } query B { viewer { id } }"
    response = await gql.post(query, token=viewer.token, operation_name="B")
    assert response.status_code == 200
    assert without_extensions(response.json()) == {"data": {"viewer": {"id": viewer.id}}}


@pytest.mark.parametrize("accept", [JSON, GRAPHQL_RESPONSE])
async def test_subscription_over_http_is_a_clear_4xx(http: httpx.AsyncClient, accept: str) -> None:
    response = await http.post(
        "/graphql",
        json={"query": "subscription { marketUpdated { id } }"},
        headers={"accept": accept},
    )
    assert 400 <= response.status_code < 500
    error = only_error(response)
    assert error["extensions"]["code"] in ("BAD_REQUEST", "GRAPHQL_VALIDATION_FAILED")


@pytest.mark.parametrize(
    "content_type",
    [
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "application/graphql",
        "application/json; charset=latin-1",
        "",
    ],
)
async def test_unsupported_content_type_is_415(http: httpx.AsyncClient, content_type: str) -> None:
    response = await post_raw(http, b'{"query": "{ __typename }"}', content_type=content_type)
    assert response.status_code == 415
    assert code_of(response) == "BAD_REQUEST"


async def test_json_with_utf8_charset_is_accepted(http: httpx.AsyncClient) -> None:
    response = await post_raw(
        http, b'{"query": "{ __typename }"}', content_type="application/json; charset=UTF-8"
    )
    assert response.status_code == 200
    assert without_extensions(response.json()) == {"data": {"__typename": "Query"}}


# --- the body limit --------------------------------------------------------------------------


def padded_body(size: int) -> bytes:
    """A valid request of exactly ``size`` bytes: the limit is about size, not content."""
    head, tail = b'{"query": "{ __typename }", "padding": "', b'"}'
    return head + b"x" * (size - len(head) - len(tail)) + tail


async def test_body_at_the_limit_is_served(http: httpx.AsyncClient, server: LiveServer) -> None:
    body = padded_body(server.settings.max_body_bytes)
    response = await post_raw(http, body)
    assert response.status_code == 200
    assert without_extensions(response.json()) == {"data": {"__typename": "Query"}}


async def test_body_over_the_limit_is_413(http: httpx.AsyncClient, server: LiveServer) -> None:
    body = padded_body(server.settings.max_body_bytes + 1)
    response = await post_raw(http, body)
    assert response.status_code == 413
    assert code_of(response) == "BAD_REQUEST"


async def test_chunked_body_over_the_limit_is_413(
    http: httpx.AsyncClient, server: LiveServer
) -> None:
    body = padded_body(server.settings.max_body_bytes + 1)
    sent: list[int] = []

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(body), 65_536):
            chunk = body[start : start + 65_536]
            sent.append(len(chunk))
            yield chunk

    request = http.build_request(
        "POST", "/graphql", content=chunks(), headers={"content-type": JSON}
    )
    assert "content-length" not in request.headers
    assert request.headers["transfer-encoding"] == "chunked"
    response = await http.send(request)
    assert response.status_code == 413
    assert code_of(response) == "BAD_REQUEST"


async def test_declared_length_over_the_limit_is_refused_before_the_body(
    server: LiveServer,
) -> None:
    """A client declaring 1 GB gets its 413 without sending a byte of it."""
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    try:
        writer.write(
            b"POST /graphql HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
            b"Content-Length: 1000000000\r\n\r\n"
        )
        await writer.drain()
        status_line = await asyncio.wait_for(reader.readline(), timeout=30)
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()
    assert status_line.split()[1] == b"413"


# --- authentication at the edge --------------------------------------------------------------


def forged_token(user_id: str) -> str:
    now = datetime.now(UTC)
    claims = {
        "iss": "marketgraph",
        "aud": "marketgraph-api",
        "sub": user_id,
        "iat": int(now.timestamp()),
        "nbf": int(now.timestamp()),
        "exp": int((now + timedelta(minutes=5)).timestamp()),
        "jti": uuid.uuid4().hex,
        "typ": "access",
        "ver": 0,
    }
    return jwt.encode(
        claims, "not-the-server-secret-" * 3, algorithm="HS256", headers={"kid": "k1"}
    )


@pytest.mark.parametrize(
    "authorization",
    [
        pytest.param("Bearer garbage", id="garbage"),
        pytest.param("Bearer a.b.c", id="three-parts"),
        pytest.param("Basic dXNlcjpwYXNz", id="basic"),
        pytest.param("Bearer", id="empty"),
        pytest.param("token-without-scheme", id="no-scheme"),
        pytest.param(f"Bearer {forged_token(str(uuid.uuid4()))}", id="forged"),
    ],
)
async def test_bad_credentials_are_401(http: httpx.AsyncClient, authorization: str) -> None:
    response = await http.post(
        "/graphql", json={"query": "{ viewer { id } }"}, headers={"authorization": authorization}
    )
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert code_of(response) == "UNAUTHENTICATED"


async def test_a_good_token_is_accepted(gql: GraphQLClient, make_account: MakeAccount) -> None:
    """The control for the 401 cases: the same query with a real token names the viewer."""
    account = await make_account("Good Token")
    data = await gql.data("{ viewer { id } }", token=account.token)
    assert data == {"viewer": {"id": account.id}}


# --- X-Request-ID ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "given",
    ["abc-123", "trace.01:span_02", "A" * 128, str(uuid.uuid4())],
)
async def test_a_sane_request_id_is_echoed(http: httpx.AsyncClient, given: str) -> None:
    response = await http.post(
        "/graphql", json={"query": "{ __typename }"}, headers={"x-request-id": given}
    )
    assert response.status_code == 200
    assert response.headers["x-request-id"] == given


@pytest.mark.parametrize(
    "given",
    ["A" * 129, "has space", "semi;colon", "<script>", "a/b", "quote'", ""],
)
async def test_an_insane_request_id_is_replaced(http: httpx.AsyncClient, given: str) -> None:
    response = await http.post(
        "/graphql", json={"query": "{ __typename }"}, headers={"x-request-id": given}
    )
    assert response.status_code == 200
    echoed = response.headers["x-request-id"]
    assert echoed
    assert echoed != given


async def test_a_missing_request_id_is_generated_fresh_each_time(http: httpx.AsyncClient) -> None:
    ids = set()
    for _ in range(3):
        response = await http.get("/health")
        ids.add(response.headers["x-request-id"])
    assert len(ids) == 3
    assert all(len(i) >= 16 for i in ids)


async def test_request_id_is_returned_on_rejected_requests_too(http: httpx.AsyncClient) -> None:
    response = await post_raw(http, b"{}", content_type="text/plain")
    assert response.status_code == 415
    assert response.headers["x-request-id"]


async def test_an_unhandled_error_is_a_500_that_is_counted_and_carries_its_request_id(
    http: httpx.AsyncClient, server: LiveServer
) -> None:
    """Edge sits outside Starlette's error middleware, so its 500s are seen like the rest."""

    async def boom(_request: Request) -> Response:
        raise RuntimeError("a bug")

    def five_hundreds(text: str) -> float:
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == "marketgraph_http_requests_total" and sample.labels == {
                    "route": "other",
                    "status": "500",
                }:
                    return sample.value
        return 0.0

    route = Route("/test-unhandled-error", boom)
    server.app.router.routes.append(route)
    try:
        before = five_hundreds((await http.get("/metrics")).text)
        # uvicorn closes the connection after an unhandled error: not one to reuse.
        response = await http.get(
            "/test-unhandled-error", headers={"x-request-id": "bug-1", "connection": "close"}
        )
        after = five_hundreds((await http.get("/metrics")).text)
    finally:
        server.app.router.routes.remove(route)
    assert response.status_code == 500
    assert "a bug" not in response.text
    assert response.headers["x-request-id"] == "bug-1"
    assert after == before + 1


# --- the operation log ----------------------------------------------------------------------


async def test_one_log_line_per_operation(
    http: httpx.AsyncClient,
    make_account: MakeAccount,
    db: AsyncEngine,
    caplog: pytest.LogCaptureFixture,
) -> None:
    account = await make_account("Logged")
    async with db.connect() as conn:
        user_id = await conn.scalar(
            sa.text("SELECT id FROM users WHERE email = :email"), {"email": account.email}
        )
    caplog.set_level(logging.INFO, logger="marketgraph.http")
    request_id = f"log-{uuid.uuid4().hex}"
    response = await http.post(
        "/graphql",
        json={"query": "query WhoAmI { viewer { id } }"},
        headers={"authorization": f"Bearer {account.token}", "x-request-id": request_id},
    )
    assert response.status_code == 200
    mine = [
        line
        for line in log_lines(caplog, "marketgraph.http", "graphql.operation")
        if line["request_id"] == request_id
    ]
    assert len(mine) == 1
    line = mine[0]
    assert line["operation_name"] == "WhoAmI"
    assert line["operation_type"] == "query"
    assert line["outcome"] == "ok"
    assert line["viewer_id"] == str(user_id)
    assert isinstance(line["duration_ms"], int | float)
    assert line["duration_ms"] >= 0


@pytest.mark.parametrize(
    ("body", "operation_type", "outcome"),
    [
        pytest.param(
            b'{"query": "mutation Nope { signIn(input: {email: \\"n@example.com\\",'
            b' password: \\"wrong password\\"}) { __typename } }"}',
            "mutation",
            "ok",
            id="mutation",
        ),
        pytest.param(b'{"query": "query Bad { noSuchField }"}', "query", "rejected", id="invalid"),
        pytest.param(b'{"query": 1}', None, "rejected", id="rejected"),
    ],
)
async def test_log_line_outcomes(
    http: httpx.AsyncClient,
    caplog: pytest.LogCaptureFixture,
    body: bytes,
    operation_type: str | None,
    outcome: str,
) -> None:
    caplog.set_level(logging.INFO, logger="marketgraph.http")
    request_id = f"log-{uuid.uuid4().hex}"
    response = await http.post(
        "/graphql", content=body, headers={"content-type": JSON, "x-request-id": request_id}
    )
    assert response.status_code in (200, 400)
    mine = [
        line
        for line in log_lines(caplog, "marketgraph.http", "graphql.operation")
        if line["request_id"] == request_id
    ]
    assert len(mine) == 1
    assert mine[0]["operation_type"] == operation_type
    assert mine[0]["outcome"] == outcome
    assert mine[0]["viewer_id"] is None
    assert mine[0]["status"] == response.status_code
