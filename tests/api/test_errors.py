"""An unexpected fault is masked for the client and logged with its stack trace."""

from __future__ import annotations

import logging
from typing import Any

import httpx
import orjson
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.support import MakeAccount, MakeMarket

POSITION_COUNTS = "query Counts { markets(first: 1) { nodes { name positions { totalCount } } } }"


def log_lines(caplog: pytest.LogCaptureFixture, logger: str, event: str) -> list[dict[str, Any]]:
    lines = []
    for record in caplog.records:
        if record.name != logger:
            continue
        line: dict[str, Any] = orjson.loads(record.getMessage())
        if line.get("event") == event:
            lines.append(line)
    return lines


async def rename_table(db: AsyncEngine, old: str, new: str) -> None:
    async with db.begin() as conn:
        # Bounded: a lock the server holds must fail the test, not hang it.
        await conn.execute(sa.text("SET LOCAL lock_timeout = '10s'"))
        await conn.execute(sa.text(f"ALTER TABLE {old} RENAME TO {new}"))


async def test_internal_fault_is_masked_and_logged_with_the_request_id(
    http: httpx.AsyncClient,
    db: AsyncEngine,
    make_account: MakeAccount,
    make_market: MakeMarket,
    caplog: pytest.LogCaptureFixture,
) -> None:
    owner = await make_account("Fault Owner")
    await make_market(owner)
    caplog.set_level(logging.INFO, logger="marketgraph")
    # A real fault in the database the server reads, not a stand-in for it.
    await rename_table(db, "positions", "positions_moved")
    try:
        response = await http.post("/graphql", json={"query": POSITION_COUNTS})
    finally:
        await rename_table(db, "positions_moved", "positions")

    assert response.status_code == 200
    request_id = response.headers["x-request-id"]
    payload = response.json()
    codes = {error["extensions"]["code"] for error in payload["errors"]}
    assert codes == {"INTERNAL_SERVER_ERROR"}
    assert {error["extensions"]["requestId"] for error in payload["errors"]} == {request_id}
    for leaked in ("positions_moved", "relation", "Traceback", "asyncpg", "sqlalchemy", "SELECT"):
        assert leaked.lower() not in response.text.lower()

    logged = [
        line
        for line in log_lines(caplog, "marketgraph.graphql", "graphql.internal_error")
        if line["request_id"] == request_id
    ]
    assert logged, "the internal error was not logged under the response's request id"
    trace = logged[0]["exception"]
    assert trace.startswith("Traceback")
    assert 'relation "positions" does not exist' in trace
    assert logged[0]["level"] == "error"

    operations = [
        line
        for line in log_lines(caplog, "marketgraph.http", "graphql.operation")
        if line["request_id"] == request_id
    ]
    assert [(line["operation_name"], line["outcome"]) for line in operations] == [
        ("Counts", "internal_error")
    ]


async def test_the_same_query_works_once_the_fault_is_gone(
    http: httpx.AsyncClient, make_account: MakeAccount, make_market: MakeMarket
) -> None:
    """The control for the fault test: the query is sound and the server recovered."""
    owner = await make_account("Recovered Owner")
    await make_market(owner)
    response = await http.post("/graphql", json={"query": POSITION_COUNTS})
    assert response.status_code == 200
    payload = response.json()
    assert "errors" not in payload, payload
    assert len(payload["data"]["markets"]["nodes"]) == 1
    assert isinstance(payload["data"]["markets"]["nodes"][0]["positions"]["totalCount"], int)


async def test_client_supplied_request_id_is_the_one_reported(
    http: httpx.AsyncClient,
    db: AsyncEngine,
    make_account: MakeAccount,
    make_market: MakeMarket,
) -> None:
    owner = await make_account("Fault Quoter")
    await make_market(owner)
    await rename_table(db, "positions", "positions_moved")
    try:
        response = await http.post(
            "/graphql", json={"query": POSITION_COUNTS}, headers={"x-request-id": "support-4711"}
        )
    finally:
        await rename_table(db, "positions_moved", "positions")
    assert response.headers["x-request-id"] == "support-4711"
    errors = response.json()["errors"]
    assert errors
    assert all(error["extensions"]["requestId"] == "support-4711" for error in errors)


async def test_a_fault_while_authenticating_is_masked_too(
    http: httpx.AsyncClient,
    db: AsyncEngine,
    make_account: MakeAccount,
    caplog: pytest.LogCaptureFixture,
) -> None:
    account = await make_account("Fault While Authenticating")
    caplog.set_level(logging.INFO, logger="marketgraph")
    # The identity lookup joins sessions: without the table, it fails before execution.
    await rename_table(db, "sessions", "sessions_moved")
    try:
        response = await http.post(
            "/graphql",
            json={"query": "{ viewer { id } }"},
            headers={"Authorization": f"Bearer {account.token}"},
        )
    finally:
        await rename_table(db, "sessions_moved", "sessions")

    assert response.status_code == 500
    assert response.headers["content-type"].startswith("application/json")
    request_id = response.headers["x-request-id"]
    [error] = response.json()["errors"]
    assert error["extensions"] == {"code": "INTERNAL_SERVER_ERROR", "requestId": request_id}
    assert "sessions" not in response.text
    [logged] = [
        line
        for line in log_lines(caplog, "marketgraph.http", "graphql.request_failed")
        if line["request_id"] == request_id
    ]
    assert "sessions" in logged["exception"]
    [operation] = [
        line
        for line in log_lines(caplog, "marketgraph.http", "graphql.operation")
        if line["request_id"] == request_id
    ]
    assert operation["outcome"] == "internal_error"


async def test_a_failing_field_does_not_take_down_siblings_waiting_on_the_same_load(
    http: httpx.AsyncClient, make_account: MakeAccount, make_market: MakeMarket
) -> None:
    # m.bad fails, so graphql-core cancels m.creator, which was waiting on the same
    # user_by_id future as n.creator: that future must not be cancelled under n.
    market = await make_market(await make_account("Sibling"))
    query = """
    query ($id: ID!) {
      m: market(id: $id) {
        creator { id displayName }
        bad: positions(after: "garbage") { totalCount }
      }
      n: market(id: $id) { creator { id displayName } }
    }
    """
    for _ in range(5):
        # The bad cursor sends this to the resolver path on every server.
        response = await http.post(
            "/graphql", json={"query": query, "variables": {"id": market["id"]}}
        )
        assert response.status_code == 200, response.text
        payload = response.json()
        assert payload["data"]["n"]["creator"]["displayName"] == "Sibling"
        assert [e["extensions"]["code"] for e in payload["errors"]] == ["BAD_USER_INPUT"]
