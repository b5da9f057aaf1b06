"""Documents are bounded: tokens, aliases and depth, each refused with a clear error."""

from __future__ import annotations

import httpx
import pytest

from graph.documents import MAX_ALIASES, MAX_DEPTH, MAX_TOKENS

pytestmark = pytest.mark.embedded

STRICT = {"Accept": "application/graphql-response+json"}


async def post(http: httpx.AsyncClient, query: str) -> httpx.Response:
    return await http.post("/graphql", json={"query": query}, headers=STRICT)


async def test_a_document_over_the_token_cap_is_refused_before_validation(
    http: httpx.AsyncClient, backend: str
) -> None:
    # Every `a:__typename` is three tokens; braces add two.
    fields = " ".join(f"a{i}:__typename" for i in range(MAX_TOKENS // 3 + 1))
    response = await post(http, f"{{ {fields} }}")
    assert response.status_code == 400
    error = response.json()["errors"][0]
    assert error["extensions"]["code"] == "GRAPHQL_PARSE_FAILED"
    assert str(MAX_TOKENS) in error["message"]


async def test_a_document_under_the_token_cap_runs(http: httpx.AsyncClient, backend: str) -> None:
    response = await post(http, "{ " + " ".join(["__typename"] * 100) + " }")
    assert response.status_code == 200
    assert response.json()["data"] == {"__typename": "Query"}


@pytest.mark.parametrize(("count", "allowed"), [(MAX_ALIASES, True), (MAX_ALIASES + 1, False)])
async def test_aliases_are_capped(
    http: httpx.AsyncClient, backend: str, count: int, allowed: bool
) -> None:
    fields = " ".join(f"a{i}: __typename" for i in range(count))
    response = await post(http, f"{{ {fields} }}")
    if allowed:
        assert response.status_code == 200
        assert len(response.json()["data"]) == count
    else:
        assert response.status_code == 422
        error = response.json()["errors"][0]
        assert error["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
        assert "aliases" in error["message"]


def chain(times: int) -> str:
    """Markets, each with its creator's markets, ``times`` levels down (3 depth per level)."""
    inner = "id"
    for _ in range(times):
        inner = f"id creator {{ markets(first: 1) {{ nodes {{ {inner} }} }} }}"
    return f"{{ markets(first: 1) {{ nodes {{ {inner} }} }} }}"


async def test_an_ordinary_depth_runs(http: httpx.AsyncClient, backend: str) -> None:
    response = await post(http, chain(2))  # depth 9
    assert response.status_code == 200, response.text
    assert "errors" not in response.json()


async def test_depth_beyond_the_cap_is_refused(http: httpx.AsyncClient, backend: str) -> None:
    assert MAX_DEPTH < 3 * 4 + 3
    response = await post(http, chain(4))  # depth 15
    assert response.status_code == 422, response.text
    error = response.json()["errors"][0]
    assert error["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    assert "depth" in error["message"]
