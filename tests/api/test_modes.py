"""Development and production modes: GraphiQL, introspection and field suggestions."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from infra.settings import Settings
from tests.support import LiveServer, without_extensions

INTROSPECTION = "{ __schema { types { name } } }"
TYPE_INTROSPECTION = '{ __type(name: "Market") { fields { name } } }'
MISSPELLED = "{ markts(first: 1) { totalCount } }"


def production(settings: Settings, **overrides: Any) -> Settings:
    return dataclasses.replace(
        settings,
        environment="production",
        **{"graphiql": False, "introspection": False, **overrides},
    )


@pytest.fixture(scope="module")
def production_server(settings: Settings) -> Iterator[LiveServer]:
    server = LiveServer(production(settings))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def production_with_tools_server(settings: Settings) -> Iterator[LiveServer]:
    """Production with GraphiQL and introspection switched back on explicitly."""
    server = LiveServer(production(settings, graphiql=True, introspection=True))
    server.start()
    yield server
    server.stop()


async def post(base_url: str, query: str) -> httpx.Response:
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
        return await client.post("/graphql", json={"query": query})


async def get_html(base_url: str) -> httpx.Response:
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
        return await client.get("/graphql", headers={"accept": "text/html,*/*;q=0.8"})


def is_graphiql(response: httpx.Response) -> bool:
    return (
        response.status_code == 200
        and response.headers["content-type"].startswith("text/html")
        and "graphiql" in response.text.lower()
    )


# --- development (the session server) -------------------------------------------------------


async def test_development_serves_graphiql(server: LiveServer) -> None:
    assert not server.settings.production
    assert is_graphiql(await get_html(server.url))


async def test_development_allows_introspection(server: LiveServer) -> None:
    response = await post(server.url, INTROSPECTION)
    payload = response.json()
    assert "errors" not in payload, payload
    names = {t["name"] for t in payload["data"]["__schema"]["types"]}
    assert {"Query", "Mutation", "Market", "User", "Position"} <= names


async def test_development_suggests_fields(server: LiveServer) -> None:
    response = await post(server.url, MISSPELLED)
    [error] = response.json()["errors"]
    assert error["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    assert "Did you mean 'markets'" in error["message"]


# --- production -------------------------------------------------------------------------------


async def test_production_serves_no_graphiql(production_server: LiveServer) -> None:
    response = await get_html(production_server.url)
    assert not is_graphiql(response)
    assert "<html" not in response.text.lower()
    # With */* accepted the client gets JSON: a GraphQL error, since there is no query.
    assert response.status_code == 400
    assert response.json()["errors"][0]["extensions"]["code"] == "BAD_REQUEST"


@pytest.mark.parametrize("query", [INTROSPECTION, TYPE_INTROSPECTION])
async def test_production_refuses_introspection(production_server: LiveServer, query: str) -> None:
    response = await post(production_server.url, query)
    assert response.status_code == 200
    payload = response.json()
    assert "data" not in payload
    assert payload["errors"]
    assert {e["extensions"]["code"] for e in payload["errors"]} == {"GRAPHQL_VALIDATION_FAILED"}
    assert "Market" not in response.text


async def test_production_still_answers_typename(production_server: LiveServer) -> None:
    response = await post(production_server.url, "{ __typename }")
    assert without_extensions(response.json()) == {"data": {"__typename": "Query"}}


async def test_production_gives_no_field_suggestions(production_server: LiveServer) -> None:
    response = await post(production_server.url, MISSPELLED)
    [error] = response.json()["errors"]
    assert error["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    assert "markts" in error["message"]
    assert "Did you mean" not in error["message"]
    assert "'markets'" not in error["message"]


async def test_production_tools_can_be_enabled_explicitly(
    production_with_tools_server: LiveServer,
) -> None:
    url = production_with_tools_server.url
    assert is_graphiql(await get_html(url))
    introspected = (await post(url, INTROSPECTION)).json()
    assert "errors" not in introspected, introspected
    # Suggestions stay off in production: they are not one of the tools one opts into.
    [error] = (await post(url, MISSPELLED)).json()["errors"]
    assert "Did you mean" not in error["message"]
