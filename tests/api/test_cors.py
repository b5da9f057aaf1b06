"""CORS over real HTTP: what a browser sends and must get back, header by header."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from infra.settings import Settings
from tests.support import LiveServer

APP = "https://app.example.com"
QUERY = {"query": "query Count { markets(first: 1) { totalCount } }"}
EXPOSED = {
    "x-request-id",
    "retry-after",
    "ratelimit-limit",
    "ratelimit-remaining",
    "ratelimit-reset",
}


@pytest.fixture(scope="module")
def app_origin_server(settings: Settings) -> Iterator[LiveServer]:
    """CORS_ORIGINS=https://app.example.com (the way production names its frontend)."""
    server = LiveServer(
        dataclasses.replace(settings, cors_origins=(APP,), cors_localhost=False, db_pool_size=4)
    )
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def production_server(settings: Settings) -> Iterator[LiveServer]:
    """Production's default: no CORS_ORIGINS, so no origin at all."""
    server = LiveServer(
        dataclasses.replace(
            settings,
            environment="production",
            cors_origins=(),
            cors_localhost=False,
            db_pool_size=4,
        )
    )
    server.start()
    yield server
    server.stop()


async def preflight(base_url: str, origin: str) -> httpx.Response:
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
        return await client.options(
            "/graphql",
            headers={
                "Origin": origin,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization, content-type",
            },
        )


async def post(base_url: str, origin: str) -> httpx.Response:
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
        return await client.post("/graphql", json=QUERY, headers={"Origin": origin})


def cors_headers(response: httpx.Response) -> dict[str, str]:
    return {k: v for k, v in response.headers.items() if k.startswith("access-control-")}


def listed(value: str) -> set[str]:
    return {item.strip().lower() for item in value.split(",")}


async def test_preflight_from_an_allowed_origin_is_answered(app_origin_server: LiveServer) -> None:
    response = await preflight(app_origin_server.url, APP)
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == APP
    assert {"get", "post"} <= listed(response.headers["access-control-allow-methods"])
    assert {"authorization", "content-type"} <= listed(
        response.headers["access-control-allow-headers"]
    )
    assert response.headers["access-control-max-age"] == "600"
    # Bearer tokens need no credentials mode; cookies are never accepted cross-origin.
    assert "access-control-allow-credentials" not in response.headers


async def test_request_from_an_allowed_origin_gets_the_headers(
    app_origin_server: LiveServer,
) -> None:
    response = await post(app_origin_server.url, APP)
    assert response.status_code == 200
    assert response.json()["data"]["markets"]["totalCount"] >= 0
    assert response.headers["access-control-allow-origin"] == APP
    assert listed(response.headers["access-control-expose-headers"]) >= EXPOSED
    assert "origin" in listed(response.headers["vary"])
    assert "access-control-allow-credentials" not in response.headers


async def test_another_origin_gets_no_cors_headers(app_origin_server: LiveServer) -> None:
    refused = await preflight(app_origin_server.url, "https://evil.example.net")
    assert cors_headers(refused) == {}
    assert refused.status_code == 405  # the endpoint's answer to OPTIONS, not a CORS answer

    response = await post(app_origin_server.url, "https://evil.example.net")
    assert response.status_code == 200  # the server answers; the browser withholds it
    assert cors_headers(response) == {}
    assert "origin" in listed(response.headers["vary"])


async def test_a_lookalike_of_an_allowed_origin_is_another_origin(
    app_origin_server: LiveServer,
) -> None:
    for lookalike in ("http://app.example.com", "https://app.example.com.evil.net"):
        assert cors_headers(await post(app_origin_server.url, lookalike)) == {}


async def test_development_allows_localhost_on_any_port(server: LiveServer) -> None:
    assert not server.settings.production
    for origin in ("http://localhost:5173", "http://127.0.0.1:3000", "http://[::1]:8080"):
        response = await preflight(server.url, origin)
        assert response.status_code == 200, origin
        assert response.headers["access-control-allow-origin"] == origin
    assert cors_headers(await post(server.url, "http://localhost.evil.net")) == {}


async def test_production_allows_no_origin_by_default(production_server: LiveServer) -> None:
    for origin in ("http://localhost:5173", APP):
        assert cors_headers(await preflight(production_server.url, origin)) == {}
        assert cors_headers(await post(production_server.url, origin)) == {}


def _graphql_responses(metrics: str) -> dict[str, float]:
    """``marketgraph_http_requests_total`` of route /graphql, by status."""
    counted: dict[str, float] = {}
    for family in text_string_to_metric_families(metrics):
        for sample in family.samples:
            if (
                sample.name == "marketgraph_http_requests_total"
                and sample.labels.get("route") == "/graphql"
            ):
                counted[sample.labels["status"]] = sample.value
    return counted


async def test_behind_cors_each_graphql_response_has_one_request_id_and_counts_once(
    app_origin_server: LiveServer,
) -> None:
    """The endpoint does the edge's job for its own responses (``GraphQLEndpoint.at_edge``),
    CORS answers preflights itself: neither kind may go without, nor get it twice."""
    async with httpx.AsyncClient(base_url=app_origin_server.url, timeout=30) as client:
        before = _graphql_responses((await client.get("/metrics")).text)
        sent = [
            await client.options(
                "/graphql",
                headers={"Origin": APP, "Access-Control-Request-Method": "POST"},
            ),
            await client.post("/graphql", json=QUERY, headers={"Origin": APP}),
            await client.post("/graphql", json=QUERY, headers={"Origin": "https://other.test"}),
            await client.post("/graphql", json=QUERY),
            await client.options("/graphql"),
        ]
        after = _graphql_responses((await client.get("/metrics")).text)
    assert [response.status_code for response in sent] == [200, 200, 200, 200, 405]
    for response in sent:
        assert len(response.headers.get_list("x-request-id")) == 1, response.headers
    assert len({response.headers["x-request-id"] for response in sent}) == len(sent)
    # The registry is the process's: other tests' statuses are there too, unchanged.
    counted = {status: after[status] - before.get(status, 0) for status in after}
    assert {status: n for status, n in counted.items() if n} == {"200": 4, "405": 1}
