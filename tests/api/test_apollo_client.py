"""A real Apollo Client, with ``createPersistedQueryLink`` and ``useGETForHashedQueries``,
against a live server (tests/node: pinned by its package-lock.json, installed here with
``npm ci``). The link sends the hash alone over GET, gets PERSISTED_QUERY_NOT_FOUND, sends
the text with the hash by POST, and from then on the hash alone; against a server without
APQ it stops hashing."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from infra.settings import Settings
from tests.api.caching import CacheClient, cache_server, cached_settings

NODE_PACKAGE = Path(__file__).resolve().parents[1] / "node"
INSTALL_TIMEOUT = 600
RUN_TIMEOUT = 120


@pytest.fixture(scope="module")
def node_package() -> Path:
    """The test package with its pinned dependencies installed (once per checkout)."""
    npm = shutil.which("npm")
    assert npm, "Node.js and npm are needed for the Apollo Client tests"
    if not (NODE_PACKAGE / "node_modules" / "@apollo" / "client").is_dir():
        subprocess.run(
            [npm, "ci", "--prefix", str(NODE_PACKAGE), "--no-audit", "--no-fund"],
            check=True,
            capture_output=True,
            timeout=INSTALL_TIMEOUT,
        )
    return NODE_PACKAGE


def apollo(package: Path, url: str) -> dict[str, Any]:
    node = shutil.which("node")
    assert node
    done = subprocess.run(
        [node, str(package / "apq.mjs"), f"{url}/graphql"],
        capture_output=True,
        timeout=RUN_TIMEOUT,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode()
    result: dict[str, Any] = orjson.loads(done.stdout)
    return result


@pytest.fixture
async def with_apq(settings: Settings) -> AsyncIterator[CacheClient]:
    async with cache_server(cached_settings(settings)) as client:
        yield client


@pytest.fixture
async def without_apq(settings: Settings) -> AsyncIterator[CacheClient]:
    async with cache_server(cached_settings(settings, apq=False)) as client:
        yield client


def summary(exchanges: list[dict[str, Any]]) -> list[tuple[str, bool, bool, int]]:
    return [(e["method"], e["query"], e["hash"] is not None, e["status"]) for e in exchanges]


async def test_apollo_persisted_queries_with_get_for_hashed_queries(
    with_apq: CacheClient, node_package: Path
) -> None:
    got = apollo(node_package, with_apq.server.url)
    first, second = got["results"]
    assert first["error"] is None
    assert first["data"]["markets"]["totalCount"] >= 0
    assert second["data"] == first["data"]
    assert summary(got["exchanges"]) == [
        # Apollo Client 4 accepts application/graphql-response+json: the miss is a 400.
        ("GET", False, True, 400),
        ("POST", True, True, 200),
        ("GET", False, True, 200),
    ]
    assert got["exchanges"][0]["code"] == "PERSISTED_QUERY_NOT_FOUND"
    # The second run's GET by hash alone is answered from the response cache.
    assert [e["cache"] for e in got["exchanges"][1:]] == ["MISS", "HIT"]
    hashes = {e["hash"] for e in got["exchanges"]}
    assert len(hashes) == 1


async def test_apollo_stops_hashing_where_apq_is_not_supported(
    without_apq: CacheClient, node_package: Path
) -> None:
    got = apollo(node_package, without_apq.server.url)
    first, second = got["results"]
    assert first["error"] is None
    assert second["data"] == first["data"]
    assert summary(got["exchanges"]) == [
        ("GET", False, True, 400),
        ("POST", True, False, 200),
        # Disabled for good: the text, and no hash, from then on.
        ("POST", True, False, 200),
    ]
    assert got["exchanges"][0]["code"] == "PERSISTED_QUERY_NOT_SUPPORTED"
