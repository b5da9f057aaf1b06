"""Automatic persisted queries over real HTTP, as Apollo's link speaks them.

(Apollo Client itself talks to the server in tests/api/test_apollo_client.py.)
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson
import pytest

from infra.settings import Settings
from tests.api.caching import CacheClient, cache_server, cached_settings

pytestmark = pytest.mark.embedded

GRAPHQL_RESPONSE = "application/graphql-response+json"


@pytest.fixture(scope="module")
async def server(settings: Settings) -> AsyncIterator[CacheClient]:
    async with cache_server(cached_settings(settings)) as client:
        yield client


@pytest.fixture(scope="module")
async def without_apq(settings: Settings) -> AsyncIterator[CacheClient]:
    async with cache_server(cached_settings(settings, apq=False)) as client:
        yield client


def document() -> tuple[str, str]:
    """A query text no other test sends, and its SHA-256."""
    query = f"query Markets {{ markets(first: 2) {{ totalCount }} }} # {uuid.uuid4().hex}"
    return query, hashlib.sha256(query.encode()).hexdigest()


def persisted(sha: str, version: int = 1) -> dict[str, Any]:
    return {"persistedQuery": {"version": version, "sha256Hash": sha}}


async def post(client: CacheClient, body: dict[str, Any], **headers: str) -> httpx.Response:
    return await client.http.post("/graphql", json=body, headers=headers)


async def get(client: CacheClient, **params: Any) -> httpx.Response:
    encoded = {k: v if isinstance(v, str) else orjson.dumps(v).decode() for k, v in params.items()}
    return await client.http.get("/graphql", params=encoded)


def error(response: httpx.Response) -> dict[str, Any]:
    payload: dict[str, Any] = response.json()
    assert "data" not in payload, payload
    [first] = payload["errors"]
    return dict(first)


async def test_an_unknown_hash_is_persisted_query_not_found(server: CacheClient) -> None:
    _, sha = document()
    response = await post(server, {"extensions": persisted(sha)})
    # Apollo's link retries with the text on this message or code.
    assert response.status_code == 200
    assert error(response)["message"] == "PersistedQueryNotFound"
    assert error(response)["extensions"]["code"] == "PERSISTED_QUERY_NOT_FOUND"
    strict = await post(server, {"extensions": persisted(sha)}, Accept=GRAPHQL_RESPONSE)
    assert strict.status_code == 400
    assert error(strict)["extensions"]["code"] == "PERSISTED_QUERY_NOT_FOUND"


async def test_a_hash_with_its_text_registers_it_for_hash_only_requests(
    server: CacheClient,
) -> None:
    query, sha = document()
    first = await post(server, {"query": query, "extensions": persisted(sha)})
    assert first.status_code == 200
    assert first.json()["data"]["markets"]["totalCount"] >= 0
    by_hash = await post(server, {"extensions": persisted(sha)})
    assert by_hash.json()["data"] == first.json()["data"]
    # Apollo's useGETForHashedQueries: the hash alone in the query string.
    got = await get(server, extensions=persisted(sha), operationName="Markets")
    assert got.status_code == 200
    assert got.json()["data"] == first.json()["data"]
    assert got.json()["extensions"]["cache"] == "HIT"


async def test_a_hash_that_is_not_its_texts_is_refused_and_not_kept(server: CacheClient) -> None:
    query, _ = document()
    _, other = document()
    response = await post(server, {"query": query, "extensions": persisted(other)})
    assert error(response)["extensions"]["code"] == "PERSISTED_QUERY_HASH_MISMATCH"
    after = await post(server, {"extensions": persisted(other)})
    assert error(after)["extensions"]["code"] == "PERSISTED_QUERY_NOT_FOUND"


async def test_an_invalid_document_is_not_kept(server: CacheClient) -> None:
    query = f"query {{ markets {{ nope }} }} # {uuid.uuid4().hex}"
    sha = hashlib.sha256(query.encode()).hexdigest()
    response = await post(server, {"query": query, "extensions": persisted(sha)})
    assert error(response)["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    after = await post(server, {"extensions": persisted(sha)})
    assert error(after)["extensions"]["code"] == "PERSISTED_QUERY_NOT_FOUND"


@pytest.mark.parametrize(
    "extension",
    [
        {"persistedQuery": {"version": 2, "sha256Hash": "0" * 64}},
        {"persistedQuery": {"version": 1, "sha256Hash": "NOT-A-HASH"}},
        {"persistedQuery": "abc"},
    ],
    ids=["version", "hash", "shape"],
)
async def test_a_malformed_persisted_query_is_a_bad_request(
    server: CacheClient, extension: dict[str, Any]
) -> None:
    response = await post(server, {"extensions": extension})
    assert response.status_code == 400
    assert error(response)["extensions"]["code"] == "BAD_REQUEST"


async def test_a_mutation_by_hash_over_get_is_refused(server: CacheClient) -> None:
    query = f"mutation {{ signOut {{ signedOut }} }} # {uuid.uuid4().hex}"
    sha = hashlib.sha256(query.encode()).hexdigest()
    registered = await post(server, {"query": query, "extensions": persisted(sha)})
    assert registered.status_code == 200
    response = await get(server, extensions=persisted(sha))
    assert response.status_code == 405
    assert response.headers["Allow"] == "POST"


async def test_without_apq_a_hash_is_not_supported(without_apq: CacheClient) -> None:
    query, sha = document()
    response = await post(without_apq, {"extensions": persisted(sha)})
    assert error(response)["message"] == "PersistedQueryNotSupported"
    assert error(response)["extensions"]["code"] == "PERSISTED_QUERY_NOT_SUPPORTED"
    # The text with its hash still runs (the link sends that once it stops hashing).
    with_text = await post(without_apq, {"query": query, "extensions": persisted(sha)})
    assert with_text.json()["data"]["markets"]["totalCount"] >= 0
    again = await post(without_apq, {"extensions": persisted(sha)})
    assert error(again)["extensions"]["code"] == "PERSISTED_QUERY_NOT_SUPPORTED"


async def test_a_request_with_neither_text_nor_hash_is_a_bad_request(server: CacheClient) -> None:
    response = await post(server, {"variables": {}})
    assert response.status_code == 400
    assert "query" in error(response)["message"]
